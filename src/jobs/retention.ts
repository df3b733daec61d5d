import type { RetainedSet } from '../catalog/queries/retention.ts';

/**
 * A pool's retention rules, as Proxmox Backup Server's prune options: keep the newest `keepLast`
 * sets, then the newest set of each of the last `keepDaily` days with a set, of `keepWeekly` ISO
 * weeks, of `keepMonthly` months (local time). A rule counts only periods no earlier rule kept a
 * set in, and only sets older than those. Sets are grouped by volume and mode; a protected set
 * is kept, and so is every set a kept incremental is built on. Everything else expires.
 */
export interface RetentionRules {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
}

export interface PruneMark {
  set: number;
  keep: boolean;
  /** "keepLast", "keepDaily 2026-12-03", "protected", "base of set 12", or "expired". */
  why: string;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** ISO 8601 week of a local date: "2026-W49" (the week's Thursday decides the year). */
export function isoWeek(d: Date): string {
  // Calendar arithmetic in UTC on the local date, so DST shifts do not matter.
  const t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7) + 3); // that week's Thursday
  const jan4 = new Date(Date.UTC(t.getUTCFullYear(), 0, 4)); // in week 1 by definition
  const week = 1 + Math.round(((t.getTime() - jan4.getTime()) / 86_400_000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
  return `${t.getUTCFullYear()}-W${pad(week)}`;
}

const RULES: Array<{ rule: keyof RetentionRules; period: (d: Date, id: number) => string }> = [
  { rule: 'keepLast', period: (_d, id) => `set ${id}` },
  { rule: 'keepDaily', period: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` },
  { rule: 'keepWeekly', period: (d) => isoWeek(d) },
  { rule: 'keepMonthly', period: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}` },
];

/** A rule set that keeps at least one set: some rule above 0. */
export function keepsSomething(r: RetentionRules): boolean {
  return RULES.some(({ rule }) => (r[rule] ?? 0) > 0);
}

/** Which of `sets` (one pool's kept sets) the rules keep, and why; every set gets a mark. */
export function pruneMarks(sets: readonly RetainedSet[], rules: RetentionRules): PruneMark[] {
  const marks = new Map<number, PruneMark>();
  const groups = new Map<string, RetainedSet[]>();
  for (const s of sets)
    groups.set(`${s.volumeId}\u0000${s.mode}`, [...(groups.get(`${s.volumeId}\u0000${s.mode}`) ?? []), s]);
  for (const group of groups.values()) {
    // Newest first: by the snapshot's time, then by id.
    const newest = [...group].sort((a, b) => Date.parse(b.snapshotAt) - Date.parse(a.snapshotAt) || b.id - a.id);
    // Decided by an earlier rule: kept (true), or an older set of a period a rule already kept (false).
    const decided = new Map<number, boolean>();
    for (const { rule, period } of RULES) {
      const n = rules[rule] ?? 0;
      if (n <= 0) continue;
      const at = (s: RetainedSet): string => period(new Date(Date.parse(s.snapshotAt)), s.id);
      const covered = new Set(newest.filter((s) => decided.get(s.id) === true).map(at));
      const taken = new Set<string>();
      for (const s of newest) {
        if (decided.has(s.id)) continue;
        const p = at(s);
        if (covered.has(p)) continue;
        if (taken.has(p)) {
          decided.set(s.id, false);
          continue;
        }
        if (taken.size >= n) break;
        taken.add(p);
        decided.set(s.id, true);
        marks.set(s.id, { set: s.id, keep: true, why: rule === 'keepLast' ? 'keepLast' : `${rule} ${p}` });
      }
    }
  }
  for (const s of sets)
    if (s.protected && !marks.has(s.id)) marks.set(s.id, { set: s.id, keep: true, why: 'protected' });
  // A kept incremental needs its chain: each base is kept too.
  const byId = new Map(sets.map((s) => [s.id, s]));
  for (const s of sets) {
    if (!marks.get(s.id)?.keep) continue;
    for (let b = s.baseSetId, from = s.id; b !== null; from = b, b = byId.get(b)?.baseSetId ?? null) {
      if (marks.get(b)?.keep) break;
      if (byId.has(b)) marks.set(b, { set: b, keep: true, why: `base of set ${from}` });
    }
  }
  return sets.map((s) => marks.get(s.id) ?? { set: s.id, keep: false, why: 'expired' });
}
