import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { crc32c } from '../util/crc32c.ts';
import { FerryError } from '../util/errors.ts';

/**
 * Ferry cartridge image (docs/tape-format.md), its one codec: the label and the index entries
 * (as row-format.ts is for the snapshot map; cartridge.ts does the I/O). One sparse file:
 *
 *   0      label copy A (2 KiB)   } the newer valid copy wins; label writes alternate A/B
 *   2048   label copy B (2 KiB)   }
 *   4096   data region: record bytes only, packed, `capacityBytes` long at most
 *   4096 + capacityBytes   index region: 48-byte entries, one per WRITE / WRITE FILEMARKS
 *
 * Every logical object (fixed block, variable record, filemark) has a dense id from 0.
 * An index entry ("run") covers `count` objects of one kind and length. A write stores the
 * data first, then its entry: a crash leaves either the whole record or none. The in-memory
 * run table gives LOCATE/READ POSITION by object id in O(log n) (binary search).
 *
 * Writing in the middle truncates: entries carry a generation, bumped on every truncation,
 * and a chain of entries is valid only while generations do not decrease, so entries left
 * behind the new end of data can never come back.
 */
export const CartridgeLayout = {
  MAGIC: 'FERRYCRT',
  VERSION: 1,
  LABEL_COPY_BYTES: 2048,
  DATA_BASE: 4096,
  ENTRY_BYTES: 48,
  ENTRY_MAGIC: 0x4958, // 'IX'
} as const;

export class CartridgeError extends FerryError {
  constructor(message: string) {
    super('ERR_CARTRIDGE', message);
  }
}

export const ObjectKind = { DATA: 1, FILEMARK: 2, EOD: 3 } as const;

export type RunKind = typeof ObjectKind.DATA | typeof ObjectKind.FILEMARK;

/** What the label holds (and what READ ATTRIBUTE reports as MAM). */
export interface CartridgeLabel {
  barcode: string;
  mediumSerial: string;
  capacityBytes: number;
  /** Size of the early-warning zone before the end of the medium. */
  earlyWarningBytes: number;
  writeProtected: boolean;
  loadCount: number;
  createdMs: number;
  /** SSC density code reported in the block descriptor. */
  densityCode: number;
}

// Label copy layout (big-endian):
//   0  magic "FERRYCRT"   8  version u16   10 flags u16 (b0 write-protect)   12 seq u32
//  16  capacity u64       24 early warning u64   32 load count u64   40 created ms u64
//  48  density u8   49..63 reserved   64 barcode (32, ASCII, space padded)   96 serial (32)
//  128..2043 reserved   2044 crc32c over 0..2043
const LABEL_CRC_AT = CartridgeLayout.LABEL_COPY_BYTES - 4;

export function encodeLabel(label: CartridgeLabel, seq: number): Uint8Array {
  const w = new ByteWriter(CartridgeLayout.LABEL_COPY_BYTES);
  w.bytes(new TextEncoder().encode(CartridgeLayout.MAGIC));
  w.u16(CartridgeLayout.VERSION)
    .u16(label.writeProtected ? 1 : 0)
    .u32(seq);
  w.u64(label.capacityBytes).u64(label.earlyWarningBytes).u64(label.loadCount).u64(label.createdMs);
  w.u8(label.densityCode);
  w.pos = 64;
  w.bytes(asciiField(label.barcode, 32));
  w.bytes(asciiField(label.mediumSerial, 32));
  w.setU32(LABEL_CRC_AT, crc32c(w.buf.subarray(0, LABEL_CRC_AT)));
  return w.buf;
}

/** Decode one label copy; undefined when it is torn, blank or not ours. */
export function decodeLabel(buf: Uint8Array): { label: CartridgeLabel; seq: number } | undefined {
  if (buf.length < CartridgeLayout.LABEL_COPY_BYTES) return undefined;
  const r = new ByteReader(buf.subarray(0, CartridgeLayout.LABEL_COPY_BYTES));
  if (new TextDecoder().decode(r.bytes(8)) !== CartridgeLayout.MAGIC) return undefined;
  if (r.u32(LABEL_CRC_AT) !== crc32c(buf.subarray(0, LABEL_CRC_AT))) return undefined;
  const version = r.u16();
  if (version !== CartridgeLayout.VERSION)
    throw new CartridgeError(`cartridge format version ${version} is not supported`);
  const flags = r.u16();
  const seq = r.u32();
  const label: CartridgeLabel = {
    capacityBytes: r.u64(),
    earlyWarningBytes: r.u64(),
    loadCount: r.u64(),
    createdMs: r.u64(),
    densityCode: r.u8(),
    writeProtected: (flags & 1) !== 0,
    barcode: readAscii(r.bytes(32, 64)),
    mediumSerial: readAscii(r.bytes(32, 96)),
  };
  return { label, seq };
}

// Index entry layout (48 bytes, big-endian):
//   0 magic u16 'IX'   2 kind u8 (1 data, 2 filemark, 3 end-of-data marker)   3 reserved
//   4 generation u32   8 first object id u64   16 data offset u64   24 count u32
//  28 block length u32   32..43 reserved   44 crc32c over 0..43
export interface IndexEntry {
  kind: number;
  gen: number;
  firstId: number;
  dataOffset: number;
  count: number;
  blockLength: number;
}

export function encodeEntry(e: IndexEntry): Uint8Array {
  const w = new ByteWriter(CartridgeLayout.ENTRY_BYTES);
  w.u16(CartridgeLayout.ENTRY_MAGIC)
    .u8(e.kind)
    .u8(0)
    .u32(e.gen)
    .u64(e.firstId)
    .u64(e.dataOffset)
    .u32(e.count)
    .u32(e.blockLength);
  w.setU32(44, crc32c(w.buf.subarray(0, 44)));
  return w.buf;
}

/** Decode one entry; undefined when torn, blank or corrupt. */
export function decodeEntry(buf: Uint8Array): IndexEntry | undefined {
  const r = new ByteReader(buf.subarray(0, CartridgeLayout.ENTRY_BYTES));
  if (r.u16(0) !== CartridgeLayout.ENTRY_MAGIC) return undefined;
  if (r.u32(44) !== crc32c(buf.subarray(0, 44))) return undefined;
  const kind = r.u8(2);
  if (kind < 1 || kind > 3) return undefined;
  return { kind, gen: r.u32(4), firstId: r.u64(8), dataOffset: r.u64(16), count: r.u32(24), blockLength: r.u32(28) };
}

function asciiField(text: string, len: number): Uint8Array {
  const out = new Uint8Array(len).fill(0x20);
  const src = new TextEncoder().encode(text);
  out.set(src.subarray(0, len));
  return out;
}

function readAscii(b: Uint8Array): string {
  return new TextDecoder().decode(b).replace(/[\s\0]+$/, '');
}
