// Jobs and their events. Only transitionJob writes jobs.state; which transitions are allowed is the job
// runner's literal state table (src/jobs/), not decided here.
import type { Selectable, Updateable } from 'kysely';
import { FerryError } from '../../util/errors.ts';
import type { JobEventsTable, JobsTable } from '../schema.ts';
import { fromJson, inTransaction, iso, notFound, num, numOrNull, toJson, type Db, type Instant } from './common.ts';

export type JobType = 'backup' | 'restore' | 'verify' | 'rebuild' | 'label';

/** States a job never leaves. */
export const FINAL_JOB_STATES: readonly string[] = ['done', 'failed', 'canceled'];

export interface Job {
  id: number;
  type: JobType;
  volumeId: string | null;
  state: string;
  /** What a waiting state waits for, in words. */
  waitingFor: string | null;
  params: unknown;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  bytesDone: number;
  bytesTotal: number;
  setId: number | null;
  mover: string | null;
  drive: string | null;
  cartridge: string | null;
  errorCode: string | null;
  error: string | null;
  result: unknown;
}

export interface JobEvent {
  id: number;
  jobId: number;
  at: string;
  /** `state` for a transition; other kinds are the runner's (phase, cartridge, error …). */
  kind: string;
  state: string | null;
  message: string;
  data: unknown;
}

export interface NewJob {
  type: JobType;
  volumeId?: string | null;
  params: unknown;
  bytesTotal?: number;
  /** Initial state; `queued` unless given. */
  state?: string;
  at?: Instant;
}

export interface TransitionOptions {
  message: string;
  /** Set for a state the user waits on; any other transition clears it. */
  waitingFor?: string | null;
  data?: unknown;
  at?: Instant;
  /** Final fields, usually given with the last transition. */
  setId?: number | null;
  error?: { code: string; message: string } | null;
  result?: unknown;
}

export interface NewJobEvent {
  kind: string;
  message: string;
  state?: string | null;
  data?: unknown;
  at?: Instant;
}

/** transitionJob found the job in another state than `from`. */
export class JobStateError extends FerryError {
  readonly jobId: number;
  readonly expected: string;
  readonly actual: string;
  constructor(jobId: number, expected: string, actual: string, to: string) {
    super('ERR_JOB_STATE', `job ${jobId} is ${actual}, not ${expected}: cannot move it to ${to}`);
    this.jobId = jobId;
    this.expected = expected;
    this.actual = actual;
  }
}

function toJob(r: Selectable<JobsTable>): Job {
  return {
    id: num(r.id),
    type: r.type as JobType,
    volumeId: r.volume_id,
    state: r.state,
    waitingFor: r.waiting_for,
    params: fromJson(r.params),
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    bytesDone: num(r.bytes_done),
    bytesTotal: num(r.bytes_total),
    setId: numOrNull(r.set_id),
    mover: r.mover,
    drive: r.drive,
    cartridge: r.cartridge,
    errorCode: r.error_code,
    error: r.error,
    result: r.result === null ? null : fromJson(r.result),
  };
}

function toEvent(r: Selectable<JobEventsTable>): JobEvent {
  return {
    id: num(r.id),
    jobId: num(r.job_id),
    at: r.at,
    kind: r.kind,
    state: r.state,
    message: r.message,
    data: r.data === null ? null : fromJson(r.data),
  };
}

/** Create a job and its first event. */
export async function createJob(db: Db, job: NewJob): Promise<Job> {
  const at = iso(job.at);
  const state = job.state ?? 'queued';
  return inTransaction(db, async (trx) => {
    const row = await trx
      .insertInto('jobs')
      .values({
        type: job.type,
        volume_id: job.volumeId ?? null,
        state,
        waiting_for: null,
        params: toJson(job.params),
        created_at: at,
        started_at: null,
        ended_at: null,
        bytes_done: 0,
        bytes_total: job.bytesTotal ?? 0,
        set_id: null,
        mover: null,
        drive: null,
        cartridge: null,
        error_code: null,
        error: null,
        result: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await addJobEvent(trx, num(row.id), { kind: 'state', state, message: `${job.type} job created`, at });
    return toJob(row);
  });
}

export async function getJob(db: Db, id: number): Promise<Job | undefined> {
  const r = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toJob(r);
}

export interface JobFilter {
  state?: string | readonly string[];
  type?: JobType;
  volumeId?: string;
  limit?: number;
}

/** Jobs, newest first. */
export async function listJobs(db: Db, filter: JobFilter = {}): Promise<Job[]> {
  let q = db.selectFrom('jobs').selectAll();
  if (typeof filter.state === 'string') q = q.where('state', '=', filter.state);
  else if (filter.state !== undefined) {
    if (filter.state.length === 0) return [];
    q = q.where('state', 'in', filter.state);
  }
  if (filter.type !== undefined) q = q.where('type', '=', filter.type);
  if (filter.volumeId !== undefined) q = q.where('volume_id', '=', filter.volumeId);
  q = q.orderBy('id', 'desc');
  if (filter.limit !== undefined) q = q.limit(filter.limit);
  return (await q.execute()).map(toJob);
}

/**
 * Move job `id` from `from` to `to` (any strings: the caller's state table decides) and record a `state`
 * event, in one transaction. Throws ERR_JOB_STATE (JobStateError) when the job is not in `from`.
 * A final state (done, failed, canceled) sets ended_at; any other sets started_at once.
 */
export async function transitionJob(
  db: Db,
  id: number,
  from: string,
  to: string,
  opts: TransitionOptions,
): Promise<Job> {
  const at = iso(opts.at);
  const final = FINAL_JOB_STATES.includes(to);
  return inTransaction(db, async (trx) => {
    const set: Updateable<JobsTable> = { state: to, waiting_for: opts.waitingFor ?? null };
    if (final) set.ended_at = at;
    if (opts.setId !== undefined) set.set_id = opts.setId;
    if (opts.error !== undefined) {
      set.error_code = opts.error?.code ?? null;
      set.error = opts.error?.message ?? null;
    }
    if (opts.result !== undefined) set.result = toJson(opts.result);
    const row = await trx
      .updateTable('jobs')
      .set(set)
      .$if(!final, (q) => q.set((eb) => ({ started_at: eb.fn.coalesce('started_at', eb.val(at)) })))
      .where('id', '=', id)
      .where('state', '=', from)
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      const now = await trx.selectFrom('jobs').select('state').where('id', '=', id).executeTakeFirst();
      if (!now) throw notFound('job', id);
      throw new JobStateError(id, from, now.state, to);
    }
    await addJobEvent(trx, id, { kind: 'state', state: to, message: opts.message, data: opts.data, at });
    return toJob(row);
  });
}

export interface JobProgress {
  bytesDone: number;
  bytesTotal?: number;
  cartridge?: string | null;
  mover?: string | null;
  drive?: string | null;
}

/** Progress fields only (no event: the runner throttles and streams progress itself). */
export async function updateJobProgress(db: Db, id: number, p: JobProgress): Promise<void> {
  const set: Updateable<JobsTable> = { bytes_done: p.bytesDone };
  if (p.bytesTotal !== undefined) set.bytes_total = p.bytesTotal;
  if (p.cartridge !== undefined) set.cartridge = p.cartridge;
  if (p.mover !== undefined) set.mover = p.mover;
  if (p.drive !== undefined) set.drive = p.drive;
  const r = await db.updateTable('jobs').set(set).where('id', '=', id).executeTakeFirst();
  if (r.numUpdatedRows !== 1n) throw notFound('job', id);
}

export async function addJobEvent(db: Db, jobId: number, e: NewJobEvent): Promise<JobEvent> {
  const row = await db
    .insertInto('job_events')
    .values({
      job_id: jobId,
      at: iso(e.at),
      kind: e.kind,
      state: e.state ?? null,
      message: e.message,
      data: e.data === undefined ? null : toJson(e.data),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toEvent(row);
}

/** Events of a job in order; with `afterId`, only those after it (for a stream that resumes). */
export async function listJobEvents(db: Db, jobId: number, afterId?: number): Promise<JobEvent[]> {
  let q = db.selectFrom('job_events').selectAll().where('job_id', '=', jobId);
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  return (await q.orderBy('id').execute()).map(toEvent);
}

/** At server start: every job not in a final state becomes `failed` with `message`. Returns their ids. */
export async function interruptRunningJobs(db: Db, now: Instant, message: string): Promise<number[]> {
  return inTransaction(db, async (trx) => {
    const rows = await trx
      .selectFrom('jobs')
      .select(['id', 'state'])
      .where('state', 'not in', FINAL_JOB_STATES)
      .orderBy('id')
      .execute();
    for (const r of rows) {
      await transitionJob(trx, num(r.id), r.state, 'failed', {
        message,
        at: now,
        error: { code: 'ERR_INTERRUPTED', message },
      });
    }
    return rows.map((r) => num(r.id));
  });
}
