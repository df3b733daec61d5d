import { FerryError } from '../util/errors.ts';
import type { JobState } from './states.ts';
import type { FileEntry } from '../catalog/queries/files.ts';

/**
 * What the backup server's library offers its faces (REST API, CLI, `ferry up`, `ferry demo`).
 * The faces call a `JobService`; none of them plans, copies or reads the catalog itself.
 */

export type JobType = 'backup' | 'restore' | 'verify' | 'rebuild' | 'label';
export type BackupMode = 'image' | 'used' | 'files';
export type BackupLevel = 'full' | 'incremental';

export interface StartBackup {
  /** `NODE:LUN`, e.g. `store:0`. */
  volume: string;
  mode?: BackupMode;
  level?: BackupLevel;
  pool?: string;
  mover?: string;
  quietPeriodMs?: number;
  timeoutMs?: number;
  /** Verify the set when it is written. */
  verify?: boolean;
}

export interface StartRestore {
  set: number;
  /** `NODE:LUN`, or `NODE:new` for a LUN created through the node's API. */
  to: string;
  force?: boolean;
  mover?: string;
}

/** Files of a files set back to a directory on the server (the data crosses the server). */
export interface StartFileRestore {
  set: number;
  /** Absolute paths in the set; a directory brings its subtree. */
  files: string[];
  /** Directory on the server; new or empty unless `force`. */
  out: string;
  force?: boolean;
  /** Named streams as PATH:STREAM files (default true). */
  streams?: boolean;
}

/** A row of `ferry ls`: the fields of `ferry ntfs ls --json`, and the set that holds the data. */
export type FileView = FileEntry;

export interface ListFiles {
  /** A directory (or one file) in the set; `/` by default. */
  path?: string;
  recursive?: boolean;
  /** Show NTFS system files ($MFT, $Extend …). */
  system?: boolean;
}

export interface StartVerify {
  set: number;
}

export interface StartRebuild {
  library?: string;
}

export interface StartLabel {
  barcode: string;
  /** The pool it is for (default: the config's first). */
  pool?: string;
  mover?: string;
}

/** Live figures of a running job (the same reach the CLI bar and the API). */
export interface JobProgress {
  phase: JobState;
  /** What the job waits for, in words, while it waits. */
  waitingFor: string | null;
  bytesDone: number;
  bytesTotal: number;
  mbPerSecond: number;
  etaSeconds: number | null;
  cartridge: string | null;
  /** While waiting for quiet writes: ms since the volume's last write. */
  lastWriteMsAgo: number | null;
}

/** Progress with no figures yet (or none live: the catalog's row fills in what it has). */
export function idleProgress(phase: JobState, known: Partial<JobProgress> = {}): JobProgress {
  return {
    phase,
    waitingFor: null,
    bytesDone: 0,
    bytesTotal: 0,
    mbPerSecond: 0,
    etaSeconds: null,
    cartridge: null,
    lastWriteMsAgo: null,
    ...known,
  };
}

export interface JobView {
  id: number;
  type: JobType;
  volume: string | null;
  state: JobState;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** Bytes moved (by the data mover). */
  bytes: number;
  set: number | null;
  mover: string | null;
  cartridge: string | null;
  error: { code: string; message: string } | null;
  progress: JobProgress;
  /** Type-specific result when done (e.g. `{ok}` for verify, `{lun}` for a restore to NODE:new). */
  result: Record<string, unknown> | null;
}

/** `[seconds since the job started, MB/s over the second before]`. */
export type ThroughputSample = [seconds: number, mbPerSecond: number];

export interface JobEvent {
  id: number;
  job: number;
  at: string;
  kind: 'state' | 'progress' | 'log';
  state: JobState | null;
  message: string;
  data: Record<string, unknown> | null;
}

export interface SetView {
  id: number;
  volume: string;
  mode: BackupMode;
  level: BackupLevel;
  base: number | null;
  startedAt: string;
  endedAt: string;
  /** Bytes of the set's data stream (disk bytes backed up). */
  bytes: number;
  /** Barcodes in piece order. */
  cartridges: string[];
  snapshot: string;
  /** Why a requested incremental ran as a full, if it did. */
  reason: string | null;
  /** Never pruned (`ferry sets protect`). */
  protected: boolean;
}

/** What `ferry prune` did, or would do with `dryRun`. */
export interface PruneResult {
  dryRun: boolean;
  /** Sets the pools' retention rules expire, oldest first. */
  expired: Array<{
    set: number;
    volume: string;
    mode: BackupMode;
    level: BackupLevel;
    snapshotAt: string;
    pool: string;
    cartridges: string[];
  }>;
  /** Sets kept, each with the rule that keeps it ("keepDaily 2026-12-03", "base of set 12", "protected"). */
  kept: Array<{ set: number; why: string }>;
  /** Cartridges that hold no kept set afterwards: back to scratch, relabeled before reuse. */
  scratch: string[];
  /** Pools without retention rules: all their sets are kept. */
  unmanaged: string[];
}

export interface CartridgeView {
  barcode: string;
  pool: string | null;
  library: string | null;
  state: 'blank' | 'append' | 'full' | 'error';
  bytesUsed: number;
  sets: number;
  lastWrittenAt: string | null;
  /** Where it is now: "slot 1025", "drive 256", "import/export element 768", "exported"; null when not known. */
  where: string | null;
  /** MAM LOAD COUNT at its last mount. */
  loadCount: number | null;
  /** Its sets all expired: it is in scratch and gets a new label before its next set. */
  recycled: boolean;
}

export interface DriveView {
  /** `library/element` (or the stand-alone drive's name): what jobs reserve. */
  name: string;
  library: string | null;
  element: number | null;
  /** The cartridge loaded, if any. */
  cartridge: string | null;
  /** The job that holds the drive, if any. */
  job: number | null;
  pools: string[];
}

export interface VolumeView {
  id: string;
  node: string;
  lun: number;
  sizeBytes: number;
  lastSet: number | null;
}

export interface JobFilter {
  /** One state, or any of several (the console's running jobs). */
  state?: JobState | readonly JobState[];
  type?: JobType;
  volume?: string;
  limit?: number;
}

export interface JobService {
  startBackup(req: StartBackup): Promise<JobView>;
  startRestore(req: StartRestore): Promise<JobView>;
  startFileRestore(req: StartFileRestore): Promise<JobView>;
  startVerify(req: StartVerify): Promise<JobView>;
  startRebuild(req: StartRebuild): Promise<JobView>;
  /** Write a cartridge's label for a pool now (`ferry cartridges label`). */
  startLabel(req: StartLabel): Promise<JobView>;
  cancel(job: number): Promise<JobView>;
  /** Start a failed or canceled job again as a new job with the same request. */
  retry(job: number): Promise<JobView>;
  getJob(job: number): Promise<JobView>;
  listJobs(filter?: JobFilter): Promise<JobView[]>;
  /** Events after `afterId` (all when undefined). */
  events(job: number, afterId?: number): Promise<JobEvent[]>;
  /** Live events of one job; returns the unsubscribe function. */
  subscribe(job: number, listener: (e: JobEvent) => void): () => void;
  /** The job's MB/s over time: live while it runs, from its last state event once it has ended. */
  throughput(job: number): Promise<ThroughputSample[]>;
  /** Resolves with the job once it is in a final state. */
  waitForJob(job: number): Promise<JobView>;
  listSets(filter?: { volume?: string }): Promise<SetView[]>;
  getSet(set: number): Promise<SetView>;
  /** A directory of a files set, from the catalog alone (no tape, no node). */
  listFiles(set: number, q?: ListFiles): Promise<FileView[]>;
  /** Entries of a files set whose name (or path, for a pattern with `/`) matches a glob. */
  findFiles(set: number, pattern: string): Promise<FileView[]>;
  listCartridges(): Promise<CartridgeView[]>;
  /** Expire the sets the pools' retention rules no longer keep (nothing changes with dryRun). */
  prune(o?: { dryRun?: boolean }): Promise<PruneResult>;
  listDrives(): Promise<DriveView[]>;
  /** Move a cartridge to a free import/export element; no job uses it until it is imported. */
  exportCartridge(barcode: string): Promise<CartridgeView>;
  /** Move a cartridge from an import/export element into a storage slot; a new one joins as blank. */
  importCartridge(barcode: string): Promise<CartridgeView>;
  /** Exempt a set from pruning, or (protect false) lift that. */
  protectSet(set: number, protect: boolean): Promise<SetView>;
  /**
   * Volumes the catalog knows (backed up before); with `discover`, also every disk LUN the
   * configured storage nodes serve now (a node that does not answer within 2 s is left out).
   */
  listVolumes(o?: { discover?: boolean }): Promise<VolumeView[]>;
  close(): Promise<void>;
}

/** Errors the faces turn into HTTP statuses and exit codes. Codes are stable. */
export const ServiceErrorStatus = {
  ERR_NOT_FOUND: 404,
  ERR_BAD_REQUEST: 400,
  ERR_CONFLICT: 409,
  ERR_UNAUTHORIZED: 401,
} as const;
export type ServiceErrorCode = keyof typeof ServiceErrorStatus;

export class ServiceError extends FerryError {
  readonly status: number;
  constructor(code: ServiceErrorCode, message: string) {
    super(code, message);
    this.status = ServiceErrorStatus[code];
  }
}
