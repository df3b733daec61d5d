import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { crc32c } from '../util/crc32c.ts';
import { FORMAT_VERSION, MAGIC, lookupMagic, magicHex, type MagicInfo, type RecordKind } from './magic.ts';
import { checkTapeBlockBytes, dataBlocksFor } from './geometry.ts';
import { KIND_NAMES, validateRecord, type SetHeader, type TapeRecord } from './records.ts';
import { TapeFormatError } from './errors.ts';

// | prefix (24 bytes) | UTF-8 JSON body | zero padding to a whole tape block |
// Byte layout: docs/on-tape-format.md "Record prefix". All integers big-endian.
//
//  0  8  magic (names kind and version, see magic.ts)
//  8  2  format version (1)
// 10  2  prefix length (24): the JSON starts here
// 12  4  JSON length in bytes
// 16  4  CRC32C of the JSON bytes
// 20  4  CRC32C of bytes 0-19

export const PREFIX_BYTES = 24;
/** Largest JSON body a reader accepts (docs "Record prefix"): 256 MiB, about 4 million extents. */
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

export interface RecordPrefix {
  magic: MagicInfo;
  version: number;
  jsonBytes: number;
  jsonCrc: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Encode a record as whole tape blocks, zero-padded. Validates it first: never writes what decodeRecord refuses. */
export function encodeRecord(r: TapeRecord, tapeBlockBytes: number): Uint8Array {
  checkTapeBlockBytes(tapeBlockBytes);
  const kind = (r as { kind?: unknown }).kind;
  if (kind !== 'label' && kind !== 'header' && kind !== 'trailer') {
    throw new TapeFormatError('bad-field', `unknown record kind ${JSON.stringify(kind)}`, { field: 'kind' });
  }
  const rec = validateRecord(kind, r);
  if ('tapeBlockBytes' in rec && rec.tapeBlockBytes !== tapeBlockBytes) {
    throw new TapeFormatError(
      'bad-block-size',
      `${KIND_NAMES[kind]} says tapeBlockBytes ${rec.tapeBlockBytes} but is written with ${tapeBlockBytes}-byte blocks`,
    );
  }
  // JSON of the validated copy: known fields only, in schema order.
  const json = encoder.encode(JSON.stringify(rec));
  if (json.length > MAX_JSON_BYTES) {
    throw new TapeFormatError('bad-prefix', `${KIND_NAMES[kind]} JSON is ${json.length} bytes, over ${MAX_JSON_BYTES}`);
  }
  const out = new Uint8Array(dataBlocksFor(PREFIX_BYTES + json.length, tapeBlockBytes) * tapeBlockBytes);
  const w = new ByteWriter(out).bytes(MAGIC[kind]).u16(FORMAT_VERSION).u16(PREFIX_BYTES);
  w.u32(json.length).u32(crc32c(json));
  w.setU32(20, crc32c(out.subarray(0, 20)));
  out.set(json, PREFIX_BYTES);
  return out;
}

/**
 * Decode and check the 24-byte prefix: magic, prefix CRC, version, lengths. The magic is
 * checked before the CRC so that data that is no record at all reads as 'bad-magic'.
 */
export function decodePrefix(bytes: Uint8Array): RecordPrefix {
  if (bytes.length < PREFIX_BYTES) {
    throw new TapeFormatError('truncated', `record prefix needs ${PREFIX_BYTES} bytes, have ${bytes.length}`, {
      offset: bytes.length,
    });
  }
  const r = new ByteReader(bytes.subarray(0, PREFIX_BYTES));
  const magicBytes = r.bytes(8);
  const magic = lookupMagic(magicBytes);
  if (!magic) throw new TapeFormatError('bad-magic', `unknown record magic ${magicHex(magicBytes)}`, { offset: 0 });
  const version = r.u16();
  const prefixBytes = r.u16();
  const jsonBytes = r.u32();
  const jsonCrc = r.u32();
  const prefixCrc = r.u32();
  const actual = crc32c(bytes.subarray(0, 20));
  if (actual !== prefixCrc) {
    const msg = `${magic.name}: prefix CRC32C is ${hex32(actual)}, stored ${hex32(prefixCrc)}`;
    throw new TapeFormatError('bad-prefix-crc', msg, { offset: 20 });
  }
  if (version !== magic.version || version !== FORMAT_VERSION) {
    throw new TapeFormatError(
      'unknown-version',
      `${magic.name}: format version ${version}, this reader knows version ${FORMAT_VERSION}`,
      { offset: 8 },
    );
  }
  if (prefixBytes !== PREFIX_BYTES) {
    throw new TapeFormatError('bad-prefix', `${magic.name}: prefix length ${prefixBytes}, expected ${PREFIX_BYTES}`, {
      offset: 10,
    });
  }
  if (jsonBytes > MAX_JSON_BYTES) {
    throw new TapeFormatError('bad-prefix', `${magic.name}: JSON length ${jsonBytes} is over ${MAX_JSON_BYTES}`, {
      offset: 12,
    });
  }
  return { magic, version, jsonBytes, jsonCrc };
}

/** The record's length, learnt from the prefix at the start of its first block. */
export function recordLength(firstBlock: Uint8Array): {
  kind: RecordKind;
  totalBytes: number;
  blocks: (tapeBlockBytes: number) => number;
} {
  const p = decodePrefix(firstBlock);
  const totalBytes = PREFIX_BYTES + p.jsonBytes;
  return { kind: p.magic.kind, totalBytes, blocks: (tapeBlockBytes) => dataBlocksFor(totalBytes, tapeBlockBytes) };
}

/**
 * Decode one record from its bytes (padding after the JSON, if present, is ignored).
 * Throws only TapeFormatError, whose `problem` says what is wrong.
 */
export function decodeRecord(bytes: Uint8Array): TapeRecord {
  const p = decodePrefix(bytes);
  const name = p.magic.name;
  const end = PREFIX_BYTES + p.jsonBytes;
  if (bytes.length < end) {
    const msg = `${name}: needs ${end} bytes, have ${bytes.length}`;
    throw new TapeFormatError('truncated', msg, { offset: bytes.length });
  }
  const json = bytes.subarray(PREFIX_BYTES, end);
  const crc = crc32c(json);
  if (crc !== p.jsonCrc) {
    throw new TapeFormatError('bad-crc', `${name}: JSON CRC32C is ${hex32(crc)}, stored ${hex32(p.jsonCrc)}`, {
      offset: PREFIX_BYTES,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(json));
  } catch (e) {
    throw new TapeFormatError('bad-json', `${name}: body is not UTF-8 JSON (${(e as Error).message})`, {
      offset: PREFIX_BYTES,
    });
  }
  const kind = typeof value === 'object' && value !== null ? (value as { kind?: unknown }).kind : undefined;
  if (kind !== p.magic.kind) {
    throw new TapeFormatError('kind-mismatch', `${name}: body says kind ${JSON.stringify(kind)}`, { field: 'kind' });
  }
  return validateRecord(p.magic.kind, value);
}

/**
 * Encode a set header that will be written at `headerBlockId`, with piece.dataBlockId set to
 * the block right after it (docs "Cartridge layout"). Returns the header as encoded.
 */
export function encodeHeaderAt(
  h: SetHeader,
  headerBlockId: number,
  tapeBlockBytes: number,
): { header: SetHeader; bytes: Uint8Array } {
  // dataBlockId's digits change the header's length; iterate until the block count is stable.
  let blocks = 1;
  for (;;) {
    const header: SetHeader = { ...h, piece: { ...h.piece, dataBlockId: headerBlockId + blocks } };
    const bytes = encodeRecord(header, tapeBlockBytes);
    const n = bytes.length / tapeBlockBytes;
    if (n === blocks) return { header, bytes };
    blocks = n;
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
