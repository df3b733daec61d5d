import type { SnapshottableDevice } from './snapshottable-device.ts';
import { DEFAULT_CHUNK_BYTES } from './snapshottable-device.ts';

/**
 * Changed-block tracking. A LUN's copy-on-write chunks are its tracking granules: the store of
 * snapshot S holds exactly the chunks first written after S (until the next snapshot), and each
 * chunk is durable there before its overwrite is issued. So "changed since S" is the union of
 * the stores from S on, exact across clean restarts and crashes alike. Tracking is reported
 * lost only when a store on the way cannot be read back; the answer then covers the whole LUN.
 */
export const DEFAULT_CBT_GRANULARITY_BYTES = DEFAULT_CHUNK_BYTES;

/** [lba, blockCount] */
export type Extent = [number, number];

export interface ChangedBlocks {
  /** Bytes per tracking granule. */
  granularity: number;
  blockSize: number;
  since: string;
  /** Snapshot id, or null for "now". */
  until: string | null;
  tracking: 'exact' | 'lost';
  /** Why tracking was lost (then `extents` is the whole LUN: the next backup is a full one). */
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

/** Blocks of the LUN changed after snapshot `since` and before snapshot `until` (or now). */
export function changedBlocks(dev: SnapshottableDevice, since: string, until?: string): ChangedBlocks {
  const { chunks, lost } = dev.changedChunks(since, until);
  const base = { granularity: dev.chunkBytes, blockSize: dev.blockSize, since, until: until ?? null };
  if (lost) return { ...base, tracking: 'lost', reason: lost, extents: dev.blockCount > 0 ? [[0, dev.blockCount]] : [] };
  return { ...base, tracking: 'exact', extents: granulesToExtents(chunks, dev.chunkBlocks, dev.blockCount) };
}
