import { ByteReader } from '../util/byte-reader.ts';
import { encodeModeParameters } from './mode-parameters.ts';
import { ScsiOpcode } from './opcodes.ts';

/**
 * SSC-3 and SMC-3 CDBs: opcodes, pure builders (for our initiator and tests) and pure
 * decoders (for the LUs). Each layout is decoded here and only here.
 */

/** SSC-3 SPACE codes (byte 1 bits 3:0). */
export const SpaceCode = { BLOCKS: 0, FILEMARKS: 1, SEQUENTIAL_FILEMARKS: 2, END_OF_DATA: 3 } as const;
/** SSC-3 READ POSITION service actions. */
export const ReadPositionForm = { SHORT: 0x00, SHORT_VENDOR: 0x01, LONG: 0x06, EXTENDED: 0x08 } as const;
/** SSC-3 LOCATE(16) DEST_TYPE. */
export const LocateDest = { OBJECT: 0, FILE: 1, EOD: 3 } as const;
/** SMC-3 element type codes. */
export const ElementType = { ALL: 0, MEDIUM_TRANSPORT: 1, STORAGE: 2, IMPORT_EXPORT: 3, DATA_TRANSFER: 4 } as const;

function cdb(len: number, op: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = op;
  return b;
}

function put24(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 16) & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = v & 0xff;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0);
}

function put64(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setBigUint64(at, BigInt(v));
}

// ---- builders --------------------------------------------------------------------------------

export const buildTestUnitReady = (): Uint8Array => cdb(6, ScsiOpcode.TEST_UNIT_READY);

export function buildRewind(immed = false): Uint8Array {
  const b = cdb(6, ScsiOpcode.REWIND);
  b[1] = immed ? 1 : 0;
  return b;
}

export function buildReadBlockLimits(mloi = false): Uint8Array {
  const b = cdb(6, ScsiOpcode.READ_BLOCK_LIMITS);
  b[1] = mloi ? 1 : 0;
  return b;
}

/** READ(6): `length` is blocks (fixed) or bytes (variable). SSC-3 READ(6) */
export function buildRead6(length: number, opts: { fixed?: boolean; sili?: boolean } = {}): Uint8Array {
  const b = cdb(6, ScsiOpcode.READ_6);
  b[1] = (opts.sili ? 2 : 0) | (opts.fixed ? 1 : 0);
  put24(b, 2, length);
  return b;
}

export function buildWrite6(length: number, opts: { fixed?: boolean } = {}): Uint8Array {
  const b = cdb(6, ScsiOpcode.WRITE_6);
  b[1] = opts.fixed ? 1 : 0;
  put24(b, 2, length);
  return b;
}

export function buildWriteFilemarks6(count: number, opts: { immed?: boolean } = {}): Uint8Array {
  const b = cdb(6, ScsiOpcode.WRITE_FILEMARKS_6);
  b[1] = opts.immed ? 1 : 0;
  put24(b, 2, count);
  return b;
}

/** SPACE(6): negative counts space backward (24-bit two's complement). */
export function buildSpace6(code: number, count: number): Uint8Array {
  const b = cdb(6, ScsiOpcode.SPACE_6);
  b[1] = code & 0x0f;
  put24(b, 2, count & 0xffffff);
  return b;
}

export function buildSpace16(code: number, count: number): Uint8Array {
  const b = cdb(16, ScsiOpcode.SPACE_16);
  b[1] = code & 0x0f;
  new DataView(b.buffer).setBigInt64(4, BigInt(count));
  return b;
}

export function buildErase6(opts: { long?: boolean; immed?: boolean } = {}): Uint8Array {
  const b = cdb(6, ScsiOpcode.ERASE_6);
  b[1] = (opts.immed ? 2 : 0) | (opts.long ? 1 : 0);
  return b;
}

export function buildLoadUnload(
  load: boolean,
  opts: { immed?: boolean; eot?: boolean; hold?: boolean } = {},
): Uint8Array {
  const b = cdb(6, ScsiOpcode.LOAD_UNLOAD);
  b[1] = opts.immed ? 1 : 0;
  b[4] = (opts.hold ? 8 : 0) | (opts.eot ? 4 : 0) | (load ? 1 : 0);
  return b;
}

export function buildPreventAllow(prevent: boolean): Uint8Array {
  const b = cdb(6, ScsiOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL);
  b[4] = prevent ? 1 : 0;
  return b;
}

export function buildLocate10(objectId: number, opts: { partition?: number; immed?: boolean } = {}): Uint8Array {
  const b = cdb(10, ScsiOpcode.LOCATE_10);
  b[1] = (opts.partition !== undefined ? 2 : 0) | (opts.immed ? 1 : 0);
  put32(b, 3, objectId);
  b[8] = opts.partition ?? 0;
  return b;
}

export function buildLocate16(
  id: number,
  opts: { destType?: number; partition?: number; immed?: boolean } = {},
): Uint8Array {
  const b = cdb(16, ScsiOpcode.LOCATE_16);
  b[1] = ((opts.destType ?? LocateDest.OBJECT) << 3) | (opts.partition !== undefined ? 2 : 0) | (opts.immed ? 1 : 0);
  b[3] = opts.partition ?? 0;
  put64(b, 4, id);
  return b;
}

export function buildReadPosition(form: number = ReadPositionForm.SHORT, allocationLength = 0): Uint8Array {
  const b = cdb(10, ScsiOpcode.READ_POSITION);
  b[1] = form & 0x1f;
  put16(b, 7, allocationLength);
  return b;
}

export function buildReportDensitySupport(opts: { medium?: boolean; allocationLength?: number } = {}): Uint8Array {
  const b = cdb(10, ScsiOpcode.REPORT_DENSITY_SUPPORT);
  b[1] = opts.medium ? 1 : 0;
  put16(b, 7, opts.allocationLength ?? 0xffff);
  return b;
}

export function buildLogSense(
  page: number,
  opts: { pageControl?: number; allocationLength?: number; subpage?: number } = {},
): Uint8Array {
  const b = cdb(10, ScsiOpcode.LOG_SENSE);
  b[2] = ((opts.pageControl ?? 1) << 6) | (page & 0x3f);
  b[3] = opts.subpage ?? 0;
  put16(b, 7, opts.allocationLength ?? 0xffff);
  return b;
}

export function buildReadAttribute(serviceAction: number, firstAttribute = 0, allocationLength = 0x10000): Uint8Array {
  const b = cdb(16, ScsiOpcode.READ_ATTRIBUTE);
  b[1] = serviceAction & 0x1f;
  put16(b, 8, firstAttribute);
  put32(b, 10, allocationLength);
  return b;
}

export function buildModeSense6(
  page: number,
  opts: { dbd?: boolean; allocationLength?: number; pageControl?: number } = {},
): Uint8Array {
  const b = cdb(6, ScsiOpcode.MODE_SENSE_6);
  b[1] = opts.dbd ? 8 : 0;
  b[2] = ((opts.pageControl ?? 0) << 6) | (page & 0x3f);
  b[4] = opts.allocationLength ?? 0xff;
  return b;
}

export function buildModeSelect6(parameterListLength: number): Uint8Array {
  const b = cdb(6, ScsiOpcode.MODE_SELECT_6);
  b[1] = 0x10; // PF
  b[4] = parameterListLength;
  return b;
}

/** A MODE SELECT(6) parameter list that only sets the block descriptor (density, block length). */
export function modeSelectBlockDescriptor(blockLength: number, densityCode = 0): Uint8Array {
  // Buffered mode 1 (SSC-3 8.3.2); the general block descriptor: density, 0 blocks, block length.
  return encodeModeParameters({
    size: 6,
    select: true,
    deviceSpecific: 0x10,
    descriptor: { blockCount: densityCode * 0x1000000, blockLength },
  });
}

export function buildInquiry(allocationLength = 96, page?: number): Uint8Array {
  const b = cdb(6, ScsiOpcode.INQUIRY);
  if (page !== undefined) {
    b[1] = 1;
    b[2] = page;
  }
  put16(b, 3, allocationLength);
  return b;
}

export function buildRequestSense(allocationLength = 18): Uint8Array {
  const b = cdb(6, ScsiOpcode.REQUEST_SENSE);
  b[4] = allocationLength;
  return b;
}

export function buildMoveMedium(transport: number, source: number, destination: number, invert = false): Uint8Array {
  const b = cdb(12, ScsiOpcode.MOVE_MEDIUM);
  put16(b, 2, transport);
  put16(b, 4, source);
  put16(b, 6, destination);
  b[10] = invert ? 1 : 0;
  return b;
}

export function buildReadElementStatus(
  opts: {
    type?: number;
    start?: number;
    count?: number;
    voltag?: boolean;
    dvcid?: boolean;
    allocationLength?: number;
  } = {},
): Uint8Array {
  const b = cdb(12, ScsiOpcode.READ_ELEMENT_STATUS);
  b[1] = (opts.voltag ? 0x10 : 0) | ((opts.type ?? ElementType.ALL) & 0x0f);
  put16(b, 2, opts.start ?? 0);
  put16(b, 4, opts.count ?? 0xffff);
  b[6] = opts.dvcid ? 1 : 0;
  put24(b, 7, opts.allocationLength ?? 0xffffff);
  return b;
}

export const buildInitializeElementStatus = (): Uint8Array => cdb(6, ScsiOpcode.INITIALIZE_ELEMENT_STATUS);

// ---- decoders ----------------------------------------------------------------------------------

/** READ(6)/WRITE(6): SILI b1 (read only), FIXED b0, TRANSFER LENGTH bytes 2–4. SSC-3 READ(6)/WRITE(6) */
export function decodeReadWrite6(c: Uint8Array): { fixed: boolean; sili: boolean; length: number } {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { fixed: !!(b1 & 1), sili: !!(b1 & 2), length: r.u24(2) };
}

/** WRITE FILEMARKS(6): WSMK b1, IMMED b0, count bytes 2–4. SSC-3 WRITE FILEMARKS(6) */
export function decodeWriteFilemarks6(c: Uint8Array): { wsmk: boolean; immed: boolean; count: number } {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { wsmk: !!(b1 & 2), immed: !!(b1 & 1), count: r.u24(2) };
}

function signed24(v: number): number {
  return v & 0x800000 ? v - 0x1000000 : v;
}

/** SPACE(6): CODE b3:0, signed 24-bit COUNT bytes 2–4. SSC-3 SPACE(6) */
export function decodeSpace6(c: Uint8Array): { code: number; count: number } {
  const r = new ByteReader(c);
  return { code: r.u8(1) & 0x0f, count: signed24(r.u24(2)) };
}

/** SPACE(16): CODE b3:0, signed 64-bit COUNT bytes 4–11. SSC-3 SPACE(16) */
export function decodeSpace16(c: Uint8Array): { code: number; count: number } {
  const r = new ByteReader(c);
  r.u8(15);
  const v = new DataView(c.buffer, c.byteOffset, c.byteLength).getBigInt64(4);
  return { code: r.u8(1) & 0x0f, count: Number(v) };
}

/** LOCATE(10): BT b2, CP b1, IMMED b0; object id bytes 3–6; partition byte 8. SSC-3 LOCATE(10) */
export function decodeLocate10(c: Uint8Array): {
  cp: boolean;
  immed: boolean;
  id: number;
  partition: number;
  destType: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { cp: !!(b1 & 2), immed: !!(b1 & 1), id: r.u32(3), partition: r.u8(8), destType: LocateDest.OBJECT };
}

/** LOCATE(16): DEST_TYPE b5:3, CP b1, IMMED b0; partition byte 3; identifier bytes 4–11. */
export function decodeLocate16(c: Uint8Array): {
  cp: boolean;
  immed: boolean;
  id: number;
  partition: number;
  destType: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { cp: !!(b1 & 2), immed: !!(b1 & 1), destType: (b1 >> 3) & 7, partition: r.u8(3), id: Number(r.u64big(4)) };
}

export function decodeReadPosition(c: Uint8Array): { form: number; allocationLength: number } {
  const r = new ByteReader(c);
  return { form: r.u8(1) & 0x1f, allocationLength: r.u16(7) };
}

/** LOAD UNLOAD: IMMED byte 1 b0; byte 4 HOLD b3, EOT b2, RETEN b1, LOAD b0. SSC-3 LOAD UNLOAD */
export function decodeLoadUnload(c: Uint8Array): {
  immed: boolean;
  hold: boolean;
  eot: boolean;
  reten: boolean;
  load: boolean;
} {
  const r = new ByteReader(c);
  const b4 = r.u8(4);
  return { immed: !!(r.u8(1) & 1), hold: !!(b4 & 8), eot: !!(b4 & 4), reten: !!(b4 & 2), load: !!(b4 & 1) };
}

export function decodeErase6(c: Uint8Array): { immed: boolean; long: boolean } {
  const b1 = new ByteReader(c).u8(1);
  return { immed: !!(b1 & 2), long: !!(b1 & 1) };
}

export function decodeReportDensitySupport(c: Uint8Array): {
  medium: boolean;
  mediaType: boolean;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { medium: !!(b1 & 1), mediaType: !!(b1 & 2), allocationLength: r.u16(7) };
}

/** LOG SENSE: PPC b1, SP b0; PC byte 2 b7:6, page b5:0; subpage 3; pointer 5–6; allocation 7–8. SPC-4 LOG SENSE */
export function decodeLogSense(c: Uint8Array): {
  sp: boolean;
  pageControl: number;
  page: number;
  subpage: number;
  parameterPointer: number;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  const b2 = r.u8(2);
  return {
    sp: !!(r.u8(1) & 1),
    pageControl: b2 >> 6,
    page: b2 & 0x3f,
    subpage: r.u8(3),
    parameterPointer: r.u16(5),
    allocationLength: r.u16(7),
  };
}

/**
 * READ ATTRIBUTE: SA byte 1 b4:0; volume 5; partition 7; first attribute 8–9; allocation 10–13. SPC-4 READ ATTRIBUTE
 */
export function decodeReadAttribute(c: Uint8Array): {
  serviceAction: number;
  volume: number;
  partition: number;
  firstAttribute: number;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  return {
    serviceAction: r.u8(1) & 0x1f,
    volume: r.u8(5),
    partition: r.u8(7),
    firstAttribute: r.u16(8),
    allocationLength: r.u32(10),
  };
}

/** PREVENT ALLOW MEDIUM REMOVAL: PREVENT byte 4 b1:0. SPC-4 PREVENT ALLOW MEDIUM REMOVAL */
export function decodePreventAllowTape(c: Uint8Array): { prevent: number } {
  return { prevent: new ByteReader(c).u8(4) & 3 };
}

/** MOVE MEDIUM: transport 2–3, source 4–5, destination 6–7, INVERT byte 10 b0. SMC-3 MOVE MEDIUM */
export function decodeMoveMedium(c: Uint8Array): {
  transport: number;
  source: number;
  destination: number;
  invert: boolean;
} {
  const r = new ByteReader(c);
  return { transport: r.u16(2), source: r.u16(4), destination: r.u16(6), invert: !!(r.u8(10) & 1) };
}

/**
 * READ ELEMENT STATUS: VOLTAG b4, type b3:0; start 2–3; count 4–5; CURDATA b1/DVCID b0 byte 6; allocation 7–9. SMC-3
 * READ ELEMENT STATUS
 */
export function decodeReadElementStatus(c: Uint8Array): {
  voltag: boolean;
  type: number;
  start: number;
  count: number;
  curdata: boolean;
  dvcid: boolean;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  const b6 = r.u8(6);
  return {
    voltag: !!(b1 & 0x10),
    type: b1 & 0x0f,
    start: r.u16(2),
    count: r.u16(4),
    curdata: !!(b6 & 2),
    dvcid: !!(b6 & 1),
    allocationLength: r.u24(7),
  };
}

/** READ BLOCK LIMITS: MLOI byte 1 b0. SSC-3 READ BLOCK LIMITS */
export function decodeReadBlockLimits(c: Uint8Array): { mloi: boolean } {
  return { mloi: !!(new ByteReader(c).u8(1) & 1) };
}

/** POSITION TO ELEMENT: transport 2–3, destination 4–5, INVERT byte 8 b0. SMC-3 POSITION TO ELEMENT */
export function decodePositionToElement(c: Uint8Array): { transport: number; destination: number; invert: boolean } {
  const r = new ByteReader(c);
  return { transport: r.u16(2), destination: r.u16(4), invert: !!(r.u8(8) & 1) };
}

/**
 * INITIALIZE ELEMENT STATUS WITH RANGE: RANGE byte 1 b0; start 2–3; count 6–7. SMC-3 INITIALIZE ELEMENT STATUS WITH
 * RANGE
 */
export function decodeInitElementStatusRange(c: Uint8Array): { range: boolean; start: number; count: number } {
  const r = new ByteReader(c);
  return { range: !!(r.u8(1) & 1), start: r.u16(2), count: r.u16(6) };
}
