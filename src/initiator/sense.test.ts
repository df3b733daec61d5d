import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { attachCopyManager } from '../xcopy/attach.ts';
import { encodeXcopyParameterList, type CscdInput } from '../xcopy/descriptors.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { decodeSense } from '../scsi/sense.ts';
import { InitiatorSession, ScsiCommandError } from './session.ts';
import { RemoteTapeDevice } from './remote-tape-device.ts';
import { openStandaloneDrive } from '../storage-node/tape-library.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInquiry, buildModeSelect6, buildModeSense6 } from '../scsi/cdb/spc.ts';
import { buildRead10 } from '../scsi/cdb/sbc.ts';
import { buildRead6 } from '../scsi/cdb/ssc.ts';

// Over iSCSI: the initiator decodes descriptor-format sense (72h) as it does fixed, including
// the forwarded sense data descriptor (0Ch) of a COPY ABORTED — what the mover forwards.

/** MODE SENSE(6) the control page and MODE SELECT(6) it back with D_SENSE set, over iSCSI. */
async function setDSense(s: InitiatorSession, lun: number): Promise<void> {
  const ms = await s.command(lun, buildModeSense6(0x0a, { dbd: true }), { inLength: 255 });
  const page = ms.data.subarray(4 + ms.data[3]);
  const param = new Uint8Array(4 + page.length);
  param.set(page, 4);
  param[4 + 2] |= 0x04;
  await s.command(lun, buildModeSelect6(param.length), { dataOut: param });
}

async function expectScsiError(p: Promise<unknown>): Promise<ScsiCommandError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ScsiCommandError, String(e));
    return e;
  }
  assert.fail('expected a CHECK CONDITION');
}

test(
  'initiator against a Ferry target with D_SENSE=1: 72h sense decoded, COPY ABORTED with the destination sense ' +
    'in 0Ch',
  async () => {
    const iqn = 'iqn.2026-11.dev.ferry:sense-test';
    const luns = [
      new DiskLu(new MemoryDevice(512, 256), { identity: luIdentity('sense-test|0') }),
      new DiskLu(new MemoryDevice(512, 64), { identity: luIdentity('sense-test|1') }),
    ];
    for (const lu of luns) attachCopyManager(lu);
    const target = new Target({ name: iqn });
    luns.forEach((lu, i) => target.addLun(i, lu));
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port,
      initiatorName: 'iqn.2026-11.dev.ferry:sense-i',
      targetName: iqn,
    });
    try {
      // Fixed format by default.
      const read10 = buildRead10(4096, 1); // LBA 4096: past the end
      const e0 = await expectScsiError(s.command(0, read10, { inLength: 512 }));
      assert.equal(e0.rawSense[0], 0x70);
      assert.equal(e0.sense?.descriptor, false);

      await setDSense(s, 0);

      const e1 = await expectScsiError(s.command(0, read10, { inLength: 512 }));
      assert.equal(e1.rawSense[0], 0x72);
      assert.deepEqual([e1.sense?.descriptor, e1.sense?.key, e1.sense?.asc, e1.sense?.ascq], [true, 5, 0x21, 0]);
      assert.match(
        e1.message,
        /^READ\(10\) on LUN 0: CHECK CONDITION, ILLEGAL REQUEST: LBA OUT OF RANGE \(5\/21\/00\)$/,
      );

      // A CHECK CONDITION the iSCSI layer builds (a write larger than the target takes) follows
      // the LU's D_SENSE too.
      const blocks = (65 << 20) / 512;
      const write16 = new Uint8Array(16);
      write16[0] = 0x8a;
      new DataView(write16.buffer).setUint32(10, blocks);
      const e1b = await expectScsiError(s.command(0, write16, { dataOut: new Uint8Array(blocks * 512) }));
      assert.equal(e1b.rawSense[0], 0x72);
      assert.deepEqual([e1b.sense?.key, e1b.sense?.asc], [5, 0x24]);

      // EXTENDED COPY to LU 0: segment 0 writes past the end of LU 1.
      const cscds: CscdInput[] = [];
      for (const lun of [0, 1]) {
        const vpd = await s.command(lun, buildInquiry(0x1000, 0x83), { inLength: 0x1000 });
        const naa = decodeDeviceIdentificationPage(vpd.data).find((d) => d.designatorType === 3)!;
        cscds.push({
          peripheralDeviceType: 0,
          codeSet: naa.codeSet,
          association: naa.association,
          designatorType: 3,
          designator: naa.designator,
          pad: false,
          fixed: false,
          blockLength: 512,
        });
      }
      const list = encodeXcopyParameterList({
        header: { listId: 9, str: false, listIdUsage: 0, priority: 0 },
        cscds,
        segments: [
          {
            type: 0x02,
            cat: false,
            dc: false,
            source: 0,
            destination: 1,
            blockCount: 16,
            sourceLba: 0,
            destinationLba: 60,
          },
        ],
      });
      const xcopy = new Uint8Array(16);
      xcopy[0] = 0x83;
      new DataView(xcopy.buffer).setUint32(10, list.length);
      const e2 = await expectScsiError(s.command(0, xcopy, { dataOut: list }));
      const d = e2.sense!;
      assert.deepEqual([d.descriptor, d.key, d.asc, d.ascq], [true, 0x0a, 0x0d, 0x02]);
      assert.equal(d.commandSpecific, 0, 'segment 0');
      assert.equal(d.senseKeySpecific![0] & 0xa0, 0xa0, 'SKSV, SD');
      assert.equal(d.forwarded?.length, 1);
      const f = d.forwarded![0];
      assert.deepEqual([f.source, f.status, f.truncated], [2, 0x02, false]);
      const inner = decodeSense(f.sense);
      assert.deepEqual([inner.key, inner.asc], [5, 0x21]);
    } finally {
      await s.logout().catch(() => undefined);
      await server.close();
      for (const lu of luns) await lu.close();
    }
  },
);

test(
  'RemoteTapeDevice against a Ferry drive with D_SENSE=1: filemark, ILI residues and end of data from descriptor ' +
    'sense',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-sense-tape-'));
    const iqn = 'iqn.2026-11.dev.ferry:sense-tape';
    const drive = await openStandaloneDrive(join(dir, 't.cart'), { createSizeBytes: 16 << 20 });
    const target = new Target({ name: iqn });
    target.addLun(0, drive);
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port,
      initiatorName: 'iqn.2026-11.dev.ferry:sense-tape-i',
      targetName: iqn,
    });
    try {
      await setDSense(s, 0);
      const tape = await RemoteTapeDevice.open(s, 0);
      for (const [n, v] of [
        [1000, 1],
        [2000, 2],
      ] as const)
        await tape.write(new Uint8Array(n).fill(v));
      await tape.writeFilemarks(1);
      await tape.rewind();
      const buf = new Uint8Array(4096);
      // Each answer below is a CHECK CONDITION in descriptor format (stream commands 04h, INFORMATION 00h).
      assert.deepEqual(
        await tape.read(buf.subarray(0, 1500)),
        { kind: 'data', bytes: 1000, recordLength: 1000 },
        'short record: ILI, residue +500',
      );
      const long = await tape.read(buf.subarray(0, 300)); // the 2000-byte record: ILI, residue −1700
      assert.deepEqual(long, { kind: 'data', bytes: 300, recordLength: 2000 });
      assert.deepEqual(await tape.read(buf), { kind: 'filemark' });
      assert.deepEqual(await tape.read(buf), { kind: 'eod' });
      const raw = await s.command(0, buildRead6(0x1000), {
        inLength: 4096,
        allowCheckCondition: true,
      });
      assert.equal(raw.rawSense[0], 0x72, 'descriptor format on the wire');
    } finally {
      await s.logout().catch(() => undefined);
      await server.close();
      await drive.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
