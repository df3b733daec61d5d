import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { SenseError, SenseKey, Asc, type AscCode } from '../scsi/sense.ts';

/**
 * EXTENDED COPY(LID1) parameter list: the codec and every check that needs no device.
 * SPC-4 6.4 / SPC-5 6.4.3–6.4.6. The list is decoded here and nowhere else.
 *
 *   0      LIST IDENTIFIER
 *   1      b5 STR, b4:3 LIST ID USAGE, b2:0 PRIORITY
 *   2–3    CSCD DESCRIPTOR LIST LENGTH
 *   8–11   SEGMENT DESCRIPTOR LIST LENGTH
 *   12–15  INLINE DATA LENGTH
 *   16…    CSCD descriptors, segment descriptors, inline data
 */

export const HEADER_LENGTH = 16;

/** SPC-5 Table 131 (CSCD) and Table 146 (segment) descriptor type codes that Ferry implements. */
export const DescriptorType = {
  BLOCK_TO_STREAM: 0x00,
  STREAM_TO_BLOCK: 0x01,
  BLOCK_TO_BLOCK: 0x02,
  INLINE_TO_STREAM: 0x04,
  EMBEDDED_TO_STREAM: 0x05,
  STREAM_TO_DISCARD: 0x06,
  VERIFY_CSCD: 0x07,
  WRITE_FILEMARKS: 0x10,
  SPACE: 0x11,
  LOCATE: 0x12,
  IDENTIFICATION_CSCD: 0xe4,
} as const;

/** Segment codes, ascending (Third-party Copy VPD 0008h, RECEIVE COPY OPERATING PARAMETERS). */
export const SUPPORTED_SEGMENT_TYPES = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12] as const;
export const SUPPORTED_CSCD_TYPES = [0xe4] as const;

/** SPC-4 6.4.3.2 LIST ID USAGE. 01b is reserved. */
export const ListIdUsage = { HOLD: 0b00, NO_HELD_DATA: 0b10, UNTRACKED: 0b11 } as const;

/** SPC-5 Table 148 CSCD descriptor ID values. */
export const CscdId = { MAX_INDEX: 0x07ff, NULL_BLOCK: 0xc000, NULL_STREAM: 0xc001, OWN_LU: 0xffff } as const;

/** SPC-5 Table 134: device type specific parameter formats. */
export const BLOCK_PDTS: readonly number[] = [0x00, 0x04, 0x05, 0x07, 0x0e];
export const PDT = { DISK: 0x00, TAPE: 0x01, PROCESSOR: 0x03 } as const;

export interface XcopyLimits {
  maxCscdCount: number;
  maxSegmentCount: number;
  /** CSCD list length + segment list length, bytes. */
  maxDescriptorListLength: number;
  maxInlineDataLength: number;
  /** Bytes one segment may move (reported; enforced in the plan). */
  maxSegmentLength: number;
  /** Largest single stream READ/WRITE, bytes. */
  maxStreamTransferSize: number;
  maxConcurrentCopies: number;
}

/**
 * Satisfies libiscsi's DescrLimits arithmetic: (16+1)·32+28 ≤ 8192 and 32+(256+1)·28 ≤ 8192,
 * so too many descriptors are seen as such, not as a list-length error.
 */
export const DEFAULT_LIMITS: XcopyLimits = {
  maxCscdCount: 16,
  maxSegmentCount: 256,
  maxDescriptorListLength: 8192,
  maxInlineDataLength: 256 * 1024,
  maxSegmentLength: 65535 * 4096,
  maxStreamTransferSize: 16 * 1024 * 1024,
  maxConcurrentCopies: 32,
};

export interface XcopyHeader {
  listId: number;
  str: boolean;
  listIdUsage: number;
  priority: number;
}

/** E4h Identification Descriptor CSCD descriptor, SPC-5 6.4.5.6 (32 bytes). */
export interface CscdDescriptor {
  /** Index in the CSCD list (the CSCD descriptor ID that names it). */
  index: number;
  /** Byte offset of the descriptor in the parameter list (for sense field pointers). */
  offset: number;
  type: typeof DescriptorType.IDENTIFICATION_CSCD;
  luIdType: number;
  peripheralDeviceType: number;
  relativeInitiatorPort: number;
  codeSet: number;
  association: number;
  designatorType: number;
  designator: Uint8Array;
  /** Device type specific parameters (byte 28–31): PAD, FIXED, block length. */
  pad: boolean;
  fixed: boolean;
  /** DISK BLOCK LENGTH (block) or STREAM BLOCK LENGTH (stream); 0 for processor. */
  blockLength: number;
}

interface SegmentBase {
  index: number;
  offset: number;
  cat: boolean;
}
export interface BlockStreamSegment extends SegmentBase {
  type: 0x00 | 0x01;
  source: number;
  destination: number;
  streamTransferLength: number;
  blockCount: number;
  lba: number;
}
export interface BlockBlockSegment extends SegmentBase {
  type: 0x02;
  dc: boolean;
  source: number;
  destination: number;
  blockCount: number;
  sourceLba: number;
  destinationLba: number;
}
export interface InlineSegment extends SegmentBase {
  type: 0x04;
  destination: number;
  streamTransferLength: number;
  inlineOffset: number;
  byteCount: number;
}
export interface EmbeddedSegment extends SegmentBase {
  type: 0x05;
  destination: number;
  streamTransferLength: number;
  data: Uint8Array;
}
export interface DiscardSegment extends SegmentBase {
  type: 0x06;
  source: number;
  streamTransferLength: number;
  byteCount: number;
}
export interface VerifySegment extends SegmentBase {
  type: 0x07;
  source: number;
  tur: boolean;
}
export interface FilemarkSegment extends SegmentBase {
  type: 0x10;
  destination: number;
  immed: boolean;
  count: number;
}
export interface SpaceSegment extends SegmentBase {
  type: 0x11;
  destination: number;
  /** SSC SPACE code: 0 blocks, 1 filemarks, 3 end of data. */
  code: number;
  /** Signed 24-bit count. */
  count: number;
}
export interface LocateSegment extends SegmentBase {
  type: 0x12;
  destination: number;
  objectId: number;
}
export type Segment =
  | BlockStreamSegment
  | BlockBlockSegment
  | InlineSegment
  | EmbeddedSegment
  | DiscardSegment
  | VerifySegment
  | FilemarkSegment
  | SpaceSegment
  | LocateSegment;

export interface XcopyParameterList {
  header: XcopyHeader;
  cscds: CscdDescriptor[];
  segments: Segment[];
  inline: Uint8Array;
}

/** Total bytes of each fixed-size segment descriptor (DESCRIPTOR LENGTH + 4). 05h is variable. */
const SEGMENT_SIZE: Readonly<Record<number, number>> = {
  0x00: 24,
  0x01: 24,
  0x02: 28,
  0x04: 20,
  0x06: 16,
  0x07: 12,
  0x10: 12,
  0x11: 12,
  0x12: 12,
};

/** Bytes of each CSCD descriptor type (SPC-5 Table 131 and 7.6.3), for walking past ones we reject. */
function cscdSize(type: number): number | undefined {
  if (type >= 0xe0 && type <= 0xe9) return 32;
  if (type === 0xea || type === 0xeb || type === 0xfe) return 64;
  if (type === 0xff) return 32; // extension
  return undefined;
}

function illegal(asc: AscCode, field?: number, bit?: number): SenseError {
  return new SenseError(
    SenseKey.ILLEGAL_REQUEST,
    asc,
    field === undefined ? {} : { fieldPointer: { cd: false, field, bit } },
  );
}

/**
 * Decode and validate a LID1 parameter list (the CDB's PARAMETER LIST LENGTH bytes), in the
 * order that passes libiscsi (reference scsi.md §4): lengths (1A/00), CSCD walk (26/07, 26/06),
 * segment walk (26/09, 26/00, 26/08), then LIST ID USAGE. Throws SenseError ILLEGAL REQUEST.
 */
export function decodeXcopyParameterList(list: Uint8Array, limits: XcopyLimits = DEFAULT_LIMITS): XcopyParameterList {
  if (list.length < HEADER_LENGTH) throw illegal(Asc.PARAMETER_LIST_LENGTH_ERROR);
  const r = new ByteReader(list);
  const listId = r.u8(0);
  const flags = r.u8(1);
  const header: XcopyHeader = { listId, str: !!(flags & 0x20), listIdUsage: (flags >> 3) & 3, priority: flags & 7 };
  const cscdLen = r.u16(2);
  const segLen = r.u32(8);
  const inlineLen = r.u32(12);
  // SPC-4 6.4.1: the list must hold what the header announces.
  if (list.length < HEADER_LENGTH + cscdLen + segLen + inlineLen) throw illegal(Asc.PARAMETER_LIST_LENGTH_ERROR);
  if (cscdLen + segLen > limits.maxDescriptorListLength || inlineLen > limits.maxInlineDataLength) {
    throw illegal(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }

  // CSCD descriptors, SPC-5 6.4.5.
  const cscds: CscdDescriptor[] = [];
  const cscdEnd = HEADER_LENGTH + cscdLen;
  for (let off = HEADER_LENGTH; off < cscdEnd;) {
    const type = list[off];
    const size = cscdSize(type);
    if (type !== DescriptorType.IDENTIFICATION_CSCD || size === undefined) {
      throw illegal(Asc.UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, off);
    }
    if (cscds.length >= limits.maxCscdCount) throw illegal(Asc.TOO_MANY_TARGET_DESCRIPTORS, off);
    if (off + size > cscdEnd) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, 2);
    cscds.push(decodeIdentificationCscd(list.subarray(off, off + size), cscds.length, off));
    off += size;
  }

  // Segment descriptors, SPC-5 6.4.6.
  const segments: Segment[] = [];
  const segStart = cscdEnd;
  const segEnd = segStart + segLen;
  for (let off = segStart; off < segEnd;) {
    const type = list[off];
    if (!(SUPPORTED_SEGMENT_TYPES as readonly number[]).includes(type)) {
      throw illegal(Asc.UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, off);
    }
    if (off + 4 > segEnd) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, off + 2);
    const descLen = r.u16(off + 2);
    const size = descLen + 4;
    const want = SEGMENT_SIZE[type];
    if (want !== undefined ? size !== want : descLen < 12 || descLen % 4 !== 0) {
      throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, off + 2);
    }
    if (off + size > segEnd) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, off + 2);
    if (segments.length >= limits.maxSegmentCount) throw illegal(Asc.TOO_MANY_SEGMENT_DESCRIPTORS, off);
    segments.push(decodeSegment(list.subarray(off, off + size), segments.length, off));
    off += size;
  }

  // SPC-4 6.4.3.2: LIST ID USAGE.
  if (header.listIdUsage === 0b01) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, 1, 4);
  if (header.listIdUsage === ListIdUsage.UNTRACKED && header.listId !== 0)
    throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, 0);

  const inline = list.subarray(segEnd, segEnd + inlineLen);
  return { header, cscds, segments, inline };
}

/**
 *   0      E4h
 *   1      b7:6 LU ID TYPE (ignored for E4h), b5 obsolete (NUL), b4:0 PERIPHERAL DEVICE TYPE
 *   2–3    RELATIVE INITIATOR PORT IDENTIFIER
 *   4      b3:0 CODE SET
 *   5      b5:4 ASSOCIATION, b3:0 DESIGNATOR TYPE
 *   7      DESIGNATOR LENGTH (≤ 20)
 *   8–27   DESIGNATOR (zero padded)
 *   28     b2 PAD, b0 FIXED (stream)
 *   29–31  DISK BLOCK LENGTH / STREAM BLOCK LENGTH
 */
function decodeIdentificationCscd(d: Uint8Array, index: number, offset: number): CscdDescriptor {
  const r = new ByteReader(d);
  const pdt = d[1] & 0x1f;
  const desigLen = d[7];
  if (desigLen > 20) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, offset + 7);
  const fixed = !!(d[28] & 0x01);
  const blockLength = r.u24(29);
  const isBlock = BLOCK_PDTS.includes(pdt);
  if (!isBlock && pdt !== PDT.TAPE && pdt !== PDT.PROCESSOR)
    throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, offset + 1, 4);
  // SPC-5 Table 138: FIXED=1 needs a STREAM BLOCK LENGTH, FIXED=0 forbids one.
  if (pdt === PDT.TAPE && fixed !== (blockLength !== 0))
    throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, offset + 29);
  return {
    index,
    offset,
    type: DescriptorType.IDENTIFICATION_CSCD,
    luIdType: d[1] >> 6,
    peripheralDeviceType: pdt,
    relativeInitiatorPort: r.u16(2),
    codeSet: d[4] & 0x0f,
    association: (d[5] >> 4) & 3,
    designatorType: d[5] & 0x0f,
    designator: new Uint8Array(d.subarray(8, 8 + desigLen)),
    pad: !!(d[28] & 0x04),
    fixed: pdt === PDT.TAPE && fixed,
    blockLength: pdt === PDT.PROCESSOR ? 0 : blockLength,
  };
}

/** Segment descriptor header: 0 type, 1 b1 DC b0 CAT, 2–3 length (n−3), 4–5 source, 6–7 destination. */
function decodeSegment(d: Uint8Array, index: number, offset: number): Segment {
  const r = new ByteReader(d);
  const type = d[0];
  const base = { index, offset, cat: !!(d[1] & 0x01) };
  const src = r.u16(4);
  const dst = r.u16(6);
  switch (type) {
    case 0x00:
    case 0x01: // SPC-5 Tables 149/150: 9–11 STREAM DEVICE TRANSFER LENGTH, 14–15 blocks, 16–23 LBA
      return {
        ...base,
        type,
        source: src,
        destination: dst,
        streamTransferLength: r.u24(9),
        blockCount: r.u16(14),
        lba: lba64(r, 16),
      };
    case 0x02: // Table 151: 10–11 blocks, 12–19 source LBA, 20–27 destination LBA
      return {
        ...base,
        type,
        dc: !!(d[1] & 0x02),
        source: src,
        destination: dst,
        blockCount: r.u16(10),
        sourceLba: lba64(r, 12),
        destinationLba: lba64(r, 20),
      };
    case 0x04: {
      // Table 153: 9–11 transfer length, 12–15 INLINE DATA OFFSET (multiple of 4), 16–19 bytes
      const inlineOffset = r.u32(12);
      if (inlineOffset % 4 !== 0) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, offset + 12);
      return { ...base, type, destination: dst, streamTransferLength: r.u24(9), inlineOffset, byteCount: r.u32(16) };
    }
    case 0x05: {
      // Table 154: 9–11 transfer length, 12–13 EMBEDDED DATA NUMBER OF BYTES, data from 16
      const n = r.u16(12);
      if (n > d.length - 16) throw illegal(Asc.INVALID_FIELD_IN_PARAMETER_LIST, offset + 12);
      return {
        ...base,
        type,
        destination: dst,
        streamTransferLength: r.u24(9),
        data: new Uint8Array(d.subarray(16, 16 + n)),
      };
    }
    case 0x06: // Table 155: 9–11 transfer length, 12–15 NUMBER OF BYTES
      return { ...base, type, source: src, streamTransferLength: r.u24(9), byteCount: r.u32(12) };
    case 0x07: // Table 156: 8 b0 TUR
      return { ...base, type, source: src, tur: !!(d[8] & 0x01) };
    case 0x10: // Table 160: 8 b0 W_IMMED, 9–11 FILEMARK COUNT
      return { ...base, type, destination: dst, immed: !!(d[8] & 0x01), count: r.u24(9) };
    case 0x11: {
      // Table 161: 8 b3:0 CODE, 9–11 COUNT (signed, as in SSC SPACE(6))
      const raw = r.u24(9);
      return { ...base, type, destination: dst, code: d[8] & 0x0f, count: raw & 0x800000 ? raw - 0x1000000 : raw };
    }
    case 0x12: // Table 162: 8–11 LOGICAL OBJECT IDENTIFIER
      return { ...base, type, destination: dst, objectId: r.u32(8) };
    default:
      throw illegal(Asc.UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, offset);
  }
}

/** Any LBA ≥ 2^53 is beyond every device: keep it representable and let the range check fail. */
function lba64(r: ByteReader, at: number): number {
  const v = r.u64big(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

// ---------------------------------------------------------------------------------------------
// Encoder: for the backup server, the mover client and tests. Field names mirror the decoder.

export type CscdInput = Omit<CscdDescriptor, 'index' | 'offset' | 'type' | 'luIdType' | 'relativeInitiatorPort'> &
  Partial<Pick<CscdDescriptor, 'luIdType' | 'relativeInitiatorPort'>>;
type WithoutPos<T> = T extends unknown ? Omit<T, 'index' | 'offset'> : never;
export type SegmentInput = WithoutPos<Segment>;

export interface XcopyParameterListInput {
  header: XcopyHeader;
  cscds: CscdInput[];
  segments: SegmentInput[];
  inline?: Uint8Array;
}

export function segmentSize(s: SegmentInput): number {
  return s.type === 0x05 ? 16 + ((s.data.length + 3) & ~3) : SEGMENT_SIZE[s.type];
}

export function encodeXcopyParameterList(p: XcopyParameterListInput): Uint8Array {
  const inline = p.inline ?? new Uint8Array(0);
  const cscdLen = p.cscds.length * 32;
  const segLen = p.segments.reduce((n, s) => n + segmentSize(s), 0);
  const w = new ByteWriter(HEADER_LENGTH + cscdLen + segLen + inline.length);
  const h = p.header;
  w.setU8(0, h.listId).setU8(1, (h.str ? 0x20 : 0) | ((h.listIdUsage & 3) << 3) | (h.priority & 7));
  w.setU16(2, cscdLen).setU32(8, segLen).setU32(12, inline.length);
  let off = HEADER_LENGTH;
  for (const c of p.cscds) {
    w.setU8(off, DescriptorType.IDENTIFICATION_CSCD).setU8(
      off + 1,
      ((c.luIdType ?? 0) << 6) | (c.peripheralDeviceType & 0x1f),
    );
    w.setU16(off + 2, c.relativeInitiatorPort ?? 0).setU8(off + 4, c.codeSet & 0x0f);
    w.setU8(off + 5, ((c.association & 3) << 4) | (c.designatorType & 0x0f)).setU8(off + 7, c.designator.length);
    w.buf.set(c.designator.subarray(0, 20), off + 8);
    w.setU8(off + 28, (c.pad ? 0x04 : 0) | (c.fixed ? 0x01 : 0)).setU24(off + 29, c.blockLength);
    off += 32;
  }
  for (const s of p.segments) {
    const size = segmentSize(s);
    w.setU8(off, s.type)
      .setU8(off + 1, (s.cat ? 1 : 0) | (s.type === 0x02 && s.dc ? 2 : 0))
      .setU16(off + 2, size - 4);
    switch (s.type) {
      case 0x00:
      case 0x01:
        w.setU16(off + 4, s.source)
          .setU16(off + 6, s.destination)
          .setU24(off + 9, s.streamTransferLength);
        w.setU16(off + 14, s.blockCount).setU64(off + 16, s.lba);
        break;
      case 0x02:
        w.setU16(off + 4, s.source)
          .setU16(off + 6, s.destination)
          .setU16(off + 10, s.blockCount);
        w.setU64(off + 12, s.sourceLba).setU64(off + 20, s.destinationLba);
        break;
      case 0x04:
        w.setU16(off + 6, s.destination)
          .setU24(off + 9, s.streamTransferLength)
          .setU32(off + 12, s.inlineOffset)
          .setU32(off + 16, s.byteCount);
        break;
      case 0x05:
        w.setU16(off + 6, s.destination)
          .setU24(off + 9, s.streamTransferLength)
          .setU16(off + 12, s.data.length);
        w.buf.set(s.data, off + 16);
        break;
      case 0x06:
        w.setU16(off + 4, s.source)
          .setU24(off + 9, s.streamTransferLength)
          .setU32(off + 12, s.byteCount);
        break;
      case 0x07:
        w.setU16(off + 4, s.source).setU8(off + 8, s.tur ? 1 : 0);
        break;
      case 0x10:
        w.setU16(off + 6, s.destination)
          .setU8(off + 8, s.immed ? 1 : 0)
          .setU24(off + 9, s.count);
        break;
      case 0x11:
        w.setU16(off + 6, s.destination)
          .setU8(off + 8, s.code & 0x0f)
          .setU24(off + 9, s.count & 0xffffff);
        break;
      case 0x12:
        w.setU16(off + 6, s.destination).setU32(off + 8, s.objectId);
        break;
    }
    off += size;
  }
  w.buf.set(inline, off);
  return w.buf;
}
