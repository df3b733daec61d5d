import { SenseError, SenseKey, Asc } from './sense.ts';
import { ScsiStatus, readBuffers, type ScsiResult, type ScsiTask } from './task.ts';
import type { CommandEntry, CommandTable, HandlerResult } from './command-table.ts';
import {
  ServiceActionIn16,
  SanitizeAction,
  decodeCompareAndWriteCdb,
  decodeFormatUnitCdb,
  decodeRange10Cdb,
  decodeRange16Cdb,
  decodeRw10Cdb,
  decodeRw12Cdb,
  decodeRw16Cdb,
  decodeRw6Cdb,
  decodeSanitizeCdb,
  decodeServiceActionIn16Cdb,
  decodeStartStopUnitCdb,
  decodeUnmapCdb,
  decodeVerify10Cdb,
  decodeVerify12Cdb,
  decodeVerify16Cdb,
  decodeWriteSame10Cdb,
  decodeWriteSame16Cdb,
  decodeWriteAtomic16Cdb,
  decodeReadDefectDataCdb,
  decodeReadCapacity10Cdb,
  type RangeCdb,
  type RwCdb,
  type VerifyCdb,
  type WriteSameCdb,
} from './cdb/sbc.ts';
import { decodePreventAllowCdb, trimToAllocation } from './cdb/spc.ts';
import { encodeReadCapacity10Data, encodeReadCapacity16Data } from './read-capacity.ts';
import { spcCommands, VpdPage, type VpdBuilder } from './spc.ts';
import { makePage, ModePageCode, type ModePage } from './mode-pages.ts';
import { scanLbaStatus } from './lba-status.ts';
import type { DiskLu } from './disk-lu.ts';
import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { ScsiOpcode } from './opcodes.ts';

/** Block limits Ferry advertises in VPD B0h and enforces (bytes, converted per block size). */
export const DiskLimits = {
  /** MAXIMUM TRANSFER LENGTH: the transport holds a whole transfer in memory. */
  maxTransferBytes: 16 << 20,
  optimalTransferBytes: 1 << 20,
  /** MAXIMUM UNMAP LBA COUNT: UNMAP writes zeros, so bound one command's work. */
  maxUnmapBytes: 256 << 20,
  maxUnmapDescriptors: 256,
  /** MAXIMUM WRITE SAME LENGTH (below 65536 blocks of 512: libiscsi WriteSame16.Unmap writes that much first). */
  maxWriteSameBytes: 16 << 20,

  /** MAXIMUM COMPARE AND WRITE LENGTH (blocks). */
  maxCompareAndWriteBlocks: 255,
  /** Bytes per chunk when WRITE SAME / UNMAP / SANITIZE fill a range. */
  fillChunkBytes: 1 << 20,
  /** GET LBA STATUS reads at most this much per command. */
  lbaStatusScanBytes: 1 << 30,
} as const;

const invalidCdb = (field: number, bit?: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, { fieldPointer: { cd: true, field, bit } });
const invalidParam = (field: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { cd: false, field } });

function blocks(lu: DiskLu, bytes: number): number {
  return Math.floor(bytes / lu.device.blockSize);
}

/** SBC-3 4.5: LBA + count beyond the capacity → 05/21/00. */
function checkLba(lu: DiskLu, lba: number, count: number): void {
  if (!(lba + count <= lu.device.blockCount) || lba < 0)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE);
}

function checkWritable(lu: DiskLu): void {
  if (lu.writeProtected) throw new SenseError(SenseKey.DATA_PROTECT, Asc.WRITE_PROTECTED);
}

/** No protection information: any non-zero xxPROTECT field is invalid. SBC-3 5.10 Table 38 */
function checkProtect(protect: number): void {
  if (protect !== 0) throw invalidCdb(1, 7);
}

function checkTransfer(lu: DiskLu, count: number, field: number): void {
  if (count > blocks(lu, DiskLimits.maxTransferBytes)) throw invalidCdb(field);
}

function checkReady(lu: DiskLu): void {
  const e = lu.notReady();
  if (e) throw e;
}

/** Write-through unless WCE=1 in the caching mode page; FUA forces it. SBC-3 4.10 */
async function durable(lu: DiskLu, fua: boolean): Promise<void> {
  if (fua || !writeCacheEnabled(lu)) await flush(lu);
}

/** Make the device durable; a failure means written data may be lost: MEDIUM ERROR, WRITE ERROR. */
async function flush(lu: DiskLu): Promise<void> {
  try {
    await lu.device.flush();
  } catch (err) {
    if (err instanceof SenseError) throw err;
    throw new SenseError(SenseKey.MEDIUM_ERROR, Asc.WRITE_ERROR);
  }
}

function writeCacheEnabled(lu: DiskLu): boolean {
  return !!((lu.spc.modePages.get(ModePageCode.CACHING)?.current[2] ?? 0) & 0x04);
}

// ---- READ / WRITE -----------------------------------------------------------------------

async function doRead(task: ScsiTask, lu: DiskLu, c: RwCdb, lengthField: number): Promise<ScsiResult> {
  checkReady(lu);
  checkProtect(c.protect);
  checkLba(lu, c.lba, c.blockCount);
  checkTransfer(lu, c.blockCount, lengthField);
  if (c.blockCount === 0) return { status: ScsiStatus.GOOD, transferLength: 0 };
  task.signal.throwIfAborted();
  // A pooled buffer: the transport gives it back once sent (no per-READ allocation).
  const data = readBuffers.take(c.blockCount * lu.device.blockSize);
  try {
    await lu.device.readInto(c.lba, data);
  } catch (e) {
    readBuffers.give(data);
    throw e;
  }
  return { status: ScsiStatus.GOOD, dataIn: data, transferLength: data.length, release: () => readBuffers.give(data) };
}

async function doWrite(task: ScsiTask, lu: DiskLu, c: RwCdb, lengthField: number): Promise<ScsiResult> {
  checkReady(lu);
  checkProtect(c.protect);
  checkLba(lu, c.lba, c.blockCount);
  checkTransfer(lu, c.blockCount, lengthField);
  checkWritable(lu);
  const transferLength = c.blockCount * lu.device.blockSize;
  // Only whole blocks the initiator actually sent are written (its EDTL may be short).
  const n = Math.min(c.blockCount, blocks(lu, task.dataOut.length));
  if (n > 0) {
    task.signal.throwIfAborted();
    const release = await lu.gate.enterShared();
    try {
      await lu.device.write(c.lba, task.dataOut.subarray(0, n * lu.device.blockSize));
    } finally {
      release();
    }
    await durable(lu, c.fua);
  }
  return { status: ScsiStatus.GOOD, transferLength };
}

// ---- VERIFY / WRITE AND VERIFY ------------------------------------------------------------

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, n), Buffer.from(b.buffer, b.byteOffset, n)) === 0) return -1;
  // Bisect with memcmp to find the first differing byte without a per-byte scan of equal data.
  let lo = 0;
  let hi = n;
  while (hi - lo > 64) {
    const mid = (lo + hi) >>> 1;
    if (
      Buffer.compare(
        Buffer.from(a.buffer, a.byteOffset + lo, mid - lo),
        Buffer.from(b.buffer, b.byteOffset + lo, mid - lo),
      ) === 0
    )
      lo = mid;
    else hi = mid;
  }
  for (let i = lo; i < hi; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function miscompare(offset: number): SenseError {
  return new SenseError(SenseKey.MISCOMPARE, Asc.MISCOMPARE_DURING_VERIFY_OPERATION, { info: offset });
}

async function doVerify(task: ScsiTask, lu: DiskLu, c: VerifyCdb, lengthField: number): Promise<ScsiResult> {
  checkReady(lu);
  checkProtect(c.protect);
  if (c.bytchk === 2) throw invalidCdb(1, 2);
  checkLba(lu, c.lba, c.blockCount);
  checkTransfer(lu, c.blockCount, lengthField);
  const bs = lu.device.blockSize;
  const expected = c.bytchk === 0 ? 0 : c.bytchk === 3 ? (c.blockCount ? bs : 0) : c.blockCount * bs;
  if (c.blockCount === 0) return { status: ScsiStatus.GOOD, transferLength: 0 };
  task.signal.throwIfAborted();
  const medium = await lu.device.read(c.lba, c.blockCount);
  if (c.bytchk === 1) {
    if (task.dataOut.length < expected)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT);
    const at = firstDifference(medium, task.dataOut);
    if (at >= 0) throw miscompare(at);
  } else if (c.bytchk === 3) {
    if (task.dataOut.length < bs)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT);
    const one = task.dataOut.subarray(0, bs);
    for (let i = 0; i < c.blockCount; i++) {
      const at = firstDifference(medium.subarray(i * bs, (i + 1) * bs), one);
      if (at >= 0) throw miscompare(i * bs + at);
    }
  }
  return { status: ScsiStatus.GOOD, transferLength: expected };
}

async function doWriteAndVerify(task: ScsiTask, lu: DiskLu, c: VerifyCdb, lengthField: number): Promise<ScsiResult> {
  checkReady(lu);
  checkProtect(c.protect);
  // SBC-4 5.37: BYTCHK 00b/01b are defined for WRITE AND VERIFY; the data is written then read back.
  if (c.bytchk > 1) throw invalidCdb(1, 2);
  const r = await doWrite(
    task,
    lu,
    { lba: c.lba, blockCount: c.blockCount, protect: 0, dpo: c.dpo, fua: true },
    lengthField,
  );
  const n = Math.min(c.blockCount, blocks(lu, task.dataOut.length));
  if (n > 0) {
    const back = await lu.device.read(c.lba, n);
    const at = firstDifference(back, task.dataOut.subarray(0, back.length));
    if (at >= 0) throw miscompare(at);
  }
  return r;
}

// ---- WRITE SAME, UNMAP, GET LBA STATUS ----------------------------------------------------

/** Write `pattern` (one block, or zeros when undefined) over [lba, lba+count) in chunks. */
export async function fillRange(
  lu: DiskLu,
  lba: number,
  count: number,
  pattern: Uint8Array | undefined,
  signal?: AbortSignal,
  onProgress?: (doneBlocks: number) => Promise<void>,
): Promise<void> {
  const bs = lu.device.blockSize;
  const chunkBlocks = Math.max(1, Math.min(count, blocks(lu, DiskLimits.fillChunkBytes)));
  const chunk = new Uint8Array(chunkBlocks * bs);
  if (pattern && !pattern.every((v) => v === 0)) {
    chunk.set(pattern.subarray(0, bs));
    for (let filled = bs; filled < chunk.length; filled *= 2)
      chunk.copyWithin(filled, 0, Math.min(filled, chunk.length - filled));
  }
  for (let done = 0; done < count;) {
    signal?.throwIfAborted();
    const n = Math.min(chunkBlocks, count - done);
    await lu.device.write(lba + done, chunk.subarray(0, n * bs));
    done += n;
    await onProgress?.(done);
  }
}

async function doWriteSame(task: ScsiTask, lu: DiskLu, c: WriteSameCdb, lengthField: number): Promise<ScsiResult> {
  checkReady(lu);
  checkProtect(c.protect);
  // ANC_SUP=0 in VPD B2h: ANCHOR is invalid (SBC-3 5.42).
  if (c.anchor) throw invalidCdb(1, 4);
  const bs = lu.device.blockSize;
  const count = c.blockCount === 0 ? lu.device.blockCount - c.lba : c.blockCount;
  checkLba(lu, c.lba, Math.max(count, 0));
  if (count > blocks(lu, DiskLimits.maxWriteSameBytes)) throw invalidCdb(lengthField);
  checkWritable(lu);
  let pattern: Uint8Array | undefined;
  if (!c.ndob) {
    // Exactly one block of Data-Out (libiscsi WriteSame*.InvalidDataOutSize).
    if (task.dataOut.length !== bs) throw invalidCdb(lengthField);
    pattern = task.dataOut.subarray(0, bs);
  }
  if (count > 0) {
    const release = await lu.gate.enterShared();
    try {
      // UNMAP=1 deallocates whatever the data (as LIO does; SBC-3 5.42 lets the device server
      // unmap instead of writing), and deallocated blocks read as zeros (LBPRZ=1).
      await fillRange(lu, c.lba, count, c.unmap ? undefined : pattern, task.signal);
    } finally {
      release();
    }
    await durable(lu, false);
  }
  return { status: ScsiStatus.GOOD, transferLength: c.ndob ? 0 : bs };
}

/** UNMAP parameter list (SBC-3 5.28.2): 8-byte header, then 16-byte block descriptors. */
export function decodeUnmapList(data: Uint8Array): Array<{ lba: number; blockCount: number }> {
  const r = new ByteReader(data);
  const dataLength = r.u16(0);
  const descLength = r.u16(2);
  if (dataLength < 6 || dataLength + 2 > data.length || descLength + 8 > data.length)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  const out: Array<{ lba: number; blockCount: number }> = [];
  for (let at = 8; at + 16 <= 8 + descLength; at += 16)
    out.push({ lba: Number(r.u64big(at)), blockCount: r.u32(at + 8) });
  return out;
}

/**
 * UNMAP descriptors as the fewest ranges: sorted, with overlapping and adjacent ones joined and
 * empty ones dropped. Deallocating writes zeros, so the order and overlap of the descriptors
 * do not matter, and one descriptor per block (libiscsi Unmap.Simple sends up to 256) becomes
 * one write instead of 256.
 */
export function mergeRanges(
  list: ReadonlyArray<{ lba: number; blockCount: number }>,
): Array<{ lba: number; blockCount: number }> {
  const sorted = list.filter((d) => d.blockCount > 0).sort((a, b) => a.lba - b.lba);
  const out: Array<{ lba: number; blockCount: number }> = [];
  for (const d of sorted) {
    const last = out[out.length - 1];
    if (last && d.lba <= last.lba + last.blockCount)
      last.blockCount = Math.max(last.blockCount, d.lba + d.blockCount - last.lba);
    else out.push({ lba: d.lba, blockCount: d.blockCount });
  }
  return out;
}

async function unmap(task: ScsiTask, lu: DiskLu): Promise<ScsiResult> {
  checkReady(lu);
  const c = decodeUnmapCdb(task.cdb);
  if (c.anchor) throw invalidCdb(1, 0);
  checkWritable(lu);
  if (c.parameterListLength === 0) return { status: ScsiStatus.GOOD, transferLength: 0 };
  if (c.parameterListLength < 8 || task.dataOut.length < c.parameterListLength)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  const list = decodeUnmapList(task.dataOut.subarray(0, c.parameterListLength));
  if (list.length > DiskLimits.maxUnmapDescriptors) throw invalidParam(2);
  let total = 0;
  for (const d of list) {
    checkLba(lu, d.lba, d.blockCount);
    total += d.blockCount;
  }
  if (total > blocks(lu, DiskLimits.maxUnmapBytes)) throw invalidParam(8);
  const release = await lu.gate.enterShared();
  try {
    for (const d of mergeRanges(list)) await fillRange(lu, d.lba, d.blockCount, undefined, task.signal);
  } finally {
    release();
  }
  await durable(lu, false);
  return { status: ScsiStatus.GOOD, transferLength: c.parameterListLength };
}

async function getLbaStatus(task: ScsiTask, lu: DiskLu): Promise<Uint8Array> {
  checkReady(lu);
  const c = decodeServiceActionIn16Cdb(task.cdb);
  if (c.lba >= lu.device.blockCount) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE);
  if (c.allocationLength < 24) {
    // SBC-3 5.5.1: fewer than one descriptor is not an error; answer what fits.
    if (c.allocationLength === 0) return new Uint8Array(0);
  }
  const maxExtents = Math.max(1, Math.min(4096, Math.floor((c.allocationLength - 8) / 16)));
  const extents = await scanLbaStatus(
    lu.device,
    c.lba,
    maxExtents,
    blocks(lu, DiskLimits.lbaStatusScanBytes),
    task.signal,
  );
  // A descriptor's NUMBER OF LOGICAL BLOCKS is 32 bits: split longer extents.
  const descs: Array<[number, number, number]> = [];
  for (const e of extents) {
    for (let at = 0; at < e.blockCount && descs.length < maxExtents; at += 0xffffffff)
      descs.push([e.lba + at, Math.min(0xffffffff, e.blockCount - at), e.status]);
  }
  const w = new ByteWriter(8 + 16 * descs.length).u32(4 + 16 * descs.length).u32(0);
  for (const [lba, n, st] of descs) w.u64(lba).u32(n).u8(st).skip(3);
  return trimToAllocation(w.buf, c.allocationLength);
}

// ---- COMPARE AND WRITE, ORWRITE -----------------------------------------------------------

async function compareAndWrite(task: ScsiTask, lu: DiskLu): Promise<ScsiResult> {
  checkReady(lu);
  const c = decodeCompareAndWriteCdb(task.cdb);
  checkProtect(c.protect);
  if (c.blockCount > DiskLimits.maxCompareAndWriteBlocks) throw invalidCdb(13);
  checkLba(lu, c.lba, c.blockCount);
  checkWritable(lu);
  const bs = lu.device.blockSize;
  const need = 2 * c.blockCount * bs;
  // The Data-Out must hold exactly the verify and write instances (libiscsi
  // CompareAndWrite.InvalidDataOutSize); a 0-block command with data (a 256-block request
  // truncated into the 8-bit field) is rejected the same way.
  if (task.dataOut.length !== need) throw invalidCdb(13);
  if (c.blockCount === 0) return { status: ScsiStatus.GOOD, transferLength: 0 };
  const verify = task.dataOut.subarray(0, need / 2);
  const write = task.dataOut.subarray(need / 2, need);
  const release = await lu.gate.enterExclusive();
  try {
    task.signal.throwIfAborted();
    const medium = await lu.device.read(c.lba, c.blockCount);
    const at = firstDifference(medium, verify);
    if (at >= 0) throw miscompare(at);
    await lu.device.write(c.lba, write);
  } finally {
    release();
  }
  await durable(lu, c.fua);
  return { status: ScsiStatus.GOOD, transferLength: need };
}

async function orWrite(task: ScsiTask, lu: DiskLu): Promise<ScsiResult> {
  checkReady(lu);
  const c = decodeRw16Cdb(task.cdb);
  checkProtect(c.protect);
  checkLba(lu, c.lba, c.blockCount);
  checkTransfer(lu, c.blockCount, 10);
  checkWritable(lu);
  const bs = lu.device.blockSize;
  const n = Math.min(c.blockCount, blocks(lu, task.dataOut.length));
  if (n > 0) {
    const release = await lu.gate.enterExclusive();
    try {
      task.signal.throwIfAborted();
      const medium = await lu.device.read(c.lba, n);
      // OR in 32-bit words when aligned; the buffer is a fresh copy from read().
      const src = task.dataOut.subarray(0, n * bs);
      if (medium.byteOffset % 4 === 0 && src.byteOffset % 4 === 0) {
        const a = new Uint32Array(medium.buffer, medium.byteOffset, medium.length / 4);
        const b = new Uint32Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.length));
        for (let i = 0; i < a.length; i++) a[i] |= b[i];
      } else {
        for (let i = 0; i < medium.length; i++) medium[i] |= src[i];
      }
      await lu.device.write(c.lba, medium);
    } finally {
      release();
    }
    await durable(lu, c.fua);
  }
  return { status: ScsiStatus.GOOD, transferLength: c.blockCount * bs };
}

// ---- PRE-FETCH, SYNCHRONIZE CACHE ----------------------------------------------------------

function preFetch(lu: DiskLu, c: RangeCdb): ScsiResult {
  checkReady(lu);
  checkLba(lu, c.lba, c.blockCount);
  // SBC-3 5.6: CONDITION MET when the range fits in the cache (the host page cache: always).
  return { status: ScsiStatus.CONDITION_MET };
}

async function synchronizeCache(lu: DiskLu, c: RangeCdb): Promise<void> {
  checkReady(lu);
  checkLba(lu, c.lba, c.blockCount);
  await flush(lu);
}

// ---- READ CAPACITY --------------------------------------------------------------------------

function readCapacity10(task: ScsiTask, lu: DiskLu): Uint8Array {
  checkReady(lu);
  const c = decodeReadCapacity10Cdb(task.cdb);
  if (!c.pmi && c.lba !== 0) throw invalidCdb(2);
  return encodeReadCapacity10Data({ lastLba: lu.device.blockCount - 1, blockSize: lu.device.blockSize });
}

function readCapacity16(task: ScsiTask, lu: DiskLu): Uint8Array {
  checkReady(lu);
  const c = decodeServiceActionIn16Cdb(task.cdb);
  const data = encodeReadCapacity16Data({
    lastLba: lu.device.blockCount - 1,
    blockSize: lu.device.blockSize,
    lbppbExponent: lbppbExponent(lu),
    lbpme: true,
    lbprz: true,
  });
  return trimToAllocation(data, c.allocationLength);
}

function lbppbExponent(lu: DiskLu): number {
  return Math.max(0, Math.round(Math.log2(lu.physicalBlockSize / lu.device.blockSize)));
}

/** READ DEFECT DATA(10/12): a virtual medium has no defects; an empty list in the format asked. */
function readDefectData(task: ScsiTask, lu: DiskLu): Uint8Array {
  checkReady(lu);
  const c = decodeReadDefectDataCdb(task.cdb);
  const flags = (c.plist ? 0x10 : 0) | (c.glist ? 0x08 : 0) | c.format;
  const d = new Uint8Array(c.size === 10 ? 4 : 8);
  d[1] = flags;
  return trimToAllocation(d, c.allocationLength);
}

// ---- START STOP UNIT, PREVENT ALLOW, SANITIZE, FORMAT UNIT --------------------------------

function startStopUnit(task: ScsiTask, lu: DiskLu): void {
  if (lu.sanitizing) checkReady(lu);
  const c = decodeStartStopUnitCdb(task.cdb);
  // SBC-3 5.25: a POWER CONDITION other than START_VALID makes START and LOEJ ignored.
  if (c.powerCondition !== 0) return;
  if (!c.loej) return;
  if (!lu.spc.removable) throw invalidCdb(4, 1);
  if (lu.preventers.size > 0) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_REMOVAL_PREVENTED);
  lu.mediumPresent = c.start;
}

function preventAllow(task: ScsiTask, lu: DiskLu): void {
  const c = decodePreventAllowCdb(task.cdb);
  if (c.prevent > 1) throw invalidCdb(4, 0);
  if (c.prevent === 1 && !lu.spc.removable) throw invalidCdb(4, 0);
  if (c.prevent === 1) lu.preventers.add(task.nexus.key);
  else lu.preventers.delete(task.nexus.key);
}

/** SANITIZE OVERWRITE parameter list (SBC-4 5.30.2.2). */
export function decodeSanitizeOverwrite(
  data: Uint8Array,
  parameterListLength: number,
  blockSize: number,
): { invert: boolean; count: number; pattern: Uint8Array } {
  // libiscsi expects every defect here reported as INVALID FIELD IN CDB (Sanitize.Overwrite).
  if (parameterListLength < 5 || data.length < parameterListLength) throw invalidCdb(7);
  const r = new ByteReader(data);
  const b0 = r.u8(0);
  const count = b0 & 0x1f;
  const patternLength = r.u16(2);
  if (count === 0 || patternLength === 0 || patternLength > blockSize || parameterListLength !== 4 + patternLength)
    throw invalidCdb(7);
  return { invert: !!(b0 & 0x80), count, pattern: data.subarray(4, 4 + patternLength) };
}

async function sanitize(task: ScsiTask, lu: DiskLu): Promise<HandlerResult> {
  const c = decodeSanitizeCdb(task.cdb);
  // Reserved: byte 1 b6, bytes 2–6.
  if (task.cdb[1] & 0x40) throw invalidCdb(1, 6);
  for (let i = 2; i <= 6; i++) if (task.cdb[i]) throw invalidCdb(i);
  checkReady(lu);
  const bs = lu.device.blockSize;
  let pattern: Uint8Array | undefined;
  let passes = 1;
  if (c.serviceAction === SanitizeAction.OVERWRITE) {
    const o = decodeSanitizeOverwrite(task.dataOut, c.parameterListLength, bs);
    const block = new Uint8Array(bs);
    for (let at = 0; at < bs; at += o.pattern.length)
      block.set(o.pattern.subarray(0, Math.min(o.pattern.length, bs - at)), at);
    pattern = block;
    // INVERT with an odd count ends on the inverted pattern; Ferry writes the final pass's data.
    if (o.invert && o.count % 2 === 0) for (let i = 0; i < bs; i++) block[i] ^= 0xff;
    passes = 1;
  } else if (c.serviceAction === SanitizeAction.BLOCK_ERASE || c.serviceAction === SanitizeAction.CRYPTO_ERASE) {
    if (c.parameterListLength !== 0) throw invalidCdb(7);
  } else if (c.serviceAction === SanitizeAction.EXIT_FAILURE_MODE) {
    if (c.parameterListLength !== 0) throw invalidCdb(7);
    return undefined; // never in failure mode: sanitize either completes or is retried
  } else {
    throw invalidCdb(1, 4);
  }
  checkWritable(lu);
  const job = runSanitize(lu, pattern, passes);
  lu.sanitizing = job;
  void job
    .finally(() => {
      if (lu.sanitizing === job) lu.sanitizing = undefined;
    })
    .catch(() => undefined);
  if (!c.immed) await job;
  return undefined;
}

/**
 * Overwrite (pattern) or erase (zeros = deallocated) the whole medium, paced at
 * `sanitizeBytesPerSecond` so a sanitize does not starve other LUs sharing the disk. It runs
 * to completion whatever happens to the task that started it (SBC-4 4.11: resets and
 * aborts do not stop a sanitize).
 */
async function runSanitize(lu: DiskLu, pattern: Uint8Array | undefined, passes: number): Promise<void> {
  const release = await lu.gate.enterExclusive();
  const started = Date.now();
  const total = lu.device.blockCount * passes;
  const rate = lu.sanitizeBytesPerSecond;
  try {
    lu.sanitizeProgress = 0;
    for (let p = 0; p < passes; p++) {
      await fillRange(lu, 0, lu.device.blockCount, pattern, undefined, async (done) => {
        const bytes = (p * lu.device.blockCount + done) * lu.device.blockSize;
        lu.sanitizeProgress = Math.min(0xffff, Math.floor(((p * lu.device.blockCount + done) / total) * 0x10000));
        const due = started + (bytes / rate) * 1000;
        const wait = lu.sanitizeHurry ? 0 : due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      });
    }
    await flush(lu);
  } finally {
    release();
  }
}

async function formatUnit(task: ScsiTask, lu: DiskLu): Promise<void> {
  checkReady(lu);
  const c = decodeFormatUnitCdb(task.cdb);
  if (c.fmtpinfo !== 0) throw invalidCdb(1, 7);
  if (c.fmtData) throw invalidCdb(1, 4); // no parameter list (defect lists) supported
  checkWritable(lu);
  // SBC-3 5.3: without FMTDATA the medium is formatted with its current geometry; nothing to do
  // for a file-backed device, whose blocks are already addressable.
  await flush(lu);
}

// ---- VPD pages and mode pages --------------------------------------------------------------

export function sbcVpdPages(lu: DiskLu): Array<[number, VpdBuilder]> {
  const bs = (): number => lu.device.blockSize;
  return [
    [
      VpdPage.BLOCK_LIMITS,
      () => {
        // SBC-3 6.5.3: page length 3Ch.
        const w = new ByteWriter(0x3c);
        w.setU8(1, DiskLimits.maxCompareAndWriteBlocks); // byte 5
        w.setU16(2, 1); // OPTIMAL TRANSFER LENGTH GRANULARITY
        w.setU32(4, DiskLimits.maxTransferBytes / bs());
        w.setU32(8, DiskLimits.optimalTransferBytes / bs());
        w.setU32(12, DiskLimits.maxTransferBytes / bs()); // MAXIMUM PREFETCH LENGTH
        w.setU32(16, DiskLimits.maxUnmapBytes / bs());
        w.setU32(20, DiskLimits.maxUnmapDescriptors);
        w.setU32(24, 2 ** lbppbExponent(lu)); // OPTIMAL UNMAP GRANULARITY: one physical block
        w.setU32(28, 0x80000000); // UGAVALID, alignment 0
        w.setU64(32, DiskLimits.maxWriteSameBytes / bs());
        w.setU32(40, DiskLimits.maxTransferBytes / bs()); // MAXIMUM ATOMIC TRANSFER LENGTH (SBC-4)
        return w.buf;
      },
    ],
    [
      VpdPage.BLOCK_DEVICE_CHARACTERISTICS,
      () => {
        // SBC-4 6.6.2: MEDIUM ROTATION RATE 0001h (non-rotating); WABEREQ=01b, WACEREQ=01b.
        const w = new ByteWriter(0x3c);
        w.setU16(0, 0x0001);
        w.setU8(3, 0x40 | 0x10);
        return w.buf;
      },
    ],
    [
      VpdPage.LOGICAL_BLOCK_PROVISIONING,
      () => {
        // SBC-3 6.5.4: LBPU, LBPWS, LBPWS10, LBPRZ; PROVISIONING TYPE 010b (thin).
        return Uint8Array.of(0, 0x80 | 0x40 | 0x20 | 0x04, 0x02, 0);
      },
    ],
  ];
}

export function sbcModePages(): ModePage[] {
  return [
    // SBC-3 6.4.7 read-write error recovery: AWRE, ARRE.
    makePage(ModePageCode.READ_WRITE_ERROR_RECOVERY, [0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    // SBC-3 6.4.5 caching: WCE=1 (changeable; WCE=0 makes every write durable before GOOD).
    makePage(ModePageCode.CACHING, [0x04, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], [0x04]),
    // SPC-4 7.5.11 informational exceptions control: all off.
    makePage(ModePageCode.INFORMATIONAL_EXCEPTIONS, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  ];
}

// ---- the SBC command table -----------------------------------------------------------------

type E = CommandEntry<DiskLu>;
const rw = (name: string, cdbLength: number, pr: 'read' | 'write', handler: E['handler']): E => ({
  name,
  cdbLength,
  pr,
  handler,
});

const serviceActionIn16: E = {
  name: 'SERVICE ACTION IN(16)',
  cdbLength: 16,
  handler: () => undefined,
  serviceActions: new Map<number, E>([
    [
      ServiceActionIn16.READ_CAPACITY_16,
      { name: 'READ CAPACITY(16)', cdbLength: 16, pr: 'allowed', handler: (t, lu) => readCapacity16(t, lu) },
    ],
    [
      ServiceActionIn16.GET_LBA_STATUS,
      { name: 'GET LBA STATUS', cdbLength: 16, pr: 'read', handler: (t, lu) => getLbaStatus(t, lu) },
    ],
  ]),
};

const sanitizeEntry: E = {
  name: 'SANITIZE',
  cdbLength: 10,
  handler: () => undefined,
  serviceActions: new Map<number, E>(
    [
      SanitizeAction.OVERWRITE,
      SanitizeAction.BLOCK_ERASE,
      SanitizeAction.CRYPTO_ERASE,
      SanitizeAction.EXIT_FAILURE_MODE,
    ].map((sa) => [
      sa,
      { name: 'SANITIZE', cdbLength: 10, pr: 'write', handler: (t: ScsiTask, lu: DiskLu) => sanitize(t, lu) },
    ]),
  ),
};

/** SBC-3 direct-access command set, with the SPC entries spread in. */
export const SBC_COMMANDS: CommandTable<DiskLu> = new Map<number, E>([
  ...spcCommands<DiskLu>((lu) => lu.notReady()),
  [ScsiOpcode.FORMAT_UNIT, rw('FORMAT UNIT', 6, 'write', (t, lu) => formatUnit(t, lu))],
  [ScsiOpcode.READ_6, rw('READ(6)', 6, 'read', (t, lu) => doRead(t, lu, decodeRw6Cdb(t.cdb), 4))],
  [ScsiOpcode.WRITE_6, rw('WRITE(6)', 6, 'write', (t, lu) => doWrite(t, lu, decodeRw6Cdb(t.cdb), 4))],
  [ScsiOpcode.READ_10, rw('READ(10)', 10, 'read', (t, lu) => doRead(t, lu, decodeRw10Cdb(t.cdb), 7))],
  [ScsiOpcode.WRITE_10, rw('WRITE(10)', 10, 'write', (t, lu) => doWrite(t, lu, decodeRw10Cdb(t.cdb), 7))],
  [ScsiOpcode.READ_12, rw('READ(12)', 12, 'read', (t, lu) => doRead(t, lu, decodeRw12Cdb(t.cdb), 6))],
  [ScsiOpcode.WRITE_12, rw('WRITE(12)', 12, 'write', (t, lu) => doWrite(t, lu, decodeRw12Cdb(t.cdb), 6))],
  [ScsiOpcode.READ_16, rw('READ(16)', 16, 'read', (t, lu) => doRead(t, lu, decodeRw16Cdb(t.cdb), 10))],
  [ScsiOpcode.WRITE_16, rw('WRITE(16)', 16, 'write', (t, lu) => doWrite(t, lu, decodeRw16Cdb(t.cdb), 10))],
  [
    ScsiOpcode.WRITE_ATOMIC_16,
    rw('WRITE ATOMIC(16)', 16, 'write', (t, lu) => doWrite(t, lu, decodeWriteAtomic16Cdb(t.cdb), 12)),
  ],
  [ScsiOpcode.READ_DEFECT_DATA_10, rw('READ DEFECT DATA(10)', 10, 'read', (t, lu) => readDefectData(t, lu))],
  [ScsiOpcode.READ_DEFECT_DATA_12, rw('READ DEFECT DATA(12)', 12, 'read', (t, lu) => readDefectData(t, lu))],
  [ScsiOpcode.VERIFY_10, rw('VERIFY(10)', 10, 'read', (t, lu) => doVerify(t, lu, decodeVerify10Cdb(t.cdb), 7))],
  [ScsiOpcode.VERIFY_12, rw('VERIFY(12)', 12, 'read', (t, lu) => doVerify(t, lu, decodeVerify12Cdb(t.cdb), 6))],
  [ScsiOpcode.VERIFY_16, rw('VERIFY(16)', 16, 'read', (t, lu) => doVerify(t, lu, decodeVerify16Cdb(t.cdb), 10))],
  [
    ScsiOpcode.WRITE_AND_VERIFY_10,
    rw('WRITE AND VERIFY(10)', 10, 'write', (t, lu) => doWriteAndVerify(t, lu, decodeVerify10Cdb(t.cdb), 7)),
  ],
  [
    ScsiOpcode.WRITE_AND_VERIFY_12,
    rw('WRITE AND VERIFY(12)', 12, 'write', (t, lu) => doWriteAndVerify(t, lu, decodeVerify12Cdb(t.cdb), 6)),
  ],
  [
    ScsiOpcode.WRITE_AND_VERIFY_16,
    rw('WRITE AND VERIFY(16)', 16, 'write', (t, lu) => doWriteAndVerify(t, lu, decodeVerify16Cdb(t.cdb), 10)),
  ],
  [
    ScsiOpcode.WRITE_SAME_10,
    rw('WRITE SAME(10)', 10, 'write', (t, lu) => doWriteSame(t, lu, decodeWriteSame10Cdb(t.cdb), 7)),
  ],
  [
    ScsiOpcode.WRITE_SAME_16,
    rw('WRITE SAME(16)', 16, 'write', (t, lu) => doWriteSame(t, lu, decodeWriteSame16Cdb(t.cdb), 10)),
  ],
  [ScsiOpcode.UNMAP, rw('UNMAP', 10, 'write', (t, lu) => unmap(t, lu))],
  [ScsiOpcode.COMPARE_AND_WRITE, rw('COMPARE AND WRITE', 16, 'write', (t, lu) => compareAndWrite(t, lu))],
  [ScsiOpcode.ORWRITE_16, rw('ORWRITE(16)', 16, 'write', (t, lu) => orWrite(t, lu))],
  [ScsiOpcode.PRE_FETCH_10, rw('PRE-FETCH(10)', 10, 'read', (t, lu) => preFetch(lu, decodeRange10Cdb(t.cdb)))],
  [ScsiOpcode.PRE_FETCH_16, rw('PRE-FETCH(16)', 16, 'read', (t, lu) => preFetch(lu, decodeRange16Cdb(t.cdb)))],
  [
    ScsiOpcode.SYNCHRONIZE_CACHE_10,
    rw('SYNCHRONIZE CACHE(10)', 10, 'write', (t, lu) => synchronizeCache(lu, decodeRange10Cdb(t.cdb))),
  ],
  [
    ScsiOpcode.SYNCHRONIZE_CACHE_16,
    rw('SYNCHRONIZE CACHE(16)', 16, 'write', (t, lu) => synchronizeCache(lu, decodeRange16Cdb(t.cdb))),
  ],
  [
    ScsiOpcode.READ_CAPACITY_10,
    { name: 'READ CAPACITY(10)', cdbLength: 10, pr: 'allowed', handler: (t, lu) => readCapacity10(t, lu) },
  ],
  [ScsiOpcode.SERVICE_ACTION_IN_16, serviceActionIn16],
  [
    ScsiOpcode.START_STOP_UNIT,
    { name: 'START STOP UNIT', cdbLength: 6, pr: 'write', handler: (t, lu) => startStopUnit(t, lu) },
  ],
  [
    ScsiOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
    { name: 'PREVENT ALLOW MEDIUM REMOVAL', cdbLength: 6, pr: 'read', handler: (t, lu) => preventAllow(t, lu) },
  ],
  [ScsiOpcode.SANITIZE, sanitizeEntry],
]);
