import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../util/errors.ts';
import { GroupCommit } from '../util/group-commit.ts';
import { KeyedMutex } from './locks.ts';
import { replaceFileDurably } from '../io/durable-file.ts';
import {
  CHG_HEADER_BYTES,
  bitmapBytes,
  decodeChangeBitmap,
  encodeChangeBitmap,
  hasGranule,
  setGranule,
} from './change-format.ts';

const CHANGES = 'changes.json';
const CHANGES_FORMAT = 'ferry-changes';
const CHANGES_VERSION = 1;
/** Epochs kept per LUN before the two oldest are merged (docs/snapshots.md, "Change tracking"). */
export const DEFAULT_MAX_EPOCHS = 32;
/** How far ahead of a sequential writer granules are marked durably, in bytes. */
const LOOK_AHEAD_BYTES = 16 * 1024 * 1024;
/** Sequential writes in a row before marks look ahead: a random writer never marks ahead. */
const LOOK_AHEAD_AFTER = 3;

/** One change-tracking epoch: writes between its start (a snapshot or a mark) and the next one's. */
export interface ChangeEpoch {
  /** The change id: `changed --since` it means "written after this instant". */
  id: string;
  startedAtMs: number;
  /** The snapshot whose creation started it; its id stays a name for this change id. */
  snapshotId?: string;
  /** Ids (change or snapshot) of younger epochs merged into this one to bound the space kept. */
  merged?: string[];
  /** Set when its bitmap could not be read back or written: changes through it are lost. */
  lost?: string;
}

interface ChangesFile {
  format: string;
  version: number;
  granuleBytes: number;
  granules: number;
  /** Oldest first; the last one is open (being written). */
  epochs: ChangeEpoch[];
}

export interface ChangeAnswer {
  /** One bit per granule, as in change-format.ts. */
  bits: Uint8Array;
  tracking: 'exact' | 'lost';
  /** Why tracking was lost, or why the answer covers more than was written. */
  reason?: string;
}

export interface ChangeMapUsage {
  granuleBytes: number;
  epochs: ChangeEpoch[];
  maxEpochs: number;
  /** Bytes of bitmaps kept on disk for this LUN. */
  bytes: number;
}

export interface ChangeMapOptions {
  granuleBytes: number;
  granules: number;
  maxEpochs?: number;
  now?: () => number;
  /** Epochs to start from when the directory has none yet: older stores' chunks (oldest first). */
  legacy?: () => Array<{
    id: string;
    snapshotId?: string;
    startedAtMs: number;
    granules: Iterable<number>;
    lost?: string;
  }>;
}

/**
 * A disk LUN's persistent change map, by epoch, independent of its snapshots.
 *
 * The open epoch has three bitmaps: `exact`, what was written; `wanted`, a superset being
 * written to its file; and `synced`, what its file holds durably. A write's granules are set in
 * `exact` and `wanted`, and the write waits until the file's bytes for them are written and
 * fdatasync'ed (group commit), so a write is never acknowledged before its granules are durably
 * marked. A sequential writer's marks run ahead of it (at most 16 MiB), and the next stretch is
 * marked in the background when it is half-way through, so it rarely waits at all. Starting an
 * epoch or closing the map seals
 * `exact` into the file whole; after a crash the open epoch's answer is what its file holds: it may cover
 * writes that were issued but never completed and granules marked ahead, never less.
 */
export class ChangeMap {
  readonly dir: string;
  readonly granuleBytes: number;
  readonly granules: number;
  readonly maxEpochs: number;
  /** Granules marked ahead of a sequential writer at the most. */
  private readonly maxAhead: number;
  private readonly now: () => number;
  private epochList: ChangeEpoch[];
  private exact: Uint8Array;
  private wanted: Uint8Array;
  private synced: Uint8Array;
  /** The latest mark commit, until it fails: it lands after every earlier one. */
  private lastCommit: Promise<void> | undefined;
  /** Granules up to here are wanted ahead of the sequential writer. */
  private markedTo = -1;
  /** A mark commit failed: the next one writes the whole bitmap. */
  private rewriteAll = false;
  /** The open epoch's file could not be reopened: marks fail. */
  private broken: FerryError | undefined;
  private closed = false;
  private fh: FileHandle | null;
  private readonly commits: GroupCommit<[number, number] | null>;
  /** Epoch starts, merges, queries and close, one at a time. */
  private readonly admin = new KeyedMutex();
  private lastEnd = -1;
  private streak = 0;
  private ahead = 0;

  private constructor(
    dir: string,
    opts: ChangeMapOptions,
    epochs: ChangeEpoch[],
    bits: Uint8Array,
    fh: FileHandle | null,
  ) {
    this.dir = dir;
    this.granuleBytes = opts.granuleBytes;
    this.granules = opts.granules;
    this.maxEpochs = opts.maxEpochs ?? DEFAULT_MAX_EPOCHS;
    this.maxAhead = Math.max(1, Math.floor(LOOK_AHEAD_BYTES / opts.granuleBytes));
    this.now = opts.now ?? Date.now;
    this.epochList = epochs;
    this.exact = bits;
    this.wanted = Uint8Array.from(bits);
    this.synced = Uint8Array.from(bits);
    this.fh = fh;
    this.commits = new GroupCommit((batch) => this.writeMarks(batch));
  }

  static async open(dir: string, opts: ChangeMapOptions): Promise<ChangeMap> {
    if (!Number.isSafeInteger(opts.maxEpochs ?? DEFAULT_MAX_EPOCHS) || (opts.maxEpochs ?? DEFAULT_MAX_EPOCHS) < 2) {
      throw new RangeError(`maxEpochs ${opts.maxEpochs} must be a whole number ≥ 2`);
    }
    let file = await readChanges(dir);
    if (file && (file.granuleBytes !== opts.granuleBytes || file.granules !== opts.granules)) {
      throw new FerryError(
        'ERR_SNAPSHOT_STORE',
        `change map ${join(dir, CHANGES)} is for ${file.granules} granules of ${file.granuleBytes} bytes, the LUN ` +
          `has ` +
          `${opts.granules} of ${opts.granuleBytes}`,
      );
    }
    if (!file) {
      // A LUN whose snapshots predate this map: their stores held its tracking, so they seed it.
      const legacy = opts.legacy?.() ?? [];
      file = {
        format: CHANGES_FORMAT,
        version: CHANGES_VERSION,
        granuleBytes: opts.granuleBytes,
        granules: opts.granules,
        epochs: [],
      };
      for (const l of legacy) {
        const bits = new Uint8Array(bitmapBytes(opts.granules));
        for (const g of l.granules) setGranule(bits, g);
        await writeSealed(dir, l.id, opts.granuleBytes, opts.granules, bits);
        file.epochs.push({
          id: l.id,
          startedAtMs: l.startedAtMs,
          snapshotId: l.snapshotId ?? l.id,
          ...(l.lost ? { lost: `its snapshot's store: ${l.lost}` } : {}),
        });
      }
      if (legacy.length) await writeChanges(dir, file);
    }
    const keep = new Set([CHANGES, ...file.epochs.map((e) => fileOf(e.id))]);
    for (const name of await readdir(dir)) {
      if ((name.endsWith('.chg') || name.endsWith('.chg.tmp')) && !keep.has(name))
        await rm(join(dir, name), { force: true });
    }
    const bits = new Uint8Array(bitmapBytes(opts.granules));
    const cur = file.epochs.at(-1);
    if (!cur) return new ChangeMap(dir, opts, file.epochs, bits, null);
    // The open epoch goes on: its bits as last written (sealed at a clean close, else the superset).
    try {
      const m = decodeChangeBitmap(await readFile(join(dir, fileOf(cur.id))));
      if (m.granules !== opts.granules || m.granuleBytes !== opts.granuleBytes)
        throw new Error(`it holds ${m.granules} granules of ${m.granuleBytes} bytes`);
      bits.set(m.bits);
    } catch (e) {
      cur.lost ??= `its change bitmap ${fileOf(cur.id)} could not be read back: ${(e as Error).message}`;
      await writeChanges(dir, file);
    }
    const fh = await openWorking(dir, cur.id, opts.granuleBytes, opts.granules, bits);
    return new ChangeMap(dir, opts, file.epochs, bits, fh);
  }

  /** Whether writes are tracked: some epoch has been started. */
  get active(): boolean {
    return this.fh !== null;
  }

  epochs(): ChangeEpoch[] {
    return this.epochList.map((e) => ({ ...e }));
  }

  usage(): ChangeMapUsage {
    return {
      granuleBytes: this.granuleBytes,
      epochs: this.epochs(),
      maxEpochs: this.maxEpochs,
      bytes: this.epochList.length * (CHG_HEADER_BYTES + bitmapBytes(this.granules)),
    };
  }

  /**
   * Mark granules [first, last] written. Resolves once they are durable; returns undefined when
   * they already are (the common case: nothing to wait for).
   */
  mark(first: number, last: number): Promise<void> | undefined {
    if (this.broken) return Promise.reject(this.broken);
    if (!this.fh) return undefined;
    // Onward from where the last write ended (or from within its last granule) is sequential;
    // a write inside that last granule neither grows nor breaks the streak, so a writer that
    // rewrites one granule over and over is never marked ahead.
    if (!(first === this.lastEnd - 1 && last === first)) {
      const sequential = first === this.lastEnd || first === this.lastEnd - 1;
      this.streak = sequential ? this.streak + 1 : 0;
      this.lastEnd = last + 1;
      this.ahead =
        this.streak >= LOOK_AHEAD_AFTER ? Math.min(this.maxAhead, Math.max(2 * this.ahead, last - first + 1)) : 0;
    }
    let unwanted = false;
    let unsynced = false;
    for (let g = first; g <= last; g++) {
      setGranule(this.exact, g);
      if (!hasGranule(this.wanted, g)) unwanted = true;
      else if (!hasGranule(this.synced, g)) unsynced = true;
    }
    if (!unwanted) {
      // Half-way through the stretch marked ahead: mark the next one without waiting for it.
      if (this.ahead > 0 && this.markedTo - last < this.ahead / 2 && this.markedTo < this.granules - 1) {
        void this.want(Math.max(first, this.markedTo + 1), last + this.ahead).catch(() => undefined);
      }
      // Wanted by an earlier mark still being written: the latest commit covers it.
      return unsynced ? (this.lastCommit ?? this.want(first, last)) : undefined;
    }
    return this.want(first, last + this.ahead);
  }

  /**
   * Mark granules [first, last] written, in memory and in the open epoch's file (page cache),
   * without waiting for an fdatasync. Only for a write whose bytes stay invisible after a power
   * loss until a later step that calls `sync()` first has made them durable: a chunk redirected by
   * its first write since a snapshot, mapped only by a committed map entry (snapshottable-device.ts).
   */
  markWritten(first: number, last: number): void {
    if (this.broken) throw this.broken;
    const fh = this.fh;
    if (!fh) return;
    let durable = true;
    for (let g = first; g <= last; g++) {
      setGranule(this.exact, g);
      setGranule(this.wanted, g);
      if (!hasGranule(this.synced, g)) durable = false;
    }
    if (durable) return;
    // Wanted by a mark whose commit may not have written it yet: write it now, whatever.
    writeAllSync(fh, this.wanted.subarray(first >> 3, (last >> 3) + 1), CHG_HEADER_BYTES + (first >> 3));
    // No commit under way covers these bits: a later mark() of them must start one, not wait for
    // (or, resolved long ago, skip) the last.
    this.lastCommit = undefined;
  }

  /** Resolves once every mark so far is durable, markWritten's included. */
  sync(): Promise<void> {
    return this.commits.add(null);
  }

  /** Set granules [first, last] wanted and commit them; the promise of that commit. */
  private want(first: number, last: number): Promise<void> {
    const end = Math.min(this.granules - 1, last);
    for (let g = first; g <= end; g++) setGranule(this.wanted, g);
    this.markedTo = Math.max(this.markedTo, end);
    const p = this.commits.add([first >> 3, (end >> 3) + 1]);
    this.lastCommit = p;
    p.catch(() => {
      if (this.lastCommit === p) this.lastCommit = undefined; // the next mark commits afresh
    });
    return p;
  }

  /**
   * Start a new epoch now; the caller holds writes (none in flight). The open epoch is sealed
   * first, so an interrupted start leaves it open and exact.
   */
  async startEpoch(snapshotId?: string): Promise<ChangeEpoch> {
    const release = await this.admin.lock(0);
    try {
      return await this.startEpochLocked(snapshotId);
    } finally {
      release();
    }
  }

  private async startEpochLocked(snapshotId?: string): Promise<ChangeEpoch> {
    if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
    await this.commits.add(null); // marks still being written land before the seal
    if (this.broken) throw this.broken;
    const id = `chg-${randomBytes(6).toString('hex')}`;
    const prev = this.epochList.at(-1);
    const fresh = new Uint8Array(bitmapBytes(this.granules));
    const epoch: ChangeEpoch = { id, startedAtMs: this.now(), ...(snapshotId ? { snapshotId } : {}) };
    const epochs = [...this.epochList, epoch];
    let fh: FileHandle | undefined;
    try {
      if (prev) await writeSealed(this.dir, prev.id, this.granuleBytes, this.granules, this.exact);
      fh = await openWorking(this.dir, id, this.granuleBytes, this.granules, fresh);
      await writeChanges(this.dir, this.file(epochs));
    } catch (e) {
      await fh?.close();
      await rm(join(this.dir, fileOf(id)), { force: true });
      if (prev) await this.reopen(prev);
      throw e;
    }
    // Swap before closing: a mark commit starting meanwhile writes to the new file, never to a
    // closed handle (one already under way finishes on the old file, which the seal replaced).
    const old = this.fh;
    this.fh = fh;
    this.epochList = epochs;
    this.exact = fresh;
    this.wanted = new Uint8Array(fresh.length);
    this.synced = new Uint8Array(fresh.length);
    this.lastCommit = undefined;
    this.markedTo = -1;
    this.rewriteAll = false;
    this.lastEnd = -1;
    this.streak = 0;
    this.ahead = 0;
    await old?.close();
    // The epoch has started: a merge that fails now is tried again at the next start.
    try {
      while (this.epochList.length > this.maxEpochs) await this.mergeOldest();
    } catch {
      // the epochs stay unmerged (more space, same answers)
    }
    return { ...epoch };
  }

  /**
   * Granules written after change id (or snapshot id) `since` and before `until` (or now).
   * An id inside a merged epoch answers from that epoch's start: more than was written, never less.
   */
  async changed(since: string, until?: string): Promise<ChangeAnswer> {
    // Epoch starts and merges wait: the list and its files stay as this answer reads them.
    const release = await this.admin.lock(0);
    try {
      return await this.changedLocked(since, until);
    } finally {
      release();
    }
  }

  private async changedLocked(since: string, until?: string): Promise<ChangeAnswer> {
    const from = this.find(since);
    let to = this.epochList.length;
    let toInside = false;
    if (until !== undefined) {
      const u = this.find(until);
      if (u.index < from.index || (u.index === from.index && from.inside && !u.inside)) {
        throw new FerryError('ERR_SNAPSHOT_ORDER', `${until} is older than ${since}`);
      }
      // A boundary inside a merged epoch can't cut it: the whole epoch counts.
      toInside = u.inside;
      to = u.inside ? u.index + 1 : u.index;
    }
    const bits = new Uint8Array(bitmapBytes(this.granules));
    let reason: string | undefined;
    if (from.inside || toInside) {
      const e = this.epochList[from.index];
      reason =
        `change ids were merged to keep at most ${this.maxEpochs} epochs; the answer covers epoch ${e.id} ` +
        `whole (from ${new Date(e.startedAtMs).toISOString()})`;
    }
    for (let i = from.index; i < to; i++) {
      const e = this.epochList[i];
      if (e.lost)
        return {
          bits: allSet(this.granules),
          tracking: 'lost',
          reason: `change tracking since ${since} was lost: epoch ${e.id}: ${e.lost}`,
        };
      let b: Uint8Array;
      if (i === this.epochList.length - 1) b = this.exact;
      else {
        try {
          const m = decodeChangeBitmap(await readFile(join(this.dir, fileOf(e.id))));
          if (!m.sealed || m.granules !== this.granules)
            throw new Error(m.sealed ? `it holds ${m.granules} granules` : 'it was never sealed');
          b = m.bits;
        } catch (err) {
          return {
            bits: allSet(this.granules),
            tracking: 'lost',
            reason:
              `change tracking since ${since} was lost: the bitmap of epoch ${e.id} cannot be read back: ` +
              `${(err as Error).message}`,
          };
        }
      }
      for (let k = 0; k < bits.length; k++) bits[k] |= b[k];
    }
    return { bits, tracking: 'exact', ...(reason ? { reason } : {}) };
  }

  /** Seal the open epoch (exact) and close its file: the next open answers exactly. */
  async close(): Promise<void> {
    const release = await this.admin.lock(0);
    try {
      await this.closeLocked();
    } finally {
      release();
    }
  }

  private async closeLocked(): Promise<void> {
    this.closed = true;
    if (!this.fh) return;
    await this.commits.add(null);
    const cur = this.epochList.at(-1) as ChangeEpoch;
    await this.fh.close();
    this.fh = null;
    await writeSealed(this.dir, cur.id, this.granuleBytes, this.granules, this.exact);
  }

  // ---- internals ----

  /**
   * The open epoch goes on after a failed start: its file was sealed (replaced), so it is
   * rewritten open with the exact bits and reopened. If that fails too, marks fail from now on.
   */
  private async reopen(cur: ChangeEpoch): Promise<void> {
    const old = this.fh;
    this.fh = null;
    await old?.close().catch(() => undefined);
    try {
      this.fh = await openWorking(this.dir, cur.id, this.granuleBytes, this.granules, this.exact);
    } catch (e) {
      this.broken = new FerryError(
        'ERR_CHANGE_MAP',
        `the change bitmap ${join(this.dir, fileOf(cur.id))} cannot be written (${(e as Error).message}): writes ` +
          `fail ` +
          `until the storage node restarts`,
      );
      return;
    }
    this.wanted = Uint8Array.from(this.exact);
    this.synced = Uint8Array.from(this.exact);
    this.lastCommit = undefined;
    this.markedTo = -1;
    this.rewriteAll = false;
  }

  /** Whether `id` names an epoch (change id, snapshot id or merged id). */
  knows(id: string): boolean {
    return this.epochList.some((e) => e.id === id || e.snapshotId === id || e.merged?.includes(id));
  }

  private find(id: string): { index: number; inside: boolean } {
    for (let i = 0; i < this.epochList.length; i++) {
      const e = this.epochList[i];
      if (e.id === id || e.snapshotId === id) return { index: i, inside: false };
      if (e.merged?.includes(id)) return { index: i, inside: true };
    }
    throw new FerryError('ERR_CHANGE_ID_NOT_FOUND', `no change id or snapshot ${id} in this LUN's change tracking`);
  }

  private file(epochs: ChangeEpoch[]): ChangesFile {
    return {
      format: CHANGES_FORMAT,
      version: CHANGES_VERSION,
      granuleBytes: this.granuleBytes,
      granules: this.granules,
      epochs,
    };
  }

  /**
   * Write the byte ranges of the wanted bitmap that marks changed, then fdatasync. A failure fails
   * the batch's writes, and the next batch writes the whole bitmap.
   */
  private async writeMarks(batch: Array<[number, number] | null>): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    const all: Array<[number, number]> = this.rewriteAll ? [[0, this.wanted.length]] : [];
    const sorted = [...all, ...batch.filter((r): r is [number, number] => r !== null)].sort((a, b) => a[0] - b[0]);
    const ranges: Array<[number, number, Uint8Array]> = [];
    let i = 0;
    while (i < sorted.length) {
      const lo = sorted[i][0];
      let hi = sorted[i++][1];
      while (i < sorted.length && sorted[i][0] <= hi) hi = Math.max(hi, sorted[i++][1]);
      ranges.push([lo, hi, this.wanted.slice(lo, hi)]);
    }
    const synced = this.synced;
    // A sync() in the batch: every wanted bit is in the file by now (markWritten's too), so durable after this.
    const wantedNow = batch.includes(null) ? this.wanted.slice() : undefined;
    try {
      for (const [lo, , bytes] of ranges) writeAllSync(fh, bytes, CHG_HEADER_BYTES + lo);
      await fh.datasync();
    } catch (e) {
      if (this.synced === synced) this.rewriteAll = true;
      throw e;
    }
    if (this.synced === synced) this.rewriteAll = false;
    if (this.synced === synced)
      for (const [lo, , bytes] of ranges) for (let k = 0; k < bytes.length; k++) synced[lo + k] |= bytes[k];
    if (this.synced === synced && wantedNow) for (let k = 0; k < wantedNow.length; k++) synced[k] |= wantedNow[k];
  }

  /** Fold the second-oldest epoch into the oldest: its id then names the merged one. */
  private async mergeOldest(): Promise<void> {
    const [a, b] = this.epochList;
    const merged: ChangeEpoch = {
      ...a,
      merged: [...(a.merged ?? []), b.id, ...(b.snapshotId ? [b.snapshotId] : []), ...(b.merged ?? [])],
    };
    const lost = a.lost ?? b.lost;
    if (lost) merged.lost = lost;
    else {
      try {
        const ma = decodeChangeBitmap(await readFile(join(this.dir, fileOf(a.id))));
        const mb = decodeChangeBitmap(await readFile(join(this.dir, fileOf(b.id))));
        for (let k = 0; k < ma.bits.length; k++) ma.bits[k] |= mb.bits[k];
        await writeSealed(this.dir, a.id, this.granuleBytes, this.granules, ma.bits);
      } catch (e) {
        merged.lost = `merging epoch ${b.id} into it failed: ${(e as Error).message}`;
      }
    }
    const epochs = [merged, ...this.epochList.slice(2)];
    await writeChanges(this.dir, this.file(epochs));
    this.epochList = epochs;
    await rm(join(this.dir, fileOf(b.id)), { force: true });
  }
}

function allSet(granules: number): Uint8Array {
  const b = new Uint8Array(bitmapBytes(granules)).fill(0xff);
  if (granules & 7) b[b.length - 1] = (1 << (granules & 7)) - 1;
  return b;
}

function fileOf(id: string): string {
  return `${id}.chg`;
}

/**
 * Synchronous, so bytes sliced from `wanted` land before anything can change it: a write of an
 * older slice never lands after a newer one (markWritten writes too). A bitmap range is small.
 */
function writeAllSync(fh: FileHandle, data: Uint8Array, position: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fh.fd, data, off, data.length - off, position + off);
}

/** Replace `<id>.chg` whole with a sealed bitmap: temp file, fdatasync, rename, fsync the directory. */
async function writeSealed(
  dir: string,
  id: string,
  granuleBytes: number,
  granules: number,
  bits: Uint8Array,
): Promise<void> {
  await replaceFileDurably(join(dir, fileOf(id)), encodeChangeBitmap({ granuleBytes, granules, sealed: true, bits }));
}

/** The open epoch's file, rewritten open (so bits may be added in place) and kept open. */
async function openWorking(
  dir: string,
  id: string,
  granuleBytes: number,
  granules: number,
  bits: Uint8Array,
): Promise<FileHandle> {
  await replaceFileDurably(join(dir, fileOf(id)), encodeChangeBitmap({ granuleBytes, granules, sealed: false, bits }));
  return open(join(dir, fileOf(id)), 'r+');
}

async function readChanges(dir: string): Promise<ChangesFile | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, CHANGES), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let f: ChangesFile;
  try {
    f = JSON.parse(text) as ChangesFile;
    if (typeof f !== 'object' || f === null) throw new Error('not an object');
  } catch {
    // Unreadable: set aside, and track afresh. Every older change id is then unknown, so the
    // next incremental of this LUN finds no base to build on and is a full one.
    await rename(join(dir, CHANGES), join(dir, `${CHANGES}.unreadable-${Date.now()}`));
    return undefined;
  }
  if (f.format !== CHANGES_FORMAT || f.version !== CHANGES_VERSION || !Array.isArray(f.epochs)) {
    throw new FerryError(
      'ERR_SNAPSHOT_STORE',
      `${join(dir, CHANGES)} is not a ${CHANGES_FORMAT} v${CHANGES_VERSION} file`,
    );
  }
  return f;
}

async function writeChanges(dir: string, f: ChangesFile): Promise<void> {
  await replaceFileDurably(join(dir, CHANGES), JSON.stringify(f, null, 2) + '\n');
}
