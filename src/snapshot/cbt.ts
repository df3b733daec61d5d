import { hasGranule } from './change-format.ts';
import type { SnapshottableDevice } from './snapshottable-device.ts';
import { DEFAULT_CHUNK_BYTES } from './snapshottable-device.ts';

/**
 * Changed-block tracking. Each disk LUN keeps a change map by epoch (change-map.ts): every
 * snapshot, and every mark, starts an epoch with its own change id. "Changed since X" is the
 * union of the epochs from X on, at the snapshot chunk's granularity, whether or not X's
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

/** A bitmap of granules (change-format.ts) as merged block extents, clipped to the LUN's end. */
export function bitsToExtents(bits: Uint8Array, granules: number, granuleBlocks: number, blockCount: number): Extent[] {
  const out: Extent[] = [];
  let g = 0;
  while (g < granules) {
    if (bits[g >> 3] === 0 && (g & 7) === 0) {
      g += 8;
      continue;
    }
    if (!hasGranule(bits, g)) {
      g++;
      continue;
    }
    let e = g;
    while (e + 1 < granules && hasGranule(bits, e + 1)) e++;
    const lba = g * granuleBlocks;
    const n = Math.min((e + 1) * granuleBlocks, blockCount) - lba;
    if (n > 0) out.push([lba, n]);
    g = e + 1;
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
