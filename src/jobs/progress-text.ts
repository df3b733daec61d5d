import { STATE_LABELS } from './states.ts';
import type { JobProgress } from './types.ts';

/** Words for a job's progress, shared by the CLI's bar and the web console. */

/** While a job waits: what for, and while it waits for quiet writes, the time since the last write. */
export function waitingText(p: JobProgress, sinceMs = 0): string | null {
  if (!(p.phase === 'waiting-quiet' || (p.waitingFor !== null && p.bytesTotal === 0))) return null;
  const what = p.waitingFor ?? STATE_LABELS[p.phase];
  const head = /^waiting\b/.test(what) ? what : `waiting for ${what}`;
  if (p.lastWriteMsAgo === null) return head;
  return `${head} — last write ${((p.lastWriteMsAgo + sinceMs) / 1000).toFixed(1)} s ago`;
}

/** `42s`, `3m07s`, `2h05m`. */
export function formatEta(s: number): string {
  const t = Math.max(0, Math.round(s));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}
