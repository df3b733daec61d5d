import cliProgress from 'cli-progress';
import { STATE_LABELS, isFinal } from '../jobs/states.ts';
import type { JobEvent, JobProgress, JobView } from '../jobs/types.ts';
import type { ServerClient } from '../server/client.ts';
import { formatBytes } from '../util/units.ts';
import { formatEta, waitingText } from '../jobs/progress-text.ts';

// Drawing a running job: a live bar on a TTY (phase, bytes, MB/s, ETA, cartridge, and while
// waiting for quiet writes the time since the last write), one line per state change otherwise.

const BAR_WIDTH = 24;
const REDRAW_MS = 200;
const POLL_MS = 500;

/** What one line of the bar says about a job's progress, `sinceMs` after it was read. */
export function progressLine(p: JobProgress, sinceMs = 0): string {
  const waiting = waitingText(p, sinceMs);
  if (waiting !== null) return waiting;
  const parts = [STATE_LABELS[p.phase].padEnd(9)];
  if (p.bytesTotal > 0) {
    const frac = Math.min(1, p.bytesDone / p.bytesTotal);
    const n = Math.round(frac * BAR_WIDTH);
    parts.push(`[${'█'.repeat(n)}${'░'.repeat(BAR_WIDTH - n)}] ${(frac * 100).toFixed(0).padStart(3)}%`);
    parts.push(`${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`);
    if (p.mbPerSecond > 0) parts.push(`${p.mbPerSecond.toFixed(1)} MB/s`);
    if (p.etaSeconds !== null) parts.push(`ETA ${formatEta(p.etaSeconds)}`);
  }
  if (p.cartridge) parts.push(p.cartridge);
  return parts.join('  ');
}

/** The line a state change prints on a non-TTY. */
export function stateLine(e: JobEvent): string {
  const label = STATE_LABELS[e.state!];
  // The job's own words when they already say what it waits for.
  if (/^waiting\b/.test(e.message)) return `job ${e.job}: ${e.message}`;
  const msg = e.message && e.message !== e.state && e.message !== label ? `: ${e.message}` : '';
  return `job ${e.job}: ${label}${msg}`;
}

export interface WaitOptions {
  /** Where progress goes (stderr). */
  stream?: NodeJS.WriteStream;
  /** Draw nothing (e.g. --json on a non-TTY). */
  quiet?: boolean;
}

/** Follow a job until it ends, drawing its progress; resolves with its final view. */
export async function waitForJob(client: ServerClient, job: JobView, opts: WaitOptions = {}): Promise<JobView> {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  let latest = job;
  let readAt = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  let poll: NodeJS.Timeout | undefined;
  let stopped = false;
  if (tty) {
    bar = new cliProgress.SingleBar({
      stream,
      hideCursor: true,
      clearOnComplete: true,
      fps: 1000 / REDRAW_MS,
      format: () => `job ${job.id} ${progressLine(latest.progress, Date.now() - readAt)}`,
    });
    bar.start(1, 0);
    const refresh = (): void => {
      if (stopped) return;
      client.getJob(job.id).then(
        (v) => {
          if (stopped) return;
          latest = v;
          readAt = Date.now();
          bar?.update(0);
          if (!isFinal(v.state)) poll = setTimeout(refresh, POLL_MS);
        },
        () => {
          if (!stopped) poll = setTimeout(refresh, POLL_MS);
        },
      );
    };
    refresh();
  }
  const onEvent = (e: JobEvent): void => {
    if (e.kind !== 'state' || e.state === null) return;
    if (bar) {
      latest = { ...latest, state: e.state, progress: { ...latest.progress, phase: e.state } };
      bar.update(0);
    } else if (!opts.quiet) {
      stream.write(`${stateLine(e)}\n`);
    }
  };
  try {
    await client.follow(job.id, onEvent);
  } catch {
    // No event stream (a proxy in the way?): long-poll instead, without the per-state lines.
    await client.waitForJob(job.id);
  } finally {
    stopped = true;
    clearTimeout(poll);
    bar?.update(1); // complete: clearOnComplete takes the bar off the screen
    bar?.stop();
  }
  return client.getJob(job.id);
}
