import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';

/**
 * SSC-3 7.7 READ POSITION parameter data, both ways: the tape LU encodes it, the drive client
 * and the remote tape device decode it.
 *   short (20 bytes): 0 BOP b7, EOP b6, LOCU b5, BYCU b4, LOLU b2, PERR b1, BPEW b0; 1 partition;
 *     4–7 first and 8–11 last logical object location; 13–15 objects, 16–19 bytes in buffer.
 *   long (32 bytes): 0 BOP b7, EOP b6, MPU b3, LONU b2, BPEW b0; 4–7 partition; 8–15 logical
 *     object number; 16–23 logical file identifier; 24–31 logical set identifier.
 *   extended (32 bytes): 0 as short; 1 partition; 2–3 ADDITIONAL LENGTH 1Ch; 5–7 objects in
 *     buffer; 8–15 first and 16–23 last logical object location; 24–31 bytes in buffer.
 */

export interface PositionFlags {
  /** Beginning of partition. */
  bop: boolean;
  /** End of partition (at or past early warning). */
  eop: boolean;
  /** Beyond programmable early warning. */
  bpew: boolean;
}

export interface ShortPosition extends PositionFlags {
  /** The position is not known (LOLU): the locations mean nothing. */
  unknown: boolean;
  /** The location does not fit 32 bits (PERR): ask for the long form. */
  overflow: boolean;
  /** First logical object location: the block id of the next object. */
  blockId: number;
}

export interface LongPosition extends PositionFlags {
  blockId: number;
  fileNumber: number;
}

const flagsByte = (f: PositionFlags): number => (f.bop ? 0x80 : 0) | (f.eop ? 0x40 : 0) | (f.bpew ? 0x01 : 0);
const flagsOf = (b: number): PositionFlags => ({
  bop: (b & 0x80) !== 0,
  eop: (b & 0x40) !== 0,
  bpew: (b & 0x01) !== 0,
});

export function encodeShortPosition(f: PositionFlags, blockId: number): Uint8Array {
  const w = new ByteWriter(20);
  const overflow = blockId > 0xffffffff;
  w.setU8(0, flagsByte(f) | (overflow ? 0x02 : 0));
  w.setU32(4, Math.min(blockId, 0xffffffff));
  w.setU32(8, Math.min(blockId, 0xffffffff));
  return w.buf;
}

export function encodeLongPosition(f: PositionFlags, blockId: number, fileNumber: number): Uint8Array {
  const w = new ByteWriter(32);
  w.setU8(0, flagsByte(f));
  w.setU64(8, blockId);
  w.setU64(16, fileNumber);
  return w.buf;
}

export function encodeExtendedPosition(f: PositionFlags, blockId: number): Uint8Array {
  const w = new ByteWriter(32);
  w.setU8(0, flagsByte(f));
  w.setU16(2, 0x1c);
  w.setU64(8, blockId);
  w.setU64(16, blockId);
  return w.buf;
}

/** The short form; a reply too short to hold the location reads as unknown. */
export function decodeShortPosition(d: Uint8Array): ShortPosition {
  if (d.length < 8) return { bop: false, eop: false, bpew: false, unknown: true, overflow: false, blockId: 0 };
  const r = new ByteReader(d);
  const b = r.u8(0);
  return { ...flagsOf(b), unknown: (b & 0x04) !== 0, overflow: (b & 0x02) !== 0, blockId: r.u32(4) };
}

export function decodeLongPosition(d: Uint8Array): LongPosition {
  const r = new ByteReader(d);
  return { ...flagsOf(r.u8(0)), blockId: r.u64(8), fileNumber: r.u64(16) };
}
