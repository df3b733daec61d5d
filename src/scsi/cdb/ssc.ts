import { ByteReader } from '../../util/byte-reader.ts';
import { ScsiOpcode } from '../opcodes.ts';
import { newCdb } from './new-cdb.ts';

/**
 * SSC-3 CDBs, both ways: `build<Command>` makes the bytes (initiator, tests, benches),
 * `decode<Command>Cdb` reads the fields (the tape LU). Each layout is written and read here only.
 */

/** SSC-3 SPACE codes (byte 1 bits 3:0). */
export const SpaceCode = { BLOCKS: 0, FILEMARKS: 1, SEQUENTIAL_FILEMARKS: 2, END_OF_DATA: 3 } as const;
/** SSC-3 READ POSITION service actions. */
export const ReadPositionForm = { SHORT: 0x00, SHORT_VENDOR: 0x01, LONG: 0x06, EXTENDED: 0x08 } as const;
/** SSC-3 LOCATE(16) DEST_TYPE. */
export const LocateDest = { OBJECT: 0, FILE: 1, EOD: 3 } as const;

// ---- builders ------------------------------------------------------------------------------

/** SSC-3 REWIND. */
export function buildRewind(immed = false): Uint8Array {
  const c = newCdb(6, ScsiOpcode.REWIND);
  c[1] = immed ? 1 : 0;
  return c;
}

/** SSC-3 READ BLOCK LIMITS. */
export function buildReadBlockLimits(mloi = false): Uint8Array {
  const c = newCdb(6, ScsiOpcode.READ_BLOCK_LIMITS);
  c[1] = mloi ? 1 : 0;
  return c;
}

/** SSC-3 READ(6): `length` is blocks (fixed) or bytes (variable). */
export function buildRead6(length: number, opts: { fixed?: boolean; sili?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.READ_6);
  c[1] = (opts.sili ? 2 : 0) | (opts.fixed ? 1 : 0);
  c.writeUIntBE(length, 2, 3);
  return c;
}

/** SSC-3 WRITE(6). */
export function buildWrite6(length: number, opts: { fixed?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.WRITE_6);
  c[1] = opts.fixed ? 1 : 0;
  c.writeUIntBE(length, 2, 3);
  return c;
}

/** SSC-3 WRITE FILEMARKS(6). */
export function buildWriteFilemarks6(count: number, opts: { immed?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.WRITE_FILEMARKS_6);
  c[1] = opts.immed ? 1 : 0;
  c.writeUIntBE(count, 2, 3);
  return c;
}

/** SSC-3 SPACE(6): negative counts space backward (24-bit two's complement). */
export function buildSpace6(code: number, count: number): Uint8Array {
  const c = newCdb(6, ScsiOpcode.SPACE_6);
  c[1] = code & 0x0f;
  c.writeIntBE(count, 2, 3);
  return c;
}

/** SSC-3 SPACE(16): signed 64-bit COUNT bytes 4–11. */
export function buildSpace16(code: number, count: number): Uint8Array {
  const c = newCdb(16, ScsiOpcode.SPACE_16);
  c[1] = code & 0x0f;
  c.writeBigInt64BE(BigInt(count), 4);
  return c;
}

/** SSC-3 ERASE(6). */
export function buildErase6(opts: { long?: boolean; immed?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.ERASE_6);
  c[1] = (opts.immed ? 2 : 0) | (opts.long ? 1 : 0);
  return c;
}

/** SSC-3 LOAD UNLOAD. */
export function buildLoadUnload(
  load: boolean,
  opts: { immed?: boolean; eot?: boolean; hold?: boolean } = {},
): Uint8Array {
  const c = newCdb(6, ScsiOpcode.LOAD_UNLOAD);
  c[1] = opts.immed ? 1 : 0;
  c[4] = (opts.hold ? 8 : 0) | (opts.eot ? 4 : 0) | (load ? 1 : 0);
  return c;
}

/** SSC-3 LOCATE(10): BLOCK ADDRESS 3–6, PARTITION 8 (CP=1 when given). */
export function buildLocate10(objectId: number, opts: { partition?: number; immed?: boolean } = {}): Uint8Array {
  const c = newCdb(10, ScsiOpcode.LOCATE_10);
  c[1] = (opts.partition !== undefined ? 2 : 0) | (opts.immed ? 1 : 0);
  c.writeUInt32BE(objectId, 3);
  c.writeUInt8(opts.partition ?? 0, 8);
  return c;
}

/** SSC-3 LOCATE(16): DEST_TYPE b5:3, CP b1, IMMED b0; PARTITION 3; identifier 4–11. */
export function buildLocate16(
  id: number,
  opts: { destType?: number; partition?: number; immed?: boolean } = {},
): Uint8Array {
  const c = newCdb(16, ScsiOpcode.LOCATE_16);
  c[1] = ((opts.destType ?? LocateDest.OBJECT) << 3) | (opts.partition !== undefined ? 2 : 0) | (opts.immed ? 1 : 0);
  c.writeUInt8(opts.partition ?? 0, 3);
  c.writeBigUInt64BE(BigInt(id), 4);
  return c;
}

/** SSC-3 READ POSITION. */
export function buildReadPosition(form: number = ReadPositionForm.SHORT, allocationLength = 0): Uint8Array {
  const c = newCdb(10, ScsiOpcode.READ_POSITION);
  c[1] = form & 0x1f;
  c.writeUInt16BE(allocationLength, 7);
  return c;
}

/** SSC-3 REPORT DENSITY SUPPORT. */
export function buildReportDensitySupport(opts: { medium?: boolean; allocationLength?: number } = {}): Uint8Array {
  const c = newCdb(10, ScsiOpcode.REPORT_DENSITY_SUPPORT);
  c[1] = opts.medium ? 1 : 0;
  c.writeUInt16BE(opts.allocationLength ?? 0xffff, 7);
  return c;
}

// ---- decoders ------------------------------------------------------------------------------

export function decodeReadWrite6Cdb(c: Uint8Array): { fixed: boolean; sili: boolean; length: number } {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { fixed: !!(b1 & 1), sili: !!(b1 & 2), length: r.u24(2) };
}

export function decodeWriteFilemarks6Cdb(c: Uint8Array): { wsmk: boolean; immed: boolean; count: number } {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { wsmk: !!(b1 & 2), immed: !!(b1 & 1), count: r.u24(2) };
}

function signed24(v: number): number {
  return v & 0x800000 ? v - 0x1000000 : v;
}

export function decodeSpace6Cdb(c: Uint8Array): { code: number; count: number } {
  const r = new ByteReader(c);
  return { code: r.u8(1) & 0x0f, count: signed24(r.u24(2)) };
}

export function decodeSpace16Cdb(c: Uint8Array): { code: number; count: number } {
  const r = new ByteReader(c);
  r.u8(15);
  const v = new DataView(c.buffer, c.byteOffset, c.byteLength).getBigInt64(4);
  return { code: r.u8(1) & 0x0f, count: Number(v) };
}

export function decodeLocate10Cdb(c: Uint8Array): {
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

export function decodeLocate16Cdb(c: Uint8Array): {
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

export function decodeReadPositionCdb(c: Uint8Array): { form: number; allocationLength: number } {
  const r = new ByteReader(c);
  return { form: r.u8(1) & 0x1f, allocationLength: r.u16(7) };
}

export function decodeLoadUnloadCdb(c: Uint8Array): {
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

export function decodeErase6Cdb(c: Uint8Array): { immed: boolean; long: boolean } {
  const b1 = new ByteReader(c).u8(1);
  return { immed: !!(b1 & 2), long: !!(b1 & 1) };
}

export function decodeReportDensitySupportCdb(c: Uint8Array): {
  medium: boolean;
  mediaType: boolean;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  return { medium: !!(b1 & 1), mediaType: !!(b1 & 2), allocationLength: r.u16(7) };
}

export function decodeReadBlockLimitsCdb(c: Uint8Array): { mloi: boolean } {
  return { mloi: !!(new ByteReader(c).u8(1) & 1) };
}
