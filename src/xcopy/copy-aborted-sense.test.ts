import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { decodeSense } from '../scsi/sense.ts';
import { makeTask, nexusA, nexusB, outcome, setDSense, targetOf } from '../../test/helpers/scsi.ts';
import { ScsiStatus, type LogicalUnit, type ScsiResult, type TargetContext } from '../scsi/task.ts';
import { attachCopyManager } from './attach.ts';
import { CopyManagerLu } from './copy-manager-lu.ts';
import { encodeXcopyParameterList, type CscdInput, type SegmentInput } from './descriptors.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { buildExtendedCopy, buildReceiveCopyResults, buildInquiry, buildTestUnitReady } from '../scsi/cdb/spc.ts';
import { buildRead10 } from '../scsi/cdb/sbc.ts';

// COPY ABORTED in both sense formats (SPC-5 5.17.7.4 / 4.5.2.9): with D_SENSE=1 the failing
// device's sense travels in a forwarded sense data descriptor (0Ch), source 1 or destination 2.

/** Descriptors of a 72h sense, read here independently of src/scsi/sense.ts. */
function descriptors(sense: Uint8Array): Map<number, Uint8Array> {
  assert.equal(sense[0], 0x72, 'descriptor format');
  assert.equal(sense.length, 8 + sense[7]);
  const out = new Map<number, Uint8Array>();
  for (let p = 8; p < sense.length; p += 2 + sense[p + 1]) {
    assert.ok(!out.has(sense[p]), `one descriptor ${sense[p]}`);
    out.set(sense[p], sense.subarray(p, p + 2 + sense[p + 1]));
  }
  return out;
}

const u64 = (d: Uint8Array, at: number): bigint => new DataView(d.buffer, d.byteOffset).getBigUint64(at);

function disk(seed: string, blocks: number): { lu: DiskLu; dev: MemoryDevice } {
  const dev = new MemoryDevice(512, blocks);
  for (let i = 0; i < dev.bytes.length; i++) dev.bytes[i] = (i * 7) & 0xff;
  const lu = new DiskLu(dev, { identity: luIdentity(seed) });
  attachCopyManager(lu);
  return { lu, dev };
}

async function cscdOf(lu: LogicalUnit, target: TargetContext): Promise<CscdInput> {
  const r = await lu.execute(makeTask(buildInquiry(0x1000, 0x83), { target }));
  const naa = decodeDeviceIdentificationPage(r.dataIn!).find((d) => d.designatorType === 3)!;
  return {
    peripheralDeviceType: 0,
    codeSet: naa.codeSet,
    association: naa.association,
    designatorType: 3,
    designator: naa.designator,
    pad: false,
    fixed: false,
    blockLength: 512,
  };
}

async function setup(): Promise<{
  a: DiskLu;
  b: DiskLu;
  bDev: MemoryDevice;
  target: TargetContext;
  run: (lu: LogicalUnit, cdb: Uint8Array, dataOut?: Uint8Array) => Promise<ScsiResult>;
  cscds: CscdInput[];
}> {
  const { lu: a } = disk('xcopy-sense|a', 256);
  const { lu: b, dev: bDev } = disk('xcopy-sense|b', 64);
  const target = targetOf(
    new Map<number, LogicalUnit>([
      [0, a],
      [1, b],
    ]),
  );
  const run = (lu: LogicalUnit, cdb: Uint8Array, dataOut?: Uint8Array) =>
    lu.execute(makeTask(cdb, { target, dataOut }));
  for (const lu of [a, b])
    for (const nexus of [nexusA, nexusB]) await lu.execute(makeTask(buildTestUnitReady(), { target, nexus }));
  return { a, b, bDev, target, run, cscds: [await cscdOf(a, target), await cscdOf(b, target)] };
}

type BlockToBlock = Extract<SegmentInput, { type: 0x02 }>;
const b2b = (o: Partial<BlockToBlock>): BlockToBlock => ({
  type: 0x02,
  cat: false,
  dc: false,
  source: 0,
  destination: 1,
  blockCount: 8,
  sourceLba: 0,
  destinationLba: 0,
  ...o,
});

function list(listId: number, cscds: CscdInput[], segments: SegmentInput[]): Uint8Array {
  return encodeXcopyParameterList({ header: { listId, str: false, listIdUsage: 0, priority: 0 }, cscds, segments });
}

test(
  'D_SENSE=1: a segment past the end of the destination → 72h COPY ABORTED with 01h segment, 02h pointer, 0Ch ' +
    'destination sense',
  async () => {
    const { a, bDev, run, cscds } = await setup();
    const before = bDev.bytes.slice();
    await setDSense(a, true);
    // Segment 0 is fine; segment 1 writes 8 blocks at LBA 60 of a 64-block LU.
    const params = list(1, cscds, [b2b({}), b2b({ destinationLba: 60, sourceLba: 8 })]);
    const r = await run(a, buildExtendedCopy(params.length), params);
    assert.equal(r.status, ScsiStatus.CHECK_CONDITION);
    assert.deepEqual(
      [r.sense![1] & 0x0f, r.sense![2], r.sense![3]],
      [0x0a, 0x0d, 0x02],
      'COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE',
    );
    const d = descriptors(r.sense!);
    assert.equal(u64(d.get(0x01)!, 4), 1n, 'CSI: segment number 1');
    const sks = d.get(0x02)!.subarray(4, 7);
    assert.equal(sks[0] & 0x80, 0x80, 'SKSV');
    assert.equal(sks[0] & 0x20, 0x20, 'SD: the pointer is into the segment descriptor');
    const fwd = d.get(0x0c)!;
    assert.equal(fwd[2] & 0x0f, 2, 'SENSE DATA SOURCE: copy destination');
    assert.equal(fwd[2] & 0x80, 0, 'not truncated');
    assert.equal(fwd[3], ScsiStatus.CHECK_CONDITION, 'forwarded status');
    const inner = decodeSense(fwd.subarray(4));
    assert.deepEqual([inner.key, inner.asc, inner.ascq], [5, 0x21, 0], "the destination's own sense: LBA OUT OF RANGE");
    // The initiator-side decoder sees the same.
    const all = decodeSense(r.sense!);
    assert.equal(all.descriptor, true);
    assert.equal(all.commandSpecific, 1);
    assert.deepEqual(
      all.forwarded?.map((f) => [f.source, f.status]),
      [[2, 2]],
    );
    assert.deepEqual(bDev.bytes, before, 'validated before any I/O: nothing written');

    // FAILED SEGMENT DETAILS (SPC-4 6.18.5): the same sense, in the format in effect.
    const fsd = await run(a, buildReceiveCopyResults(0x04, 1, 1024));
    assert.equal(outcome(fsd), 'GOOD');
    const len = (fsd.dataIn![58] << 8) | fsd.dataIn![59];
    assert.equal(fsd.dataIn![56], ScsiStatus.CHECK_CONDITION);
    assert.deepEqual(fsd.dataIn!.subarray(60, 60 + len), r.sense);
  },
);

test(
  'D_SENSE=1: a source LBA past the end → 0Ch with SENSE DATA SOURCE 1; D_SENSE=0 keeps the fixed ' + 'layout',
  async () => {
    const { b, run, cscds } = await setup();
    await setDSense(b, true);
    // Sent to LU 1 (64 blocks) as source: LBA 100 is past its end.
    const params = list(2, [cscds[1], cscds[0]], [b2b({ sourceLba: 100, destinationLba: 0 })]);
    const r = await run(b, buildExtendedCopy(params.length), params);
    const d = descriptors(r.sense!);
    assert.equal(u64(d.get(0x01)!, 4), 0n, 'segment 0');
    assert.equal(d.get(0x0c)![2] & 0x0f, 1, 'SENSE DATA SOURCE: copy source');
    assert.equal(decodeSense(d.get(0x0c)!.subarray(4)).asc, 0x21);

    await setDSense(b, false);
    // FAILED SEGMENT DETAILS now answers in fixed format.
    const fsd = await run(b, buildReceiveCopyResults(0x04, 2, 1024));
    const sense = fsd.dataIn!.subarray(60, 60 + ((fsd.dataIn![58] << 8) | fsd.dataIn![59]));
    assert.equal(sense[0], 0x70);
    const r2 = await run(b, buildExtendedCopy(params.length), params);
    assert.equal(r2.sense![0], 0x70);
    assert.deepEqual(
      [r2.sense![8], r2.sense![9], r2.sense![10], r2.sense![11]],
      [18, 0, 0, 0],
      'CSI: source sense at byte 18, segment 0',
    );
    assert.equal(r2.sense![18], ScsiStatus.CHECK_CONDITION);
    assert.equal(decodeSense(r2.sense!.subarray(19)).asc, 0x21);
    assert.deepEqual(
      decodeSense(r2.sense!).forwarded?.map((f) => f.source),
      [1],
    );
  },
);

test('D_SENSE on the copy-manager LU (the mover LU 0): MODE SELECT, then errors in descriptor format', async () => {
  const { a, cscds } = await setup();
  const cm = new CopyManagerLu(luIdentity('xcopy-sense|cm'));
  const target = targetOf(
    new Map<number, LogicalUnit>([
      [0, cm],
      [1, a],
    ]),
  );
  await cm.execute(makeTask(buildTestUnitReady(), { target }));
  await setDSense(cm, true, { target });
  // READ(10): not a processor command
  const bad = await cm.execute(makeTask(buildRead10(0, 1), { target }));
  assert.deepEqual([...bad.sense!.subarray(0, 4)], [0x72, 5, 0x20, 0]);
  // A CSCD this session cannot reach (B is not mapped here): 0A/08/04, no device sense to forward.
  const params = list(3, [cscds[0], cscds[1]], [b2b({})]);
  const r = await cm.execute(makeTask(buildExtendedCopy(params.length), { target, dataOut: params }));
  const d = descriptors(r.sense!);
  assert.deepEqual([r.sense![1], r.sense![2], r.sense![3]], [0x0a, 0x08, 0x04]);
  assert.ok(d.has(0x01) && d.has(0x02));
  assert.equal(d.has(0x0c), false);
});
