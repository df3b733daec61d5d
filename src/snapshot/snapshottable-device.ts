import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type BlockDevice, checkRange, checkWhole } from '../block/block-device.ts';
import { FerryError } from '../util/errors.ts';
import { ChangeMap, type ChangeAnswer, type ChangeEpoch, type ChangeMapUsage } from './change-map.ts';
import { KeyedMutex, RwLock } from './locks.ts';
import {
  MANIFEST,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type Manifest,
  type ManifestEntry,
  RedirectMap,
  readBootId,
  readManifest,
  writeManifest,
} from './row-store.ts';

/** Redirect-on-write granularity, and the changed-block tracking granularity. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Chunks copied back into the image per step (and fdatasync) once no snapshot is left. */
const FOLD_BATCH = 256;

export interface SnapshotInfo {
  id: string;
  /** The frozen instant (ISO 8601). */
  createdAt: string;
  createdAtMs: number;
  /** The change id of its instant: `changed --since` it works after the snapshot is deleted. */
  changeId?: string;
  /** Chunks written on the LUN since it, before the next one (kept apart from the image for it). */
  preservedChunks: number;
  /** Set when the snapshot is unusable (none is with the redirect format: a damaged map fails the open). */
  damaged?: string;
  /** What the creator recorded with it (e.g. quiesce mode and wait), kept in the manifest. */
  meta?: Record<string, unknown>;
}

export interface WriteActivity {
  /** Writes that arrived (WRITE, WRITE SAME, UNMAP, COMPARE AND WRITE … all end here). */
  readonly writeCount: number;
  /** Clock time of the latest write arrival or completion; 0 when none yet. */
  readonly lastWriteAt: number;
  readonly writesInFlight: number;
}

export interface SnapshottableOptions {
  /** Directory of the snapshot state (created); e.g. `<image>.snapshots`. */
  dir: string;
  chunkBytes?: number;
  /** Clock in ms, for write timestamps and snapshot instants. */
  now?: () => number;
  /** Change-tracking epochs kept before the oldest are merged (change-map.ts). */
  maxEpochs?: number;
  /**
   * The kernel boot id (default: /proc/sys/kernel/random/boot_id; null: unknown). Tests pass
   * another one to reopen as after a power loss.
   */
  bootId?: Buffer | null;
  /** A COMMIT of the redirect map follows first writes within this many ms (row-store.ts; 0: on flush only). */
  commitAfterMs?: number;
}

/**
 * A disk LUN's BlockDevice with redirect-on-write snapshots kept beside it.
 *
 * While a snapshot lives, the image holds the oldest snapshot's content and is not written.
 * The first write to a chunk after the newest snapshot goes to a new slot in chunks.dat,
 * mapped in that snapshot's layer (row-store.ts); later writes to it go to the same slot. A
 * snapshot reads a chunk from the newest layer older than itself that holds it, else from the
 * image; the LUN, from the newest layer. With no snapshot left, the mapped chunks are copied
 * back into the image and writes go straight to it again.
 *
 * Changed-block tracking is the LUN's change map (change-map.ts), apart from the layers: each
 * snapshot starts an epoch, and `changed` answers by change id after the snapshot is gone.
 */
export class SnapshottableDevice implements BlockDevice {
  readonly base: BlockDevice;
  readonly dir: string;
  readonly chunkBytes: number;
  readonly readOnly = false;
  readonly changes: ChangeMap;
  private readonly now: () => number;
  private readonly snaps: ManifestEntry[];
  private nextLayer: number;
  private readonly redirect: RedirectMap;
  private readonly chunkLocks = new KeyedMutex();
  /** Reads and writes share it; a fold step, a collection and a delete take it alone. */
  private readonly structure = new RwLock();
  private readonly admin = new KeyedMutex();
  private count = 0;
  private last = 0;
  private inflight = 0;
  private gateHolds = 0;
  private gateWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private closed = false;
  /** Snapshots requested and not yet made (or failed): the fold stops before its next step. */
  private creating = 0;

  private constructor(
    base: BlockDevice,
    dir: string,
    manifest: Manifest,
    now: () => number,
    redirect: RedirectMap,
    changes: ChangeMap,
  ) {
    this.base = base;
    this.changes = changes;
    this.dir = dir;
    this.chunkBytes = manifest.chunkBytes;
    this.now = now;
    this.snaps = manifest.snapshots;
    this.nextLayer = manifest.nextLayer;
    this.redirect = redirect;
  }

  get blockSize(): number {
    return this.base.blockSize;
  }
  get blockCount(): number {
    return this.base.blockCount;
  }
  get chunkBlocks(): number {
    return this.chunkBytes / this.base.blockSize;
  }
  get chunkCount(): number {
    return Math.ceil(this.base.blockCount / this.chunkBlocks);
  }
  get writeCount(): number {
    return this.count;
  }
  get lastWriteAt(): number {
    return this.last;
  }
  get writesInFlight(): number {
    return this.inflight;
  }

  static async open(base: BlockDevice, opts: SnapshottableOptions): Promise<SnapshottableDevice> {
    const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (
      !Number.isSafeInteger(chunkBytes) ||
      chunkBytes < base.blockSize ||
      chunkBytes % base.blockSize !== 0 ||
      chunkBytes > 16 * 1024 * 1024
    ) {
      throw new RangeError(
        `chunk size ${chunkBytes} must be a multiple of the ${base.blockSize}-byte block, at most 16 MiB`,
      );
    }
    await mkdir(opts.dir, { recursive: true });
    let manifest = await readManifest(opts.dir);
    if (!manifest) {
      manifest = {
        format: MANIFEST_FORMAT,
        version: MANIFEST_VERSION,
        blockSize: base.blockSize,
        blockCount: base.blockCount,
        chunkBytes,
        nextLayer: 1,
        snapshots: [],
      };
      await writeManifest(opts.dir, manifest);
    } else if (manifest.blockSize !== base.blockSize || manifest.blockCount !== base.blockCount) {
      throw new FerryError(
        'ERR_SNAPSHOT_STORE',
        `snapshot store ${opts.dir} is for ${manifest.blockCount} blocks of ${manifest.blockSize} bytes, the LUN has ` +
          `${base.blockCount} of ${base.blockSize}`,
      );
    }
    const redirect = await RedirectMap.open(
      opts.dir,
      { chunkBytes: manifest.chunkBytes, blockSize: base.blockSize, blockCount: base.blockCount },
      {
        mustExist: manifest.snapshots.length > 0,
        bootId: opts.bootId === undefined ? readBootId() : (opts.bootId ?? undefined),
        ...(opts.commitAfterMs === undefined ? {} : { commitAfterMs: opts.commitAfterMs }),
      },
    );
    try {
      const top = redirect.layers.at(-1)?.id ?? 0;
      if (manifest.version !== MANIFEST_VERSION || manifest.nextLayer <= top) {
        // An empty version-1 directory, or layer ids to keep growing past.
        manifest = { ...manifest, version: MANIFEST_VERSION, nextLayer: Math.max(manifest.nextLayer, top + 1) };
        await writeManifest(opts.dir, manifest);
      }
      // Files nothing names: an interrupted manifest replace, or stores of the old format.
      for (const name of await readdir(opts.dir)) {
        if (name !== MANIFEST && (name.endsWith('.cow') || name.endsWith('.tmp')))
          await rm(join(opts.dir, name), { force: true });
      }
      const now = opts.now ?? Date.now;
      const snaps = manifest.snapshots;
      const changes = await ChangeMap.open(opts.dir, {
        granuleBytes: manifest.chunkBytes,
        granules: Math.ceil(base.blockCount / (manifest.chunkBytes / base.blockSize)),
        now,
        ...(opts.maxEpochs === undefined ? {} : { maxEpochs: opts.maxEpochs }),
        legacy: () =>
          snaps.map((e, i) => ({
            // A map set aside as unreadable is seeded again: the snapshots keep the change ids they gave.
            id: e.changeId ?? e.id,
            snapshotId: e.id,
            startedAtMs: e.createdAtMs,
            granules: chunksBetween(redirect, e.layer, snaps[i + 1]?.layer ?? Infinity).keys(),
          })),
      });
      redirect.beforeCommit = () => changes.sync();
      // Entries replayed past the last COMMIT (a restart in the same boot) are committed by the
      // compaction: their chunks' marks, written without an fdatasync, are made durable first.
      for (const c of redirect.recovered) changes.markWritten(c, c);
      await changes.sync();
      await redirect.compact();
      const dev = new SnapshottableDevice(base, opts.dir, manifest, now, redirect, changes);
      // Finish what a crash interrupted: drop unneeded slots, fold back once no snapshot is left.
      await dev.collect();
      await dev.fold();
      return dev;
    } catch (e) {
      await redirect.close();
      throw e;
    }
  }

  // ---- BlockDevice ----

  async read(lba: number, blockCount: number): Promise<Uint8Array> {
    checkRange(this, lba, blockCount);
    const buf = Buffer.allocUnsafe(blockCount * this.blockSize);
    await this.readInto(lba, buf);
    return buf;
  }
  readInto(lba: number, target: Uint8Array): Promise<void> {
    if (this.redirect.layers.length === 0) return this.base.readInto(lba, target);
    return this.readLayers(lba, target, Infinity);
  }
  async write(lba: number, data: Uint8Array): Promise<void> {
    const blockCount = checkWhole(this, data.length);
    checkRange(this, lba, blockCount);
    this.count++;
    this.last = this.now();
    while (this.gateHolds > 0) await new Promise<void>((r) => this.gateWaiters.push(r));
    if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
    this.inflight++;
    try {
      if (blockCount === 0) return;
      if (this.redirect.layers.length === 0 && this.snaps.length === 0) {
        // Nothing mapped and no snapshot: the image is the LUN. Its change mark is durable first.
        const marked = this.changes.mark(
          Math.floor(lba / this.chunkBlocks),
          Math.floor((lba + blockCount - 1) / this.chunkBlocks),
        );
        if (marked) await marked;
        await this.base.write(lba, data);
      } else await this.writeLayers(lba, data);
    } finally {
      this.inflight--;
      this.last = this.now();
      if (this.inflight === 0 && this.drainWaiters.length > 0) {
        const w = this.drainWaiters;
        this.drainWaiters = [];
        for (const f of w) f();
      }
    }
  }
  /** SYNCHRONIZE CACHE: the image, and the redirected chunks with the map that names them. */
  async flush(): Promise<void> {
    await Promise.all([this.base.flush(), this.redirect.commit()]);
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let failure: { e: unknown } | undefined;
    const step = async (f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (e) {
        failure ??= { e };
      }
    };
    try {
      await this.closeGate();
      // A fold step, a snapshot create or delete under way finishes first; the fold stops after it.
      const releaseAdmin = await this.admin.lock(0);
      releaseAdmin();
      // Each step runs even if one before failed: the files are closed either way.
      await step(() => this.redirect.commit());
      await step(() => this.changes.close());
      await step(() => this.redirect.close());
      await step(() => this.base.close());
    } finally {
      // Writes that waited at the gate now fail instead of hanging, and so do later ones.
      const w = this.gateWaiters;
      this.gateWaiters = [];
      this.gateHolds = 0;
      for (const f of w) f();
    }
    if (failure) throw failure.e;
  }

  // ---- snapshots ----

  snapshots(): SnapshotInfo[] {
    return this.snaps.map((e) => this.info(e));
  }

  snapshot(id: string): SnapshotInfo | undefined {
    const e = this.snaps.find((x) => x.id === id);
    return e && this.info(e);
  }

  /**
   * Freeze the LUN's content now. The write gate closes synchronously, before this returns, so
   * a caller that checked for quiet in the same tick gets exactly that instant; writes in flight
   * finish first (they are before), writes arriving later wait (they are after).
   */
  createSnapshot(meta?: Record<string, unknown>): Promise<SnapshotInfo> {
    const drained = this.closeGate();
    this.creating++;
    return this.finishCreate(drained, meta);
  }

  private async finishCreate(drained: Promise<void>, meta: Record<string, unknown> | undefined): Promise<SnapshotInfo> {
    let made = false;
    try {
      await drained;
      if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
      const createdAtMs = this.now();
      const releaseAdmin = await this.admin.lock(0);
      try {
        if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
        // Everything the snapshot will read is durable: the image, chunks.dat and its map.
        await this.flush();
        const id = `snap-${randomBytes(6).toString('hex')}`;
        const epoch = await this.changes.startEpoch(id);
        const entry: ManifestEntry = { id, createdAtMs, layer: this.nextLayer, changeId: epoch.id };
        if (meta) entry.meta = meta;
        await writeManifest(this.dir, this.manifest([...this.snaps, entry], this.nextLayer + 1));
        this.nextLayer++;
        this.snaps.push(entry);
        made = true;
        return this.info(entry);
      } finally {
        releaseAdmin();
      }
    } finally {
      this.creating--;
      this.openGate();
      // A fold this request stopped goes on if no snapshot came of it.
      if (!made && this.creating === 0 && this.snaps.length === 0 && this.redirect.layers.length > 0 && !this.closed)
        void this.fold().catch(() => undefined); // finished at the next delete or open otherwise
    }
  }

  /**
   * Delete one snapshot; the others keep their content. Only the map changes (slots no view
   * needs are freed), except for the last snapshot: then the mapped chunks go back into the image.
   */
  async deleteSnapshot(id: string): Promise<void> {
    const releaseAdmin = await this.admin.lock(0);
    try {
      if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
      const i = this.snaps.findIndex((s) => s.id === id);
      if (i < 0) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id}`);
      const releaseRw = await this.structure.write();
      try {
        await writeManifest(
          this.dir,
          this.manifest(
            this.snaps.filter((_, j) => j !== i),
            this.nextLayer,
          ),
        );
        this.snaps.splice(i, 1);
      } finally {
        releaseRw();
      }
      await this.collect();
    } finally {
      releaseAdmin();
    }
    await this.fold();
  }

  /** A read-only BlockDevice of the snapshot's content. */
  openSnapshot(id: string): BlockDevice {
    const e = this.snaps.find((x) => x.id === id);
    if (!e) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id}`);
    return new SnapshotView(this, e);
  }

  /**
   * Start a change-tracking epoch without a snapshot: writes in flight finish before it, writes
   * arriving later wait until it has started. Returns its change id.
   */
  async markChanges(): Promise<ChangeEpoch> {
    const drained = this.closeGate();
    try {
      await drained;
      if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
      // Writes before the mark are durable first: after a power loss none reverts to older data
      // unreported by changed(since this mark).
      await this.flush();
      return await this.changes.startEpoch();
    } finally {
      this.openGate();
    }
  }

  /**
   * Chunks written on the LUN after change id (or snapshot id) `since` and before `until`
   * (or now), as a bitmap of chunks.
   */
  changed(since: string, until?: string): Promise<ChangeAnswer> {
    return this.changes.changed(since, until);
  }

  changeTracking(): ChangeMapUsage {
    return this.changes.usage();
  }

  /** SnapshotView's read. */
  async readSnapshot(entry: ManifestEntry, lba: number, target: Uint8Array): Promise<void> {
    const releaseRw = await this.structure.read();
    try {
      if (!this.snaps.includes(entry))
        throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${entry.id} was deleted`);
      await this.readResolved(lba, target, entry.layer);
    } finally {
      releaseRw();
    }
  }

  // ---- internals ----

  private manifest(snapshots: ManifestEntry[], nextLayer: number): Manifest {
    return {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      blockSize: this.blockSize,
      blockCount: this.blockCount,
      chunkBytes: this.chunkBytes,
      nextLayer,
      snapshots,
    };
  }

  private info(e: ManifestEntry): SnapshotInfo {
    const i = this.snaps.indexOf(e);
    const s: SnapshotInfo = {
      id: e.id,
      createdAt: new Date(e.createdAtMs).toISOString(),
      createdAtMs: e.createdAtMs,
      changeId: e.changeId ?? e.id,
      preservedChunks: chunksBetween(this.redirect, e.layer, this.snaps[i + 1]?.layer ?? Infinity).size,
    };
    if (e.meta) s.meta = e.meta;
    return s;
  }

  /** Close the write gate now (synchronously); resolves once writes in flight have finished. */
  private closeGate(): Promise<void> {
    this.gateHolds++;
    if (this.inflight === 0) return Promise.resolve();
    return new Promise<void>((r) => this.drainWaiters.push(r));
  }

  private openGate(): void {
    if (--this.gateHolds > 0) return;
    const w = this.gateWaiters;
    this.gateWaiters = [];
    for (const f of w) f();
  }

  private async readLayers(lba: number, target: Uint8Array, below: number): Promise<void> {
    const releaseRw = this.structure.tryRead() ?? (await this.structure.read());
    try {
      await this.readResolved(lba, target, below);
    } finally {
      releaseRw();
    }
  }

  /** Read through the layers below `below` (Infinity: the LUN), else the image. Under `structure`. */
  private async readResolved(lba: number, target: Uint8Array, below: number): Promise<void> {
    const blockCount = checkWhole(this, target.length);
    checkRange(this, lba, blockCount);
    if (blockCount === 0) return;
    const bs = this.blockSize;
    const cb = this.chunkBlocks;
    const jobs: Array<Promise<void>> = [];
    let runStart = -1; // an image run being gathered, from this LBA
    const endRun = (endLba: number): void => {
      if (runStart < 0) return;
      jobs.push(this.base.readInto(runStart, target.subarray((runStart - lba) * bs, (endLba - lba) * bs)));
      runStart = -1;
    };
    for (let c = Math.floor(lba / cb); c * cb < lba + blockCount; c++) {
      const from = Math.max(lba, c * cb);
      const to = Math.min(lba + blockCount, (c + 1) * cb);
      const layer = this.redirect.find(c, below);
      if (!layer) {
        if (runStart < 0) runStart = from;
        continue;
      }
      endRun(from);
      const slot = layer.chunks.get(c) as number;
      jobs.push(
        this.redirect.readSlot(slot, target.subarray((from - lba) * bs, (to - lba) * bs), (from - c * cb) * bs),
      );
    }
    endRun(lba + blockCount);
    await Promise.all(jobs);
  }

  /**
   * A write while chunks are redirected. Each chunk goes to its slot in a layer no snapshot
   * reads (in place), else, while a snapshot lives, to a new slot in the newest layer (whole:
   * a partial first write is merged with the chunk's current content), else to the image.
   */
  private async writeLayers(lba: number, data: Uint8Array): Promise<void> {
    const releaseRw = this.structure.tryRead() ?? (await this.structure.read());
    try {
      const bs = this.blockSize;
      const cb = this.chunkBlocks;
      const end = lba + data.length / bs;
      const first = Math.floor(lba / cb);
      const last = Math.floor((end - 1) / cb);
      const inPlace = this.consecutiveSlots(first, last);
      if (inPlace >= 0) {
        // The steady case: every chunk already has its slot, one after another.
        const marked = this.changes.mark(first, last);
        if (marked) await marked;
        await this.redirect.writeSlots(inPlace, data, (lba - first * cb) * bs);
        return;
      }
      let fresh: number[] = [];
      for (let c = first; c <= last; c++) if (this.placeOf(c) === FRESH) fresh.push(c);
      let release: (() => void) | undefined;
      if (fresh.length > 0) {
        // One writer maps a chunk; a concurrent one waits, then finds it in place.
        release = await this.chunkLocks.lockAll(fresh);
        fresh = fresh.filter((c) => this.placeOf(c) === FRESH);
      }
      const slots: number[] = [];
      try {
        // Bytes bound for new slots are read back only through map entries, and after a power loss
        // only through committed ones: their marks need only be written now, and made durable by
        // the commit (beforeCommit). Bytes that overwrite what the LUN reads wait for a durable mark.
        if (fresh.length === last - first + 1) this.changes.markWritten(first, last);
        else {
          const marked = this.changes.mark(first, last);
          if (marked) await marked;
        }
        this.redirect.allocate(fresh.length, slots);
        const jobs: Array<Promise<void>> = [];
        // Runs of consecutive chunks that go to the image or to consecutive slots: one pwrite each.
        let runFrom = -1;
        let runSlot = -1; // -1: the image
        let nextFresh = 0;
        let prevSlot = -2;
        const endRun = (toLba: number): void => {
          if (runFrom < 0) return;
          const part = data.subarray((runFrom - lba) * bs, (toLba - lba) * bs);
          if (runSlot < 0) jobs.push(this.base.write(runFrom, part));
          else jobs.push(this.redirect.writeSlots(runSlot, part, (runFrom - Math.floor(runFrom / cb) * cb) * bs));
          runFrom = -1;
        };
        for (let c = first; c <= last; c++) {
          const from = Math.max(lba, c * cb);
          const to = Math.min(end, (c + 1) * cb);
          const chunkEnd = Math.min((c + 1) * cb, this.blockCount);
          let slot: number;
          if (fresh[nextFresh] === c) {
            slot = slots[nextFresh++];
            if (from > c * cb || to < chunkEnd) {
              // A partial first write: the slot gets the whole chunk, so merge it here.
              endRun(from);
              prevSlot = -2;
              jobs.push(this.mergeInto(slot, c, from, data.subarray((from - lba) * bs, (to - lba) * bs)));
              continue;
            }
          } else {
            const layer = this.redirect.find(c);
            slot = layer ? (layer.chunks.get(c) as number) : -1;
          }
          const joins = runFrom >= 0 && (slot < 0 ? runSlot < 0 : runSlot >= 0 && slot === prevSlot + 1);
          if (!joins) {
            endRun(from);
            runFrom = from;
            runSlot = slot;
          }
          prevSlot = slot;
        }
        endRun(end);
        const settled = await Promise.allSettled(jobs);
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        if (fresh.length > 0) {
          // Only now, with the data in the slots: a reader or a reopen that sees the entry finds it.
          // (If map.log takes only some entries, map() keeps those slots and leaves the rest in `slots`.)
          this.redirect.map(this.nextLayer - 1, fresh, slots);
          slots.length = 0;
          if (this.redirect.commitEachMap) await this.redirect.commit();
        }
      } finally {
        this.redirect.unallocate(slots);
        release?.();
      }
    } finally {
      releaseRw();
    }
  }

  /** The slot of chunk `first` when chunks first…last are all in place in consecutive slots, else -1. */
  private consecutiveSlots(first: number, last: number): number {
    const at = this.placeOf(first);
    if (at < 0) return -1;
    for (let c = first + 1; c <= last; c++) if (this.placeOf(c) !== at + (c - first)) return -1;
    return at;
  }

  /** Where a write to chunk c goes: its slot (in place), a FRESH slot, or the image (IMAGE). */
  private placeOf(c: number): number {
    const layer = this.redirect.find(c);
    const floor = this.snaps.at(-1)?.layer ?? -Infinity;
    if (layer && layer.id >= floor) return layer.chunks.get(c) as number;
    return this.snaps.length > 0 ? FRESH : IMAGE;
  }

  /** Write chunk c's current content with `part` (at LBA `from`) laid over it into `slot`. */
  private async mergeInto(slot: number, c: number, from: number, part: Uint8Array): Promise<void> {
    const bs = this.blockSize;
    const cb = this.chunkBlocks;
    const blocks = Math.min(cb, this.blockCount - c * cb);
    const whole = Buffer.allocUnsafe(blocks * bs);
    const older = this.redirect.find(c);
    if (older) await this.redirect.readSlot(older.chunks.get(c) as number, whole, 0);
    else await this.base.readInto(c * cb, whole);
    whole.set(part, (from - c * cb) * bs);
    await this.redirect.writeSlots(slot, whole);
  }

  /** Free the slots no view reads any more: shadowed by a newer layer with no snapshot between. */
  private async collect(): Promise<void> {
    const thresholds = this.snaps.map((s) => s.layer);
    const dead = new Map<number, number[]>();
    const layers = this.redirect.layers;
    for (let i = 0; i < layers.length; i++) {
      for (const c of layers[i].chunks.keys()) {
        let next: number | undefined;
        for (let j = i + 1; j < layers.length && next === undefined; j++)
          if (layers[j].chunks.has(c)) next = layers[j].id;
        if (next === undefined) continue; // the newest: the LUN reads it
        const lo = layers[i].id;
        const hi = next;
        if (thresholds.some((t) => t > lo && t <= hi)) continue; // a snapshot between reads it
        let d = dead.get(lo);
        if (!d) dead.set(lo, (d = []));
        d.push(c);
      }
    }
    if (dead.size === 0) return;
    const releaseRw = await this.structure.write();
    try {
      const freed: number[] = [];
      for (const [layer, chunks] of dead) freed.push(...this.redirect.unmap(layer, chunks));
      await this.redirect.commit();
      this.redirect.release(freed);
    } finally {
      releaseRw();
    }
  }

  /**
   * With no snapshot left, copy every mapped chunk back into the image, a step at a time, then
   * empty the map. Each step takes the admin lock alone, so a snapshot requested meanwhile waits
   * for one step at most (and holds writes that long), then ends the fold: the image is its
   * content again, and the chunks still mapped stay where they are.
   */
  private async fold(): Promise<void> {
    for (;;) {
      const releaseAdmin = await this.admin.lock(0);
      try {
        // A snapshot requested meanwhile (its write gate shut, maybe waiting for a write that
        // waited for the last step) is not held for another step.
        if (this.snaps.length > 0 || this.closed || this.creating > 0) return;
        if (this.redirect.layers.length === 0) {
          const releaseRw = await this.structure.write();
          try {
            await this.redirect.reset(this.blockCount * this.blockSize);
          } finally {
            releaseRw();
          }
          return;
        }
        await this.foldStep();
      } finally {
        releaseAdmin();
      }
    }
  }

  /**
   * Copy up to FOLD_BATCH mapped chunks back into the image (no snapshot reads the image any
   * more), durably, then unmap them. A crash in between leaves them mapped: the next open
   * copies them again.
   */
  private async foldStep(): Promise<void> {
    const releaseRw = await this.structure.write();
    try {
      // A chunk redirected since the last commit has its change mark only written (markWritten):
      // the copy below makes its data durable in the image, outside any commit, so the marks first.
      await this.changes.sync();
      const layer = this.redirect.layers[0];
      const chunks = [...layer.chunks.keys()].slice(0, FOLD_BATCH);
      const cb = this.chunkBlocks;
      const buf = Buffer.allocUnsafe(this.chunkBytes);
      for (const c of chunks) {
        const blocks = Math.min(cb, this.blockCount - c * cb);
        const data = buf.subarray(0, blocks * this.blockSize);
        await this.redirect.readSlot(layer.chunks.get(c) as number, data, 0);
        await this.base.write(c * cb, data);
      }
      await this.base.flush();
      const freed = this.redirect.unmap(layer.id, chunks);
      await this.redirect.commit();
      this.redirect.release(freed);
    } finally {
      releaseRw();
    }
  }
}

/** placeOf's answers besides a slot. */
const FRESH = -1;
const IMAGE = -2;

/** The distinct chunks mapped in layers [from, to): written after one snapshot, before the next. */
function chunksBetween(redirect: RedirectMap, from: number, to: number): Set<number> | Map<number, number> {
  const ls = redirect.layers.filter((l) => l.id >= from && l.id < to);
  if (ls.length === 1) return ls[0].chunks;
  const all = new Set<number>();
  for (const l of ls) for (const c of l.chunks.keys()) all.add(c);
  return all;
}

/** A snapshot as a read-only BlockDevice (a snapshot LUN's backing). */
export class SnapshotView implements BlockDevice {
  readonly readOnly = true;
  readonly id: string;
  private readonly dev: SnapshottableDevice;
  private readonly entry: ManifestEntry;

  constructor(dev: SnapshottableDevice, entry: ManifestEntry) {
    this.dev = dev;
    this.entry = entry;
    this.id = entry.id;
  }
  get blockSize(): number {
    return this.dev.blockSize;
  }
  get blockCount(): number {
    return this.dev.blockCount;
  }
  async read(lba: number, blockCount: number): Promise<Uint8Array> {
    checkRange(this, lba, blockCount);
    const buf = Buffer.allocUnsafe(blockCount * this.blockSize);
    await this.dev.readSnapshot(this.entry, lba, buf);
    return buf;
  }
  readInto(lba: number, target: Uint8Array): Promise<void> {
    return this.dev.readSnapshot(this.entry, lba, target);
  }
  async write(): Promise<void> {
    throw new FerryError('ERR_READ_ONLY', `snapshot ${this.id} is read-only`);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
