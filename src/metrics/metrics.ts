import { Counter, Gauge, Histogram, collectDefaultMetrics, register } from 'prom-client';

// Prometheus metrics of every Ferry role, in prom-client's process registry: a role in its own
// process shows its own, and `ferry up` (every role in one process) shows them all. Names follow
// the Prometheus conventions: base units, `_total` for counters, `_seconds`, `_bytes`. Values are
// kept as things happen; a scrape never reads the catalog or a device.

export const registry = register;

// The process's own (CPU seconds, resident memory, event loop lag, …), read when scraped.
collectDefaultMetrics({ register });

// ---- the backup server ----

export const jobsTotal = new Counter({
  name: 'ferry_jobs_total',
  help: 'Jobs that ended, by type and final state.',
  labelNames: ['type', 'state'] as const,
});

export const jobDuration = new Histogram({
  name: 'ferry_job_duration_seconds',
  help: 'How long jobs took from creation to their end, by type.',
  labelNames: ['type'] as const,
  buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600],
});

export const lastSuccess = new Gauge({
  name: 'ferry_job_last_success_timestamp_seconds',
  help: 'When the last backup of a volume completed (Unix time).',
  labelNames: ['volume'] as const,
});

export const movedBytes = new Counter({
  name: 'ferry_moved_bytes_total',
  help: 'Bytes the data movers moved for completed jobs, by mover and direction.',
  labelNames: ['mover', 'direction'] as const,
});

export const cartridges = new Gauge({
  name: 'ferry_cartridges',
  help: 'Cartridges in the catalog, by pool and state.',
  labelNames: ['pool', 'state'] as const,
});

export const driveBusy = new Gauge({
  name: 'ferry_drive_busy',
  help: 'Whether a job holds the drive (1) or not (0).',
  labelNames: ['drive'] as const,
});

// ---- storage nodes, tape library nodes and movers (the iSCSI target side) ----

export const iscsiSessions = new Gauge({
  name: 'ferry_iscsi_sessions',
  help: 'iSCSI sessions logged in, by session type.',
  labelNames: ['type'] as const,
});

/**
 * What one iSCSI session counts per command, with plain arithmetic (no label lookup on the
 * command path); the counters below sum the live and closed sessions' tallies when scraped.
 */
export class SessionTally {
  readonly target: string;
  commands = 0;
  private readonly luns = new Map<number, { read: number; written: number }>();

  constructor(target: string) {
    this.target = target;
    liveTallies.add(this);
  }

  /** The byte tallies of one LUN (kept; look it up once per LUN, not per command). */
  lun(n: number): { read: number; written: number } {
    let t = this.luns.get(n);
    if (!t) this.luns.set(n, (t = { read: 0, written: 0 }));
    return t;
  }

  /** The session ended: its counts stay in the totals. */
  close(): void {
    if (liveTallies.delete(this)) this.sumInto(retired);
  }

  /** Fold into `into` by target, and by target and LUN. */
  sumInto(into: Totals): void {
    into.commands.set(this.target, (into.commands.get(this.target) ?? 0) + this.commands);
    for (const [lun, t] of this.luns) {
      const key = `${this.target}\u0000${lun}`;
      const had = into.luns.get(key) ?? { read: 0, written: 0 };
      into.luns.set(key, { read: had.read + t.read, written: had.written + t.written });
    }
  }
}

interface Totals {
  commands: Map<string, number>;
  luns: Map<string, { read: number; written: number }>;
}

const liveTallies = new Set<SessionTally>();
const retired: Totals = { commands: new Map(), luns: new Map() };

function totals(): Totals {
  const all: Totals = { commands: new Map(retired.commands), luns: new Map(retired.luns) };
  for (const t of liveTallies) t.sumInto(all);
  return all;
}

export const iscsiCommands = new Counter({
  name: 'ferry_iscsi_commands_total',
  help: 'SCSI commands received over iSCSI, by target.',
  labelNames: ['target'] as const,
  collect() {
    this.reset();
    for (const [target, n] of totals().commands) this.inc({ target }, n);
  },
});

function lunBytes(which: 'read' | 'written'): (this: Counter<'target' | 'lun'>) => void {
  return function collect(this: Counter<'target' | 'lun'>): void {
    this.reset();
    for (const [key, t] of totals().luns) {
      const [target, lun] = key.split('\u0000');
      if (t[which] > 0) this.inc({ target, lun }, t[which]);
    }
  };
}

export const lunReadBytes = new Counter({
  name: 'ferry_lun_read_bytes_total',
  help: 'Bytes sent to initiators as Data-In, by target and LUN.',
  labelNames: ['target', 'lun'] as const,
  collect: lunBytes('read'),
});

export const lunWrittenBytes = new Counter({
  name: 'ferry_lun_written_bytes_total',
  help: 'Bytes initiators wrote (Data-Out of commands that completed GOOD), by target and LUN.',
  labelNames: ['target', 'lun'] as const,
  collect: lunBytes('written'),
});

export const xcopyOperations = new Counter({
  name: 'ferry_xcopy_operations_total',
  help: 'EXTENDED COPY commands a copy manager started.',
});

export const xcopyFailures = new Counter({
  name: 'ferry_xcopy_failures_total',
  help: 'EXTENDED COPY commands that ended with CHECK CONDITION or were aborted.',
});

export const quiesceWait = new Histogram({
  name: 'ferry_quiesce_wait_seconds',
  help: 'How long a snapshot waited for the quiet period, by how it was taken.',
  labelNames: ['mode'] as const,
  buckets: [0, 0.5, 1, 3, 5, 10, 30, 60, 80, 120],
});

/** The registry in the Prometheus text format. */
export function metricsText(): Promise<string> {
  return registry.metrics();
}
