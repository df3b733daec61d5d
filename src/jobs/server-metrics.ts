import type { Db } from '../catalog/queries/common.ts';
import type { Job } from '../catalog/queries/jobs.ts';
import { listCartridges, listReservations } from '../catalog/queries/cartridges.ts';
import { listSets } from '../catalog/queries/sets.ts';
import { cartridges, driveBusy, jobDuration, jobsTotal, lastSuccess, movedBytes } from '../metrics/metrics.ts';

// The backup server's metrics (src/metrics/metrics.ts), kept up to date as jobs end and media
// change: the catalog is read then, never when Prometheus scrapes.

const seconds = (iso: string): number => Date.parse(iso) / 1000;

/** A job ended: count it by final state, time it, and for a completed one, what it moved and when. */
export function jobEnded(j: Job): void {
  jobsTotal.inc({ type: j.type, state: j.state });
  if (j.endedAt) jobDuration.observe({ type: j.type }, Math.max(0, seconds(j.endedAt) - seconds(j.createdAt)));
  if (j.state !== 'done') return;
  if (j.type === 'backup' && j.volumeId && j.endedAt) lastSuccess.set({ volume: j.volumeId }, seconds(j.endedAt));
  if ((j.type === 'backup' || j.type === 'restore') && j.bytesDone > 0)
    movedBytes.inc({ mover: j.mover ?? 'unknown', direction: j.type }, j.bytesDone);
}

/** At server start: the last completed backup of each volume, from its sets. */
export async function loadLastSuccess(db: Db): Promise<void> {
  const last = new Map<string, string>();
  for (const s of await listSets(db)) {
    const had = last.get(s.volumeId);
    if (!had || s.endedAt > had) last.set(s.volumeId, s.endedAt);
  }
  for (const [volume, at] of last) lastSuccess.set({ volume }, seconds(at));
}

const drivesSeen = new Set<string>();

/** Drives to show idle before any job holds them (stand-alone drives of the config). */
export function knownDrives(names: readonly string[]): void {
  for (const n of names) drivesSeen.add(n);
}

/** Cartridges by pool and state, and the drives jobs hold: after a job changes state or media change. */
export async function refreshMedia(db: Db): Promise<void> {
  const counts = new Map<string, number>();
  for (const c of await listCartridges(db)) {
    const key = `${c.pool ?? 'scratch'}\u0000${c.state}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  cartridges.reset();
  for (const [key, n] of counts) {
    const [pool, state] = key.split('\u0000');
    cartridges.set({ pool, state }, n);
  }
  const held = new Set(
    (await listReservations(db)).filter((r) => r.resource.startsWith('drive:')).map((r) => r.resource.slice(6)),
  );
  for (const d of held) drivesSeen.add(d);
  for (const d of drivesSeen) driveBusy.set({ drive: d }, held.has(d) ? 1 : 0);
}
