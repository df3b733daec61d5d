import type { Db } from '../catalog/queries/common.ts';
import {
  addJobEvent,
  listJobEvents,
  transitionJob,
  updateJobProgress,
  type JobEvent as CatalogEvent,
} from '../catalog/queries/jobs.ts';
import { FerryError } from '../util/errors.ts';
import type { Site } from './site.ts';
import type { Copier } from './tape-io.ts';
import { canTransition, STATE_LABELS, type JobState } from './states.ts';
import { idleProgress, type JobEvent, type JobProgress, type ThroughputSample } from './types.ts';

/** Most points a job's throughput keeps; past that, every other one is dropped. */
const MAX_SAMPLES = 600;

/**
 * What a running job uses: its catalog row (state moves only through `to`, which checks the
 * state table), its live progress (rate and ETA from bytes over time, throttled into the
 * catalog and out to subscribers) and its cancel signal.
 */
export class JobContext {
  readonly id: number;
  readonly db: Db;
  readonly site: Site;
  readonly signal: AbortSignal;
  state: JobState;
  readonly progress: JobProgress;
  private readonly emit: (e: JobEvent) => void;
  private rateFrom: { at: number; bytes: number } | undefined;
  private readonly endHooks: Array<() => void> = [];
  /** The job's copy manager once it has one: a verify inside a backup goes on with it (tape-io.ts Copier.forJob). */
  copier?: Copier;
  private lastSaved = 0;
  /** MB/s over the job's time, a point a second at most (the console's throughput chart). */
  readonly throughput: ThroughputSample[] = [];
  private sampleFrom: { at: number; bytes: number } | undefined;
  private readonly born = performance.now();

  constructor(o: {
    id: number;
    db: Db;
    site: Site;
    signal: AbortSignal;
    state: JobState;
    emit: (e: JobEvent) => void;
  }) {
    this.id = o.id;
    this.db = o.db;
    this.site = o.site;
    this.signal = o.signal;
    this.state = o.state;
    this.emit = o.emit;
    this.progress = idleProgress(o.state);
  }

  /** Run `f` when the job ends, however it ends (a mover's load, for one). */
  onEnd(f: () => void): void {
    this.endHooks.push(f);
  }

  /** The job has ended: run its end hooks. */
  ended(): void {
    for (const f of this.endHooks.splice(0)) f();
  }

  checkCanceled(): void {
    if (this.signal.aborted) throw new FerryError('ERR_CANCELED', `job ${this.id} was canceled`);
  }

  /** Move to `to` (the state table decides whether it may), with an event saying why. */
  async to(
    to: JobState,
    message: string,
    opts: { waitingFor?: string; data?: Record<string, unknown> } = {},
  ): Promise<void> {
    this.checkCanceled();
    if (to === this.state && to !== 'mounting') return;
    if (!canTransition(this.state, to))
      throw new FerryError('ERR_JOB_STATE', `job ${this.id}: ${this.state} → ${to} is not in the state table`);
    await transitionJob(this.db, this.id, this.state, to, {
      message: message || STATE_LABELS[to],
      waitingFor: opts.waitingFor ?? null,
      data: opts.data,
    });
    this.state = to;
    Object.assign(this.progress, { phase: to, waitingFor: opts.waitingFor ?? null });
    await this.publishStored();
  }

  /** Publish the catalog's events this context has not published yet, with their ids (SSE resumes by id). */
  async publishStored(): Promise<void> {
    for (const e of await listJobEvents(this.db, this.id, this.lastEventId)) {
      this.lastEventId = e.id;
      this.emit(toEvent(e));
    }
  }
  private lastEventId = 0;

  /** Record the data mover (copy manager) this job sends its lists to. */
  async setMover(name: string): Promise<void> {
    await updateJobProgress(this.db, this.id, { bytesDone: this.progress.bytesDone, mover: name });
    await this.log(`data mover: ${name}`);
  }

  async log(message: string, data?: Record<string, unknown>): Promise<void> {
    await addJobEvent(this.db, this.id, { kind: 'log', message, data });
    await this.publishStored();
  }

  /** Update live figures; bytes feed the rate and ETA. Saved and published at most 4 times a second. */
  update(p: Partial<Omit<JobProgress, 'mbPerSecond' | 'etaSeconds' | 'phase'>>, opts: { mover?: string } = {}): void {
    Object.assign(this.progress, p);
    const now = performance.now();
    if (p.bytesDone !== undefined) {
      this.rateFrom ??= { at: now, bytes: p.bytesDone };
      const dt = (now - this.rateFrom.at) / 1000;
      if (dt > 0.2) {
        const rate = (p.bytesDone - this.rateFrom.bytes) / dt;
        this.progress.mbPerSecond = Math.round((rate / 1e6) * 10) / 10;
        const left = this.progress.bytesTotal - p.bytesDone;
        this.progress.etaSeconds = rate > 0 ? Math.max(0, Math.round(left / rate)) : null;
      }
      this.sample(now, p.bytesDone);
    }
    if (now - this.lastSaved < 250 && p.bytesDone !== this.progress.bytesTotal) return;
    this.lastSaved = now;
    void updateJobProgress(this.db, this.id, {
      bytesDone: this.progress.bytesDone,
      bytesTotal: this.progress.bytesTotal,
      cartridge: this.progress.cartridge,
      mover: opts.mover,
    }).catch(() => undefined);
    this.publish({ kind: 'progress', state: this.state, message: '', data: { ...this.progress } });
  }

  private sample(now: number, bytes: number): void {
    const from = this.sampleFrom;
    if (from && now - from.at < 1000) return;
    this.sampleFrom = { at: now, bytes };
    if (!from) return;
    // Bytes can start again from 0 (a verify after its copy): no negative rates.
    const mbps = Math.max(0, (bytes - from.bytes) / ((now - from.at) / 1000) / 1e6);
    this.throughput.push([Math.round((now - this.born) / 100) / 10, Math.round(mbps * 10) / 10]);
    if (this.throughput.length > MAX_SAMPLES) {
      const kept = this.throughput.filter((_, i) => i % 2 === 1);
      this.throughput.splice(0, this.throughput.length, ...kept);
    }
  }

  /**
   * Progress events are not stored (the job row keeps the latest figures); their id is 0, so an SSE stream skips them.
   */
  private publish(e: Omit<JobEvent, 'id' | 'job' | 'at'>): void {
    this.emit({ id: 0, job: this.id, at: new Date().toISOString(), ...e });
  }
}

export function toEvent(e: CatalogEvent): JobEvent {
  return {
    id: e.id,
    job: e.jobId,
    at: e.at,
    kind: e.kind === 'state' || e.kind === 'progress' ? e.kind : 'log',
    state: (e.state as JobState | null) ?? null,
    message: e.message,
    data: (e.data as Record<string, unknown> | null) ?? null,
  };
}
