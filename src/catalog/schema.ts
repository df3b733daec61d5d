// Row types of the catalog tables, as kysely sees them (snake_case, as stored).
// Times are ISO-8601 TEXT, JSON is TEXT, booleans are INTEGER 0/1, byte and block counts are BIGINT.
// Queries never return these rows: src/catalog/queries/*.ts map them to camelCase objects.
import type { Generated } from 'kysely';

export interface SchemaVersionTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface VolumesTable {
  /** `NODE:LUN`, e.g. `store:0`. */
  id: string;
  node: string;
  lun: number;
  /** NAA designator, hex. */
  designator: string;
  disk_block_bytes: number;
  volume_blocks: number;
  /** Change id (on the node) of the last set's snapshot: the next incremental is what changed since. */
  kept_change_id: string | null;
  kept_set_id: number | null;
  updated_at: string;
}

export interface JobsTable {
  id: Generated<number>;
  type: string;
  volume_id: string | null;
  state: string;
  waiting_for: string | null;
  params: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  bytes_done: number;
  bytes_total: number;
  set_id: number | null;
  mover: string | null;
  drive: string | null;
  cartridge: string | null;
  error_code: string | null;
  error: string | null;
  result: string | null;
}

export interface JobEventsTable {
  id: Generated<number>;
  job_id: number;
  at: string;
  kind: string;
  state: string | null;
  message: string;
  data: string | null;
}

export interface SetsTable {
  /** Explicit: claimed before the copy (it goes into the tape header), or read back by a rebuild. */
  id: number;
  uuid: string;
  volume_id: string;
  job_id: number | null;
  pool: string;
  mode: string;
  level: string;
  base_set_id: number | null;
  snapshot_id: string;
  snapshot_at: string;
  disk_block_bytes: number;
  volume_blocks: number;
  tape_block_bytes: number;
  /** JSON array of {lba, blocks, streamOffset}. */
  extents: string;
  stream_bytes: number;
  sha256: string | null;
  /** Why a requested incremental ran as a full. */
  reason: string | null;
  started_at: string;
  ended_at: string;
  /** 1: never pruned (`ferry sets protect`). */
  protected: Generated<number>;
  /** When `ferry prune` expired it; null while it is kept. */
  expired_at: string | null;
}

export interface SetPiecesTable {
  set_id: number;
  seq: number;
  cartridge: string;
  header_block: number;
  data_block: number;
  data_blocks: number;
  trailer_block: number;
  /** Block id after the set's filemark. */
  end_block: number;
  stream_start: number;
  stream_end: number;
}

export interface CartridgesTable {
  barcode: string;
  uuid: string | null;
  pool: string | null;
  /** Library name, or the drive name for a stand-alone drive. */
  library: string | null;
  state: string;
  labeled: number;
  /** Block id right after the last complete set's filemark: where the next set starts. */
  end_block: number;
  bytes_used: number;
  last_written_at: string | null;
  error: string | null;
  /** When its sets had all expired and it returned to scratch; null once relabeled. */
  recycled_at: string | null;
  /** MAM LOAD COUNT at its last mount; null until a job mounted it. */
  load_count: number | null;
  /** When `ferry cartridges export` took it out of its library; null while it is in. */
  exported_at: string | null;
}

export interface ReservationsTable {
  /** `drive:vtl/1`, `cartridge:FER001L8`. */
  resource: string;
  job_id: number;
  at: string;
}

export interface SetFileIndexesTable {
  set_id: number;
  cluster_bytes: number;
  sector_bytes: number;
  cluster_count: number;
  /** NTFS volume serial, hex. */
  serial: string;
  /** MFT base records in the index. */
  files: number;
  /** JSON [{record?, path?, code, message}]: records the backup could not read. */
  skipped: string;
  /** JSON [path]: incremental sets, what is gone since the base set. */
  deleted: string;
}

export interface FilePathsTable {
  id: Generated<number>;
  /** A directory's absolute path, `/` for the root. */
  path: string;
}

export interface SetFilesTable {
  set_id: number;
  /** The set whose blocks hold the data: this one, or an earlier one of its chain. */
  data_set_id: number;
  /** The directory holding this name: file_paths.id. */
  dir_id: number;
  name: string;
  record: number;
  /** file, dir, symlink or reparse */
  type: string;
  /** Bytes of the unnamed $DATA (0 for directories). */
  size: number;
  links: number;
  /** The unnamed $DATA is resident. */
  resident: number;
  file_attributes: number;
  security_id: number | null;
  /** Owner and group SIDs of the file's descriptor, when it resolved. */
  owner_sid: string | null;
  group_sid: string | null;
  /** $STANDARD_INFORMATION times, ms since 1970 UTC. */
  created_ms: number | null;
  modified_ms: number | null;
  changed_ms: number | null;
  accessed_ms: number | null;
  /** JSON [{name, size}] of the named $DATA streams. */
  streams: string;
  /** JSON of the $DATA attributes as the tape's file index has them. */
  content: string;
}

/** A snapshot delete the node has not confirmed yet (migration 5). */
export interface OwedSnapshotDeletesTable {
  node: string;
  snapshot_id: string;
  volume_id: string;
  job_id: number | null;
  /** Why the last try failed. */
  error: string;
  since: string;
  tries: number;
}

export interface Database {
  schema_version: SchemaVersionTable;
  volumes: VolumesTable;
  jobs: JobsTable;
  job_events: JobEventsTable;
  sets: SetsTable;
  set_pieces: SetPiecesTable;
  cartridges: CartridgesTable;
  reservations: ReservationsTable;
  set_file_indexes: SetFileIndexesTable;
  file_paths: FilePathsTable;
  set_files: SetFilesTable;
  owed_snapshot_deletes: OwedSnapshotDeletesTable;
}
