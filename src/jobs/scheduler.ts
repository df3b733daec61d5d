import { Cron } from 'croner';
import type { ScheduleConfig } from '../server/config.ts';
import { isFinal } from './states.ts';
import type { BackupLevel, BackupMode, JobService } from './types.ts';

/** A schedule as `ferry schedules` and GET /v1/schedules show it. */
export interface ScheduleView {
  name: string;
  volume: string;
  mode: BackupMode;
  level: BackupLevel;
  cron: string;
  fullEveryMs: number | null;
  pool: string | null;
  /** ISO 8601; null when the pattern has no further run. */
  nextRun: string | null;
  /** The last time it came due, and what it did. */
  last: FireOutcome | null;
}

export type FireOutcome =
  { at: string; started: true; job: number; level: BackupLevel } | { at: string; started: false; skipped: string };

/**
 * Starts the configured backups when their cron pattern comes due (croner, server local time).
 * A schedule whose volume still has a backup running skips that run and says why; with
 * `fullEvery`, an incremental schedule runs a full when the last full set is older than that.
 * The decision is `fire(name, now)`: tests call it with their own clock.
 */
export class Scheduler {
  private readonly service: JobService;
  private readonly schedules: ScheduleConfig[];
  private readonly crons: Cron[] = [];
  private readonly last = new Map<string, FireOutcome>();
  private readonly onFire: (name: string, o: FireOutcome | Error) => void;

  constructor(
    service: JobService,
    schedules: ScheduleConfig[],
    opts: { onFire?: (name: string, o: FireOutcome | Error) => void } = {},
  ) {
    this.service = service;
    this.schedules = schedules;
    this.onFire = opts.onFire ?? (() => undefined);
  }

  /** Arm every schedule's timer. */
  start(): void {
    for (const s of this.schedules) {
      // protect: a run that is still deciding when the next comes due is not doubled.
      this.crons.push(
        new Cron(s.cron, { protect: true }, async () => {
          await this.fire(s.name).then(
            (o) => this.onFire(s.name, o),
            (e: unknown) => this.onFire(s.name, e as Error),
          );
        }),
      );
    }
  }

  stop(): void {
    for (const c of this.crons.splice(0)) c.stop();
  }

  list(now = new Date()): ScheduleView[] {
    return this.schedules.map((s) => {
      const c = new Cron(s.cron, { paused: true });
      const next = c.nextRun(now);
      c.stop();
      return {
        name: s.name,
        volume: s.volume,
        mode: s.mode,
        level: s.level,
        cron: s.cron,
        fullEveryMs: s.fullEveryMs ?? null,
        pool: s.pool ?? null,
        nextRun: next ? next.toISOString() : null,
        last: this.last.get(s.name) ?? null,
      };
    });
  }

  /** The schedule `name` is due at `now`: start its backup, or skip it and say why. */
  async fire(name: string, now = new Date()): Promise<FireOutcome> {
    const s = this.schedules.find((x) => x.name === name);
    if (!s) throw new Error(`no schedule ${name}`);
    const at = now.toISOString();
    const running = (await this.service.listJobs({ type: 'backup', volume: s.volume })).find((j) => !isFinal(j.state));
    let o: FireOutcome;
    if (running) {
      o = { at, started: false, skipped: `backup job ${running.id} of ${s.volume} is still ${running.state}` };
    } else {
      const level = await this.levelFor(s, now);
      const job = await this.service.startBackup({
        volume: s.volume,
        mode: s.mode,
        level,
        ...(s.pool ? { pool: s.pool } : {}),
      });
      o = { at, started: true, job: job.id, level };
    }
    this.last.set(name, o);
    return o;
  }

  private async levelFor(s: ScheduleConfig, now: Date): Promise<BackupLevel> {
    if (s.level === 'full' || s.fullEveryMs === undefined) return s.level;
    const fulls = (await this.service.listSets({ volume: s.volume })).filter(
      (x) => x.level === 'full' && x.mode === s.mode,
    );
    const lastFull = fulls.reduce<number | undefined>((m, x) => Math.max(m ?? 0, Date.parse(x.endedAt)), undefined);
    return lastFull === undefined || now.getTime() - lastFull >= s.fullEveryMs ? 'full' : 'incremental';
  }
}
