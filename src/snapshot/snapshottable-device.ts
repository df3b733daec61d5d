import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { type BlockDevice, checkRange, checkWhole } from '../block/block-device.ts';
import { FerryError } from '../util/errors.ts';
import { SLOT_HEADER_BYTES, encodeCowHeader, encodeSlotHeader, slotBytes } from './cow-format.ts';
import { ChangeMap, type ChangeAnswer, type ChangeEpoch, type ChangeMapUsage } from './change-map.ts';
import { KeyedMutex, RwLock } from './locks.ts';
import {
  MANIFEST,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type ManifestEntry,
  type Manifest,
  CowStore,
  readFully,
  readManifest,
  writeManifest,
  loadStore,
} from './cow-store.ts';

/** Copy-on-write granularity, and the changed-block tracking granularity. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Chunks copied per append + fdatasync when a deleted snapshot's chunks move to its predecessor. */
const MERGE_BATCH = 32;

export interface SnapshotInfo {
  id: string;
  /** The frozen instant (ISO 8601). */
  createdAt: string;
  createdAtMs: number;
  /** The change id of its instant: `changed --since` it works after the snapshot is deleted. */
  changeId?: string;
  /** Chunks this snapshot holds in its own store (written on the LUN since it, before the next one). */
  preservedChunks: number;
  /**
   * Set when the store could not be read back: the snapshot is unusable (change tracking, kept apart, is not affected).
   */
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
  /** Directory of the snapshot stores (created); e.g. `<image>.snapshots`. */
  dir: string;
  chunkBytes?: number;
  /** Clock in ms, for write timestamps and snapshot instants. */
  now?: () => number;
  /** Change-tracking epochs kept before the oldest are merged (change-map.ts). */
  maxEpochs?: number;
}

/**
 * A disk LUN's BlockDevice with copy-on-write snapshots kept beside it.
 *
 * Snapshots form a chain, oldest first. Before a write overwrites a chunk, the chunk's old
 * content goes to the newest snapshot's store (once per chunk per snapshot), fdatasync'ed before
 * the overwrite is issued. A snapshot reads a chunk from the first store, itself or newer, that
 * holds it, else from the LUN. So each store holds exactly the chunks written between its
 * snapshot and the next one.
 *
 * Changed-block tracking is the LUN's change map (change-map.ts), apart from the stores: each
 * snapshot starts an epoch, and `changed` answers by change id after the snapshot is gone.
 */
export class SnapshottableDevice implements BlockDevice {
  readonly base: BlockDevice;
  readonly dir: string;
  readonly chunkBytes: number;
  readonly readOnly = false;
  readonly changes: ChangeMap;
  private readonly now: () => number;
  private readonly stores: CowStore[];
  private readonly chunkLocks = new KeyedMutex();
  private readonly structure = new RwLock();
  private readonly admin = new KeyedMutex();
  private count = 0;
  private last = 0;
  private inflight = 0;
  private gateHolds = 0;
  private gateWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private closed = false;

  private constructor(
    base: BlockDevice,
    dir: string,
    chunkBytes: number,
    now: () => number,
    stores: CowStore[],
    changes: ChangeMap,
  ) {
    this.base = base;
    this.changes = changes;
    this.dir = dir;
    this.chunkBytes = chunkBytes;
    this.now = now;
    this.stores = stores;
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
    const stores: CowStore[] = [];
    for (const e of manifest.snapshots) stores.push(await loadStore(opts.dir, e, manifest, base));
    // Files no snapshot names: a create or delete interrupted by a crash.
    const keep = new Set([MANIFEST, ...manifest.snapshots.map((e) => e.file)]);
    for (const name of await readdir(opts.dir)) {
      if (!keep.has(name) && (name.endsWith('.cow') || name.endsWith('.tmp')))
        await rm(join(opts.dir, name), { force: true });
    }
    const now = opts.now ?? Date.now;
    const changes = await ChangeMap.open(opts.dir, {
      granuleBytes: manifest.chunkBytes,
      granules: Math.ceil(base.blockCount / (manifest.chunkBytes / base.blockSize)),
      now,
      ...(opts.maxEpochs === undefined ? {} : { maxEpochs: opts.maxEpochs }),
      legacy: () =>
        stores.map((s) => ({
          // A map set aside as unreadable is seeded again: the snapshots keep the change ids they gave.
          id: s.entry.changeId ?? s.entry.id,
          snapshotId: s.entry.id,
          startedAtMs: s.entry.createdAtMs,
          granules: s.index.keys(),
          ...(s.damaged ? { lost: s.damaged } : {}),
        })),
    });
    return new SnapshottableDevice(base, opts.dir, manifest.chunkBytes, now, stores, changes);
  }

  // ---- BlockDevice ----

  read(lba: number, blockCount: number): Promise<Uint8Array> {
    return this.base.read(lba, blockCount);
  }
  readInto(lba: number, target: Uint8Array): Promise<void> {
    return this.base.readInto(lba, target);
  }
  write(lba: number, data: Uint8Array): Promise<void> {
    const blockCount = checkWhole(this, data.length);
    return this.mutate(lba, blockCount, () => this.base.write(lba, data));
  }
  /**
   * Run any change to [lba, lba+blockCount) through write tracking and copy-on-write:
   * a disk LU's UNMAP or WRITE SAME that the base does natively goes through here.
   */
  async mutate(lba: number, blockCount: number, op: () => Promise<void>): Promise<void> {
    checkRange(this, lba, blockCount);
    this.count++;
    this.last = this.now();
    while (this.gateHolds > 0) await new Promise<void>((r) => this.gateWaiters.push(r));
    if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
    this.inflight++;
    try {
      if (blockCount > 0) {
        const marked = this.changes.mark(
          Math.floor(lba / this.chunkBlocks),
          Math.floor((lba + blockCount - 1) / this.chunkBlocks),
        );
        const newest = this.stores.at(-1);
        const copied = newest && newest.fh ? this.preserve(newest, lba, blockCount) : undefined;
        if (marked && copied) {
          // Both settle before the write counts as done: a drain must not miss the copy still running.
          const [m, c] = await Promise.allSettled([marked, copied]);
          if (m.status === 'rejected') throw m.reason;
          if (c.status === 'rejected') throw c.reason;
        } else await (marked ?? copied);
      }
      await op();
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
  flush(): Promise<void> {
    return this.base.flush();
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeGate();
    await this.changes.close();
    for (const s of this.stores) await s.fh?.close();
    await this.base.close();
    // Writes that waited at the gate now fail instead of hanging.
    const w = this.gateWaiters;
    this.gateWaiters = [];
    this.gateHolds = 0;
    for (const f of w) f();
  }

  // ---- snapshots ----

  snapshots(): SnapshotInfo[] {
    return this.stores.map(info);
  }

  snapshot(id: string): SnapshotInfo | undefined {
    const s = this.stores.find((x) => x.entry.id === id);
    return s && info(s);
  }

  /**
   * Freeze the LUN's content now. The write gate closes synchronously, before this returns, so
   * a caller that checked for quiet in the same tick gets exactly that instant; writes in flight
   * finish first (they are before), writes arriving later wait (they are after).
   */
  createSnapshot(meta?: Record<string, unknown>): Promise<SnapshotInfo> {
    const drained = this.closeGate();
    return this.finishCreate(drained, meta);
  }

  private async finishCreate(drained: Promise<void>, meta: Record<string, unknown> | undefined): Promise<SnapshotInfo> {
    try {
      await drained;
      if (this.closed) throw new FerryError('ERR_CLOSED', 'the LUN is closed');
      const createdAtMs = this.now();
      const releaseAdmin = await this.admin.lock(0);
      try {
        await this.base.flush();
        const id = `snap-${randomBytes(6).toString('hex')}`;
        const epoch = await this.changes.startEpoch(id);
        const entry: ManifestEntry = { id, createdAtMs, file: `${id}.cow`, changeId: epoch.id };
        if (meta) entry.meta = meta;
        const path = join(this.dir, entry.file);
        const fh = await open(path, 'wx+');
        try {
          const header = encodeCowHeader({
            chunkBytes: this.chunkBytes,
            blockSize: this.blockSize,
            blockCount: this.blockCount,
            snapshotId: id,
          });
          await fh.write(header, 0, header.length, 0);
          await fh.datasync();
          await writeManifest(this.dir, this.manifest([...this.stores.map((s) => s.entry), entry]));
        } catch (e) {
          await fh.close();
          await rm(path, { force: true });
          throw e;
        }
        const store = new CowStore(entry, fh);
        this.stores.push(store);
        return info(store);
      } finally {
        releaseAdmin();
      }
    } finally {
      this.openGate();
    }
  }

  /** Delete one snapshot; the others keep their content (its chunks move to its predecessor). */
  async deleteSnapshot(id: string): Promise<void> {
    const releaseAdmin = await this.admin.lock(0);
    try {
      const i = this.stores.findIndex((s) => s.entry.id === id);
      if (i < 0) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id}`);
      const s = this.stores[i];
      const pred = i > 0 ? this.stores[i - 1] : undefined;
      // Not the newest: s is immutable, merge while writes go on. The newest: stop writes too.
      if (pred) await this.mergeInto(pred, s);
      const newest = i === this.stores.length - 1;
      if (newest) await this.closeGate();
      try {
        if (pred && newest) await this.mergeInto(pred, s);
        const releaseRw = await this.structure.write();
        try {
          if (s.damaged) {
            // Older snapshots read through s, whose chunks are unknown: they are lost with it.
            for (const p of this.stores.slice(0, i))
              p.entry.damaged ??= `a newer snapshot it depends on (${s.entry.id}) was damaged and deleted`;
          }
          await writeManifest(this.dir, this.manifest(this.stores.filter((x) => x !== s).map((x) => x.entry)));
          for (const p of this.stores.slice(0, i)) p.damaged ??= p.entry.damaged;
          this.stores.splice(i, 1);
        } finally {
          releaseRw();
        }
      } finally {
        if (newest) this.openGate();
      }
      await s.fh?.close();
      await rm(join(this.dir, s.entry.file), { force: true });
    } finally {
      releaseAdmin();
    }
  }

  /** A read-only BlockDevice of the snapshot's content. */
  openSnapshot(id: string): BlockDevice {
    const s = this.stores.find((x) => x.entry.id === id);
    if (!s) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id}`);
    return new SnapshotView(this, s);
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

  // ---- internals ----

  private manifest(snapshots: ManifestEntry[]): Manifest {
    return {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      blockSize: this.blockSize,
      blockCount: this.blockCount,
      chunkBytes: this.chunkBytes,
      snapshots,
    };
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

  /** Copy the chunks of [lba, lba+blockCount) that `store` lacks into it, durably. */
  private async preserve(store: CowStore, lba: number, blockCount: number): Promise<void> {
    const first = Math.floor(lba / this.chunkBlocks);
    const last = Math.floor((lba + blockCount - 1) / this.chunkBlocks);
    const need: number[] = [];
    for (let c = first; c <= last; c++) if (!store.index.has(c)) need.push(c);
    if (need.length === 0) return;
    const release = await this.chunkLocks.lockAll(need);
    try {
      const still = need.filter((c) => !store.index.has(c));
      if (still.length === 0) return;
      const slot = slotBytes(this.chunkBytes);
      const buf = Buffer.allocUnsafe(still.length * slot);
      await Promise.all(
        still.map(async (c, n) => {
          const data = buf.subarray(n * slot + SLOT_HEADER_BYTES, (n + 1) * slot);
          const at = c * this.chunkBlocks;
          const blocks = Math.min(this.chunkBlocks, this.blockCount - at);
          await this.base.readInto(at, data.subarray(0, blocks * this.blockSize));
          data.fill(0, blocks * this.blockSize);
          encodeSlotHeader(buf.subarray(n * slot), c, data);
        }),
      );
      await store.append(still, buf, this.chunkBytes);
    } finally {
      release();
    }
  }

  /** Give `pred` every chunk of `s` it lacks (identical content: nothing was written between them). */
  private async mergeInto(pred: CowStore, s: CowStore): Promise<void> {
    if (!s.fh || !pred.fh) return;
    const todo = [...s.index.keys()].filter((c) => !pred.index.has(c)).sort((a, b) => a - b);
    const slot = slotBytes(this.chunkBytes);
    for (let b = 0; b < todo.length; b += MERGE_BATCH) {
      const chunks = todo.slice(b, b + MERGE_BATCH);
      const buf = Buffer.allocUnsafe(chunks.length * slot);
      for (let n = 0; n < chunks.length; n++) {
        const data = buf.subarray(n * slot + SLOT_HEADER_BYTES, (n + 1) * slot);
        await readFully(s.fh, data, s.index.get(chunks[n]) as number);
        encodeSlotHeader(buf.subarray(n * slot), chunks[n], data);
      }
      await pred.append(chunks, buf, this.chunkBytes);
    }
  }

  /** SnapshotView's read: resolve each chunk to a store (this one or newer) or the LUN. */
  async readSnapshot(store: CowStore, lba: number, target: Uint8Array): Promise<void> {
    const blockCount = checkWhole(this, target.length);
    checkRange(this, lba, blockCount);
    if (blockCount === 0) return;
    const releaseRw = await this.structure.read();
    try {
      const i = this.stores.indexOf(store);
      if (i < 0) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${store.entry.id} was deleted`);
      // Reads go through the newer stores too: one that is damaged makes this snapshot unreadable.
      const bad = this.stores.slice(i).find((s) => s.damaged);
      if (bad)
        throw new FerryError(
          'ERR_SNAPSHOT_DAMAGED',
          `snapshot ${store.entry.id} is unreadable: snapshot ${bad.entry.id} is damaged: ${bad.damaged}`,
        );
      const first = Math.floor(lba / this.chunkBlocks);
      const last = Math.floor((lba + blockCount - 1) / this.chunkBlocks);
      const resolve = (c: number): CowStore | undefined => {
        for (let j = i; j < this.stores.length; j++) if (this.stores[j].index.has(c)) return this.stores[j];
        return undefined;
      };
      const fromBase: number[] = [];
      for (let c = first; c <= last; c++) if (!resolve(c)) fromBase.push(c);
      // Hold the LUN-resolved chunks so no writer overwrites them while we read.
      const release = await this.chunkLocks.lockAll(fromBase);
      try {
        const bs = this.blockSize;
        const jobs: Array<Promise<void>> = [];
        let runStart = -1;
        const flushRun = (endLba: number): void => {
          if (runStart < 0) return;
          const s = runStart;
          jobs.push(this.base.readInto(s, target.subarray((s - lba) * bs, (endLba - lba) * bs)));
          runStart = -1;
        };
        for (let c = first; c <= last; c++) {
          const from = Math.max(lba, c * this.chunkBlocks);
          const to = Math.min(lba + blockCount, (c + 1) * this.chunkBlocks);
          const owner = resolve(c);
          if (!owner) {
            if (runStart < 0) runStart = from;
            continue;
          }
          flushRun(from);
          const fileAt = (owner.index.get(c) as number) + (from - c * this.chunkBlocks) * bs;
          jobs.push(readFully(owner.fh as FileHandle, target.subarray((from - lba) * bs, (to - lba) * bs), fileAt));
        }
        flushRun(lba + blockCount);
        await Promise.all(jobs);
      } finally {
        release();
      }
    } finally {
      releaseRw();
    }
  }
}

/** A snapshot as a read-only BlockDevice (a snapshot LUN's backing). */
export class SnapshotView implements BlockDevice {
  readonly readOnly = true;
  readonly id: string;
  private readonly dev: SnapshottableDevice;
  private readonly store: CowStore;

  constructor(dev: SnapshottableDevice, store: CowStore) {
    this.dev = dev;
    this.store = store;
    this.id = store.entry.id;
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
    await this.dev.readSnapshot(this.store, lba, buf);
    return buf;
  }
  readInto(lba: number, target: Uint8Array): Promise<void> {
    return this.dev.readSnapshot(this.store, lba, target);
  }
  async write(): Promise<void> {
    throw new FerryError('ERR_READ_ONLY', `snapshot ${this.id} is read-only`);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

function info(s: CowStore): SnapshotInfo {
  const i: SnapshotInfo = {
    id: s.entry.id,
    createdAt: new Date(s.entry.createdAtMs).toISOString(),
    createdAtMs: s.entry.createdAtMs,
    preservedChunks: s.index.size,
  };
  // A snapshot older than the change map seeded it under its own id.
  i.changeId = s.entry.changeId ?? s.entry.id;
  if (s.damaged) i.damaged = s.damaged;
  if (s.entry.meta) i.meta = s.entry.meta;
  return i;
}
