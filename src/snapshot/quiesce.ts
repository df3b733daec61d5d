import { FerryError } from '../util/errors.ts';
import type { WriteActivity } from './snapshottable-device.ts';
import { quiesceWait } from '../metrics/metrics.ts';

/** How long no write may reach the LUN before a snapshot is taken (DESIGN.md, step 1). */
export const DEFAULT_QUIET_PERIOD_MS = 3000;
/** How long to wait for that quiet period before the snapshot, and the transfer, fail. */
export const DEFAULT_QUIESCE_TIMEOUT_MS = 80_000;
/** Longest timeout a request may ask for: anything beyond is a mistake, not a plan. */
export const MAX_QUIESCE_TIMEOUT_MS = 3_600_000;

/** `quiesced`: taken after a write pause; `crash-consistent`: taken at once (quiet period 0). */
export type SnapshotMode = 'quiesced' | 'crash-consistent';

export interface QuiesceOptions {
  quietPeriodMs?: number;
  timeoutMs?: number;
  /** Named in errors, e.g. "LUN 3". */
  label?: string;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Stop waiting (ERR_CANCELED, `take` not called) when this aborts. */
  signal?: AbortSignal;
}

export interface QuiesceResult<T> {
  value: T;
  mode: SnapshotMode;
  quietPeriodMs: number;
  timeoutMs: number;
  startedAt: number;
  /** The instant the write gate closed (clock ms). */
  takenAt: number;
  waitedMs: number;
  /** Latest write arrival/completion seen when it was taken (0: none ever). */
  lastWriteAt: number;
  writesWhileWaiting: number;
}

/** No quiet period came before the timeout. */
export class QuiesceTimeoutError extends FerryError {
  readonly waitedMs: number;
  readonly lastWriteAt: number;
  readonly writesWhileWaiting: number;
  constructor(
    label: string,
    quietPeriodMs: number,
    timeoutMs: number,
    waitedMs: number,
    lastWriteAt: number,
    writes: number,
    now: number,
  ) {
    super(
      'ERR_QUIESCE_TIMEOUT',
      `${label}: no ${quietPeriodMs} ms pause in writes came within the ${timeoutMs} ms timeout; ` +
        `waited ${waitedMs} ms, the last write came ${now - lastWriteAt} ms before giving up ` +
        `(${new Date(lastWriteAt).toISOString()}), ` +
        `${writes} write(s) arrived while waiting`,
    );
    this.waitedMs = waitedMs;
    this.lastWriteAt = lastWriteAt;
    this.writesWhileWaiting = writes;
  }
}

/** Reject periods that make no sense: negative, not whole, quiet longer than the timeout, over an hour. */
export function checkQuiescePeriods(quietPeriodMs: number, timeoutMs: number): void {
  const bad = (m: string): never => {
    throw new FerryError('ERR_BAD_PERIOD', m);
  };
  if (!Number.isSafeInteger(quietPeriodMs) || quietPeriodMs < 0)
    bad(`quiet period ${quietPeriodMs} ms must be a whole number ≥ 0`);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) bad(`timeout ${timeoutMs} ms must be a whole number ≥ 0`);
  if (timeoutMs > MAX_QUIESCE_TIMEOUT_MS) bad(`timeout ${timeoutMs} ms is over the ${MAX_QUIESCE_TIMEOUT_MS} ms limit`);
  if (quietPeriodMs > timeoutMs)
    bad(`quiet period ${quietPeriodMs} ms is longer than the ${timeoutMs} ms timeout: it could never come`);
}

/**
 * How long ago the latest write reached the device: 0 while one is in flight, null when none
 * has since it was opened. What a job waiting for quiet writes shows ("last write 1.2 s ago").
 */
export function lastWriteMsAgo(activity: WriteActivity, now: number = Date.now()): number | null {
  if (activity.writesInFlight > 0) return 0;
  if (activity.lastWriteAt === 0) return null;
  return Math.max(0, now - activity.lastWriteAt);
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A sleep that ends early when `signal` aborts. */
function abortableSleep(signal: AbortSignal): (ms: number) => Promise<void> {
  return (ms) =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
}

/**
 * Call `take` at the first instant no write has reached the device for the quiet period
 * (and none is in flight). `take` is called synchronously in the tick the quiet was seen, so
 * a take that closes a write gate synchronously (SnapshottableDevice.createSnapshot) freezes
 * exactly that instant. Quiet period 0 takes at once: crash-consistent.
 */
export async function takeWhenQuiet<T>(
  activity: WriteActivity,
  take: (at: { mode: SnapshotMode; waitedMs: number; quietPeriodMs: number; timeoutMs: number }) => Promise<T>,
  opts: QuiesceOptions = {},
): Promise<QuiesceResult<T>> {
  const quietPeriodMs = opts.quietPeriodMs ?? DEFAULT_QUIET_PERIOD_MS;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_QUIESCE_TIMEOUT_MS;
  checkQuiescePeriods(quietPeriodMs, timeoutMs);
  const now = opts.now ?? Date.now;
  const signal = opts.signal;
  const sleep = opts.sleep ?? (signal ? abortableSleep(signal) : realSleep);
  const startedAt = now();
  const deadline = startedAt + timeoutMs;
  const count0 = activity.writeCount;
  const done = async (mode: SnapshotMode, takenAt: number, value: Promise<T>): Promise<QuiesceResult<T>> => {
    const taken = await value;
    quiesceWait.observe({ mode }, (takenAt - startedAt) / 1000);
    return {
      value: taken,
      mode,
      quietPeriodMs,
      timeoutMs,
      startedAt,
      takenAt,
      waitedMs: takenAt - startedAt,
      lastWriteAt: activity.lastWriteAt,
      writesWhileWaiting: activity.writeCount - count0,
    };
  };
  const at = (mode: SnapshotMode, t: number) => ({ mode, waitedMs: t - startedAt, quietPeriodMs, timeoutMs });
  const checkCanceled = (): void => {
    if (signal?.aborted)
      throw new FerryError(
        'ERR_CANCELED',
        `snapshot of ${opts.label ?? 'LUN'} canceled while waiting for quiet writes: nothing was created`,
      );
  };
  checkCanceled();
  if (quietPeriodMs === 0) return done('crash-consistent', startedAt, take(at('crash-consistent', startedAt)));
  while (true) {
    checkCanceled();
    const t = now();
    const last = activity.lastWriteAt;
    if (activity.writesInFlight === 0 && (last === 0 || t - last >= quietPeriodMs))
      return done('quiesced', t, take(at('quiesced', t)));
    if (t >= deadline) {
      throw new QuiesceTimeoutError(
        opts.label ?? 'LUN',
        quietPeriodMs,
        timeoutMs,
        t - startedAt,
        last,
        activity.writeCount - count0,
        t,
      );
    }
    const wake = activity.writesInFlight > 0 ? t + Math.min(quietPeriodMs, 50) : last + quietPeriodMs;
    await sleep(Math.max(1, Math.min(wake, deadline) - t));
  }
}
