import { test } from 'node:test';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TapeDriveLu } from './ssc.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { runCdb, nexusFor, type RunResult } from '../../test/helpers/tape.ts';
import { SenseKey } from './sense.ts';
import { ScsiStatus } from './task.ts';
import {
  decodeBlockDescriptor,
  decodeModeParameterHeader,
  encodeModeSelectBlockDescriptor,
} from './mode-parameters.ts';
import { ScsiOpcode } from './opcodes.ts';
import {
  buildInquiry,
  buildLogSense,
  buildModeSelect6,
  buildModeSense6,
  buildPreventAllow,
  buildReadAttribute,
  buildRequestSense,
  buildTestUnitReady,
  buildModeSelect10,
} from './cdb/spc.ts';
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
} from './cdb/ssc.ts';

const GOOD = ScsiStatus.GOOD;
const u8 = (b: Uint8Array | undefined): Uint8Array => new Uint8Array(b ?? []);
const CC = ScsiStatus.CHECK_CONDITION;

function rec(i: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 13 + j) & 0xff;
  return b;
}

function expectSense(
  r: RunResult,
  key: number,
  asc: number,
  ascq: number,
  extra: { fm?: boolean; eom?: boolean; ili?: boolean; info?: number } = {},
): void {
  assert.equal(r.status, CC, `expected CHECK CONDITION, got ${r.status}`);
  const d = r.decoded!;
  assert.deepEqual(
    [d.key, d.asc, d.ascq],
    [key, asc, ascq],
    `sense ${d.key}/${d.asc.toString(16)}/${d.ascq.toString(16)}`,
  );
  if (extra.fm !== undefined) assert.equal(d.filemark, extra.fm, 'FILEMARK');
  if (extra.eom !== undefined) assert.equal(d.eom, extra.eom, 'EOM');
  if (extra.ili !== undefined) assert.equal(d.ili, extra.ili, 'ILI');
  if (extra.info !== undefined) assert.equal(d.info, extra.info >>> 0, 'INFORMATION');
}

async function setup(
  capacityBytes = 1 << 20,
  earlyWarningBytes?: number,
): Promise<{ lu: TapeDriveLu; cart: Cartridge; done: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ssc-'));
  const cart = await Cartridge.create(join(dir, 't.cart'), { barcode: 'FER001L8', capacityBytes, earlyWarningBytes });
  const lu = new TapeDriveLu({ identitySeed: `test:${dir}` });
  // Clear the power-on unit attention for the default nexus.
  await runCdb(lu, buildTestUnitReady());
  await lu.insert(cart);
  await runCdb(lu, buildTestUnitReady()); // 28/00
  return {
    lu,
    cart,
    done: async () => {
      await lu.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function position(lu: TapeDriveLu): Promise<{ id: number; bop: boolean; eop: boolean }> {
  const r = await runCdb(lu, buildReadPosition());
  assert.equal(r.status, GOOD);
  const d = r.dataIn!;
  return { id: new DataView(d.buffer, d.byteOffset).getUint32(4), bop: !!(d[0] & 0x80), eop: !!(d[0] & 0x40) };
}

test(
  'no medium, then a load: NOT READY 3A/00, UNIT ATTENTION 28/00, then ready; INQUIRY says tape, ' + 'removable',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-ssc-'));
    const lu = new TapeDriveLu({ identitySeed: 'x' });
    try {
      expectSense(await runCdb(lu, buildTestUnitReady()), SenseKey.UNIT_ATTENTION, 0x29, 0x00);
      expectSense(await runCdb(lu, buildTestUnitReady()), SenseKey.NOT_READY, 0x3a, 0x00);
      expectSense(await runCdb(lu, buildRead6(10)), SenseKey.NOT_READY, 0x3a, 0x00);
      const inq = await runCdb(lu, buildInquiry(96));
      assert.equal(inq.dataIn![0] & 0x1f, 0x01);
      assert.equal(inq.dataIn![1] & 0x80, 0x80);
      const rs = await runCdb(lu, buildRequestSense(18));
      assert.equal(rs.status, GOOD);
      assert.deepEqual([rs.dataIn![2] & 0x0f, rs.dataIn![12]], [SenseKey.NOT_READY, 0x3a]);
      await lu.insert(await Cartridge.create(join(dir, 'a.cart'), { barcode: 'A', capacityBytes: 1 << 16 }));
      expectSense(await runCdb(lu, buildTestUnitReady()), SenseKey.UNIT_ATTENTION, 0x28, 0x00);
      assert.equal((await runCdb(lu, buildTestUnitReady())).status, GOOD);
    } finally {
      await lu.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('variable records: exact read, ILI both ways with signed residue, SILI, filemark and end of data', async () => {
  const { lu, done } = await setup();
  try {
    for (const [i, len] of [
      [0, 100],
      [1, 200],
    ])
      assert.equal((await runCdb(lu, buildWrite6(len), { dataOut: rec(i, len) })).status, GOOD);
    assert.equal((await runCdb(lu, buildWriteFilemarks6(1))).status, GOOD);
    assert.equal((await runCdb(lu, buildWrite6(50), { dataOut: rec(2, 50) })).status, GOOD);
    assert.equal((await runCdb(lu, buildWriteFilemarks6(1))).status, GOOD);
    assert.equal((await runCdb(lu, buildRewind())).status, GOOD);
    assert.deepEqual(await position(lu), { id: 0, bop: true, eop: false });

    let r = await runCdb(lu, buildRead6(100));
    assert.equal(r.status, GOOD);
    assert.deepEqual(u8(r.dataIn), rec(0, 100));
    // Larger request than the record: ILI, INFO = requested − actual = 100.
    r = await runCdb(lu, buildRead6(300));
    expectSense(r, SenseKey.NO_SENSE, 0, 0, { ili: true, info: 100 });
    assert.deepEqual(u8(r.dataIn), rec(1, 200));
    assert.equal(r.transferLength, 300);
    // Filemark: NO SENSE, FM, 00/01, INFO = requested length; position after the mark.
    r = await runCdb(lu, buildRead6(64));
    expectSense(r, SenseKey.NO_SENSE, 0x00, 0x01, { fm: true, info: 64 });
    assert.equal((await position(lu)).id, 3);
    // Smaller request than the record: ILI with a negative residue; the first 10 bytes come back.
    r = await runCdb(lu, buildRead6(10));
    expectSense(r, SenseKey.NO_SENSE, 0, 0, { ili: true, info: -40 });
    assert.deepEqual(u8(r.dataIn), rec(2, 50).slice(0, 10));
    expectSense(await runCdb(lu, buildRead6(10)), SenseKey.NO_SENSE, 0x00, 0x01, { fm: true });
    expectSense(await runCdb(lu, buildRead6(10)), SenseKey.BLANK_CHECK, 0x00, 0x05, { info: 10 });
    // SILI suppresses the underlength ILI.
    await runCdb(lu, buildLocate10(1));
    r = await runCdb(lu, buildRead6(500, { sili: true }));
    assert.equal(r.status, GOOD);
    assert.equal(r.dataIn!.length, 200);
    // SILI with an overlength record: not reported in variable mode (block length 0)…
    await runCdb(lu, buildLocate10(1));
    r = await runCdb(lu, buildRead6(50, { sili: true }));
    assert.equal(r.status, GOOD);
    assert.deepEqual(u8(r.dataIn), rec(1, 200).slice(0, 50));
    // …but reported when a fixed block length is set.
    const sel = encodeModeSelectBlockDescriptor(512);
    await runCdb(lu, buildModeSelect6(sel.length), { dataOut: sel });
    await runCdb(lu, buildLocate10(1));
    expectSense(await runCdb(lu, buildRead6(50, { sili: true })), SenseKey.NO_SENSE, 0, 0, { ili: true, info: -150 });
  } finally {
    await done();
  }
});

test(
  'fixed blocks: MODE SELECT block length, FIXED+SILI and FIXED with length 0 rejected, filemark residue in ' +
    'blocks',
  async () => {
    const { lu, done } = await setup();
    try {
      expectSense(
        await runCdb(lu, buildWrite6(1, { fixed: true }), { dataOut: rec(0, 512) }),
        SenseKey.ILLEGAL_REQUEST,
        0x24,
        0x00,
      );
      const sel = encodeModeSelectBlockDescriptor(512);
      assert.equal((await runCdb(lu, buildModeSelect6(sel.length), { dataOut: sel })).status, GOOD);
      const ms = await runCdb(lu, buildModeSense6(0x10));
      const h = decodeModeParameterHeader(ms.dataIn!, 6)!;
      assert.equal(h.blockDescriptorLength, 8);
      const bd = decodeBlockDescriptor(ms.dataIn!, h)!;
      assert.equal(bd.blockLength, 512);
      assert.equal(bd.density, 0x5e, 'density code of the loaded medium');
      const data = new Uint8Array(2048).map((_, i) => i & 0xff);
      assert.equal((await runCdb(lu, buildWrite6(4, { fixed: true }), { dataOut: data })).status, GOOD);
      await runCdb(lu, buildWriteFilemarks6(1));
      await runCdb(lu, buildWrite6(1, { fixed: true }), { dataOut: data.subarray(0, 512) });
      await runCdb(lu, buildRewind());
      expectSense(await runCdb(lu, buildRead6(1, { fixed: true, sili: true })), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
      const r = await runCdb(lu, buildRead6(8, { fixed: true }));
      expectSense(r, SenseKey.NO_SENSE, 0x00, 0x01, { fm: true, info: 4 });
      assert.deepEqual(u8(r.dataIn), data);
      assert.equal((await position(lu)).id, 5);
      // A 512-byte block read with a 1024-byte fixed length: ILI, INFO = blocks not read.
      const sel2 = encodeModeSelectBlockDescriptor(1024);
      await runCdb(lu, buildModeSelect6(sel2.length), { dataOut: sel2 });
      expectSense(await runCdb(lu, buildRead6(3, { fixed: true })), SenseKey.NO_SENSE, 0, 0, { ili: true, info: 3 });
    } finally {
      await done();
    }
  },
);

test('SPACE forward and backward over blocks and filemarks; BOP and EOD; LOCATE and READ POSITION forms', async () => {
  const { lu, done } = await setup();
  try {
    // Layout: r0 r1 FM r3 r4 FM r6 FM   (object ids 0..7), EOD at 8.
    const layout = ['r', 'r', 'F', 'r', 'r', 'F', 'r', 'F'];
    for (let i = 0; i < layout.length; i++) {
      if (layout[i] === 'F') await runCdb(lu, buildWriteFilemarks6(1));
      else await runCdb(lu, buildWrite6(32), { dataOut: rec(i, 32) });
    }
    assert.equal((await position(lu)).id, 8);
    // Back over one filemark: lands on its BOP side (before it).
    assert.equal((await runCdb(lu, buildSpace6(SpaceCode.FILEMARKS, -1))).status, GOOD);
    assert.equal((await position(lu)).id, 7);
    assert.equal((await runCdb(lu, buildSpace6(SpaceCode.FILEMARKS, -2))).status, GOOD);
    assert.equal((await position(lu)).id, 2);
    // Blocks backward hit BOP: EOM 00/04 with the residue.
    expectSense(await runCdb(lu, buildSpace6(SpaceCode.BLOCKS, -5)), SenseKey.NO_SENSE, 0x00, 0x04, {
      eom: true,
      info: -3,
    });
    assert.deepEqual(await position(lu), { id: 0, bop: true, eop: false });
    // Blocks forward over a filemark: FM, INFO = residue, position after the mark.
    expectSense(await runCdb(lu, buildSpace6(SpaceCode.BLOCKS, 4)), SenseKey.NO_SENSE, 0x00, 0x01, {
      fm: true,
      info: 2,
    });
    assert.equal((await position(lu)).id, 3);
    // Blocks backward over a filemark: stops on its BOP side.
    await runCdb(lu, buildLocate10(4));
    expectSense(await runCdb(lu, buildSpace6(SpaceCode.BLOCKS, -3)), SenseKey.NO_SENSE, 0x00, 0x01, {
      fm: true,
      info: -2,
    });
    assert.equal((await position(lu)).id, 2);
    // Filemarks forward past the last one: BLANK CHECK, EOD.
    expectSense(await runCdb(lu, buildSpace6(SpaceCode.FILEMARKS, 5)), SenseKey.BLANK_CHECK, 0x00, 0x05, {
      info: 2,
    });
    assert.equal((await position(lu)).id, 8);
    await runCdb(lu, buildRewind());
    assert.equal((await runCdb(lu, buildSpace6(SpaceCode.END_OF_DATA, 0))).status, GOOD);
    assert.equal((await position(lu)).id, 8);
    // filemark right behind
    assert.equal((await runCdb(lu, buildSpace16(SpaceCode.BLOCKS, -1))).status, ScsiStatus.CHECK_CONDITION);
    expectSense(await runCdb(lu, buildSpace6(SpaceCode.SEQUENTIAL_FILEMARKS, 1)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
    // LOCATE to a block id written earlier, then read it.
    assert.equal((await runCdb(lu, buildLocate10(4))).status, GOOD);
    const r = await runCdb(lu, buildRead6(32));
    assert.deepEqual(u8(r.dataIn), rec(4, 32));
    expectSense(await runCdb(lu, buildLocate10(9)), SenseKey.BLANK_CHECK, 0x00, 0x05);
    assert.equal((await position(lu)).id, 8);
    assert.equal((await runCdb(lu, buildLocate16(2, { destType: LocateDest.FILE }))).status, GOOD);
    assert.equal((await position(lu)).id, 6);
    // Long form: object number and file number.
    const lf = await runCdb(lu, buildReadPosition(ReadPositionForm.LONG));
    const dv = new DataView(lf.dataIn!.buffer, lf.dataIn!.byteOffset);
    assert.equal(lf.dataIn!.length, 32);
    assert.equal(Number(dv.getBigUint64(8)), 6);
    assert.equal(Number(dv.getBigUint64(16)), 2);
    const ext = await runCdb(lu, buildReadPosition(ReadPositionForm.EXTENDED, 32));
    const dx = new DataView(ext.dataIn!.buffer, ext.dataIn!.byteOffset);
    assert.equal(dx.getUint16(2), 0x1c);
    assert.equal(Number(dx.getBigUint64(8)), 6);
    expectSense(await runCdb(lu, buildReadPosition(0x05)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
  } finally {
    await done();
  }
});

test('writing in the middle truncates; ERASE at the position makes the end of data', async () => {
  const { lu, done } = await setup();
  try {
    for (let i = 0; i < 5; i++) await runCdb(lu, buildWrite6(16), { dataOut: rec(i, 16) });
    await runCdb(lu, buildLocate10(2));
    await runCdb(lu, buildWrite6(8), { dataOut: rec(9, 8) });
    await runCdb(lu, buildSpace6(SpaceCode.END_OF_DATA, 0));
    assert.equal((await position(lu)).id, 3);
    await runCdb(lu, buildLocate10(1));
    assert.equal((await runCdb(lu, buildErase6({ long: true }))).status, GOOD);
    await runCdb(lu, buildRewind());
    assert.equal((await runCdb(lu, buildRead6(16))).status, GOOD);
    expectSense(await runCdb(lu, buildRead6(16)), SenseKey.BLANK_CHECK, 0x00, 0x05);
  } finally {
    await done();
  }
});

test('after a failed fsync, WRITE FILEMARKS and WRITE get 04/44/00, as after a failed write-back', async () => {
  const { lu, cart } = await setup();
  const fh = (cart as unknown as { fh: { sync(): Promise<void> } }).fh;
  const orig = fh.sync.bind(fh);
  fh.sync = () => {
    fh.sync = orig; // once: the kernel reports a lost write-back to one fsync only
    return Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
  };
  try {
    assert.equal((await runCdb(lu, buildWrite6(16), { dataOut: rec(0, 16) })).status, GOOD);
    expectSense(await runCdb(lu, buildWriteFilemarks6(1)), SenseKey.HARDWARE_ERROR, 0x44, 0x00);
    // The next fsync would succeed: WRITE FILEMARKS(0) must not answer GOOD over the lost record.
    expectSense(await runCdb(lu, buildWriteFilemarks6(0)), SenseKey.HARDWARE_ERROR, 0x44, 0x00);
    expectSense(await runCdb(lu, buildWrite6(16), { dataOut: rec(1, 16) }), SenseKey.HARDWARE_ERROR, 0x44, 0x00);
  } finally {
    await lu.close().catch(() => cart.close()); // the unload's sync fails too
    rmSync(dirname(cart.path), { recursive: true, force: true });
  }
});

test('early warning then end of medium while writing; READ POSITION reports EOP', async () => {
  const { lu, done } = await setup(64 * 1024, 16 * 1024);
  try {
    const block = new Uint8Array(8192).fill(7);
    let warned = -1;
    let overflowAt = -1;
    for (let i = 0; i < 10; i++) {
      const r = await runCdb(lu, buildWrite6(block.length), { dataOut: block });
      if (r.status === GOOD) continue;
      if (r.decoded!.key === SenseKey.NO_SENSE) {
        expectSense(r, SenseKey.NO_SENSE, 0x00, 0x02, { eom: true, info: 0 });
        if (warned < 0) warned = i;
      } else {
        expectSense(r, SenseKey.VOLUME_OVERFLOW, 0x00, 0x02, { eom: true, info: 8192 });
        overflowAt = i;
        break;
      }
    }
    // 6 × 8 KiB = 48 KiB reaches the early-warning point (64 − 16 KiB); the 7th write is past it.
    assert.equal(warned, 6);
    assert.equal(overflowAt, 8);
    assert.equal((await position(lu)).eop, true);
    // Filemarks still fit and also report early warning.
    expectSense(await runCdb(lu, buildWriteFilemarks6(1)), SenseKey.NO_SENSE, 0x00, 0x02, { eom: true });
    const cap = await runCdb(lu, buildLogSense(0x31));
    assert.equal(cap.status, GOOD);
    assert.equal(cap.dataIn![0], 0x31);
  } finally {
    await done();
  }
});

test('write-protected medium: DATA PROTECT 27/00 and WP in the mode header; reads still work', async () => {
  const { lu, cart, done } = await setup();
  try {
    await runCdb(lu, buildWrite6(4), { dataOut: rec(0, 4) });
    await cart.updateLabel({ writeProtected: true });
    await runCdb(lu, buildRewind());
    expectSense(await runCdb(lu, buildWrite6(4), { dataOut: rec(1, 4) }), SenseKey.DATA_PROTECT, 0x27, 0x00);
    expectSense(await runCdb(lu, buildWriteFilemarks6(1)), SenseKey.DATA_PROTECT, 0x27, 0x00);
    expectSense(await runCdb(lu, buildErase6()), SenseKey.DATA_PROTECT, 0x27, 0x00);
    assert.equal((await runCdb(lu, buildWriteFilemarks6(0))).status, GOOD, 'WRITE FILEMARKS 0 only flushes');
    const ms = await runCdb(lu, buildModeSense6(0x3f));
    assert.equal(decodeModeParameterHeader(ms.dataIn!, 6)!.deviceSpecific & 0x80, 0x80);
    assert.equal((await runCdb(lu, buildRead6(4))).status, GOOD);
  } finally {
    await done();
  }
});

test('LOAD UNLOAD, PREVENT ALLOW, READ BLOCK LIMITS, REPORT DENSITY SUPPORT, READ ATTRIBUTE, LOG SENSE', async () => {
  const { lu, done } = await setup();
  try {
    const bl = await runCdb(lu, buildReadBlockLimits());
    assert.equal(bl.dataIn!.length, 6);
    assert.equal((bl.dataIn![1] << 16) | (bl.dataIn![2] << 8) | bl.dataIn![3], 8 << 20);
    assert.equal((bl.dataIn![4] << 8) | bl.dataIn![5], 1);
    const rd = await runCdb(lu, buildReportDensitySupport({ medium: true }));
    assert.equal(rd.dataIn![4], 0x5e);
    assert.equal(rd.dataIn!.length, 56);
    const ra = await runCdb(lu, buildReadAttribute(0x00, 0x0806));
    assert.equal(ra.status, GOOD);
    const ad = ra.dataIn!;
    assert.equal((ad[4] << 8) | ad[5], 0x0806);
    assert.equal(new TextDecoder().decode(ad.subarray(9, 9 + 8)), 'FER001L8');
    const loadCount = await runCdb(lu, buildReadAttribute(0x00, 0x0003));
    assert.equal(loadCount.dataIn![4 + 5 + 7], 1, 'load count 1 after the first load');
    const list = await runCdb(lu, buildReadAttribute(0x01));
    assert.ok(list.dataIn!.length >= 4 + 2 * 5);
    const pages = await runCdb(lu, buildLogSense(0x00));
    assert.deepEqual([...pages.dataIn!.subarray(4)], [0x00, 0x02, 0x03, 0x2e, 0x31]);
    assert.equal((await runCdb(lu, buildLogSense(0x02))).status, GOOD);
    const ta = await runCdb(lu, buildLogSense(0x2e));
    assert.deepEqual([ta.dataIn![0], (ta.dataIn![2] << 8) | ta.dataIn![3]], [0x2e, 64 * 5]);
    expectSense(await runCdb(lu, buildLogSense(0x17)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);

    assert.equal((await runCdb(lu, buildPreventAllow(true))).status, GOOD);
    expectSense(await runCdb(lu, buildLoadUnload(false)), SenseKey.ILLEGAL_REQUEST, 0x53, 0x02);
    await runCdb(lu, buildPreventAllow(false));
    assert.equal((await runCdb(lu, buildLoadUnload(false))).status, GOOD);
    expectSense(await runCdb(lu, buildTestUnitReady()), SenseKey.NOT_READY, 0x3a, 0x00);
    expectSense(await runCdb(lu, buildReadAttribute(0)), SenseKey.NOT_READY, 0x3a, 0x00);
    assert.equal((await runCdb(lu, buildLoadUnload(true))).status, GOOD);
    assert.equal((await runCdb(lu, buildTestUnitReady())).status, GOOD);
    // Another nexus: power-on first, then a block length change made elsewhere is a 2A/01.
    const other = nexusFor('iqn.2026-01.test:other');
    expectSense(await runCdb(lu, buildTestUnitReady(), { nexus: other }), SenseKey.UNIT_ATTENTION, 0x29, 0x00);
    assert.equal((await runCdb(lu, buildTestUnitReady(), { nexus: other })).status, GOOD);
    const sel = encodeModeSelectBlockDescriptor(1024);
    assert.equal((await runCdb(lu, buildModeSelect6(sel.length), { dataOut: sel })).status, GOOD);
    expectSense(await runCdb(lu, buildTestUnitReady(), { nexus: other }), SenseKey.UNIT_ATTENTION, 0x2a, 0x01);
    assert.equal((await runCdb(lu, buildTestUnitReady())).status, GOOD, 'not for the nexus that changed it');
  } finally {
    await done();
  }
});

test('malformed CDBs get ILLEGAL REQUEST, never a crash', async () => {
  const { lu, done } = await setup();
  try {
    // Deliberately malformed: a READ(6) cut to 3 bytes, then an opcode no tape serves.
    expectSense(await runCdb(lu, Uint8Array.of(0x08, 0, 0)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
    expectSense(await runCdb(lu, Uint8Array.of(0xc7, 0, 0, 0, 0, 0)), SenseKey.ILLEGAL_REQUEST, 0x20, 0x00);
    expectSense(await runCdb(lu, buildLocate10(0, { partition: 1 })), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
    expectSense(await runCdb(lu, buildLocate16(0, { destType: 2 })), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
    expectSense(
      await runCdb(lu, buildWrite6(100), { dataOut: new Uint8Array(10) }),
      SenseKey.ABORTED_COMMAND,
      0x4b,
      0x00,
    );
    expectSense(await runCdb(lu, buildRead6(0xffffff)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
    // Random CDBs of every opcode: always a well-formed status.
    for (let op = 0; op < 256; op++) {
      const c = new Uint8Array(op < 0x20 ? 6 : op < 0x60 ? 10 : op < 0xa0 ? 16 : 12).map(() =>
        Math.floor(Math.random() * 256),
      );
      c[0] = op;
      if (op === ScsiOpcode.WRITE_6 || op === ScsiOpcode.ERASE_6 || op === ScsiOpcode.WRITE_FILEMARKS_6) continue;
      const r = await runCdb(lu, c, { dataOut: new Uint8Array(64) });
      assert.ok(r.status === GOOD || r.status === CC, `opcode ${op.toString(16)} → status ${r.status}`);
      if (r.status === CC)
        assert.notEqual(r.decoded!.key, SenseKey.HARDWARE_ERROR, `opcode ${op.toString(16)} hit an internal error`);
    }
  } finally {
    await done();
  }
});

test('fuzz: random MODE SELECT parameter lists and random CDB sequences never give an internal error', async () => {
  const { lu, done } = await setup();
  try {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 40 }), fc.boolean(), async (list, ten) => {
        const cdb = ten ? buildModeSelect10(list.length) : buildModeSelect6(list.length);
        const r = await runCdb(lu, cdb, { dataOut: list });
        assert.ok(
          r.status === GOOD ||
            r.decoded!.key === SenseKey.ILLEGAL_REQUEST ||
            r.decoded!.key === SenseKey.UNIT_ATTENTION,
          `sense ${JSON.stringify(r.decoded)}`,
        );
      }),
      { numRuns: 300 },
    );
    // Put the block length back to variable, then random tape commands with random fields.
    const sel = encodeModeSelectBlockDescriptor(0);
    await runCdb(lu, buildModeSelect6(sel.length), { dataOut: sel });
    const ops = [0x00, 0x01, 0x05, 0x08, 0x0a, 0x10, 0x11, 0x19, 0x1b, 0x1e, 0x2b, 0x34, 0x44, 0x4d, 0x8c, 0x91, 0x92];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...ops), fc.uint8Array({ minLength: 15, maxLength: 15 })), { maxLength: 12 }),
        async (seq) => {
          for (const [op, rest] of seq) {
            const cdb = new Uint8Array(16);
            cdb[0] = op;
            cdb.set(rest, 1);
            // Keep transfers small so the fuzz stays fast.
            if (op === 0x08 || op === 0x0a || op === 0x10) cdb[2] = 0;
            const r = await runCdb(lu, cdb, { dataOut: new Uint8Array((cdb[3] << 8) | cdb[4]) });
            if (r.status !== GOOD)
              assert.notEqual(
                r.decoded!.key,
                SenseKey.HARDWARE_ERROR,
                `opcode ${op.toString(16)}: ${JSON.stringify(r.decoded)}`,
              );
          }
          if (!lu.drive.loaded && lu.present) await runCdb(lu, buildLoadUnload(true));
          await runCdb(lu, buildPreventAllow(false));
        },
      ),
      { numRuns: 150 },
    );
  } finally {
    await done();
  }
});

test('property: commands fired without waiting give the same results as the same commands one by one', async () => {
  const cmd = fc.oneof(
    fc.record({ op: fc.constant('write' as const), len: fc.integer({ min: 1, max: 3000 }), tag: fc.nat(255) }),
    fc.record({ op: fc.constant('read' as const), len: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ op: fc.constant('fm' as const) }),
    fc.record({
      op: fc.constant('space' as const),
      code: fc.constantFrom(0, 1),
      count: fc.integer({ min: -3, max: 3 }),
    }),
    fc.record({ op: fc.constant('locate' as const), id: fc.nat(12) }),
    fc.record({ op: fc.constant('rewind' as const) }),
  );
  type Cmd = typeof cmd extends fc.Arbitrary<infer C> ? C : never;
  const cdbOf = (c: Cmd): { cdb: Uint8Array; dataOut?: Uint8Array } => {
    switch (c.op) {
      case 'write':
        return { cdb: buildWrite6(c.len), dataOut: rec(c.tag, c.len) };
      case 'read':
        return { cdb: buildRead6(c.len) };
      case 'fm':
        return { cdb: buildWriteFilemarks6(1) };
      case 'space':
        return { cdb: buildSpace6(c.code, c.count) };
      case 'locate':
        return { cdb: buildLocate10(c.id) };
      default:
        return { cdb: buildRewind() };
    }
  };
  const summary = (r: RunResult): string =>
    [
      r.status,
      r.decoded
        ? [r.decoded.key, r.decoded.asc, r.decoded.ascq, r.decoded.info, r.decoded.filemark, r.decoded.ili].join('/')
        : '',
      r.dataIn ? Buffer.from(r.dataIn).toString('base64') : '',
    ].join(':');
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
      const a = await setup();
      const b = await setup();
      try {
        const one: string[] = [];
        for (const c of cmds) {
          const { cdb, dataOut } = cdbOf(c);
          one.push(summary(await runCdb(a.lu, cdb, { dataOut })));
        }
        const all = await Promise.all(
          cmds.map((c) => {
            const { cdb, dataOut } = cdbOf(c);
            return runCdb(b.lu, cdb, { dataOut });
          }),
        );
        assert.deepEqual(all.map(summary), one);
      } finally {
        await a.done();
        await b.done();
      }
    }),
    { numRuns: 60 },
  );
});
