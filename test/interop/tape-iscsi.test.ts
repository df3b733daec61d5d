// Interop: the virtual tape library over iSCSI through our initiator. Every SSC and SMC command
// the library implements is issued over the wire at least once, with the sense and residuals
// an initiator sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { requireTools } from '../helpers/tools.ts';
import { startFerryTape, login, settle, record, TAPE_IQN } from './tape-script.ts';
import type { InitiatorSession, CommandResult } from '../../src/initiator/session.ts';
import {
  ElementType,
  buildInitializeElementStatus,
  buildMoveMedium,
  buildReadElementStatus,
} from '../../src/scsi/cdb/smc.ts';
import {
  buildInquiry,
  buildLogSense,
  buildModeSelect6,
  buildModeSense6,
  buildPreventAllow,
  buildReadAttribute,
  buildRequestSense,
  buildTestUnitReady,
} from '../../src/scsi/cdb/spc.ts';
import {
  LocateDest,
  ReadPositionForm,
  SpaceCode,
  buildErase6,
  buildLoadUnload,
  buildLocate10,
  buildLocate16,
  buildRead6,
  buildReadBlockLimits,
  buildReadPosition,
  buildReportDensitySupport,
  buildRewind,
  buildSpace16,
  buildSpace6,
  buildWrite6,
  buildWriteFilemarks6,
} from '../../src/scsi/cdb/ssc.ts';
import { encodeModeSelectBlockDescriptor } from '../../src/scsi/mode-parameters.ts';

const u16 = (d: Uint8Array, at: number): number => (d[at] << 8) | d[at + 1];
const u32 = (d: Uint8Array, at: number): number => new DataView(d.buffer, d.byteOffset).getUint32(at);
const u64 = (d: Uint8Array, at: number): number => Number(new DataView(d.buffer, d.byteOffset).getBigUint64(at));

function sense(r: CommandResult): string {
  return r.sense
    ? [
        r.sense.key.toString(16),
        r.sense.asc.toString(16).padStart(2, '0'),
        r.sense.ascq.toString(16).padStart(2, '0'),
      ].join('/')
    : 'none';
}

async function cmd(
  s: InitiatorSession,
  lun: number,
  cdb: Uint8Array,
  o: { dataOut?: Uint8Array; inLength?: number } = {},
): Promise<CommandResult> {
  return s.command(lun, cdb, { ...o, allowCheckCondition: true, unitAttentionRetries: 0 });
}

/** Barcodes by element address from READ ELEMENT STATUS with VOLTAG (SMC-3 6.10). */
function elementBarcodes(d: Uint8Array): Map<number, string> {
  const out = new Map<number, string>();
  const total = (d[5] << 16) | u16(d, 6);
  for (let p = 8; p < 8 + total;) {
    const descLen = u16(d, p + 2);
    const bytes = (d[p + 5] << 16) | u16(d, p + 6);
    for (let q = p + 8; q < p + 8 + bytes; q += descLen) {
      if (d[q + 2] & 1) out.set(u16(d, q), new TextDecoder().decode(d.subarray(q + 12, q + 44)).trim());
    }
    p += 8 + bytes;
  }
  return out;
}

test(
  'library over iSCSI: changer inventory, load cycle, fixed-block streaming, positioning, MAM, logs, ' + 'unload',
  async () => {
    const tgt = await startFerryTape({ library: { drives: 2, slots: 4, cartridgeSizeBytes: 64 << 20 } });
    const s = await login(tgt.host, tgt.port, TAPE_IQN);
    try {
      await settle(s, 0);
      await settle(s, 1).catch(() => undefined); // no medium yet: only clears the power-on UA
      let r = await cmd(s, 0, buildInquiry(96), { inLength: 96 });
      assert.equal(r.data[0], 0x08);
      r = await cmd(s, 1, buildInquiry(96), { inLength: 96 });
      assert.deepEqual([r.data[0], r.data[1] & 0x80], [0x01, 0x80]);
      assert.equal(sense(await cmd(s, 1, buildTestUnitReady())), '2/3a/00');

      // Changer: element address assignment page, element status with barcodes and drive DVCIDs.
      r = await cmd(s, 0, buildModeSense6(0x1d, { dbd: true }), { inLength: 255 });
      assert.deepEqual([r.data[4], u16(r.data, 4 + 14), u16(r.data, 4 + 16)], [0x1d, 0x100, 2]);
      assert.equal((await cmd(s, 0, buildInitializeElementStatus())).status, 0);
      r = await cmd(s, 0, buildReadElementStatus({ voltag: true, dvcid: true }), { inLength: 0xffff });
      assert.deepEqual(
        [...elementBarcodes(r.data)],
        [
          [0x1000, 'FER001L8'],
          [0x1001, 'FER002L8'],
          [0x1002, 'FER003L8'],
          [0x1003, 'FER004L8'],
        ],
      );
      assert.equal(sense(await cmd(s, 0, buildMoveMedium(0, 0x1000, 0x1001))), '5/3b/0d');
      assert.equal(sense(await cmd(s, 0, buildMoveMedium(0, 0x0100, 0x1001))), '5/3b/0e');
      assert.equal(sense(await cmd(s, 0, buildMoveMedium(0, 0x0999, 0x0100))), '5/21/01');
      assert.equal((await cmd(s, 0, buildPreventAllow(true))).status, 0);
      assert.equal((await cmd(s, 0, buildPreventAllow(false))).status, 0);

      // Load FER003L8 into drive 0 (LUN 1): the drive reports the medium change once.
      assert.equal((await cmd(s, 0, buildMoveMedium(0, 0x1002, 0x100))).status, 0);
      assert.equal(sense(await cmd(s, 1, buildTestUnitReady())), '6/28/00');
      assert.equal((await cmd(s, 1, buildTestUnitReady())).status, 0);

      r = await cmd(s, 1, buildReadBlockLimits(), { inLength: 6 });
      assert.equal(u16(r.data, 4), 1);
      // Fixed 64 KiB blocks.
      const sel = encodeModeSelectBlockDescriptor(65536);
      assert.equal((await cmd(s, 1, buildModeSelect6(sel.length), { dataOut: sel })).status, 0);
      r = await cmd(s, 1, buildModeSense6(0x10), { inLength: 255 });
      assert.equal((r.data[9] << 16) | u16(r.data, 10), 65536);
      const blocks = Array.from({ length: 8 }, (_, i) => record(i, 65536));
      for (let i = 0; i < 8; i += 2) {
        const two = new Uint8Array(131072);
        two.set(blocks[i]);
        two.set(blocks[i + 1], 65536);
        assert.equal((await cmd(s, 1, buildWrite6(2, { fixed: true }), { dataOut: two })).status, 0);
      }
      assert.equal((await cmd(s, 1, buildWriteFilemarks6(1))).status, 0);
      await cmd(s, 1, buildWrite6(1, { fixed: true }), { dataOut: blocks[0] });
      assert.equal((await cmd(s, 1, buildWriteFilemarks6(1))).status, 0);

      // Read 10 blocks from BOP: 8 come back, then the filemark; residue 2 blocks in INFORMATION and on the wire.
      assert.equal((await cmd(s, 1, buildRewind())).status, 0);
      r = await cmd(s, 1, buildRead6(10, { fixed: true }), { inLength: 10 * 65536 });
      assert.equal(sense(r), '0/00/01');
      assert.deepEqual([r.sense!.filemark, r.sense!.info], [true, 2]);
      assert.equal(r.data.length, 8 * 65536);
      assert.ok(Buffer.from(r.data.subarray(5 * 65536, 6 * 65536)).equals(blocks[5]));
      assert.equal(r.residual, 2 * 65536);

      // LOCATE to a block id written earlier; READ POSITION in all three forms.
      assert.equal((await cmd(s, 1, buildLocate10(5))).status, 0);
      r = await cmd(s, 1, buildReadPosition(), { inLength: 20 });
      assert.deepEqual([r.data[0] & 0x80, u32(r.data, 4)], [0, 5]);
      r = await cmd(s, 1, buildRead6(1, { fixed: true }), { inLength: 65536 });
      assert.ok(Buffer.from(r.data).equals(blocks[5]));
      assert.equal((await cmd(s, 1, buildLocate16(1, { destType: LocateDest.FILE }))).status, 0);
      r = await cmd(s, 1, buildReadPosition(ReadPositionForm.LONG), { inLength: 32 });
      assert.deepEqual([u64(r.data, 8), u64(r.data, 16)], [9, 1]);
      r = await cmd(s, 1, buildReadPosition(ReadPositionForm.EXTENDED, 32), { inLength: 32 });
      assert.equal(u64(r.data, 8), 9);
      assert.equal(sense(await cmd(s, 1, buildLocate10(50))), '8/00/05');
      assert.equal((await cmd(s, 1, buildSpace16(SpaceCode.FILEMARKS, -2))).status, 0);
      r = await cmd(s, 1, buildReadPosition(), { inLength: 20 });
      assert.equal(u32(r.data, 4), 8);

      // Density, logs, MAM.
      r = await cmd(s, 1, buildReportDensitySupport({ medium: true }), { inLength: 0xffff });
      assert.equal(r.data[4], 0x5e);
      r = await cmd(s, 1, buildLogSense(0x00), { inLength: 0xffff });
      assert.deepEqual([...r.data.subarray(4)], [0x00, 0x02, 0x03, 0x2e, 0x31]);
      r = await cmd(s, 1, buildLogSense(0x02), { inLength: 0xffff });
      const written = u64(r.data, 4 + 5 * 12 + 4);
      assert.equal(written, 9 * 65536);
      r = await cmd(s, 1, buildLogSense(0x31), { inLength: 0xffff });
      assert.equal(u32(r.data, 4 + 2 * 8 + 4), 64, 'maximum capacity 64 MiB');
      r = await cmd(s, 1, buildReadAttribute(0, 0x0806), { inLength: 0x10000 });
      assert.equal(new TextDecoder().decode(r.data.subarray(9, 17)), 'FER003L8');
      r = await cmd(s, 1, buildRequestSense(18), { inLength: 18 });
      assert.equal(r.status, 0);

      // ERASE from block 9 on; write protection seen over the wire.
      assert.equal((await cmd(s, 1, buildLocate10(9))).status, 0);
      assert.equal((await cmd(s, 1, buildErase6({ long: true }))).status, 0);
      assert.equal(sense(await cmd(s, 1, buildRead6(1, { fixed: true }), { inLength: 65536 })), '8/00/05');
      await tgt.library!.drives[0].drive.cartridge!.updateLabel({ writeProtected: true });
      assert.equal(sense(await cmd(s, 1, buildWrite6(1, { fixed: true }), { dataOut: blocks[1] })), '7/27/00');
      r = await cmd(s, 1, buildModeSense6(0x3f), { inLength: 255 });
      assert.equal(r.data[2] & 0x80, 0x80);
      await tgt.library!.drives[0].drive.cartridge!.updateLabel({ writeProtected: false });

      // Removal prevented by the drive; then unload and move the cartridge home.
      assert.equal((await cmd(s, 1, buildPreventAllow(true))).status, 0);
      assert.equal(sense(await cmd(s, 0, buildMoveMedium(0, 0x100, 0x1002))), '5/53/02');
      assert.equal(sense(await cmd(s, 1, buildLoadUnload(false))), '5/53/02');
      await cmd(s, 1, buildPreventAllow(false));
      assert.equal((await cmd(s, 1, buildLoadUnload(false))).status, 0);
      assert.equal(sense(await cmd(s, 1, buildTestUnitReady())), '2/3a/00');
      assert.equal((await cmd(s, 0, buildMoveMedium(0, 0x100, 0x1002))).status, 0);
      r = await cmd(s, 0, buildReadElementStatus({ type: ElementType.STORAGE, voltag: true }), {
        inLength: 0xffff,
      });
      assert.equal(elementBarcodes(r.data).get(0x1002), 'FER003L8');
      // Malformed: unsupported opcode, bad service action, SPACE code 2.
      // Deliberately invalid: C9h is no command's operation code.
      assert.equal(sense(await cmd(s, 1, Uint8Array.of(0xc9, 0, 0, 0, 0, 0))), '5/20/00');
      assert.equal(sense(await cmd(s, 1, buildReadPosition(0x1f), { inLength: 32 })), '2/3a/00');
      assert.equal(sense(await cmd(s, 0, buildReadElementStatus({ type: 9 }), { inLength: 0xffff })), '5/24/00');
    } finally {
      await s.logout().catch(() => undefined);
      await tgt.close();
    }
  },
);

test(
  'stand-alone drive over iSCSI: variable records with ILI residuals both ways, early warning, end of ' + 'medium',
  async () => {
    const tgt = await startFerryTape({ cartridgeBytes: 1 << 20 });
    const s = await login(tgt.host, tgt.port, TAPE_IQN);
    try {
      await settle(s, 0);
      const A = record(1, 3000);
      assert.equal((await cmd(s, 0, buildWrite6(A.length), { dataOut: A })).status, 0);
      await cmd(s, 0, buildRewind());
      let r = await cmd(s, 0, buildRead6(4000), { inLength: 4000 });
      assert.deepEqual(
        [sense(r), r.sense!.ili, r.sense!.info, r.data.length, r.residual],
        ['0/00/00', true, 1000, 3000, 1000],
      );
      await cmd(s, 0, buildRewind());
      r = await cmd(s, 0, buildRead6(1000), { inLength: 1000 });
      assert.deepEqual(
        [sense(r), r.sense!.ili, (r.sense!.info ?? 0) | 0, r.data.length],
        ['0/00/00', true, -2000, 1000],
      );
      assert.ok(Buffer.from(r.data).equals(A.subarray(0, 1000)));
      // Default early warning for 1 MiB is 64 KiB before the end: write 64 KiB records until it shows.
      const big = record(2, 65536);
      let warnedAt = -1;
      let overflowAt = -1;
      await cmd(s, 0, buildSpace6(SpaceCode.END_OF_DATA, 0));
      for (let i = 0; i < 20; i++) {
        r = await cmd(s, 0, buildWrite6(big.length), { dataOut: big });
        if (r.status === 0) continue;
        if (sense(r) === '0/00/02' && r.sense!.eom && warnedAt < 0) warnedAt = i;
        if (sense(r) === 'd/00/02') {
          assert.deepEqual([r.sense!.eom, r.sense!.info], [true, 65536]);
          overflowAt = i;
          break;
        }
      }
      assert.equal(warnedAt, 14, 'first write that ends past 1 MiB − 64 KiB (3000 + 15 × 64 KiB)');
      assert.equal(overflowAt, 15);
    } finally {
      await s.logout().catch(() => undefined);
      await tgt.close();
    }
  },
);

test('libiscsi tools see a medium changer at LUN 0 and tape drives after it, claiming SSC-3', async (t) => {
  if (!requireTools(t, 'iscsi-ls', 'iscsi-inq')) return;
  const tgt = await startFerryTape({ library: { drives: 2, slots: 4, cartridgeSizeBytes: 1 << 20 } });
  // The target runs in this process: the tools must run without blocking its event loop.
  const run = async (cmd: string, args: string[]): Promise<string> =>
    (await promisify(execFile)(cmd, args, { encoding: 'utf8' })).stdout;
  try {
    const ls = await run('iscsi-ls', ['-s', `iscsi://${tgt.host}:${tgt.port}`]);
    assert.match(ls, /Lun:0\s+Type:MEDIA_CHANGER/);
    assert.match(ls, /Lun:1\s+Type:SEQUENTIAL_ACCESS/);
    assert.match(ls, /Lun:2\s+Type:SEQUENTIAL_ACCESS/);
    const inq = await run('iscsi-inq', [`iscsi://${tgt.host}:${tgt.port}/${TAPE_IQN}/1`]);
    assert.match(inq, /Removable:1/);
    assert.match(inq, /Version Descriptor:0400/);
    const vpd = await run('iscsi-inq', ['-e', '1', '-c', '0x80', `iscsi://${tgt.host}:${tgt.port}/${TAPE_IQN}/0`]);
    assert.match(vpd, /UNIT_SERIAL_NUMBER|Unit Serial Number/i);
  } finally {
    await tgt.close();
  }
});
