import { crc32 } from 'node:zlib';
import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { DecodeError } from '../util/errors.ts';

/**
 * On-disk layout of one snapshot's copy-on-write store (docs/snapshots.md).
 *
 * File header, 64 bytes at offset 0:
 *   0  8  magic "FERRYCOW"
 *   8  4  version (1)
 *  12  4  chunk size in bytes
 *  16  4  block size in bytes
 *  20  4  reserved (0)
 *  24  8  block count of the LUN
 *  32 24  snapshot id, ASCII, NUL-padded
 *  56  4  CRC-32 (zlib/IEEE) of bytes 0..55
 *  60  4  reserved (0)
 *
 * Then fixed-size slots; slot k starts at 64 + k * (32 + chunkBytes):
 *   0  4  magic "CHNK"
 *   4  4  CRC-32 of the chunk data
 *   8  8  chunk index (chunk k covers bytes [k*chunkBytes, (k+1)*chunkBytes) of the LUN)
 *  16  8  reserved (0)
 *  24  4  CRC-32 of slot header bytes 0..23
 *  28  4  reserved (0)
 *  32  chunkBytes of the chunk's content at the snapshot instant (zero-padded past the LUN's end)
 *
 * A slot that fails either CRC is ignored: it is a torn append whose overwrite never reached
 * the LUN, because the overwrite waits for the slot's fdatasync. The file is grown ahead of the
 * appends (sparse, PREALLOCATE_BYTES at a time) so an fdatasync rarely has a size to commit;
 * the all-zero slots past the last append fail the magic check like any hole.
 * CRC-32 is zlib's (native, several GB/s): every copied chunk is summed on the write path.
 */

/** Sparse growth step of a store file. */
export const PREALLOCATE_BYTES = 64 * 1024 * 1024;

/** CRC-32 (ISO-HDLC, as zlib) of a chunk's data. */
export function chunkCrc(data: Uint8Array): number {
  return crc32(data);
}

export const COW_MAGIC = 'FERRYCOW';
export const COW_VERSION = 1;
export const COW_HEADER_BYTES = 64;
export const SLOT_HEADER_BYTES = 32;
const SLOT_MAGIC = 0x43484e4b; // "CHNK"
const ID_BYTES = 24;

export interface CowHeader {
  chunkBytes: number;
  blockSize: number;
  blockCount: number;
  snapshotId: string;
}

export interface SlotHeader {
  chunk: number;
  dataCrc: number;
}

export function slotBytes(chunkBytes: number): number {
  return SLOT_HEADER_BYTES + chunkBytes;
}

export function encodeCowHeader(h: CowHeader): Uint8Array {
  const id = new TextEncoder().encode(h.snapshotId);
  if (id.length > ID_BYTES) throw new RangeError(`snapshot id "${h.snapshotId}" longer than ${ID_BYTES} bytes`);
  const w = new ByteWriter(COW_HEADER_BYTES);
  w.bytes(new TextEncoder().encode(COW_MAGIC))
    .u32(COW_VERSION)
    .u32(h.chunkBytes)
    .u32(h.blockSize)
    .u32(0)
    .u64(h.blockCount);
  w.bytes(id);
  w.setU32(56, crc32(w.buf.subarray(0, 56)));
  return w.buf;
}

export function decodeCowHeader(buf: Uint8Array): CowHeader {
  const r = new ByteReader(buf.subarray(0, COW_HEADER_BYTES));
  const magic = new TextDecoder().decode(r.bytes(8));
  if (magic !== COW_MAGIC) throw new DecodeError(`copy-on-write store: magic "${magic}", expected "${COW_MAGIC}"`, 0);
  const version = r.u32();
  if (version !== COW_VERSION)
    throw new DecodeError(`copy-on-write store: version ${version}, expected ${COW_VERSION}`, 8);
  const crc = r.u32(56);
  const want = crc32(buf.subarray(0, 56));
  if (crc !== want)
    throw new DecodeError(`copy-on-write store: header CRC 0x${crc.toString(16)}, expected 0x${want.toString(16)}`, 56);
  const chunkBytes = r.u32(12);
  const blockSize = r.u32(16);
  const blockCount = r.u64(24);
  const idBytes = r.bytes(ID_BYTES, 32);
  const end = idBytes.indexOf(0);
  const snapshotId = new TextDecoder().decode(end < 0 ? idBytes : idBytes.subarray(0, end));
  return { chunkBytes, blockSize, blockCount, snapshotId };
}

/** Fill the 32-byte slot header in front of `data` (already in place at slot[32..]). */
export function encodeSlotHeader(slot: Uint8Array, chunk: number, data: Uint8Array): void {
  const w = new ByteWriter(slot.subarray(0, SLOT_HEADER_BYTES));
  w.u32(SLOT_MAGIC).u32(crc32(data)).u64(chunk).u64(0);
  w.setU32(24, crc32(w.buf.subarray(0, 24)));
  w.setU32(28, 0);
}

/** Decode a slot header; undefined when it is not a valid slot (hole or torn write). */
export function decodeSlotHeader(hdr: Uint8Array): SlotHeader | undefined {
  const r = new ByteReader(hdr.subarray(0, SLOT_HEADER_BYTES));
  if (r.u32(0) !== SLOT_MAGIC) return undefined;
  if (r.u32(24) !== crc32(hdr.subarray(0, 24))) return undefined;
  return { dataCrc: r.u32(4), chunk: r.u64(8) };
}
