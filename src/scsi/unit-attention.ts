import type { AscCode } from './sense.ts';

/**
 * Unit attention conditions, queued per I_T nexus (SAM-5 5.14, SPC-4 5.14). A nexus seen for
 * the first time gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h), as tgtd and
 * libiscsi's connect loop expect. Each command other than INQUIRY, REPORT LUNS and REQUEST
 * SENSE reports (and clears) the oldest pending condition.
 */
export class UnitAttentions {
  private readonly pending = new Map<string, AscCode[]>();
  private readonly known = new Set<string>();
  /** Conditions queued per nexus beyond this are dropped (SAM-5 allows coalescing). */
  private static readonly MAX_QUEUED = 16;

  /** Record a command from `nexusKey`; a new nexus gets 29h/00h. */
  seen(nexusKey: string, powerOn: AscCode): void {
    if (this.known.has(nexusKey)) return;
    this.known.add(nexusKey);
    this.add(nexusKey, powerOn);
  }

  add(nexusKey: string, asc: AscCode): void {
    let q = this.pending.get(nexusKey);
    if (!q) this.pending.set(nexusKey, (q = []));
    if (q.length >= UnitAttentions.MAX_QUEUED) return;
    if (!q.some((c) => c[0] === asc[0] && c[1] === asc[1])) q.push(asc);
  }

  /** Queue for every nexus this LU knows, except `exceptKey` (the nexus that caused it). */
  addAll(asc: AscCode, exceptKey?: string): void {
    for (const k of this.known) if (k !== exceptKey) this.add(k, asc);
  }

  /** Replace whatever is queued: after a reset only the reset condition matters. */
  resetAll(asc: AscCode): void {
    for (const k of this.known) this.pending.set(k, [asc]);
  }

  take(nexusKey: string): AscCode | undefined {
    const q = this.pending.get(nexusKey);
    const c = q?.shift();
    if (q && q.length === 0) this.pending.delete(nexusKey);
    return c;
  }

  peek(nexusKey: string): AscCode | undefined {
    return this.pending.get(nexusKey)?.[0];
  }

  /** Remove one code (REPORT LUNS clears 3Fh/0Eh only). */
  clear(nexusKey: string, asc: AscCode): void {
    const q = this.pending.get(nexusKey);
    if (!q) return;
    const i = q.findIndex((c) => c[0] === asc[0] && c[1] === asc[1]);
    if (i >= 0) q.splice(i, 1);
  }

  forget(nexusKey: string): void {
    this.known.delete(nexusKey);
    this.pending.delete(nexusKey);
  }
}
