import type { Extent, SetHeader, SetTrailer } from './records.ts';
import { TapeFormatError } from './errors.ts';

// Tape geometry and the stream → tape arithmetic (docs/on-tape-format.md "Geometry",
// "Data blocks", "Finding an extent").

export const DEFAULT_TAPE_BLOCK_BYTES = 262144;
export const MIN_TAPE_BLOCK_BYTES = 512;
export const MAX_TAPE_BLOCK_BYTES = 16 * 1024 * 1024;

export function isValidTapeBlockBytes(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_TAPE_BLOCK_BYTES && n <= MAX_TAPE_BLOCK_BYTES && n % 512 === 0;
}

/** Throws TapeFormatError('bad-block-size') unless `n` is a multiple of 512 from 512 B to 16 MiB. */
export function checkTapeBlockBytes(n: number): void {
  if (!isValidTapeBlockBytes(n)) {
    throw new TapeFormatError('bad-block-size', `tape block size ${n} is not a multiple of 512 from 512 to 16 MiB`);
  }
}

/** Tape blocks that hold `streamBytes` bytes packed and zero-padded to a block boundary. */
export function dataBlocksFor(streamBytes: number, tapeBlockBytes: number): number {
  checkTapeBlockBytes(tapeBlockBytes);
  if (!Number.isSafeInteger(streamBytes) || streamBytes < 0) throw new RangeError(`bad byte count ${streamBytes}`);
  return Math.ceil(streamBytes / tapeBlockBytes);
}

/** Where stream byte `streamOffset` lies on tape in a piece whose data starts at `dataBlockId`. */
export function tapePosition(
  piece: { streamStart: number; dataBlockId: number },
  streamOffset: number,
  tapeBlockBytes: number,
): { blockId: number; offset: number } {
  checkTapeBlockBytes(tapeBlockBytes);
  const rel = streamOffset - piece.streamStart;
  if (!Number.isSafeInteger(streamOffset) || rel < 0) {
    throw new RangeError(`stream offset ${streamOffset} is before this piece (it starts at ${piece.streamStart})`);
  }
  return { blockId: piece.dataBlockId + Math.floor(rel / tapeBlockBytes), offset: rel % tapeBlockBytes };
}

export type PlacedExtent = Extent & { blockId: number; offset: number };

/**
 * The header's extents, or their parts, that lie at or after `piece.streamStart` and before
 * `streamEnd` (the trailer's piece.streamEnd; default: the end of the stream), with their
 * tape positions on this piece. A part's lba, blocks and streamOffset describe only that part.
 */
export function extentPositions(h: SetHeader, streamEnd = Number.POSITIVE_INFINITY): PlacedExtent[] {
  const dbb = h.diskBlockBytes;
  const start = h.piece.streamStart;
  if (start % dbb !== 0 || (streamEnd !== Number.POSITIVE_INFINITY && streamEnd % dbb !== 0)) {
    throw new RangeError(`piece bounds ${start}..${streamEnd} are not on ${dbb}-byte disk block boundaries`);
  }
  const out: PlacedExtent[] = [];
  for (const e of h.extents) {
    const from = Math.max(e.streamOffset, start);
    const to = Math.min(e.streamOffset + e.blocks * dbb, streamEnd);
    if (to <= from) continue;
    const part = { lba: e.lba + (from - e.streamOffset) / dbb, blocks: (to - from) / dbb, streamOffset: from };
    out.push({ ...part, ...tapePosition(h.piece, from, h.tapeBlockBytes) });
  }
  return out;
}

/** The set's data stream length: its extents packed (docs "Data blocks"). */
export function streamBytesOf(h: SetHeader): number {
  const last = h.extents.at(-1);
  return last ? last.streamOffset + last.blocks * h.diskBlockBytes : 0;
}

/**
 * Check that a trailer closes the piece a header opened (docs "Catalog rebuild"):
 * same set and sequence, same start, the data block count its byte count needs, and the
 * stream length the extents give. Throws TapeFormatError('piece-mismatch') naming the field.
 */
export function checkPiece(h: SetHeader, t: SetTrailer): void {
  const dataBytes = t.piece.streamEnd - t.piece.streamStart;
  const checks: Array<[field: string, ok: boolean, expected: unknown, actual: unknown]> = [
    ['setUuid', t.setUuid === h.setUuid, h.setUuid, t.setUuid],
    ['setId', t.setId === h.setId, h.setId, t.setId],
    ['sequence', t.sequence === h.sequence, h.sequence, t.sequence],
    ['piece.streamStart', t.piece.streamStart === h.piece.streamStart, h.piece.streamStart, t.piece.streamStart],
    ['streamBytes', t.streamBytes === streamBytesOf(h), streamBytesOf(h), t.streamBytes],
    ['piece.streamEnd', t.piece.streamEnd % h.diskBlockBytes === 0, `× ${h.diskBlockBytes}`, t.piece.streamEnd],
  ];
  if (dataBytes >= 0) {
    const blocks = dataBlocksFor(dataBytes, h.tapeBlockBytes);
    checks.push(['piece.dataBlocks', t.piece.dataBlocks === blocks, blocks, t.piece.dataBlocks]);
  }
  for (const [field, ok, expected, actual] of checks) {
    if (!ok) {
      const msg = `set trailer ${field} is ${JSON.stringify(actual)}, the header wants ${JSON.stringify(expected)}`;
      throw new TapeFormatError('piece-mismatch', msg, { field });
    }
  }
}
