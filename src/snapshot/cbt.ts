import { bitsToExtents } from './change-map.ts';
import type { SnapshottableDevice } from './snapshottable-device.ts';
import { DEFAULT_CHUNK_BYTES } from './snapshottable-device.ts';

/**
 * Changed-block tracking. Each disk LUN keeps a change map by epoch (change-map.ts): every
 * snapshot, and every mark, starts an epoch with its own change id. "Changed since X" is the
 * union of the epochs from X on, at the copy-on-write chunk's granularity, whether or not X's
 * snapshot still exists. A write's chunks are marked durably before the write is issued, so
 * after a crash the answer may cover more than was written, never less. Tracking is reported
 * lost when an epoch on the way cannot be read back; the answer then covers the whole LUN.
 */
export const DEFAULT_CBT_GRANULARITY_BYTES = DEFAULT_CHUNK_BYTES;

/** [lba, blockCount] */
export type Extent = [number, number];

export interface ChangedBlocks {
  /** Bytes per tracking granule. */
  granularity: number;
  blockSize: number;
  /** Change id or snapshot id. */
  since: string;
  /** Change id or snapshot id, or null for "now". */
  until: string | null;
  tracking: 'exact' | 'lost';
  /**
   * Why tracking was lost (then `extents` is the whole LUN: the next backup is a full one), or
   * why an exact answer covers more than was written (an id whose epoch was merged).
   */
  reason?: string;
  extents: Extent[];
}

/** Merge ascending granule numbers into block extents, clipped to the LUN's end. */
export function granulesToExtents(granules: readonly number[], granuleBlocks: number, blockCount: number): Extent[] {
  const out: Extent[] = [];
  for (const g of granules) {
    const lba = g * granuleBlocks;
    const n = Math.min(granuleBlocks, blockCount - lba);
    if (n <= 0) continue;
    const prev = out.at(-1);
    if (prev && prev[0] + prev[1] === lba) prev[1] += n;
    else out.push([lba, n]);
  }
  return out;
}

/** Blocks of the LUN changed after change id (or snapshot id) `since` and before `until` (or now). */
export async function changedBlocks(dev: SnapshottableDevice, since: string, until?: string): Promise<ChangedBlocks> {
  const a = await dev.changed(since, until);
  const base = { granularity: dev.chunkBytes, blockSize: dev.blockSize, since, until: until ?? null };
  const extents = bitsToExtents(a.bits, dev.chunkCount, dev.chunkBlocks, dev.blockCount);
  return { ...base, tracking: a.tracking, ...(a.reason ? { reason: a.reason } : {}), extents };
}
