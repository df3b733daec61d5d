import { ByteReader } from '../../util/byte-reader.ts';
import { ScsiOpcode } from '../opcodes.ts';
import { newCdb } from './new-cdb.ts';

/**
 * SBC-3/SBC-4 CDBs, both ways: `build<Command>` makes the bytes (initiator, tests, benches),
 * `decode<Command>Cdb` reads the fields (the disk LU). Each layout is written and read here only.
 * A CDB shorter than its layout throws DecodeError (→ 05/24/00 in runCommand).
 * 64-bit LBAs are decoded as numbers; values above 2^53 lose precision but are
 * always beyond any device's end, so range checks still reject them.
 */

/** SBC-3 5.x service actions of SERVICE ACTION IN(16) 9Eh. */
export const ServiceActionIn16 = { READ_CAPACITY_16: 0x10, GET_LBA_STATUS: 0x12 } as const;

export const SanitizeAction = {
  OVERWRITE: 0x01,
  BLOCK_ERASE: 0x02,
  CRYPTO_ERASE: 0x03,
  EXIT_FAILURE_MODE: 0x1f,
} as const;

// ---- builders ------------------------------------------------------------------------------

/** Byte 1 of the read/write family: RDPROTECT/WRPROTECT 7:5, DPO b4, FUA b3 (SBC-3 5.10). */
export interface RwOptions {
  fua?: boolean;
  dpo?: boolean;
  protect?: number;
}

function rwByte1(o: RwOptions): number {
  return ((o.protect ?? 0) << 5) | (o.dpo ? 0x10 : 0) | (o.fua ? 0x08 : 0);
}

/** LBA 2–5, TRANSFER LENGTH 7–8 (the 10-byte layout). */
function lba32len16(opcode: number, lba: number, blockCount: number, byte1: number): Uint8Array {
  const c = newCdb(10, opcode);
  c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blockCount, 7);
  return c;
}

/** LBA 2–5, TRANSFER LENGTH 6–9 (the 12-byte layout). */
function lba32len32(opcode: number, lba: number, blockCount: number, byte1: number): Uint8Array {
  const c = newCdb(12, opcode);
  c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt32BE(blockCount, 6);
  return c;
}

/** LBA 2–9, TRANSFER LENGTH 10–13 (the 16-byte layout). */
function lba64len32(opcode: number, lba: number | bigint, blockCount: number, byte1: number): Uint8Array {
  const c = newCdb(16, opcode);
  c[1] = byte1;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blockCount, 10);
  return c;
}

/** SBC-3 5.10 READ(10). */
export function buildRead10(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba32len16(ScsiOpcode.READ_10, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.33 WRITE(10). */
export function buildWrite10(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba32len16(ScsiOpcode.WRITE_10, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.11 READ(12). */
export function buildRead12(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba32len32(ScsiOpcode.READ_12, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.34 WRITE(12). */
export function buildWrite12(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba32len32(ScsiOpcode.WRITE_12, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.12 READ(16). */
export function buildRead16(lba: number | bigint, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.READ_16, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.35 WRITE(16). */
export function buildWrite16(lba: number | bigint, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.WRITE_16, lba, blockCount, rwByte1(opts));
}
/** SBC-3 5.8 ORWRITE(16). */
export function buildOrwrite16(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.ORWRITE_16, lba, blockCount, rwByte1(opts));
}

/** SBC-4 5.49 WRITE ATOMIC(16): LBA 2–9, TRANSFER LENGTH 12–13. */
export function buildWriteAtomic16(lba: number, blockCount: number, opts: RwOptions = {}): Uint8Array {
  const c = newCdb(16, ScsiOpcode.WRITE_ATOMIC_16);
  c[1] = rwByte1(opts);
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt16BE(blockCount, 12);
  return c;
}

/** SBC-3 5.2 COMPARE AND WRITE: LBA 2–9, NUMBER OF LOGICAL BLOCKS 13. */
export function buildCompareAndWrite(lba: number, blockCount: number): Uint8Array {
  const c = newCdb(16, ScsiOpcode.COMPARE_AND_WRITE);
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt8(blockCount, 13);
  return c;
}

/** Byte 1 of VERIFY / WRITE AND VERIFY: VRPROTECT 7:5, DPO b4, BYTCHK 2:1 (SBC-4 5.30). */
export interface VerifyOptions {
  bytchk?: number;
  dpo?: boolean;
  protect?: number;
}

function verifyByte1(o: VerifyOptions): number {
  return ((o.protect ?? 0) << 5) | (o.dpo ? 0x10 : 0) | ((o.bytchk ?? 0) << 1);
}

/** SBC-4 5.30 VERIFY(10). */
export function buildVerify10(lba: number, blockCount: number, opts: VerifyOptions = {}): Uint8Array {
  return lba32len16(ScsiOpcode.VERIFY_10, lba, blockCount, verifyByte1(opts));
}
/** SBC-4 VERIFY(12). */
export function buildVerify12(lba: number, blockCount: number, opts: VerifyOptions = {}): Uint8Array {
  return lba32len32(ScsiOpcode.VERIFY_12, lba, blockCount, verifyByte1(opts));
}
/** SBC-4 VERIFY(16). */
export function buildVerify16(lba: number, blockCount: number, opts: VerifyOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.VERIFY_16, lba, blockCount, verifyByte1(opts));
}
/** SBC-4 5.36 WRITE AND VERIFY(10). */
export function buildWriteAndVerify10(lba: number, blockCount: number, opts: VerifyOptions = {}): Uint8Array {
  return lba32len16(ScsiOpcode.WRITE_AND_VERIFY_10, lba, blockCount, verifyByte1(opts));
}
/** SBC-4 WRITE AND VERIFY(16). */
export function buildWriteAndVerify16(lba: number, blockCount: number, opts: VerifyOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.WRITE_AND_VERIFY_16, lba, blockCount, verifyByte1(opts));
}

/** Byte 1 of WRITE SAME: WRPROTECT 7:5, ANCHOR b4, UNMAP b3, NDOB b0 (16 only). SBC-3 5.42, 5.43 */
export interface WriteSameOptions {
  anchor?: boolean;
  unmap?: boolean;
  ndob?: boolean;
  protect?: number;
}

function writeSameByte1(o: WriteSameOptions): number {
  return ((o.protect ?? 0) << 5) | (o.anchor ? 0x10 : 0) | (o.unmap ? 0x08 : 0) | (o.ndob ? 0x01 : 0);
}

/** SBC-3 5.42 WRITE SAME(10); blockCount 0 means to the end of the medium. */
export function buildWriteSame10(
  lba: number,
  blockCount: number,
  opts: Omit<WriteSameOptions, 'ndob'> = {},
): Uint8Array {
  return lba32len16(ScsiOpcode.WRITE_SAME_10, lba, blockCount, writeSameByte1(opts));
}
/** SBC-3 5.43 WRITE SAME(16). */
export function buildWriteSame16(lba: number, blockCount: number, opts: WriteSameOptions = {}): Uint8Array {
  return lba64len32(ScsiOpcode.WRITE_SAME_16, lba, blockCount, writeSameByte1(opts));
}

/** SBC-3 5.28 UNMAP: ANCHOR byte 1 b0, PARAMETER LIST LENGTH 7–8. */
export function buildUnmap(parameterListLength: number, opts: { anchor?: boolean } = {}): Uint8Array {
  const c = newCdb(10, ScsiOpcode.UNMAP);
  c[1] = opts.anchor ? 0x01 : 0;
  c.writeUInt16BE(parameterListLength, 7);
  return c;
}

/** SBC-3 5.22 SYNCHRONIZE CACHE(10); 0 blocks from LBA 0 means the whole medium. */
export function buildSynchronizeCache10(lba = 0, blockCount = 0, opts: { immed?: boolean } = {}): Uint8Array {
  return lba32len16(ScsiOpcode.SYNCHRONIZE_CACHE_10, lba, blockCount, opts.immed ? 0x02 : 0);
}
/** SBC-3 5.23 SYNCHRONIZE CACHE(16). */
export function buildSynchronizeCache16(lba = 0, blockCount = 0, opts: { immed?: boolean } = {}): Uint8Array {
  return lba64len32(ScsiOpcode.SYNCHRONIZE_CACHE_16, lba, blockCount, opts.immed ? 0x02 : 0);
}
/** SBC-3 5.6 PRE-FETCH(10). */
export function buildPreFetch10(lba: number, blockCount: number, opts: { immed?: boolean } = {}): Uint8Array {
  return lba32len16(ScsiOpcode.PRE_FETCH_10, lba, blockCount, opts.immed ? 0x02 : 0);
}
/** SBC-3 5.7 PRE-FETCH(16). */
export function buildPreFetch16(lba: number, blockCount: number, opts: { immed?: boolean } = {}): Uint8Array {
  return lba64len32(ScsiOpcode.PRE_FETCH_16, lba, blockCount, opts.immed ? 0x02 : 0);
}

/** SBC-3 5.15 READ CAPACITY(10); `pmi` with `lba` asks for the last LBA before a delay. */
export function buildReadCapacity10(opts: { lba?: number; pmi?: boolean } = {}): Uint8Array {
  const c = newCdb(10, ScsiOpcode.READ_CAPACITY_10);
  c.writeUInt32BE(opts.lba ?? 0, 2);
  c[8] = opts.pmi ? 0x01 : 0;
  return c;
}

/** SBC-3 5.16 READ CAPACITY(16) (SERVICE ACTION IN 9Eh/10h). */
export function buildReadCapacity16(allocationLength = 32): Uint8Array {
  return lba64len32(ScsiOpcode.SERVICE_ACTION_IN_16, 0, allocationLength, ServiceActionIn16.READ_CAPACITY_16);
}

/** SBC-3 5.5 GET LBA STATUS (SERVICE ACTION IN 9Eh/12h): starting LBA 2–9, ALLOCATION LENGTH 10–13. */
export function buildGetLbaStatus(lba: number, allocationLength: number): Uint8Array {
  return lba64len32(ScsiOpcode.SERVICE_ACTION_IN_16, lba, allocationLength, ServiceActionIn16.GET_LBA_STATUS);
}

/** SBC-3 5.14 READ DEFECT DATA(10): REQ_PLIST b4, REQ_GLIST b3, FORMAT 2:0 in byte 2. */
export function buildReadDefectData10(
  allocationLength: number,
  opts: { plist?: boolean; glist?: boolean; format?: number } = {},
): Uint8Array {
  const c = newCdb(10, ScsiOpcode.READ_DEFECT_DATA_10);
  c[2] = (opts.plist ? 0x10 : 0) | (opts.glist ? 0x08 : 0) | ((opts.format ?? 0) & 7);
  c.writeUInt16BE(allocationLength, 7);
  return c;
}
/** SBC-3 5.15 READ DEFECT DATA(12): the same bits in byte 1. */
export function buildReadDefectData12(
  allocationLength: number,
  opts: { plist?: boolean; glist?: boolean; format?: number } = {},
): Uint8Array {
  const c = newCdb(12, ScsiOpcode.READ_DEFECT_DATA_12);
  c[1] = (opts.plist ? 0x10 : 0) | (opts.glist ? 0x08 : 0) | ((opts.format ?? 0) & 7);
  c.writeUInt32BE(allocationLength, 6);
  return c;
}

/** SBC-3 5.25 START STOP UNIT: IMMED byte 1 b0; byte 4 POWER CONDITION 7:4, LOEJ b1, START b0. */
export function buildStartStopUnit(
  opts: { start?: boolean; loej?: boolean; immed?: boolean; powerCondition?: number } = {},
): Uint8Array {
  const c = newCdb(6, ScsiOpcode.START_STOP_UNIT);
  c[1] = opts.immed ? 0x01 : 0;
  c[4] = ((opts.powerCondition ?? 0) << 4) | (opts.loej ? 0x02 : 0) | (opts.start ? 0x01 : 0);
  return c;
}

/** SBC-4 5.30 SANITIZE: IMMED b7, AUSE b5, SERVICE ACTION 4:0; PARAMETER LIST LENGTH 7–8. */
export function buildSanitize(
  serviceAction: number,
  opts: { parameterListLength?: number; immed?: boolean; ause?: boolean } = {},
): Uint8Array {
  const c = newCdb(10, ScsiOpcode.SANITIZE);
  c[1] = (opts.immed ? 0x80 : 0) | (opts.ause ? 0x20 : 0) | (serviceAction & 0x1f);
  c.writeUInt16BE(opts.parameterListLength ?? 0, 7);
  return c;
}

/** SBC-3 5.3 FORMAT UNIT: FMTPINFO 7:6, LONGLIST b5, FMTDATA b4 in byte 1. */
export function buildFormatUnit(opts: { fmtpinfo?: number; longList?: boolean; fmtData?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.FORMAT_UNIT);
  c[1] = ((opts.fmtpinfo ?? 0) << 6) | (opts.longList ? 0x20 : 0) | (opts.fmtData ? 0x10 : 0);
  return c;
}

// ---- decoders ------------------------------------------------------------------------------

function lba64(r: ByteReader, at: number): number {
  return Number(r.u64big(at));
}

export interface RwCdb {
  lba: number;
  blockCount: number;
  /** RDPROTECT / WRPROTECT / VRPROTECT / ORPROTECT (byte 1 bits 7:5). */
  protect: number;
  dpo: boolean;
  fua: boolean;
}

/** SBC-3 5.9 READ(6) / 5.32 WRITE(6): 21-bit LBA, length 0 means 256 blocks. */
export function decodeRw6Cdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  const lba = ((r.u8(1) & 0x1f) << 16) | r.u16(2);
  const n = r.u8(4);
  return { lba, blockCount: n === 0 ? 256 : n, protect: 0, dpo: false, fua: false };
}

function rwFlags(b1: number): Pick<RwCdb, 'protect' | 'dpo' | 'fua'> {
  return { protect: b1 >> 5, dpo: !!(b1 & 0x10), fua: !!(b1 & 0x08) };
}

/** READ/WRITE/ORWRITE (10): LBA 2–5, length 7–8. SBC-3 5.10, 5.33 */
export function decodeRw10Cdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), ...rwFlags(r.u8(1)) };
}
/** READ/WRITE (12): LBA 2–5, length 6–9. SBC-3 5.11, 5.34 */
export function decodeRw12Cdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u32(6), ...rwFlags(r.u8(1)) };
}
/** READ/WRITE/ORWRITE (16): LBA 2–9, length 10–13. SBC-3 5.12, 5.35, 5.8 */
export function decodeRw16Cdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u32(10), ...rwFlags(r.u8(1)) };
}

export interface VerifyCdb {
  lba: number;
  blockCount: number;
  protect: number;
  dpo: boolean;
  /** SBC-4 5.x BYTCHK (bits 2:1): 0 medium only, 1 compare Data-Out, 3 compare one block against each. */
  bytchk: number;
}

function verifyFlags(b1: number): Pick<VerifyCdb, 'protect' | 'dpo' | 'bytchk'> {
  return { protect: b1 >> 5, dpo: !!(b1 & 0x10), bytchk: (b1 >> 1) & 3 };
}
/** VERIFY / WRITE AND VERIFY (10). SBC-4 5.30, 5.36 */
export function decodeVerify10Cdb(cdb: Uint8Array): VerifyCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), ...verifyFlags(r.u8(1)) };
}
export function decodeVerify12Cdb(cdb: Uint8Array): VerifyCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u32(6), ...verifyFlags(r.u8(1)) };
}
export function decodeVerify16Cdb(cdb: Uint8Array): VerifyCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u32(10), ...verifyFlags(r.u8(1)) };
}

export interface WriteSameCdb {
  lba: number;
  /** 0: to the end of the medium (SBC-3 5.42, only when WSNZ=0). */
  blockCount: number;
  protect: number;
  anchor: boolean;
  unmap: boolean;
  /** WRITE SAME(16) only: no Data-Out, write zeros. */
  ndob: boolean;
}
/** WRITE SAME(10): byte 1 WRPROTECT 7:5, ANCHOR b4, UNMAP b3; LBA 2–5; length 7–8. SBC-3 5.42 */
export function decodeWriteSame10Cdb(cdb: Uint8Array): WriteSameCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return {
    lba: r.u32(2),
    blockCount: r.u16(7),
    protect: b1 >> 5,
    anchor: !!(b1 & 0x10),
    unmap: !!(b1 & 0x08),
    ndob: false,
  };
}
/** WRITE SAME(16): + NDOB b0; LBA 2–9; length 10–13. SBC-3 5.43 */
export function decodeWriteSame16Cdb(cdb: Uint8Array): WriteSameCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return {
    lba: lba64(r, 2),
    blockCount: r.u32(10),
    protect: b1 >> 5,
    anchor: !!(b1 & 0x10),
    unmap: !!(b1 & 0x08),
    ndob: !!(b1 & 0x01),
  };
}

/** WRITE ATOMIC(16) 9Ch: LBA 2–9, TRANSFER LENGTH 12–13 (16 bits). SBC-4 5.49 */
export function decodeWriteAtomic16Cdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u16(12), ...rwFlags(r.u8(1)) };
}

/** READ DEFECT DATA(10) 37h / (12) B7h: REQ_PLIST b4, REQ_GLIST b3, FORMAT 2:0. SBC-3 5.14, 5.15 */
export function decodeReadDefectDataCdb(cdb: Uint8Array): {
  plist: boolean;
  glist: boolean;
  format: number;
  allocationLength: number;
  size: 10 | 12;
} {
  const r = new ByteReader(cdb);
  if (r.u8(0) === ScsiOpcode.READ_DEFECT_DATA_10) {
    const b2 = r.u8(2);
    return { plist: !!(b2 & 0x10), glist: !!(b2 & 0x08), format: b2 & 7, allocationLength: r.u16(7), size: 10 };
  }
  const b1 = r.u8(1);
  return { plist: !!(b1 & 0x10), glist: !!(b1 & 0x08), format: b1 & 7, allocationLength: r.u32(6), size: 12 };
}

/** COMPARE AND WRITE 89h: LBA 2–9, NUMBER OF LOGICAL BLOCKS byte 13. SBC-3 5.2 */
export function decodeCompareAndWriteCdb(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u8(13), ...rwFlags(r.u8(1)) };
}

export interface RangeCdb {
  lba: number;
  blockCount: number;
  immed: boolean;
}
/** PRE-FETCH(10) / SYNCHRONIZE CACHE(10): IMMED byte 1 b1; LBA 2–5; length 7–8. SBC-3 5.6, 5.22 */
export function decodeRange10Cdb(cdb: Uint8Array): RangeCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), immed: !!(r.u8(1) & 0x02) };
}
/** PRE-FETCH(16) / SYNCHRONIZE CACHE(16): LBA 2–9; length 10–13. SBC-3 5.7, 5.23 */
export function decodeRange16Cdb(cdb: Uint8Array): RangeCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u32(10), immed: !!(r.u8(1) & 0x02) };
}

/** READ CAPACITY(10) 25h: LOGICAL BLOCK ADDRESS 2–5 (obsolete), PMI byte 8 b0. SBC-3 5.15 */
export function decodeReadCapacity10Cdb(cdb: Uint8Array): { lba: number; pmi: boolean } {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), pmi: !!(r.u8(8) & 1) };
}

/** READ CAPACITY(16) / GET LBA STATUS (9Eh): LBA 2–9, ALLOCATION LENGTH 10–13. SBC-3 5.16, 5.5 */
export function decodeServiceActionIn16Cdb(cdb: Uint8Array): { lba: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), allocationLength: r.u32(10) };
}

/** UNMAP 42h: ANCHOR byte 1 b0; PARAMETER LIST LENGTH 7–8. SBC-3 5.28 */
export function decodeUnmapCdb(cdb: Uint8Array): { anchor: boolean; parameterListLength: number } {
  const r = new ByteReader(cdb);
  return { anchor: !!(r.u8(1) & 1), parameterListLength: r.u16(7) };
}

/** START STOP UNIT 1Bh. SBC-3 5.25 */
export function decodeStartStopUnitCdb(cdb: Uint8Array): {
  immed: boolean;
  powerCondition: number;
  noFlush: boolean;
  loej: boolean;
  start: boolean;
} {
  const r = new ByteReader(cdb);
  const b4 = r.u8(4);
  return { immed: !!(r.u8(1) & 1), powerCondition: b4 >> 4, noFlush: !!(b4 & 4), loej: !!(b4 & 2), start: !!(b4 & 1) };
}

/** SANITIZE 48h: IMMED b7, AUSE b5, SERVICE ACTION 4:0; PARAMETER LIST LENGTH 7–8. SBC-4 5.30 */
export function decodeSanitizeCdb(cdb: Uint8Array): {
  immed: boolean;
  ause: boolean;
  serviceAction: number;
  parameterListLength: number;
} {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { immed: !!(b1 & 0x80), ause: !!(b1 & 0x20), serviceAction: b1 & 0x1f, parameterListLength: r.u16(7) };
}

/** FORMAT UNIT 04h: FMTPINFO 7:6, LONGLIST b5, FMTDATA b4, CMPLST b3, DEFECT LIST FORMAT 2:0. SBC-3 5.3 */
export function decodeFormatUnitCdb(cdb: Uint8Array): { fmtpinfo: number; longList: boolean; fmtData: boolean } {
  const b1 = new ByteReader(cdb).u8(1);
  return { fmtpinfo: b1 >> 6, longList: !!(b1 & 0x20), fmtData: !!(b1 & 0x10) };
}
