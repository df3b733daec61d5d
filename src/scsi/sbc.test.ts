import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu, type DiskLuOptions } from './disk-lu.ts';
import { luIdentity } from './identity.ts';
import { makeTask, cdb, outcome, senseOf, nexusB, type TaskOptions } from '../../test/helpers/scsi.ts';
import type { ScsiResult } from './task.ts';
import { decodeModeParameterHeader } from './mode-parameters.ts';
import { mergeRanges } from './sbc.ts';
import {
  buildCompareAndWrite,
  buildFormatUnit,
  buildGetLbaStatus,
  buildOrwrite16,
  buildPreFetch10,
  buildPreFetch16,
  buildRead10,
  buildRead12,
  buildRead16,
  buildReadCapacity10,
  buildReadCapacity16,
  buildReadDefectData10,
  buildReadDefectData12,
  buildSanitize,
  buildStartStopUnit,
  buildSynchronizeCache10,
  buildSynchronizeCache16,
  buildUnmap,
  buildVerify10,
  buildVerify12,
  buildVerify16,
  buildWrite10,
  buildWrite12,
  buildWrite16,
  buildWriteAndVerify10,
  buildWriteAndVerify16,
  buildWriteAtomic16,
  buildWriteSame10,
  buildWriteSame16,
} from './cdb/sbc.ts';
import {
  buildInquiry,
  buildModeSelect10,
  buildModeSelect6,
  buildModeSense10,
  buildModeSense6,
  buildPreventAllow,
  buildRequestSense,
  buildTestUnitReady,
} from './cdb/spc.ts';

const BS = 512;

function disk(
  blocks = 4096,
  opts: Partial<DiskLuOptions> & { readOnly?: boolean; blockSize?: number } = {},
): { lu: DiskLu; dev: MemoryDevice; run: (c: Uint8Array, o?: TaskOptions) => Promise<ScsiResult> } {
  const dev = new MemoryDevice(opts.blockSize ?? BS, blocks, opts.readOnly ?? false);
  const lu = new DiskLu(dev, { identity: luIdentity('sbc-test'), sanitizeBytesPerSecond: 2 ** 40, ...opts });
  const run = async (c: Uint8Array, o: TaskOptions = {}): Promise<ScsiResult> => lu.execute(makeTask(c, o));
  return { lu, dev, run };
}

/** A disk whose power-on unit attention for nexus A and B has been consumed. */
async function readyDisk(blocks = 4096, opts: Parameters<typeof disk>[1] = {}): Promise<ReturnType<typeof disk>> {
  const d = disk(blocks, opts);
  assert.equal(outcome(await d.run(buildTestUnitReady())), '6/29/00');
  assert.equal(outcome(await d.run(buildTestUnitReady(), { nexus: nexusB })), '6/29/00');
  return d;
}

const fill = (blocks: number, v: number): Uint8Array => new Uint8Array(blocks * BS).fill(v);
/** READ data arrives in a pooled Buffer: compare bytes, not types. */
const bytesOf = (d: Uint8Array | undefined): Uint8Array | undefined => (d ? new Uint8Array(d) : d);

test('READ/WRITE 6/10/12/16 move the named blocks, one device call each', async () => {
  const { run, dev } = await readyDisk();
  assert.equal(outcome(await run(buildWrite10(10, 2), { dataOut: fill(2, 0xaa) })), 'GOOD');
  assert.deepEqual(dev.bytes.subarray(10 * BS, 12 * BS), fill(2, 0xaa));
  assert.equal(dev.bytes[9 * BS + BS - 1], 0);
  assert.equal(dev.bytes[12 * BS], 0);
  const r = await run(buildRead10(10, 2));
  assert.deepEqual(bytesOf(r.dataIn), fill(2, 0xaa));
  assert.equal(r.transferLength, 2 * BS);
  // WRITE(6) length 0 means 256 blocks. SBC READ(6)/WRITE(6) have no builder: Ferry never sends
  // them, and buildRead6/buildWrite6 are the SSC layouts.
  assert.equal(outcome(await run(cdb(0x0a, 0, 0, 100, 0, 0), { dataOut: fill(256, 1) })), 'GOOD');
  assert.equal(dev.bytes[(100 + 255) * BS], 1);
  assert.equal(dev.bytes[(100 + 256) * BS], 0);
  const r6 = await run(cdb(0x08, 0, 0, 100, 1, 0));
  assert.deepEqual(bytesOf(r6.dataIn), fill(1, 1));
  assert.equal(outcome(await run(buildWrite12(500, 1), { dataOut: fill(1, 3) })), 'GOOD');
  assert.deepEqual(bytesOf((await run(buildRead12(500, 1))).dataIn), fill(1, 3));
  assert.equal(outcome(await run(buildWrite16(4095, 1), { dataOut: fill(1, 9) })), 'GOOD');
  assert.deepEqual(bytesOf((await run(buildRead16(4095, 1))).dataIn), fill(1, 9));
});

test('out-of-range LBAs and zero-length transfers', async () => {
  const { run } = await readyDisk();
  assert.equal(outcome(await run(buildRead10(4095, 2))), '5/21/00');
  assert.equal(outcome(await run(buildRead10(4096, 0))), 'GOOD');
  assert.equal(outcome(await run(buildRead10(4097, 0))), '5/21/00');
  assert.equal(outcome(await run(buildRead16(0xffffffffffffffffn, 1))), '5/21/00');
  assert.equal(outcome(await run(buildRead16(2n ** 63n, 1))), '5/21/00');
  assert.equal(outcome(await run(buildWrite16(4096, 1), { dataOut: fill(1, 1) })), '5/21/00');
  assert.equal(outcome(await run(buildRead10(0, 0))), 'GOOD');
  // RDPROTECT without protection information.
  assert.equal(outcome(await run(buildRead10(0, 1, { protect: 1 }))), '5/24/00');
});

test('a short Data-Out writes only the whole blocks that arrived; transferLength is what the CDB asked', async () => {
  const { run, dev } = await readyDisk();
  const r = await run(buildWrite10(0, 2), { dataOut: fill(1, 0x62) });
  assert.equal(outcome(r), 'GOOD');
  assert.equal(r.transferLength, 2 * BS);
  assert.equal(dev.bytes[0], 0x62);
  assert.equal(dev.bytes[BS], 0);
});

test('FUA and SYNCHRONIZE CACHE flush the device before GOOD', async () => {
  const { run, dev } = await readyDisk();
  let flushes = 0;
  dev.flush = async () => {
    flushes++;
  };
  await run(buildWrite10(0, 1), { dataOut: fill(1, 1) });
  assert.equal(flushes, 0, 'WCE=1: plain writes are cached');
  await run(buildWrite10(0, 1, { fua: true }), { dataOut: fill(1, 1) });
  assert.equal(flushes, 1);
  assert.equal(outcome(await run(buildSynchronizeCache10())), 'GOOD');
  assert.equal(flushes, 2);
  assert.equal(outcome(await run(buildSynchronizeCache16(4000, 200))), '5/21/00');
});

test(
  'a device whose flush fails: SYNCHRONIZE CACHE and FUA writes get MEDIUM ERROR, WRITE ERROR ' + '(03/0C/00)',
  async () => {
    const { run, dev } = await readyDisk();
    dev.flush = async () => {
      throw new Error('background write-back failed (EIO)');
    };
    assert.equal(outcome(await run(buildSynchronizeCache10())), '3/0c/00');
    assert.equal(outcome(await run(buildWrite10(0, 1, { fua: true }), { dataOut: fill(1, 1) })), '3/0c/00');
  },
);

test('write protection: read-only device and SWP give 07/27/00, reads still work', async () => {
  const ro = await readyDisk(64, { readOnly: true });
  assert.equal(outcome(await ro.run(buildWrite10(0, 1), { dataOut: fill(1, 1) })), '7/27/00');
  assert.equal(outcome(await ro.run(buildRead10(0, 1))), 'GOOD');
  const ms = await ro.run(buildModeSense6(0x3f));
  assert.equal(decodeModeParameterHeader(ms.dataIn!, 6)!.deviceSpecific & 0x80, 0x80, 'mode header WP');
  // SWP through MODE SELECT(6) of the control page.
  const { run, dev } = await readyDisk(64);
  const sense = await run(buildModeSense6(0x0a, { dbd: true }));
  const page = sense.dataIn!.slice(4);
  page[4] |= 0x08;
  const param = new Uint8Array(4 + page.length);
  param.set(page, 4);
  assert.equal(outcome(await run(buildModeSelect6(param.length), { dataOut: param })), 'GOOD');
  assert.equal(outcome(await run(buildWrite10(0, 1), { dataOut: fill(1, 1) })), '7/27/00');
  assert.equal(dev.bytes[0], 0);
  // The other nexus learns of the change.
  assert.equal(outcome(await run(buildTestUnitReady(), { nexus: nexusB })), '6/2a/01');
});

test('VERIFY BYTCHK 0/1/3 and miscompare INFORMATION', async () => {
  const { run } = await readyDisk();
  await run(buildWrite10(8, 2), { dataOut: fill(2, 0x41) });
  assert.equal(outcome(await run(buildVerify10(8, 2))), 'GOOD');
  assert.equal(outcome(await run(buildVerify10(8, 2, { bytchk: 1 }), { dataOut: fill(2, 0x41) })), 'GOOD');
  const bad = fill(2, 0x41);
  bad[700] = 0;
  const r = await run(buildVerify10(8, 2, { bytchk: 1 }), { dataOut: bad });
  assert.equal(outcome(r), 'e/1d/00');
  assert.equal(senseOf(r)!.info, 700);
  assert.equal(outcome(await run(buildVerify16(8, 2, { bytchk: 3 }), { dataOut: fill(1, 0x41) })), 'GOOD');
  const r3 = await run(buildVerify12(8, 3, { bytchk: 3 }), { dataOut: fill(1, 0x41) });
  assert.equal(outcome(r3), 'e/1d/00');
  assert.equal(senseOf(r3)!.info, 2 * BS);
  assert.equal(outcome(await run(buildVerify10(8, 2, { bytchk: 2 }))), '5/24/00');
  assert.equal(outcome(await run(buildVerify10(4095, 2))), '5/21/00');
});

test('WRITE AND VERIFY writes then checks', async () => {
  const { run, dev } = await readyDisk();
  assert.equal(outcome(await run(buildWriteAndVerify10(3, 1, { bytchk: 1 }), { dataOut: fill(1, 0x55) })), 'GOOD');
  assert.equal(dev.bytes[3 * BS], 0x55);
  assert.equal(outcome(await run(buildWriteAndVerify16(4, 1), { dataOut: fill(1, 0x56) })), 'GOOD');
  assert.equal(dev.bytes[4 * BS], 0x56);
});

test('WRITE SAME 10/16: pattern, NDOB, UNMAP, to-the-end, limits', async () => {
  const { run, dev } = await readyDisk(4096);
  const block = fill(1, 0).map((_, i) => i & 0xff);
  assert.equal(outcome(await run(buildWriteSame10(100, 300), { dataOut: block })), 'GOOD');
  for (const b of [100, 250, 399]) assert.deepEqual(dev.bytes.subarray(b * BS, (b + 1) * BS), block);
  assert.equal(dev.bytes[400 * BS + 1], 0);
  assert.equal(dev.bytes[99 * BS + 1], 0);
  // NDOB + UNMAP deallocates (zeros).
  assert.equal(outcome(await run(buildWriteSame16(100, 50, { unmap: true, ndob: true }))), 'GOOD');
  assert.equal(dev.bytes[120 * BS + 1], 0);
  assert.equal(dev.bytes[150 * BS + 1], 1);
  // 0 blocks: to the end of the medium.
  assert.equal(outcome(await run(buildWriteSame10(4000, 0), { dataOut: fill(1, 7) })), 'GOOD');
  assert.equal(dev.bytes[4095 * BS], 7);
  assert.equal(outcome(await run(buildWriteSame10(0, 1, { anchor: true }), { dataOut: fill(1, 7) })), '5/24/00');
  assert.equal(outcome(await run(buildWriteSame10(4095, 2), { dataOut: fill(1, 7) })), '5/21/00');
  assert.equal(outcome(await run(buildWriteSame10(0, 2))), '5/24/00');
  assert.equal(outcome(await run(buildWriteSame10(0, 1), { dataOut: fill(2, 1) })), '5/24/00');
  // UNMAP=1 deallocates whatever the data.
  assert.equal(outcome(await run(buildWriteSame10(100, 2, { unmap: true }), { dataOut: fill(1, 0xff) })), 'GOOD');
  assert.equal(dev.bytes[101 * BS + 5], 0);
});

function unmapList(ranges: Array<[number, number]>): Uint8Array {
  const b = new Uint8Array(8 + 16 * ranges.length);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 6 + 16 * ranges.length);
  dv.setUint16(2, 16 * ranges.length);
  ranges.forEach(([lba, n], i) => {
    dv.setBigUint64(8 + 16 * i, BigInt(lba));
    dv.setUint32(16 + 16 * i, n);
  });
  return b;
}

async function lbaStatus(
  run: (c: Uint8Array, o?: TaskOptions) => Promise<ScsiResult>,
  lba: number,
  alloc = 1024,
): Promise<Array<[number, number, number]>> {
  const r = await run(buildGetLbaStatus(lba, alloc));
  assert.equal(outcome(r), 'GOOD');
  const d = r.dataIn!;
  const dv = new DataView(d.buffer, d.byteOffset, d.length);
  const out: Array<[number, number, number]> = [];
  for (let at = 8; at + 16 <= d.length; at += 16)
    out.push([Number(dv.getBigUint64(at)), dv.getUint32(at + 8), d[at + 12] & 0x0f]);
  return out;
}

test('UNMAP and GET LBA STATUS agree with the data', async () => {
  const { run, dev } = await readyDisk(4096);
  assert.deepEqual(await lbaStatus(run, 0), [[0, 4096, 1]]);
  await run(buildWrite10(10, 20), { dataOut: fill(20, 0x41) });
  assert.deepEqual(await lbaStatus(run, 0), [
    [0, 10, 1],
    [10, 20, 0],
    [30, 4066, 1],
  ]);
  const list = unmapList([
    [12, 3],
    [20, 2],
  ]);
  assert.equal(outcome(await run(buildUnmap(list.length), { dataOut: list })), 'GOOD');
  assert.equal(dev.bytes[12 * BS], 0);
  assert.equal(dev.bytes[15 * BS], 0x41);
  assert.deepEqual((await lbaStatus(run, 10)).slice(0, 5), [
    [10, 2, 0],
    [12, 3, 1],
    [15, 5, 0],
    [20, 2, 1],
    [22, 8, 0],
  ]);
  // Allocation length 24 = one descriptor.
  assert.deepEqual(await lbaStatus(run, 11, 24), [[11, 1, 0]]);
  assert.equal(outcome(await run(buildGetLbaStatus(4096, 24))), '5/21/00');
  const oob = unmapList([[4095, 2]]);
  assert.equal(outcome(await run(buildUnmap(oob.length), { dataOut: oob })), '5/21/00');
  assert.equal(outcome(await run(buildUnmap(0))), 'GOOD');
  assert.equal(outcome(await run(buildUnmap(4), { dataOut: new Uint8Array(4) })), '5/1a/00');
});

test('UNMAP: descriptors in any order, overlapping, adjacent or empty, deallocate exactly their blocks', async () => {
  assert.deepEqual(
    mergeRanges([
      { lba: 9, blockCount: 1 },
      { lba: 3, blockCount: 2 },
      { lba: 5, blockCount: 1 },
      { lba: 100, blockCount: 0 },
      { lba: 4, blockCount: 1 },
      { lba: 20, blockCount: 5 },
      { lba: 21, blockCount: 2 },
      { lba: 10, blockCount: 3 },
    ]),
    [
      { lba: 3, blockCount: 3 },
      { lba: 9, blockCount: 4 },
      { lba: 20, blockCount: 5 },
    ],
  );
  const { run, dev } = await readyDisk(4096);
  await run(buildWrite10(0, 64), { dataOut: fill(64, 0x41) });
  // One descriptor per block, last first (as libiscsi Unmap.Simple sends them, in any order).
  const blocks: Array<[number, number]> = [];
  for (let b = 40; b >= 8; b--) if (b !== 30) blocks.push([b, 1]);
  blocks.push([12, 0], [50, 2], [51, 3]);
  const list = unmapList(blocks);
  assert.equal(outcome(await run(buildUnmap(list.length), { dataOut: list })), 'GOOD');
  assert.deepEqual(await lbaStatus(run, 0), [
    [0, 8, 0],
    [8, 22, 1],
    [30, 1, 0],
    [31, 10, 1],
    [41, 9, 0],
    [50, 4, 1],
    [54, 10, 0],
    [64, 4032, 1],
  ]);
  assert.equal(dev.bytes[30 * BS + 7], 0x41);
});

test('COMPARE AND WRITE: atomic compare, miscompare offset, Data-Out size', async () => {
  const { run, dev } = await readyDisk();
  await run(buildWrite10(5, 2), { dataOut: fill(2, 0x41) });
  const caw = (lba: number, n: number): Uint8Array => buildCompareAndWrite(lba, n);
  const data = new Uint8Array(4 * BS);
  data.fill(0x41, 0, 2 * BS);
  data.fill(0x42, 2 * BS);
  assert.equal(outcome(await run(caw(5, 2), { dataOut: data })), 'GOOD');
  assert.equal(dev.bytes[5 * BS], 0x42);
  const r = await run(caw(5, 2), { dataOut: data });
  assert.equal(outcome(r), 'e/1d/00');
  assert.equal(senseOf(r)!.info, 0);
  data.fill(0x42, 0, 2 * BS);
  data[BS + 3] = 0;
  data.fill(0x43, 2 * BS);
  const r2 = await run(caw(5, 2), { dataOut: data });
  assert.equal(senseOf(r2)!.info, BS + 3);
  assert.equal(dev.bytes[5 * BS], 0x42, 'nothing written on miscompare');
  assert.equal(outcome(await run(caw(5, 1), { dataOut: data })), '5/24/00');
  assert.equal(outcome(await run(caw(4095, 2), { dataOut: data })), '5/21/00');
});

test('COMPARE AND WRITE is atomic w.r.t. concurrent writes', async () => {
  const { run, dev } = await readyDisk();
  await run(buildWrite10(0, 1), { dataOut: fill(1, 0x41) });
  // Slow the device's reads so a plain WRITE lands between CAW's read and write if unguarded.
  const realRead = dev.read.bind(dev);
  dev.read = async (lba, n) => {
    const d = await realRead(lba, n);
    await new Promise((r) => setTimeout(r, 5));
    return d;
  };
  const data = new Uint8Array(2 * BS);
  data.fill(0x41, 0, BS);
  data.fill(0x42, BS);
  const caw = run(buildCompareAndWrite(0, 1), { dataOut: data });
  await new Promise((r) => setImmediate(r));
  const w = run(buildWrite10(0, 1), { dataOut: fill(1, 0x43) });
  assert.equal(outcome(await caw), 'GOOD');
  await w;
  assert.equal(dev.bytes[0], 0x43, 'the later WRITE ran after the CAW, not inside it');
});

test('ORWRITE ors the data in', async () => {
  const { run, dev } = await readyDisk();
  await run(buildWrite10(2, 1), { dataOut: fill(1, 0x0f) });
  assert.equal(outcome(await run(buildOrwrite16(2, 1), { dataOut: fill(1, 0xf0) })), 'GOOD');
  assert.equal(dev.bytes[2 * BS + 17], 0xff);
  assert.equal(outcome(await run(buildOrwrite16(4096, 1), { dataOut: fill(1, 1) })), '5/21/00');
});

test('PRE-FETCH answers CONDITION MET; READ CAPACITY 10/16', async () => {
  const { run } = await readyDisk(4096);
  assert.equal(outcome(await run(buildPreFetch10(0, 10))), 'CONDITION MET');
  assert.equal(outcome(await run(buildPreFetch16(4090, 10))), '5/21/00');
  const rc10 = await run(buildReadCapacity10());
  assert.deepEqual([...rc10.dataIn!], [0, 0, 0x0f, 0xff, 0, 0, 2, 0]);
  const rc16 = await run(buildReadCapacity16());
  assert.equal(rc16.dataIn!.length, 32);
  assert.equal(new DataView(rc16.dataIn!.buffer).getBigUint64(0), 4095n);
  assert.equal(rc16.dataIn![14] & 0xc0, 0xc0, 'LBPME and LBPRZ');
  assert.equal((await run(buildReadCapacity16(12))).dataIn!.length, 12);
});

test('4096-byte blocks', async () => {
  const dev = new MemoryDevice(4096, 256);
  const lu = new DiskLu(dev, { identity: luIdentity('4k') });
  await lu.execute(makeTask(buildTestUnitReady()));
  const r = await lu.execute(makeTask(buildWrite10(1, 2), { dataOut: new Uint8Array(8192).fill(5) }));
  assert.equal(outcome(r), 'GOOD');
  assert.equal(dev.bytes[4096 * 3 - 1], 5);
  const rc = await lu.execute(makeTask(buildReadCapacity10()));
  assert.deepEqual([...rc.dataIn!], [0, 0, 0, 255, 0, 0, 0x10, 0]);
});

test('START STOP UNIT ejects and loads; PREVENT blocks it for every nexus', async () => {
  const { run } = await readyDisk();
  const ssu = (loej: boolean, start: boolean): Uint8Array => buildStartStopUnit({ loej, start });
  assert.equal(outcome(await run(ssu(false, false))), 'GOOD');
  assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD', 'stop without LOEJ keeps the medium');
  assert.equal(outcome(await run(buildPreventAllow(true))), 'GOOD');
  assert.equal(outcome(await run(ssu(true, false))), '5/53/02');
  assert.equal(outcome(await run(ssu(true, false), { nexus: nexusB })), '5/53/02');
  assert.equal(outcome(await run(buildPreventAllow(false))), 'GOOD');
  assert.equal(outcome(await run(ssu(true, false))), 'GOOD');
  assert.equal(outcome(await run(buildTestUnitReady())), '2/3a/00');
  assert.equal(outcome(await run(buildRead10(0, 1))), '2/3a/00');
  assert.equal(outcome(await run(buildReadCapacity10())), '2/3a/00');
  assert.equal(outcome(await run(buildInquiry(36))), 'GOOD');
  assert.equal(outcome(await run(ssu(true, true))), 'GOOD');
  assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
  // Power condition set: START/LOEJ ignored.
  assert.equal(outcome(await run(buildStartStopUnit({ powerCondition: 1, loej: true }))), 'GOOD');
  assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
});

test('SANITIZE overwrite, block erase, parameter checks, NOT READY while running', async () => {
  const { run, dev, lu } = await readyDisk(1024);
  await run(buildWrite10(0, 4), { dataOut: fill(4, 0x61) });
  const param = new Uint8Array(4 + BS).fill(0xaa);
  param.set([0x01, 0, BS >> 8, BS & 0xff]);
  const san = (sa: number, pll: number, immed = false): Uint8Array =>
    buildSanitize(sa, { parameterListLength: pll, immed });
  assert.equal(outcome(await run(san(1, param.length), { dataOut: param })), 'GOOD');
  assert.ok(dev.bytes.every((b) => b === 0xaa));
  for (let pll = 0; pll < 5; pll++)
    assert.equal(outcome(await run(san(1, pll), { dataOut: param.subarray(0, pll) })), '5/24/00');
  const zeroCount = param.slice();
  zeroCount[0] = 0;
  assert.equal(outcome(await run(san(1, param.length), { dataOut: zeroCount })), '5/24/00');
  assert.equal(outcome(await run(san(2, 8), { dataOut: new Uint8Array(8) })), '5/24/00');
  assert.equal(outcome(await run(san(2, 0))), 'GOOD');
  assert.ok(dev.bytes.every((b) => b === 0));
  assert.deepEqual(await lbaStatus(run, 0), [[0, 1024, 1]]);
  assert.equal(outcome(await run(san(4, 0))), '5/24/00');
  // Deliberately malformed: reserved bit 6 of byte 1 set.
  assert.equal(outcome(await run(cdb(0x48, 0x42, 0, 0, 0, 0, 0, 0, 0, 0))), '5/24/00');
  // A slow, immediate sanitize: other commands see NOT READY 04/1B, INQUIRY still works.
  (lu as { sanitizeBytesPerSecond: number }).sanitizeBytesPerSecond = 1 << 20;
  assert.equal(outcome(await run(san(3, 0, true))), 'GOOD');
  assert.equal(outcome(await run(buildTestUnitReady())), '2/04/1b');
  assert.equal(outcome(await run(buildRead10(0, 1))), '2/04/1b');
  assert.equal(outcome(await run(buildInquiry(36))), 'GOOD');
  const rs = await run(buildRequestSense(18));
  assert.equal(rs.dataIn![2] & 0x0f, 2);
  assert.equal(rs.dataIn![12], 0x04);
  await lu.sanitizing;
  assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
});

test('block limits, block device characteristics and provisioning VPD pages', async () => {
  const { run } = await readyDisk();
  const page = async (code: number): Promise<Uint8Array> => (await run(buildInquiry(255, code))).dataIn!;
  const supported = await page(0);
  assert.deepEqual([...supported.subarray(4)], [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  const b0 = await page(0xb0);
  const dv = new DataView(b0.buffer, b0.byteOffset);
  assert.equal(b0[3], 0x3c);
  assert.ok(dv.getUint32(20) > 0 && dv.getUint32(20) <= 1024 * 1024, 'MAXIMUM UNMAP LBA COUNT sane');
  assert.equal(b0[5], 255);
  const b1 = await page(0xb1);
  assert.equal(dv.getUint16(0) >= 0, true);
  assert.equal((b1[4] << 8) | b1[5], 1, 'non-rotating');
  const b2 = await page(0xb2);
  assert.equal(b2[5] & 0xe4, 0xe4, 'LBPU LBPWS LBPWS10 LBPRZ');
  assert.equal(b2[6] & 7, 2, 'thin');
});

test(
  'physical block size: default equals the logical one; 512e reports exponent 3 and unmap ' + 'granularity 8',
  async () => {
    const plain = await readyDisk(64);
    const rc = (await plain.run(buildReadCapacity16())).dataIn!;
    assert.equal(rc[13] & 0x0f, 0);
    const e = await readyDisk(64, { physicalBlockSize: 4096 });
    const rc2 = (await e.run(buildReadCapacity16())).dataIn!;
    assert.equal(rc2[13] & 0x0f, 3);
    const b0 = (await e.run(buildInquiry(255, 0xb0))).dataIn!;
    assert.equal(new DataView(b0.buffer, b0.byteOffset).getUint32(28), 8);
    assert.throws(
      () => new DiskLu(new MemoryDevice(512, 8), { identity: luIdentity('x'), physicalBlockSize: 768 }),
      RangeError,
    );
  },
);

test('WRITE ATOMIC(16), READ DEFECT DATA(10/12), FORMAT UNIT', async () => {
  const { run, dev } = await readyDisk(64);
  assert.equal(outcome(await run(buildWriteAtomic16(7, 2), { dataOut: fill(2, 0x33) })), 'GOOD');
  assert.equal(dev.bytes[8 * BS + 511], 0x33);
  assert.equal(outcome(await run(buildWriteAtomic16(63, 2), { dataOut: fill(2, 0x33) })), '5/21/00');
  const d10 = await run(buildReadDefectData10(32, { plist: true, glist: true, format: 5 }));
  assert.deepEqual([...d10.dataIn!], [0, 0x1d, 0, 0]);
  const d12 = await run(buildReadDefectData12(32, { glist: true, format: 4 }));
  assert.deepEqual([...d12.dataIn!], [0, 0x0c, 0, 0, 0, 0, 0, 0]);
  assert.equal(outcome(await run(buildFormatUnit())), 'GOOD');
  assert.equal(outcome(await run(buildFormatUnit({ fmtData: true }))), '5/24/00');
  assert.equal(outcome(await run(buildFormatUnit({ fmtpinfo: 1 }))), '5/24/00');
});

test('caching mode page: WCE=0 makes every write durable before GOOD', async () => {
  const { run, dev } = await readyDisk(64);
  let flushes = 0;
  dev.flush = async () => {
    flushes++;
  };
  const page = (await run(buildModeSense10(0x08, { dbd: true, allocationLength: 255 }))).dataIn!.slice(8);
  assert.equal(page[2] & 0x04, 0x04);
  page[2] &= ~0x04;
  const param = new Uint8Array(8 + page.length);
  param.set(page, 8);
  assert.equal(outcome(await run(buildModeSelect10(param.length), { dataOut: param })), 'GOOD');
  await run(buildWrite10(0, 1), { dataOut: fill(1, 1) });
  assert.equal(flushes, 1);
  // SP=1 (save pages) is not supported.
  assert.equal(outcome(await run(buildModeSelect10(param.length, { sp: true }), { dataOut: param })), '5/39/00');
});

test('an aborted task ends TASK ABORTED and writes nothing', async () => {
  const { lu, dev } = await readyDisk(64);
  const ac = new AbortController();
  ac.abort();
  const r = await lu.execute(makeTask(buildWrite10(0, 1), { dataOut: fill(1, 9), signal: ac.signal }));
  assert.equal(r.status, 0x40);
  assert.equal(dev.bytes[0], 0);
});
