import { crc32 } from 'node:zlib';
import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { DecodeError } from '../util/errors.ts';

/**
 * On-disk layout of one change-tracking epoch's bitmap, `<changeId>.chg` (docs/snapshots.md,
 * "Change tracking"). All integers big-endian.
 *
 * Header, 32 bytes at offset 0:
 *   0  8  magic "FERRYCHG"
 *   8  4  version (1)
 *  12  4  granule size in bytes (the LUN's chunk size)
 *  16  8  granule count (bits in the bitmap)
 *  24  1  state: 1 = sealed (the bits are exact and the CRC below covers them),
 *                0 = open (bits are only ever added in place, so no CRC: a superset)
 *  25  3  reserved (0)
 *  28  4  CRC-32 of the bitmap when sealed, else 0
 * Then the bitmap: granule g is bit (g & 7), least significant first, of byte 32 + (g >> 3).
 * A header CRC is not needed: a torn header fails the magic, version or size checks, and a
 * sealed file is only ever replaced whole (temp file, fdatasync, rename).
 */
export const CHG_MAGIC = 'FERRYCHG';
export const CHG_VERSION = 1;
export const CHG_HEADER_BYTES = 32;

export interface ChangeBitmap {
  granuleBytes: number;
  granules: number;
  sealed: boolean;
  bits: Uint8Array;
}

export function bitmapBytes(granules: number): number {
  return Math.ceil(granules / 8);
}

/** Header and bitmap as one buffer (the bitmap is copied). */
export function encodeChangeBitmap(m: ChangeBitmap): Uint8Array {
  const n = bitmapBytes(m.granules);
  if (m.bits.length !== n)
    throw new RangeError(`bitmap of ${m.bits.length} bytes for ${m.granules} granules, expected ${n}`);
  const w = new ByteWriter(CHG_HEADER_BYTES + n);
  w.bytes(new TextEncoder().encode(CHG_MAGIC)).u32(CHG_VERSION).u32(m.granuleBytes).u64(m.granules);
  w.u8(m.sealed ? 1 : 0)
    .u8(0)
    .u8(0)
    .u8(0)
    .u32(m.sealed ? crc32(m.bits) : 0);
  w.bytes(m.bits);
  return w.buf;
}

/** Decode and check a whole file; a sealed bitmap's CRC must match. */
export function decodeChangeBitmap(buf: Uint8Array): ChangeBitmap {
  if (buf.length < CHG_HEADER_BYTES)
    throw new DecodeError(`change bitmap: ${buf.length} bytes, shorter than its header`, 0);
  const r = new ByteReader(buf);
  const magic = new TextDecoder().decode(r.bytes(8));
  if (magic !== CHG_MAGIC) throw new DecodeError(`change bitmap: magic "${magic}", expected "${CHG_MAGIC}"`, 0);
  const version = r.u32();
  if (version !== CHG_VERSION) throw new DecodeError(`change bitmap: version ${version}, expected ${CHG_VERSION}`, 8);
  const granuleBytes = r.u32();
  const granules = r.u64();
  const state = r.u8();
  if (state > 1) throw new DecodeError(`change bitmap: state ${state}, expected 0 or 1`, 24);
  const crc = r.u32(28);
  const n = bitmapBytes(granules);
  if (buf.length !== CHG_HEADER_BYTES + n)
    throw new DecodeError(
      `change bitmap: ${buf.length} bytes, expected ${CHG_HEADER_BYTES + n} for ${granules} granules`,
      16,
    );
  const bits = buf.subarray(CHG_HEADER_BYTES);
  const sealed = state === 1;
  if (sealed && crc32(bits) !== crc)
    throw new DecodeError(`change bitmap: CRC 0x${crc.toString(16)} does not match its bits`, 28);
  return { granuleBytes, granules, sealed, bits };
}

/** Whether granule `g` is set (bit g & 7 of byte g >> 3, as above). */
export function hasGranule(bits: Uint8Array, g: number): boolean {
  return (bits[g >> 3] & (1 << (g & 7))) !== 0;
}

export function setGranule(bits: Uint8Array, g: number): void {
  bits[g >> 3] |= 1 << (g & 7);
}
