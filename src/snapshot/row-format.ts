import { crc32 } from 'node:zlib';
import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { DecodeError } from '../util/errors.ts';

/**
 * On-disk layout of a LUN's redirect map, `map.log` (docs/snapshots.md, "On-disk format").
 * All integers big-endian.
 *
 * Header, 64 bytes at offset 0:
 *   0  8  magic "FERRYMAP"
 *   8  4  version (1)
 *  12  4  chunk size in bytes
 *  16  4  block size in bytes
 *  20  4  reserved (0)
 *  24  8  block count of the LUN
 *  32 16  kernel boot id the entries were appended under (all zero: unknown)
 *  48 12  reserved (0)
 *  60  4  CRC-32 (zlib/IEEE) of bytes 0..59
 *
 * Then 32-byte entries, appended; entry i at 64 + 32 i:
 *   0  1  kind: 1 MAP (layer, chunk → slot), 2 UNMAP (layer, chunk), 3 COMMIT
 *   1  3  reserved (0)
 *   4  4  layer id (MAP, UNMAP)
 *   8  8  chunk index (MAP, UNMAP); COMMIT: entries before index n are durable with their data
 *  16  8  slot in chunks.dat (MAP): the chunk's data at byte slot × chunk size
 *  24  4  reserved (0)
 *  28  4  CRC-32 of bytes 0..27
 * An entry failing its CRC (a hole or a torn append) is skipped.
 */

export const MAP_MAGIC = 'FERRYMAP';
export const MAP_VERSION = 1;
export const MAP_HEADER_BYTES = 64;
export const MAP_ENTRY_BYTES = 32;
export const BOOT_ID_BYTES = 16;

export const EntryKind = { MAP: 1, UNMAP: 2, COMMIT: 3 } as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export interface MapHeader {
  chunkBytes: number;
  blockSize: number;
  blockCount: number;
  /** 16 bytes; all zero when the boot could not be identified. */
  bootId: Uint8Array;
}

/** One decoded entry. For COMMIT, `chunk` is the count of entries it vouches for. */
export interface MapEntry {
  kind: EntryKind;
  layer: number;
  chunk: number;
  slot: number;
}

export function encodeMapHeader(h: MapHeader): Uint8Array {
  const w = new ByteWriter(MAP_HEADER_BYTES);
  w.bytes(new TextEncoder().encode(MAP_MAGIC)).u32(MAP_VERSION).u32(h.chunkBytes).u32(h.blockSize).u32(0);
  w.u64(h.blockCount).bytes(h.bootId.subarray(0, BOOT_ID_BYTES));
  w.setU32(60, crc32(w.buf.subarray(0, 60)));
  return w.buf;
}

export function decodeMapHeader(buf: Uint8Array): MapHeader {
  if (buf.length < MAP_HEADER_BYTES)
    throw new DecodeError(`redirect map: ${buf.length}-byte header, expected ${MAP_HEADER_BYTES}`, 0);
  const r = new ByteReader(buf.subarray(0, MAP_HEADER_BYTES));
  const magic = new TextDecoder().decode(r.bytes(8));
  if (magic !== MAP_MAGIC) throw new DecodeError(`redirect map: magic "${magic}", expected "${MAP_MAGIC}"`, 0);
  const version = r.u32();
  if (version !== MAP_VERSION) throw new DecodeError(`redirect map: version ${version}, expected ${MAP_VERSION}`, 8);
  const crc = r.u32(60);
  const want = crc32(buf.subarray(0, 60));
  if (crc !== want)
    throw new DecodeError(`redirect map: header CRC 0x${crc.toString(16)}, expected 0x${want.toString(16)}`, 60);
  return {
    chunkBytes: r.u32(12),
    blockSize: r.u32(16),
    blockCount: r.u64(24),
    bootId: Uint8Array.from(r.bytes(BOOT_ID_BYTES, 32)),
  };
}

/** Encode one entry at `at` in `buf` (no allocation: the write path fills a reused buffer). */
export function encodeMapEntry(buf: Uint8Array, at: number, e: MapEntry): void {
  const w = new ByteWriter(buf.subarray(at, at + MAP_ENTRY_BYTES));
  w.u8(e.kind).u8(0).u16(0).u32(e.layer).u64(e.chunk).u64(e.slot).u32(0);
  w.setU32(28, crc32(w.buf.subarray(0, 28)));
}

/** Decode the entry at `at`; undefined for a hole, a torn append or an unknown kind. */
export function decodeMapEntry(buf: Uint8Array, at: number): MapEntry | undefined {
  const b = buf.subarray(at, at + MAP_ENTRY_BYTES);
  const r = new ByteReader(b);
  if (r.u32(28) !== crc32(b.subarray(0, 28))) return undefined;
  const kind = r.u8(0);
  if (kind !== EntryKind.MAP && kind !== EntryKind.UNMAP && kind !== EntryKind.COMMIT) return undefined;
  return { kind, layer: r.u32(4), chunk: r.u64(8), slot: r.u64(16) };
}
