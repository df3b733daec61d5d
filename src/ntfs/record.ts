import { decodeRunlist, type Run } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

/** Attribute type codes (ntfs-3g layout.h ATTR_TYPES). */
export const AttrType = {
  STANDARD_INFORMATION: 0x10,
  ATTRIBUTE_LIST: 0x20,
  FILE_NAME: 0x30,
  OBJECT_ID: 0x40,
  SECURITY_DESCRIPTOR: 0x50,
  VOLUME_NAME: 0x60,
  VOLUME_INFORMATION: 0x70,
  DATA: 0x80,
  INDEX_ROOT: 0x90,
  INDEX_ALLOCATION: 0xa0,
  BITMAP: 0xb0,
  REPARSE_POINT: 0xc0,
  EA_INFORMATION: 0xd0,
  EA: 0xe0,
  LOGGED_UTILITY_STREAM: 0x100,
  END: 0xffffffff,
} as const;

export const AttrTypeName: Record<number, string> = Object.fromEntries(
  Object.entries(AttrType).map(([k, v]) => [v, `$${k}`]),
);

/** Shared by every resident attribute (never mutated). */
const NO_RUNS: Run[] = Object.freeze([]) as unknown as Run[];

export const RecordFlag = { IN_USE: 1, DIRECTORY: 2, EXTEND: 4, VIEW_INDEX: 8 } as const;
export const AttrFlag = { COMPRESSION_MASK: 0x00ff, ENCRYPTED: 0x4000, SPARSE: 0x8000 } as const;

/** A file reference: 48-bit record number and 16-bit sequence number. */
export interface FileRef {
  record: number;
  seq: number;
}

export function decodeRef(view: DataView, at: number): FileRef {
  return {
    record: view.getUint32(at, true) + view.getUint16(at + 4, true) * 0x1_0000_0000,
    seq: view.getUint16(at + 6, true),
  };
}

/** One attribute record (one extent, for a non-resident attribute in several records). */
export interface AttrRecord {
  type: number;
  name: string;
  flags: number;
  id: number;
  /** Record holding it and the attribute's offset inside that record. */
  record: number;
  offset: number;
  /** The whole attribute record bytes (header, name, value or runlist), a view of the fixed-up record. */
  raw: Uint8Array;
  resident: boolean;
  /** Resident value (a view). */
  value?: Uint8Array;
  lowestVcn: number;
  highestVcn: number;
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressedSize: number;
  runs: Run[];
}

/**
 * An extension record names its base; a base record has an all-zero base reference ($MFT's extensions name record 0,
 * seq 1).
 */
export function isExtension(rec: Pick<FileRecord, 'base'>): boolean {
  return rec.base.record !== 0 || rec.base.seq !== 0;
}

export interface FileRecord {
  number: number;
  seq: number;
  links: number;
  flags: number;
  inUse: boolean;
  isDirectory: boolean;
  base: FileRef;
  attrs: AttrRecord[];
}

const utf16 = new TextDecoder('utf-16le');
/** UTF-16LE to a string; a lone surrogate becomes U+FFFD. */
export function decodeUtf16(buf: Uint8Array, at: number, chars: number): string {
  if (chars <= 24) {
    // Short names (most): code units straight into the string, no view and no decoder call.
    let s = '';
    for (let i = 0; i < chars; i++) {
      const c = buf[at + 2 * i] | (buf[at + 2 * i + 1] << 8);
      if (c >= 0xd800 && c <= 0xdfff) return utf16.decode(buf.subarray(at, at + chars * 2));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf16.decode(buf.subarray(at, at + chars * 2));
}

// FILE record header (layout.h MFT_RECORD):
//  0x10 u16 seq  0x12 u16 links  0x14 u16 first attr  0x16 u16 flags  0x18 u32 bytes used
//  0x1C u32 bytes allocated  0x20 u64 base ref  0x28 u16 next attr id  0x2C u32 own number
/** The record header fields (filled by readRecordHeader; the plan reuses one). */
export interface RecordHeader {
  seq: number;
  links: number;
  flags: number;
  base: FileRef;
  used: number;
  firstAttr: number;
}

export function newRecordHeader(): RecordHeader {
  return { seq: 0, links: 0, flags: 0, base: { record: 0, seq: 0 }, used: 0, firstAttr: 0 };
}

/**
 * Check and read the header of the fixed-up `size`-byte FILE record at `at` of `buf` into `h`
 * (`used` and `firstAttr` relative to the record). `byteOffset` (its volume position) only feeds errors.
 */
export function readRecordHeader(
  buf: Uint8Array,
  at: number,
  size: number,
  number: number,
  byteOffset: number,
  h: RecordHeader,
): void {
  const used = le32(buf, at + 0x18);
  if (used > size || used < 0x30)
    bad(NtfsErrorCode.RECORD, 'bytes-in-use field out of range', number, byteOffset + 0x18, `48..${size}`, used);
  const first = le16(buf, at + 0x14);
  if (first < 0x18 || first & 7)
    bad(
      NtfsErrorCode.RECORD,
      'first attribute offset out of range',
      number,
      byteOffset + 0x14,
      `8-aligned >= 0x18`,
      first,
    );
  h.seq = le16(buf, at + 0x10);
  h.links = le16(buf, at + 0x12);
  h.flags = le16(buf, at + 0x16);
  h.base.record = le32(buf, at + 0x20) + le16(buf, at + 0x24) * 0x1_0000_0000;
  h.base.seq = le16(buf, at + 0x26);
  h.used = used;
  h.firstAttr = first;
}

/**
 * Length of the attribute at `at` of the record at `base` of `buf`, or 0 at the end marker;
 * attributes are walked to 0xFFFFFFFF, bounded by the used size.
 */
export function attrLengthAt(
  buf: Uint8Array,
  base: number,
  at: number,
  used: number,
  number: number,
  byteOffset: number,
): number {
  if (at + 4 > used) bad(NtfsErrorCode.RECORD, 'attribute list not terminated', number, byteOffset + at);
  if (le32(buf, base + at) === AttrType.END) return 0;
  if (at + 16 > used) bad(NtfsErrorCode.RECORD, 'attribute header past the used bytes', number, byteOffset + at);
  const length = le32(buf, base + at + 4);
  if (length < 24 || length & 7 || at + length > used)
    bad(
      NtfsErrorCode.RECORD,
      'bad attribute length',
      number,
      byteOffset + at + 4,
      `8-aligned, 24..${used - at}`,
      length,
    );
  return length;
}

const header = newRecordHeader();

/** Decode a fixed-up FILE record into objects (browse and read paths; the plan reads the columns itself). */
export function decodeFileRecord(
  buf: Uint8Array,
  number: number,
  byteOffset: number,
  clusterCount: number,
): FileRecord {
  readRecordHeader(buf, 0, buf.length, number, byteOffset, header);
  const rec: FileRecord = {
    number,
    seq: header.seq,
    links: header.links,
    flags: header.flags,
    inUse: (header.flags & RecordFlag.IN_USE) !== 0,
    isDirectory: (header.flags & RecordFlag.DIRECTORY) !== 0,
    base: { record: header.base.record, seq: header.base.seq },
    attrs: [],
  };
  const used = header.used;
  for (
    let at = header.firstAttr, length;
    (length = attrLengthAt(buf, 0, at, used, number, byteOffset)) !== 0;
    at += length
  ) {
    rec.attrs.push(decodeAttribute(buf.subarray(at, at + length), number, at, byteOffset + at, clusterCount));
  }
  return rec;
}

function bad(
  code: NtfsErrorCode,
  msg: string,
  record: number,
  byteOffset: number,
  expected?: string | number,
  actual?: string | number,
): never {
  throw new NtfsFormatError(code, msg, { record, byteOffset, expected, actual });
}

/** Little-endian reads straight from bytes (no DataView per attribute: the plan decodes ~100k). */
export function le16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}
export function le32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 0x1000000;
}

/** Signed 64-bit field in -1..2^53 (VCNs and sizes), from two u32s without BigInt. */
function i64(b: Uint8Array, at: number, record: number, byteOffset: number): number {
  const lo = le32(b, at);
  const hi = le32(b, at + 4) | 0;
  if (hi === -1 && lo === 0xffffffff) return -1;
  if (hi < 0 || hi > 0x1fffff)
    bad(
      NtfsErrorCode.ATTRIBUTE,
      '64-bit field out of range',
      record,
      byteOffset + at,
      '-1..2^53',
      `0x${(hi >>> 0).toString(16)}${lo.toString(16).padStart(8, '0')}`,
    );
  return hi * 0x1_0000_0000 + lo;
}

// Attribute header (layout.h ATTR_RECORD):
//  0x00 u32 type  0x04 u32 length  0x08 u8 non-resident  0x09 u8 name length  0x0A u16 name offset
//  0x0C u16 flags  0x0E u16 id
//  resident:     0x10 u32 value length  0x14 u16 value offset
//  non-resident: 0x10 u64 lowest VCN  0x18 u64 highest VCN  0x20 u16 runlist offset  0x22 u8 compression unit
//                0x28 allocated  0x30 data size  0x38 initialized  [0x40 compressed size]
/** An attribute header's fields, offsets relative to the attribute (filled by readAttrHeader; the plan reuses one). */
export interface AttrHeader {
  type: number;
  resident: boolean;
  nameLength: number;
  nameOffset: number;
  flags: number;
  id: number;
  valueOffset: number;
  valueLength: number;
  lowestVcn: number;
  highestVcn: number;
  runOffset: number;
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressedSize: number;
}

export function newAttrHeader(): AttrHeader {
  return {
    type: 0,
    resident: true,
    nameLength: 0,
    nameOffset: 0,
    flags: 0,
    id: 0,
    valueOffset: 0,
    valueLength: 0,
    lowestVcn: 0,
    highestVcn: -1,
    runOffset: 0,
    compressionUnit: 0,
    allocatedSize: 0,
    dataSize: 0,
    initializedSize: 0,
    compressedSize: 0,
  };
}

/**
 * Check and read the header of the `length`-byte attribute at `at` of `buf` into `h` (not the runlist: decodeRunsInto).
 */
export function readAttrHeader(
  buf: Uint8Array,
  at: number,
  length: number,
  record: number,
  byteOffset: number,
  h: AttrHeader,
): void {
  const nonResident = buf[at + 8];
  const nameLength = buf[at + 9];
  const nameOffset = le16(buf, at + 0x0a);
  if (nonResident > 1)
    bad(NtfsErrorCode.ATTRIBUTE, 'non-resident flag not 0 or 1', record, byteOffset + 8, '0 or 1', nonResident);
  if (nameLength && nameOffset + nameLength * 2 > length)
    bad(NtfsErrorCode.ATTRIBUTE, 'attribute name past the attribute', record, byteOffset + 0x0a);
  h.type = le32(buf, at);
  h.resident = nonResident === 0;
  h.nameLength = nameLength;
  h.nameOffset = nameOffset;
  h.flags = le16(buf, at + 0x0c);
  h.id = le16(buf, at + 0x0e);
  h.lowestVcn = 0;
  h.highestVcn = -1;
  h.runOffset = 0;
  h.compressionUnit = 0;
  h.compressedSize = 0;
  if (h.resident) {
    const len = le32(buf, at + 0x10);
    const vat = le16(buf, at + 0x14);
    if (vat + len > length)
      bad(
        NtfsErrorCode.ATTRIBUTE,
        'resident value past the attribute',
        record,
        byteOffset + 0x10,
        `<= ${length - vat}`,
        len,
      );
    h.valueOffset = vat;
    h.valueLength = len;
    h.allocatedSize = h.dataSize = h.initializedSize = len;
    return;
  }
  h.valueOffset = h.valueLength = 0;
  if (length < 0x40)
    bad(NtfsErrorCode.ATTRIBUTE, 'non-resident attribute header too short', record, byteOffset + 4, '>= 64', length);
  h.lowestVcn = i64(buf, at + 0x10, record, byteOffset - at);
  h.highestVcn = i64(buf, at + 0x18, record, byteOffset - at);
  h.compressionUnit = buf[at + 0x22];
  h.allocatedSize = i64(buf, at + 0x28, record, byteOffset - at);
  h.dataSize = i64(buf, at + 0x30, record, byteOffset - at);
  h.initializedSize = i64(buf, at + 0x38, record, byteOffset - at);
  if (h.lowestVcn < 0) bad(NtfsErrorCode.ATTRIBUTE, 'negative lowest VCN', record, byteOffset + 0x10);
  if (
    h.lowestVcn === 0 &&
    (h.dataSize < 0 || h.initializedSize < 0 || h.allocatedSize < 0 || h.initializedSize > h.dataSize)
  ) {
    bad(
      NtfsErrorCode.ATTRIBUTE,
      'sizes inconsistent',
      record,
      byteOffset + 0x30,
      'initialized <= data size',
      `${h.initializedSize} > ${h.dataSize}`,
    );
  }
  if (h.flags & (AttrFlag.COMPRESSION_MASK | AttrFlag.SPARSE) && length >= 0x48)
    h.compressedSize = i64(buf, at + 0x40, record, byteOffset - at);
  if (h.compressionUnit > 16)
    bad(
      NtfsErrorCode.ATTRIBUTE,
      'compression unit out of range',
      record,
      byteOffset + 0x22,
      '<= 16',
      h.compressionUnit,
    );
  const runAt = le16(buf, at + 0x20);
  if (runAt < 0x40 || runAt >= length)
    bad(
      NtfsErrorCode.ATTRIBUTE,
      'runlist offset out of range',
      record,
      byteOffset + 0x20,
      `0x40..${length - 1}`,
      runAt,
    );
  h.runOffset = runAt;
}

/** The runlist decoded from `lowestVcn` must end at the highest VCN (`endVcn` = the VCN after its last run). */
export function checkRunsEnd(h: AttrHeader, endVcn: number, record: number, byteOffset: number): void {
  if (endVcn - 1 !== h.highestVcn)
    bad(
      NtfsErrorCode.ATTRIBUTE,
      'runlist does not end at the highest VCN',
      record,
      byteOffset + 0x18,
      h.highestVcn,
      endVcn - 1,
    );
}

const attrHeader = newAttrHeader();

function decodeAttribute(
  raw: Uint8Array,
  record: number,
  offset: number,
  byteOffset: number,
  clusterCount: number,
): AttrRecord {
  const h = attrHeader;
  readAttrHeader(raw, 0, raw.length, record, byteOffset, h);
  const attr: AttrRecord = {
    type: h.type,
    name: h.nameLength ? decodeUtf16(raw, h.nameOffset, h.nameLength) : '',
    flags: h.flags,
    id: h.id,
    record,
    offset,
    raw,
    resident: h.resident,
    value: h.resident ? raw.subarray(h.valueOffset, h.valueOffset + h.valueLength) : undefined,
    lowestVcn: h.lowestVcn,
    highestVcn: h.highestVcn,
    compressionUnit: h.compressionUnit,
    allocatedSize: h.allocatedSize,
    dataSize: h.dataSize,
    initializedSize: h.initializedSize,
    compressedSize: h.compressedSize,
    runs: NO_RUNS,
  };
  if (h.resident) return attr;
  attr.runs = decodeRunlist(raw, h.runOffset, raw.length, h.lowestVcn, clusterCount, { record, byteOffset });
  const last = attr.runs.length ? attr.runs[attr.runs.length - 1] : undefined;
  checkRunsEnd(h, last ? last.vcn + last.length : h.lowestVcn, record, byteOffset);
  return attr;
}
