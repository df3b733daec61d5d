import { FerryError } from '../util/errors.ts';
import {
  DescriptorType,
  ListIdUsage,
  encodeXcopyParameterList,
  segmentSize,
  type CscdInput,
  type SegmentInput,
  type XcopyLimits,
} from './descriptors.ts';

/**
 * EXTENDED COPY parameter lists for a backup set's data stream, within a copy manager's limits
 * (RECEIVE COPY RESULTS OPERATING PARAMETERS, SPC-4 6.18.4).
 *
 * The stream is the set's extents back to back, on a tape in fixed-block mode. Data segments
 * carry CAT=1 so extents pack across tape blocks; the last data segment of a list has CAT=0 and
 * the tape CSCD has PAD=1, so the stream's end is padded to a whole tape block on a backup and
 * the padding is discarded on a restore (SPC-5 5.17.7.2, Table 116). A residual does not survive
 * the end of a list, so every list but the last ends on a tape-block boundary of the stream.
 */

export interface StreamExtent {
  lba: number;
  blocks: number;
  /** Byte offset of the extent in the set's data stream. */
  streamOffset: number;
}

export interface StreamListsInput {
  direction: 'backup' | 'restore';
  /** The disk LU: the snapshot on a backup, the destination on a restore. */
  disk: CscdInput;
  /** The tape drive LU (FIXED and its block length are set here). */
  tape: CscdInput;
  diskBlockBytes: number;
  tapeBlockBytes: number;
  /** The set's extents in stream order; the stream has no gaps. */
  extents: readonly StreamExtent[];
  /** The part of the stream these lists move: start on a tape block, end anywhere up to the stream's end. */
  streamStart: number;
  streamEnd: number;
  /** Backup: a record (whole tape blocks) written before the data, and one after it. */
  before?: Uint8Array;
  after?: Uint8Array;
  /** Backup: one filemark after everything. */
  filemark?: boolean;
  limits: XcopyLimits;
  /** Tape blocks per WRITE or READ the copy manager issues (default 4). */
  blocksPerTransfer?: number;
  /** Data bytes per list at most (rounded down to whole tape blocks); default: as the limits allow. */
  maxListBytes?: number;
  /** LIST IDENTIFIER of the i-th list. */
  listId: (i: number) => number;
}

export interface StreamList {
  listId: number;
  list: Uint8Array;
  /** The data stream bytes this list moves. */
  streamStart: number;
  streamEnd: number;
  segments: number;
  /** Tape blocks this list writes (backup) or reads (restore), records and padding included. */
  tapeBlocks: number;
}

export class ListBuildError extends FerryError {
  constructor(message: string) {
    super('ERR_LIST_BUILD', message);
  }
}

/** BLOCK DEVICE NUMBER OF BLOCKS is 16 bits in segment descriptors 00h and 01h (SPC-4 6.4.6.2). */
const MAX_SEGMENT_BLOCKS = 0xffff;
/** DESCRIPTOR LIST LENGTH counts the CSCD and segment descriptors. */
const CSCD_BYTES = 32;

export function buildStreamLists(input: StreamListsInput): StreamList[] {
  const B = input.tapeBlockBytes;
  const bs = input.diskBlockBytes;
  const L = input.limits;
  if (B % bs !== 0) throw new ListBuildError(`tape block ${B} is not a multiple of the disk block ${bs}`);
  if (input.streamStart % B !== 0) throw new ListBuildError(`stream start ${input.streamStart} is not on a tape block`);
  const perTransfer = Math.max(1, Math.min(input.blocksPerTransfer ?? 4, Math.floor(L.maxStreamTransferSize / B)));
  if (perTransfer * B > L.maxStreamTransferSize) {
    throw new ListBuildError(
      `the copy manager moves at most ${L.maxStreamTransferSize} bytes per stream transfer; a tape block is ${B}: ` +
        `use ` +
        `a smaller tape block for the pool`,
    );
  }
  const records = [input.before, input.after].filter((r): r is Uint8Array => r !== undefined);
  for (const r of records) {
    if (r.length % B !== 0) throw new ListBuildError(`a record of ${r.length} bytes is not whole tape blocks of ${B}`);
    if (L.maxInlineDataLength < B) {
      throw new ListBuildError(
        `the copy manager takes at most ${L.maxInlineDataLength} bytes of inline data; a tape block is ${B}: use a ` +
          `smaller tape block for the pool`,
      );
    }
  }
  const cscds = [input.disk, { ...input.tape, fixed: true, blockLength: B, pad: true }];
  const [DISK, TAPE] = [0, 1];
  const maxSegments = Math.min(
    L.maxSegmentCount,
    Math.floor((L.maxDescriptorListLength - cscds.length * CSCD_BYTES) / 24),
  );
  // Segments cut a long extent at a whole number of transfers (else of tape blocks) where the
  // limits allow: a cut inside a transfer leaves a residual that the copy manager stages and
  // copies for the rest of the stream (SPC-5 5.17.7.2), with few writes in flight.
  const maxBlocks = Math.min(MAX_SEGMENT_BLOCKS, Math.floor(L.maxSegmentLength / bs));
  const alignedTo = (unitBlocks: number) => Math.floor(maxBlocks / unitBlocks) * unitBlocks;
  const segmentBlocks = alignedTo((perTransfer * B) / bs) || alignedTo(B / bs) || maxBlocks;
  const maxListBytes = Math.max(B, Math.floor((input.maxListBytes ?? Number.MAX_SAFE_INTEGER) / B) * B);

  const lists: StreamList[] = [];
  const emit = (
    segments: SegmentInput[],
    inline: Uint8Array | undefined,
    streamStart: number,
    streamEnd: number,
    tapeBlocks: number,
  ) => {
    const listId = input.listId(lists.length);
    const list = encodeXcopyParameterList({
      header: { listId, str: false, listIdUsage: ListIdUsage.HOLD, priority: 0 },
      cscds,
      segments,
      inline,
    });
    lists.push({ listId, list, streamStart, streamEnd, segments: segments.length, tapeBlocks });
  };

  // Inline records: one list may carry several tape blocks of a record, up to the inline limit.
  // A record's zero padding is not sent: the last segment stops at its content (4-byte
  // granularity) and the tape CSCD's PAD fills the block, so only the record's bytes cross the wire.
  const recordSegments = (
    record: Uint8Array,
    maxBytes: number,
  ): { segments: SegmentInput[]; inline: Uint8Array; blocks: number; rest: Uint8Array } => {
    const take = Math.min(record.length, Math.floor(maxBytes / B) * B);
    let used = take;
    if (take === record.length) {
      while (used > 0 && record[used - 1] === 0) used--;
      used = Math.max(4, (used + 3) & ~3);
    }
    const segments: SegmentInput[] = [];
    for (let off = 0; off < take && off < used; off += perTransfer * B) {
      const n = Math.min(perTransfer * B, take - off);
      segments.push({
        type: DescriptorType.INLINE_TO_STREAM,
        cat: false,
        destination: TAPE,
        streamTransferLength: n / B,
        inlineOffset: off,
        byteCount: Math.min(n, used - off),
      });
    }
    return { segments, inline: record.subarray(0, used), blocks: take / B, rest: record.subarray(take) };
  };

  // The data segments for stream bytes [from, to), every extent cut at the segment limit.
  const dataSegments = (from: number, to: number): SegmentInput[] => {
    const out: SegmentInput[] = [];
    // Extents are in stream order: start at the first one that ends after `from` (binary search),
    // stop at the first that starts at or after `to`, so each list costs its own extents only.
    const ext = input.extents;
    let i = 0;
    for (let hiIdx = ext.length; i < hiIdx;) {
      const mid = (i + hiIdx) >>> 1;
      if (ext[mid].streamOffset + ext[mid].blocks * bs <= from) i = mid + 1;
      else hiIdx = mid;
    }
    for (; i < ext.length && ext[i].streamOffset < to; i++) {
      const e = ext[i];
      const eStart = e.streamOffset;
      const eEnd = e.streamOffset + e.blocks * bs;
      if (eEnd <= from) continue;
      let lo = Math.max(from, eStart);
      const hi = Math.min(to, eEnd);
      while (lo < hi) {
        const blocks = Math.min(segmentBlocks, (hi - lo) / bs);
        const lba = e.lba + (lo - eStart) / bs;
        out.push(
          input.direction === 'backup'
            ? {
                type: DescriptorType.BLOCK_TO_STREAM,
                cat: true,
                source: DISK,
                destination: TAPE,
                streamTransferLength: perTransfer,
                blockCount: blocks,
                lba,
              }
            : {
                type: DescriptorType.STREAM_TO_BLOCK,
                cat: true,
                source: TAPE,
                destination: DISK,
                streamTransferLength: perTransfer,
                blockCount: blocks,
                lba,
              },
        );
        lo += blocks * bs;
      }
    }
    if (out.length) out[out.length - 1].cat = false; // PAD the stream's end (backup) or drop it (restore)
    return out;
  };

  let before = input.direction === 'backup' ? input.before : undefined;
  const after = input.direction === 'backup' ? input.after : undefined;
  // Records first while they do not fit beside data.
  while (before && before.length > L.maxInlineDataLength) {
    const r = recordSegments(before, L.maxInlineDataLength);
    emit(r.segments, r.inline, input.streamStart, input.streamStart, r.blocks);
    before = r.rest.length ? r.rest : undefined;
  }
  const blocksOf = (bytes: number) => Math.ceil(bytes / B);
  let pos = input.streamStart;
  const end = input.streamEnd;
  // The largest chunk of [pos, end), in tape blocks, whose segments fit in `budget`.
  const fit = (budget: number): { chunk: number; segs: SegmentInput[] } | undefined => {
    let chunk = Math.min(maxListBytes, end - pos);
    let segs = dataSegments(pos, pos + chunk);
    while (segs.length > budget) {
      chunk = Math.floor(chunk / 2 / B) * B;
      if (chunk === 0) return undefined;
      segs = dataSegments(pos, pos + chunk);
    }
    return { chunk, segs };
  };
  do {
    let head = before ? recordSegments(before, L.maxInlineDataLength) : undefined;
    before = undefined;
    let part = fit(maxSegments - (head?.segments.length ?? 0));
    if (!part && head) {
      // The record and the first data block do not fit in one list: the record goes alone.
      emit(head.segments, head.inline, pos, pos, head.blocks);
      head = undefined;
      part = fit(maxSegments);
    }
    if (!part)
      throw new ListBuildError(`one tape block of the stream at byte ${pos} needs more than ${maxSegments} segments`);
    const { chunk, segs } = part;
    const last = pos + chunk >= end;
    const segments: SegmentInput[] = [...(head?.segments ?? []), ...segs];
    let inline = head?.inline;
    let tapeBlocks = (head?.blocks ?? 0) + blocksOf(chunk);
    if (last && after) {
      // The trailer goes in the same list when the inline data allows, else in one more list.
      const room = L.maxInlineDataLength - (inline?.length ?? 0);
      if (
        after.length <= room &&
        segments.length + Math.ceil(after.length / (perTransfer * B)) + (input.filemark ? 1 : 0) <= maxSegments
      ) {
        const t = recordSegments(after, after.length);
        const base = inline?.length ?? 0;
        segments.push(
          ...t.segments.map((s) =>
            s.type === DescriptorType.INLINE_TO_STREAM ? { ...s, inlineOffset: s.inlineOffset + base } : s,
          ),
        );
        inline = concat(inline, t.inline);
        tapeBlocks += t.blocks;
        if (input.filemark)
          segments.push({
            type: DescriptorType.WRITE_FILEMARKS,
            cat: false,
            destination: TAPE,
            immed: false,
            count: 1,
          });
        emit(segments, inline, pos, pos + chunk, tapeBlocks);
      } else {
        emit(segments, inline, pos, pos + chunk, tapeBlocks);
        let rest: Uint8Array | undefined = after;
        while (rest) {
          const t = recordSegments(rest, L.maxInlineDataLength);
          rest = t.rest.length ? t.rest : undefined;
          if (!rest && input.filemark)
            t.segments.push({
              type: DescriptorType.WRITE_FILEMARKS,
              cat: false,
              destination: TAPE,
              immed: false,
              count: 1,
            });
          emit(t.segments, t.inline, end, end, t.blocks);
        }
      }
    } else {
      if (last && input.filemark)
        segments.push({ type: DescriptorType.WRITE_FILEMARKS, cat: false, destination: TAPE, immed: false, count: 1 });
      emit(segments, inline, pos, pos + chunk, tapeBlocks);
    }
    pos += chunk;
  } while (pos < end);
  return lists;
}

function concat(a: Uint8Array | undefined, b: Uint8Array): Uint8Array {
  if (!a || a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Lay extents end to end: each one's offset in the data stream. */
export function streamExtents(
  extents: ReadonlyArray<{ lba: number; blocks: number }>,
  diskBlockBytes: number,
): StreamExtent[] {
  let off = 0;
  return extents.map((e) => {
    const s = { lba: e.lba, blocks: e.blocks, streamOffset: off };
    off += e.blocks * diskBlockBytes;
    return s;
  });
}

/** Bytes each list's descriptors take, for tests and the limits check. */
export function descriptorListLength(segments: readonly SegmentInput[], cscds: number): number {
  return cscds * CSCD_BYTES + segments.reduce((n, s) => n + segmentSize(s), 0);
}
