import { ByteReader } from '../util/byte-reader.ts';

/**
 * Pure CDB field decoders: each SPC/SBC CDB layout is decoded here and only here.
 * A CDB shorter than its layout throws DecodeError (→ 05/24/00 in runCommand).
 * 64-bit LBAs are returned as numbers; values above 2^53 lose precision but are
 * always beyond any device's end, so range checks still reject them.
 */

/** SBC-3 5.x service actions of SERVICE ACTION IN(16) 9Eh. */
export const ServiceActionIn16 = { READ_CAPACITY_16: 0x10, GET_LBA_STATUS: 0x12 } as const;
/** SPC-4 6.x service actions of MAINTENANCE IN A3h. */
export const MaintenanceIn = { REPORT_SUPPORTED_OPERATION_CODES: 0x0c, REPORT_SUPPORTED_TMFS: 0x0d } as const;

function lba64(r: ByteReader, at: number): number {
  return Number(r.u64big(at));
}

// ---- SBC-3 read/write family -------------------------------------------------------------

export interface RwCdb {
  lba: number;
  blockCount: number;
  /** RDPROTECT / WRPROTECT / VRPROTECT / ORPROTECT (byte 1 bits 7:5). */
  protect: number;
  dpo: boolean;
  fua: boolean;
}

/** SBC-3 5.9 READ(6) / 5.32 WRITE(6): 21-bit LBA, length 0 means 256 blocks. */
export function decodeRw6(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  const lba = ((r.u8(1) & 0x1f) << 16) | r.u16(2);
  const n = r.u8(4);
  return { lba, blockCount: n === 0 ? 256 : n, protect: 0, dpo: false, fua: false };
}

function rwFlags(b1: number): Pick<RwCdb, 'protect' | 'dpo' | 'fua'> {
  return { protect: b1 >> 5, dpo: !!(b1 & 0x10), fua: !!(b1 & 0x08) };
}

/** READ/WRITE/ORWRITE (10): LBA 2–5, length 7–8. SBC-3 5.10, 5.33 */
export function decodeRw10(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), ...rwFlags(r.u8(1)) };
}
/** READ/WRITE (12): LBA 2–5, length 6–9. SBC-3 5.11, 5.34 */
export function decodeRw12(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u32(6), ...rwFlags(r.u8(1)) };
}
/** READ/WRITE/ORWRITE (16): LBA 2–9, length 10–13. SBC-3 5.12, 5.35, 5.8 */
export function decodeRw16(cdb: Uint8Array): RwCdb {
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
export function decodeVerify10(cdb: Uint8Array): VerifyCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), ...verifyFlags(r.u8(1)) };
}
export function decodeVerify12(cdb: Uint8Array): VerifyCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u32(6), ...verifyFlags(r.u8(1)) };
}
export function decodeVerify16(cdb: Uint8Array): VerifyCdb {
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
export function decodeWriteSame10(cdb: Uint8Array): WriteSameCdb {
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
export function decodeWriteSame16(cdb: Uint8Array): WriteSameCdb {
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
export function decodeWriteAtomic16(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u16(12), ...rwFlags(r.u8(1)) };
}

/** READ DEFECT DATA(10) 37h / (12) B7h: REQ_PLIST b4, REQ_GLIST b3, FORMAT 2:0. SBC-3 5.14, 5.15 */
export function decodeReadDefectData(cdb: Uint8Array): {
  plist: boolean;
  glist: boolean;
  format: number;
  allocationLength: number;
  size: 10 | 12;
} {
  const r = new ByteReader(cdb);
  if (r.u8(0) === 0x37) {
    const b2 = r.u8(2);
    return { plist: !!(b2 & 0x10), glist: !!(b2 & 0x08), format: b2 & 7, allocationLength: r.u16(7), size: 10 };
  }
  const b1 = r.u8(1);
  return { plist: !!(b1 & 0x10), glist: !!(b1 & 0x08), format: b1 & 7, allocationLength: r.u32(6), size: 12 };
}

/** COMPARE AND WRITE 89h: LBA 2–9, NUMBER OF LOGICAL BLOCKS byte 13. SBC-3 5.2 */
export function decodeCompareAndWrite(cdb: Uint8Array): RwCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u8(13), ...rwFlags(r.u8(1)) };
}

export interface RangeCdb {
  lba: number;
  blockCount: number;
  immed: boolean;
}
/** PRE-FETCH(10) / SYNCHRONIZE CACHE(10): IMMED byte 1 b1; LBA 2–5; length 7–8. SBC-3 5.6, 5.22 */
export function decodeRange10(cdb: Uint8Array): RangeCdb {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), blockCount: r.u16(7), immed: !!(r.u8(1) & 0x02) };
}
/** PRE-FETCH(16) / SYNCHRONIZE CACHE(16): LBA 2–9; length 10–13. SBC-3 5.7, 5.23 */
export function decodeRange16(cdb: Uint8Array): RangeCdb {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), blockCount: r.u32(10), immed: !!(r.u8(1) & 0x02) };
}

/** READ CAPACITY(10) 25h: LOGICAL BLOCK ADDRESS 2–5 (obsolete), PMI byte 8 b0. SBC-3 5.15 */
export function decodeReadCapacity10(cdb: Uint8Array): { lba: number; pmi: boolean } {
  const r = new ByteReader(cdb);
  return { lba: r.u32(2), pmi: !!(r.u8(8) & 1) };
}

/** RESERVE(6) 16h: 3RDPTY byte 1 b4, LONGID b1, obsolete extent bit b0. SPC-2 7.21 */
export function decodeReserve6(cdb: Uint8Array): { thirdParty: boolean; extent: boolean } {
  const b1 = new ByteReader(cdb).u8(1);
  return { thirdParty: !!(b1 & 0x10), extent: !!(b1 & 0x01) };
}

/** READ CAPACITY(16) / GET LBA STATUS (9Eh): LBA 2–9, ALLOCATION LENGTH 10–13. SBC-3 5.16, 5.5 */
export function decodeServiceActionIn16(cdb: Uint8Array): { lba: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { lba: lba64(r, 2), allocationLength: r.u32(10) };
}

/** UNMAP 42h: ANCHOR byte 1 b0; PARAMETER LIST LENGTH 7–8. SBC-3 5.28 */
export function decodeUnmap(cdb: Uint8Array): { anchor: boolean; parameterListLength: number } {
  const r = new ByteReader(cdb);
  return { anchor: !!(r.u8(1) & 1), parameterListLength: r.u16(7) };
}

/** START STOP UNIT 1Bh. SBC-3 5.25 */
export function decodeStartStopUnit(cdb: Uint8Array): {
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

/** PREVENT ALLOW MEDIUM REMOVAL 1Eh: PREVENT byte 4 bits 1:0. SBC-3 5.13 */
export function decodePreventAllow(cdb: Uint8Array): { prevent: number } {
  return { prevent: new ByteReader(cdb).u8(4) & 3 };
}

/** SANITIZE 48h: IMMED b7, AUSE b5, SERVICE ACTION 4:0; PARAMETER LIST LENGTH 7–8. SBC-4 5.30 */
export function decodeSanitize(cdb: Uint8Array): {
  immed: boolean;
  ause: boolean;
  serviceAction: number;
  parameterListLength: number;
} {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { immed: !!(b1 & 0x80), ause: !!(b1 & 0x20), serviceAction: b1 & 0x1f, parameterListLength: r.u16(7) };
}

export const SanitizeAction = {
  OVERWRITE: 0x01,
  BLOCK_ERASE: 0x02,
  CRYPTO_ERASE: 0x03,
  EXIT_FAILURE_MODE: 0x1f,
} as const;

/** FORMAT UNIT 04h: FMTPINFO 7:6, LONGLIST b5, FMTDATA b4, CMPLST b3, DEFECT LIST FORMAT 2:0. SBC-3 5.3 */
export function decodeFormatUnit(cdb: Uint8Array): { fmtpinfo: number; longList: boolean; fmtData: boolean } {
  const b1 = new ByteReader(cdb).u8(1);
  return { fmtpinfo: b1 >> 6, longList: !!(b1 & 0x20), fmtData: !!(b1 & 0x10) };
}

// ---- SPC-4 ------------------------------------------------------------------------------

/** INQUIRY 12h: EVPD byte 1 b0, CMDDT b1 (obsolete), PAGE CODE 2, ALLOCATION LENGTH 3–4. SPC-4 6.6 */
export function decodeInquiry(cdb: Uint8Array): {
  evpd: boolean;
  cmddt: boolean;
  pageCode: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { evpd: !!(b1 & 1), cmddt: !!(b1 & 2), pageCode: r.u8(2), allocationLength: r.u16(3) };
}

export interface ModeSenseCdb {
  dbd: boolean;
  llbaa: boolean;
  /** PC: 0 current, 1 changeable, 2 default, 3 saved. */
  pageControl: number;
  pageCode: number;
  subpageCode: number;
  allocationLength: number;
  /** 6 or 10: which header layout to answer with. */
  size: 6 | 10;
}
/** MODE SENSE(6) 1Ah. SPC-4 6.11 */
export function decodeModeSense6(cdb: Uint8Array): ModeSenseCdb {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return {
    dbd: !!(r.u8(1) & 8),
    llbaa: false,
    pageControl: b2 >> 6,
    pageCode: b2 & 0x3f,
    subpageCode: r.u8(3),
    allocationLength: r.u8(4),
    size: 6,
  };
}
/** MODE SENSE(10) 5Ah. SPC-4 6.12 */
export function decodeModeSense10(cdb: Uint8Array): ModeSenseCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  const b2 = r.u8(2);
  return {
    dbd: !!(b1 & 8),
    llbaa: !!(b1 & 0x10),
    pageControl: b2 >> 6,
    pageCode: b2 & 0x3f,
    subpageCode: r.u8(3),
    allocationLength: r.u16(7),
    size: 10,
  };
}

export interface ModeSelectCdb {
  pf: boolean;
  sp: boolean;
  parameterListLength: number;
  size: 6 | 10;
}
/** MODE SELECT(6) 15h: PF b4, SP b0, PARAMETER LIST LENGTH 4. SPC-4 6.9 */
export function decodeModeSelect6(cdb: Uint8Array): ModeSelectCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { pf: !!(b1 & 0x10), sp: !!(b1 & 1), parameterListLength: r.u8(4), size: 6 };
}
/** MODE SELECT(10) 55h: PARAMETER LIST LENGTH 7–8. SPC-4 6.10 */
export function decodeModeSelect10(cdb: Uint8Array): ModeSelectCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { pf: !!(b1 & 0x10), sp: !!(b1 & 1), parameterListLength: r.u16(7), size: 10 };
}

/** REQUEST SENSE 03h: DESC byte 1 b0, ALLOCATION LENGTH 4. SPC-4 6.29 */
export function decodeRequestSense(cdb: Uint8Array): { desc: boolean; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { desc: !!(r.u8(1) & 1), allocationLength: r.u8(4) };
}

/** REPORT LUNS A0h: SELECT REPORT 2, ALLOCATION LENGTH 6–9. SPC-4 6.33 */
export function decodeReportLuns(cdb: Uint8Array): { selectReport: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { selectReport: r.u8(2), allocationLength: r.u32(6) };
}

/** REPORT SUPPORTED OPERATION CODES A3h/0Ch. SPC-4 6.35 */
export function decodeReportOpcodes(cdb: Uint8Array): {
  rctd: boolean;
  option: number;
  opcode: number;
  serviceAction: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return { rctd: !!(b2 & 0x80), option: b2 & 7, opcode: r.u8(3), serviceAction: r.u16(4), allocationLength: r.u32(6) };
}

/** REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS A3h/0Dh: REPD byte 2 b7, ALLOCATION LENGTH 6–9. SPC-4 6.36 */
export function decodeReportTmfs(cdb: Uint8Array): { repd: boolean; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { repd: !!(r.u8(2) & 0x80), allocationLength: r.u32(6) };
}

/** PERSISTENT RESERVE IN 5Eh: SERVICE ACTION 4:0, ALLOCATION LENGTH 7–8. SPC-4 6.15 */
export function decodePrIn(cdb: Uint8Array): { serviceAction: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { serviceAction: r.u8(1) & 0x1f, allocationLength: r.u16(7) };
}

/** PERSISTENT RESERVE OUT 5Fh: SA 4:0; SCOPE 7:4 and TYPE 3:0 in byte 2; PARAMETER LIST LENGTH 5–8. SPC-4 6.16 */
export function decodePrOut(cdb: Uint8Array): {
  serviceAction: number;
  scope: number;
  type: number;
  parameterListLength: number;
} {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return { serviceAction: r.u8(1) & 0x1f, scope: b2 >> 4, type: b2 & 0x0f, parameterListLength: r.u32(5) };
}

/** A Data-Out buffer, Uint8Array-typed for handlers; `allocationLength` trims Data-In. */
export function trimToAllocation(data: Uint8Array, allocationLength: number): Uint8Array {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}
