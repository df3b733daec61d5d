import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { makeTask, nexusA, nexusB, outcome, targetOf } from '../../test/helpers/scsi.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { attachCopyManager } from './attach.ts';
import { encodeXcopyParameterList } from './descriptors.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import {
  buildExtendedCopy,
  buildReceiveCopyResults,
  buildInquiry,
  buildReportSupportedOpcodes,
  buildTestUnitReady,
} from '../scsi/cdb/spc.ts';

function diskLu(seed: string, blocks = 4096) {
  const dev = new MemoryDevice(512, blocks);
  for (let i = 0; i < dev.bytes.length; i += 512) dev.bytes.fill((i >> 9) & 0xff, i, i + 512);
  const lu = new DiskLu(dev, { identity: luIdentity(seed) });
  const cm = attachCopyManager(lu);
  return { lu, dev, cm };
}

/** Consume the power-on unit attention of both test nexuses. */
async function clearUa(lu: LogicalUnit, target: ReturnType<typeof targetOf>) {
  for (const nexus of [nexusA, nexusB]) await lu.execute(makeTask(buildTestUnitReady(), { target, nexus }));
}

/** What libiscsi does: the last designator of the highest type ≤ 3 from VPD 83h. */
async function libiscsiDesignator(lu: LogicalUnit, target: ReturnType<typeof targetOf>) {
  const r = await lu.execute(makeTask(buildInquiry(0x1000, 0x83), { target }));
  const ds = decodeDeviceIdentificationPage(r.dataIn!);
  return ds
    .filter((d) => d.designatorType <= 3)
    .sort((a, b) => a.designatorType - b.designatorType)
    .at(-1)!;
}

test('a DiskLu with a copy manager: 3PC, VPD 00h lists 8Fh, RSOC lists 83h/00h and 84h', async () => {
  const { lu } = diskLu('attach-1');
  const target = targetOf(new Map([[0, lu]]));
  await clearUa(lu, target);
  const std = await lu.execute(makeTask(buildInquiry(96), { target }));
  assert.equal(std.dataIn![5] & 0x08, 0x08);
  assert.equal(std.dataIn![2], 0x06);
  const pages = await lu.execute(makeTask(buildInquiry(255, 0x00), { target }));
  assert.ok([...pages.dataIn!.subarray(4)].includes(0x8f));
  const p8f = await lu.execute(makeTask(buildInquiry(0x1000, 0x8f), { target }));
  assert.equal(outcome(p8f), 'GOOD');
  assert.equal(p8f.dataIn![1], 0x8f);
  // RSOC option 2 (opcode + SA) for 83h/00h and 84h/03h; option 1 on them is 24/00.
  const rsoc = (opt: number, op: number, sa: number) =>
    lu.execute(
      makeTask(buildReportSupportedOpcodes(0x1000, { option: opt, opcode: op, serviceAction: sa }), { target }),
    );
  const r2 = await rsoc(2, 0x83, 0);
  assert.equal(outcome(r2), 'GOOD');
  assert.equal(r2.dataIn![1] & 0x07, 0x03, 'SUPPORT = 011b');
  assert.equal(outcome(await rsoc(2, 0x84, 3)), 'GOOD');
  assert.equal(outcome(await rsoc(1, 0x83, 0)), '5/24/00');
});

test('libiscsi Simple and ValidTgtDescr against a DiskLu, designator found through INQUIRY', async () => {
  const { lu, dev } = diskLu('attach-2');
  const target = targetOf(new Map([[0, lu]]));
  await clearUa(lu, target);
  const d = await libiscsiDesignator(lu, target);
  assert.equal(d.designatorType, 3);
  for (const luIdType of [0, 2]) {
    const list = encodeXcopyParameterList({
      header: { listId: 1, str: false, listIdUsage: 2, priority: 0 },
      cscds: [
        {
          peripheralDeviceType: 0,
          luIdType,
          codeSet: d.codeSet,
          association: d.association,
          designatorType: 3,
          designator: d.designator,
          pad: false,
          fixed: false,
          blockLength: 512,
        },
      ],
      segments: [
        {
          type: 0x02,
          cat: false,
          dc: false,
          source: 0,
          destination: 0,
          blockCount: 2048,
          sourceLba: 0,
          destinationLba: 2048,
        },
      ],
    });
    dev.bytes.fill(0, 2048 * 512);
    const r = await lu.execute(makeTask(buildExtendedCopy(list.length), { target, dataOut: list }));
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual(dev.bytes.subarray(2048 * 512), dev.bytes.subarray(0, 2048 * 512));
  }
  // COPY STATUS on another nexus: nothing held there.
  assert.equal(
    outcome(await lu.execute(makeTask(buildReceiveCopyResults(0, 1, 1024), { target, nexus: nexusB }))),
    '5/24/00',
  );
  assert.equal(
    outcome(await lu.execute(makeTask(buildReceiveCopyResults(3, 0, 1024), { target, nexus: nexusA }))),
    'GOOD',
  );
});

test('LU reset aborts and forgets; the reset unit attention reaches EXTENDED COPY first', async () => {
  const { lu } = diskLu('attach-3');
  const target = targetOf(new Map([[0, lu]]));
  await clearUa(lu, target);
  const d = await libiscsiDesignator(lu, target);
  const list = encodeXcopyParameterList({
    header: { listId: 4, str: false, listIdUsage: 0, priority: 0 },
    cscds: [
      {
        peripheralDeviceType: 0,
        codeSet: d.codeSet,
        association: d.association,
        designatorType: 3,
        designator: d.designator,
        pad: false,
        fixed: false,
        blockLength: 512,
      },
    ],
    segments: [
      { type: 0x02, cat: false, dc: false, source: 0, destination: 0, blockCount: 8, sourceLba: 0, destinationLba: 8 },
    ],
  });
  assert.equal(outcome(await lu.execute(makeTask(buildExtendedCopy(list.length), { target, dataOut: list }))), 'GOOD');
  lu.reset('lun', nexusB);
  const r = await lu.execute(makeTask(buildExtendedCopy(list.length), { target, dataOut: list }));
  assert.equal(outcome(r), '6/29/03');
  assert.equal(outcome(await lu.execute(makeTask(buildReceiveCopyResults(0, 4, 1024), { target }))), '5/24/00');
});
