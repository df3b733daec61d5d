import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';

/**
 * READ CAPACITY parameter data, both ways: the disk LU encodes it, the initiator decodes it.
 *   (10), SBC-3 5.15.2 (8 bytes): 0–3 RETURNED LOGICAL BLOCK ADDRESS (FFFFFFFFh: too large,
 *     use (16)), 4–7 LOGICAL BLOCK LENGTH IN BYTES.
 *   (16), SBC-3 5.16.2 (32 bytes): 0–7 RETURNED LOGICAL BLOCK ADDRESS, 8–11 LOGICAL BLOCK
 *     LENGTH IN BYTES, 13 b3:0 LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT, 14 LBPME b7, LBPRZ b6.
 */

export interface Capacity {
  /** The last LBA (block count − 1). */
  lastLba: number;
  blockSize: number;
}

export function encodeReadCapacity10Data(c: Capacity): Uint8Array {
  return new ByteWriter(8).u32(Math.min(c.lastLba, 0xffffffff)).u32(c.blockSize).buf;
}

export function decodeReadCapacity10Data(d: Uint8Array): Capacity {
  const r = new ByteReader(d);
  return { lastLba: r.u32(0), blockSize: r.u32(4) };
}

export interface Capacity16 extends Capacity {
  lbppbExponent: number;
  /** Logical block provisioning management enabled (UNMAP works). */
  lbpme: boolean;
  /** Unmapped blocks read as zeros. */
  lbprz: boolean;
}

export function encodeReadCapacity16Data(c: Capacity16): Uint8Array {
  const w = new ByteWriter(32).u64(c.lastLba).u32(c.blockSize);
  w.setU8(13, c.lbppbExponent);
  w.setU8(14, (c.lbpme ? 0x80 : 0) | (c.lbprz ? 0x40 : 0));
  return w.buf;
}

/** The first 12 bytes are enough: an allocation length of 12 still carries LBA and block size. */
export function decodeReadCapacity16Data(d: Uint8Array): Capacity {
  const r = new ByteReader(d);
  return { lastLba: Number(r.u64big(0)), blockSize: r.u32(8) };
}
