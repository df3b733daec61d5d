import { FerryError } from '../util/errors.ts';
import type { ChangedBlocks } from '../snapshot/cbt.ts';
import type { LunInfo } from './lun-registry.ts';
import type { SnapshotMode } from '../snapshot/quiesce.ts';

/** A snapshot as a node shows it. */
export interface SnapshotRecord {
  id: string;
  /** The snapshot's own read-only LUN on the same target (-1 while unmapped: a damaged store). */
  lun: number;
  /** That LUN's NAA designator, hex (null while unmapped). */
  designator: string | null;
  sourceLun: number;
  /** The frozen instant, ISO 8601. */
  takenAt: string;
  mode: SnapshotMode | 'unknown';
  /** How long the request waited for the quiet period. */
  waitedMs: number | null;
  quietPeriodMs: number | null;
  timeoutMs: number | null;
  /** Chunks it holds in its own store. */
  preservedChunks: number;
  /** The change id of its instant: `changedSince` takes it, also after the snapshot is deleted. */
  changeId: string;
  damaged?: string;
}

/** A change-tracking epoch started without a snapshot (`POST /v1/luns/N/changes/mark`). */
export interface ChangeMark {
  changeId: string;
  lun: number;
  /** ISO 8601. */
  startedAt: string;
}

/** A disk LUN's change tracking: its epochs (oldest first) and the space their bitmaps take. */
export interface ChangeTracking {
  lun: number;
  granularity: number;
  /** Epochs kept before the two oldest are merged. */
  maxEpochs: number;
  /** Bytes of change bitmaps on the node for this LUN. */
  bytes: number;
  epochs: Array<{
    changeId: string;
    startedAt: string;
    snapshotId: string | null;
    merged: string[];
    lost: string | null;
  }>;
}

/** Blocks [lba, lba + blocks) of a LUN. */
export interface BlockExtent {
  lba: number;
  blocks: number;
}

/** What changed on a disk LUN after a snapshot (changed-block tracking, see cbt.ts). */
export interface ChangedExtents {
  /** `lost`: `extents` is the whole LUN and the next backup must be a full one (`reason` says why). */
  tracking: 'exact' | 'lost';
  reason?: string;
  /** Bytes per tracking granule: extents start and end on granules (or the LUN's end). */
  granularity: number;
  blockSize: number;
  extents: BlockExtent[];
}

/** cbt.ts's answer (as the API sends it: [lba, blockCount] pairs) → ChangedExtents. */
export function changedExtents(c: ChangedBlocks): ChangedExtents {
  return {
    tracking: c.tracking,
    ...(c.reason === undefined ? {} : { reason: c.reason }),
    granularity: c.granularity,
    blockSize: c.blockSize,
    extents: c.extents.map(([lba, blocks]) => ({ lba, blocks })),
  };
}

export interface NodeDigest {
  /** Hex SHA-256 of the extents' bytes concatenated in order. */
  sha256: string;
  bytes: number;
}

export interface SnapshotRequest {
  /** Write pause to wait for (default 3 s; 0 = crash-consistent, at once). */
  quietPeriodMs?: number;
  /** Give up (ERR_QUIESCE_TIMEOUT, nothing created) after this long without such a pause (default 80 s). */
  timeoutMs?: number;
  /** Stop waiting when this aborts: ERR_CANCELED, nothing created (over HTTP, the request is dropped). */
  signal?: AbortSignal;
}

/**
 * How the backup server controls a storage node: the only way it talks to one besides iSCSI.
 * `SnapshotService` is the in-process implementation, `SnapshotApiClient` the one over the
 * node's management API; both pass the same contract test (node-control.test.ts).
 *
 * Failures are FerryErrors whose `code` is the same through both:
 * `ERR_LUN_NOT_FOUND`, `ERR_SNAPSHOT_NOT_FOUND`, `ERR_CHANGE_ID_NOT_FOUND`, `ERR_NOT_A_DISK`, `ERR_QUIESCE_TIMEOUT`,
 * `ERR_SNAPSHOT_IN_PROGRESS`, `ERR_LUN_HAS_SNAPSHOTS`, `ERR_BAD_PERIOD`, `ERR_RANGE`, `ERR_BAD_REQUEST`.
 */
export interface NodeControl {
  /** Disk and snapshot LUNs, each with its NAA designator (what CSCD descriptors name). */
  listLuns(): Promise<LunInfo[]>;
  /** A new disk LUN. `blockSize`, if given, must be the node's. */
  createLun(opts: { sizeBytes: number; blockSize?: number }): Promise<LunInfo>;
  /** Delete a disk LUN that has no snapshots. */
  deleteLun(lun: number): Promise<void>;
  /** Snapshot a disk LUN once its writes pause; the snapshot is served as its own read-only LUN. */
  createSnapshot(lun: number, opts?: SnapshotRequest): Promise<SnapshotRecord>;
  getSnapshot(id: string): Promise<SnapshotRecord | undefined>;
  /** Every snapshot, or those of one disk LUN; oldest first per LUN. */
  listSnapshots(lun?: number): Promise<SnapshotRecord[]>;
  /** Unmap and delete a snapshot; the others are not disturbed. */
  deleteSnapshot(id: string): Promise<void>;
  /**
   * Blocks of disk LUN `lun` written after change id `since` and before change id `until`
   * (default: now). A snapshot id names its change id, also once the snapshot is deleted.
   */
  changedSince(lun: number, since: string, opts?: { until?: string }): Promise<ChangedExtents>;
  /** Start a change-tracking epoch on a disk LUN without a snapshot; its change id. */
  markChanges(lun: number): Promise<ChangeMark>;
  /** A disk LUN's change-tracking epochs and the space they take. */
  changeTracking(lun: number): Promise<ChangeTracking>;
  /** SHA-256 over the extents of any LUN, read on the node (at most MAX_DIGEST_EXTENTS extents). */
  digest(lun: number, extents: readonly BlockExtent[]): Promise<NodeDigest>;
  /** Time since the latest write reached the LUN (0 while one is in flight; null: none since the node started). */
  activity(lun: number): Promise<{ lastWriteMsAgo: number | null }>;
}

/** Most extents one digest request may name (the HTTP body stays under a few MiB). */
export const MAX_DIGEST_EXTENTS = 100_000;

export class LunNotFoundError extends FerryError {
  readonly lun: number;
  constructor(lun: number, node: string) {
    super('ERR_LUN_NOT_FOUND', `no LUN ${lun} on ${node}`);
    this.lun = lun;
  }
}

export class SnapshotNotFoundError extends FerryError {
  readonly id: string;
  constructor(id: string, where: string) {
    super('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id} ${where}`);
    this.id = id;
  }
}
