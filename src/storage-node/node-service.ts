import { ThreadedSha256 } from '../util/threaded-sha256.ts';
import { FerryError } from '../util/errors.ts';
import { checkRange, type BlockDevice } from '../block/block-device.ts';
import { changedBlocks } from '../snapshot/cbt.ts';
import type { LunInfo, LunRegistry } from './lun-registry.ts';
import {
  changedExtents,
  LunNotFoundError,
  MAX_DIGEST_EXTENTS,
  SnapshotNotFoundError,
  type BlockExtent,
  type ChangedExtents,
  type ChangeMark,
  type ChangeTracking,
  type NodeControl,
  type NodeDigest,
  type SnapshotRecord,
  type SnapshotRequest,
} from './node-control.ts';
import {
  DEFAULT_QUIESCE_TIMEOUT_MS,
  DEFAULT_QUIET_PERIOD_MS,
  checkQuiescePeriods,
  lastWriteMsAgo,
  takeWhenQuiet,
} from '../snapshot/quiesce.ts';
import type { SnapshotInfo, SnapshottableDevice } from '../snapshot/snapshottable-device.ts';

/** Largest read a digest issues: memory stays at one such buffer whatever the extents. */
const DIGEST_READ_BYTES = 4 << 20;

/**
 * Snapshot lifecycle over a LunRegistry: quiesce, create, map as a LUN, list, delete, changed
 * blocks, digests, write activity. One snapshot request per LUN at a time; a failed request
 * leaves nothing. This is the in-process NodeControl; the management API serves it over HTTP.
 */
export class SnapshotService implements NodeControl {
  readonly registry: LunRegistry;
  /** How errors name this node, e.g. "storage node iqn.2026-11.dev.ferry:node1". */
  readonly name: string;
  /** snapshot id → its LUN. */
  private readonly mapped = new Map<string, number>();
  private readonly busy = new Set<number>();

  constructor(registry: LunRegistry, opts: { name?: string } = {}) {
    this.registry = registry;
    this.name = opts.name ?? 'this storage node';
  }

  /** Map every persisted snapshot of every disk LUN (after a restart). */
  async start(): Promise<void> {
    for (const l of this.registry.list()) {
      const dev = l.kind === 'disk' ? this.registry.snapshottable(l.lun) : undefined;
      if (!dev) continue;
      for (const s of dev.snapshots()) {
        if (this.mapped.has(s.id) || s.damaged) continue;
        this.mapped.set(s.id, await this.registry.mapSnapshot(l.lun, s.id, dev.openSnapshot(s.id)));
      }
    }
  }

  async listLuns(): Promise<LunInfo[]> {
    return this.registry.list();
  }

  createLun(opts: { sizeBytes: number; blockSize?: number }): Promise<LunInfo> {
    return this.registry.create(opts);
  }

  async deleteLun(lun: number): Promise<void> {
    const info = this.lunInfo(lun);
    if (info.kind === 'disk') {
      if (this.busy.has(lun)) {
        throw new FerryError('ERR_SNAPSHOT_IN_PROGRESS', `a snapshot of LUN ${lun} is being taken`);
      }
      const n = this.registry.snapshottable(lun)?.snapshots().length ?? 0;
      if (n > 0) throw new FerryError('ERR_LUN_HAS_SNAPSHOTS', `LUN ${lun} has ${n} snapshot(s): delete them first`);
    }
    await this.registry.delete(lun);
  }

  async createSnapshot(sourceLun: number, opts: SnapshotRequest = {}): Promise<SnapshotRecord> {
    const quietPeriodMs = opts.quietPeriodMs ?? DEFAULT_QUIET_PERIOD_MS;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_QUIESCE_TIMEOUT_MS;
    checkQuiescePeriods(quietPeriodMs, timeoutMs);
    const dev = this.disk(sourceLun);
    if (this.busy.has(sourceLun)) {
      throw new FerryError('ERR_SNAPSHOT_IN_PROGRESS', `a snapshot of LUN ${sourceLun} is already being taken`);
    }
    this.busy.add(sourceLun);
    try {
      const take = (at: object) => dev.createSnapshot({ ...at });
      const r = await takeWhenQuiet(dev, take, {
        quietPeriodMs,
        timeoutMs,
        label: `LUN ${sourceLun}`,
        signal: opts.signal,
      });
      const snap = r.value;
      try {
        // Canceled while it was being taken: the caller will not learn of it, so it goes.
        if (opts.signal?.aborted)
          throw new FerryError('ERR_CANCELED', `snapshot of LUN ${sourceLun} canceled: nothing was kept`);
        this.mapped.set(snap.id, await this.registry.mapSnapshot(sourceLun, snap.id, dev.openSnapshot(snap.id)));
      } catch (e) {
        await dev.deleteSnapshot(snap.id); // nothing half-made
        throw e;
      }
      return this.record(sourceLun, snap, this.designators());
    } finally {
      this.busy.delete(sourceLun);
    }
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    return this.find(id);
  }

  async listSnapshots(sourceLun?: number): Promise<SnapshotRecord[]> {
    if (sourceLun !== undefined) this.lunInfo(sourceLun); // an unknown LUN is an error, not "none"
    return this.snapshots(sourceLun);
  }

  async deleteSnapshot(id: string): Promise<void> {
    const r = this.find(id);
    if (!r) throw new SnapshotNotFoundError(id, `on ${this.name}`);
    const lun = this.mapped.get(id);
    if (lun !== undefined) {
      await this.registry.unmapSnapshot(lun);
      this.mapped.delete(id);
    }
    await this.disk(r.sourceLun).deleteSnapshot(id);
  }

  async changedSince(lun: number, since: string, opts: { until?: string } = {}): Promise<ChangedExtents> {
    const dev = this.disk(lun);
    try {
      return changedExtents(await changedBlocks(dev, since, opts.until));
    } catch (e) {
      if (e instanceof FerryError && e.code === 'ERR_CHANGE_ID_NOT_FOUND') {
        throw new FerryError(
          e.code,
          `no change id or snapshot ` +
            `${[since, opts.until].find((id) => id !== undefined && !dev.changes.knows(id)) ?? since} in the change ` +
            `tracking of LUN ${lun} on ${this.name}`,
        );
      }
      throw e;
    }
  }

  async markChanges(lun: number): Promise<ChangeMark> {
    const e = await this.disk(lun).markChanges();
    return { changeId: e.id, lun, startedAt: new Date(e.startedAtMs).toISOString() };
  }

  async changeTracking(lun: number): Promise<ChangeTracking> {
    const u = this.disk(lun).changeTracking();
    return {
      lun,
      granularity: u.granuleBytes,
      maxEpochs: u.maxEpochs,
      bytes: u.bytes,
      epochs: u.epochs.map((e) => ({
        changeId: e.id,
        startedAt: new Date(e.startedAtMs).toISOString(),
        snapshotId: e.snapshotId ?? null,
        merged: e.merged ?? [],
        lost: e.lost ?? null,
      })),
    };
  }

  /**
   * SHA-256 of the extents of any LUN (disk or snapshot), read on the node in reads of at most
   * 4 MiB and hashed on a worker thread: a backup's digest runs alongside the READs this node
   * serves for the copy, and must not hold them up.
   */
  async digest(lun: number, extents: readonly BlockExtent[]): Promise<NodeDigest> {
    const dev = this.device(lun);
    checkExtents(dev, extents);
    const per = Math.max(1, Math.floor(DIGEST_READ_BYTES / dev.blockSize));
    const largest = extents.reduce((m, e) => Math.max(m, e.blocks), 0);
    const h = new ThreadedSha256(Math.min(per, largest) * dev.blockSize);
    try {
      let bytes = 0;
      for (const { lba, blocks } of extents) {
        for (let done = 0; done < blocks;) {
          const k = Math.min(per, blocks - done);
          const buf = await h.buffer();
          await dev.readInto(lba + done, buf.subarray(0, k * dev.blockSize));
          h.update(buf, k * dev.blockSize);
          done += k;
          bytes += k * dev.blockSize;
        }
      }
      return { sha256: await h.digest(), bytes };
    } finally {
      await h.close();
    }
  }

  async activity(lun: number): Promise<{ lastWriteMsAgo: number | null }> {
    const info = this.lunInfo(lun);
    const dev = info.kind === 'disk' ? this.registry.snapshottable(lun) : undefined;
    // A snapshot LUN is read-only: nothing ever writes to it.
    return { lastWriteMsAgo: dev ? lastWriteMsAgo(dev) : null };
  }

  private lunInfo(lun: number): LunInfo {
    const info = this.registry.list().find((l) => l.lun === lun);
    if (!info) throw new LunNotFoundError(lun, this.name);
    return info;
  }

  private device(lun: number): BlockDevice {
    const dev = this.registry.device(lun);
    if (!dev) throw new LunNotFoundError(lun, this.name);
    return dev;
  }

  private disk(lun: number): SnapshottableDevice {
    const info = this.lunInfo(lun);
    const dev = this.registry.snapshottable(lun);
    if (info.kind !== 'disk' || !dev) {
      const what = `LUN ${lun} is a snapshot (${info.snapshotId})`;
      throw new FerryError('ERR_NOT_A_DISK', `${what}: snapshots are taken of, and track changes on, disk LUNs`);
    }
    return dev;
  }

  private find(id: string): SnapshotRecord | undefined {
    return this.snapshots().find((s) => s.id === id);
  }

  private snapshots(sourceLun?: number): SnapshotRecord[] {
    const luns = this.registry.list();
    const designators = this.designators(luns);
    const out: SnapshotRecord[] = [];
    for (const l of luns) {
      if (l.kind !== 'disk' || (sourceLun !== undefined && l.lun !== sourceLun)) continue;
      const dev = this.registry.snapshottable(l.lun);
      for (const s of dev?.snapshots() ?? []) out.push(this.record(l.lun, s, designators));
    }
    return out;
  }

  private designators(luns: LunInfo[] = this.registry.list()): Map<number, string> {
    return new Map(luns.map((l) => [l.lun, l.designator]));
  }

  private record(sourceLun: number, s: SnapshotInfo, designators: Map<number, string>): SnapshotRecord {
    const m = s.meta ?? {};
    const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
    const lun = this.mapped.get(s.id) ?? -1;
    const r: SnapshotRecord = {
      id: s.id,
      lun,
      designator: designators.get(lun) ?? null,
      sourceLun,
      takenAt: s.createdAt,
      mode: m.mode === 'quiesced' || m.mode === 'crash-consistent' ? m.mode : 'unknown',
      waitedMs: num(m.waitedMs),
      quietPeriodMs: num(m.quietPeriodMs),
      timeoutMs: num(m.timeoutMs),
      preservedChunks: s.preservedChunks,
      changeId: s.changeId ?? s.id,
    };
    if (s.damaged) r.damaged = s.damaged;
    return r;
  }
}

/** Whole numbers, at most MAX_DIGEST_EXTENTS of them (ERR_BAD_REQUEST), inside the LUN (ERR_RANGE). */
function checkExtents(dev: BlockDevice, extents: readonly BlockExtent[]): void {
  if (!Array.isArray(extents)) throw new FerryError('ERR_BAD_REQUEST', 'extents must be a list of {lba, blocks}');
  if (extents.length > MAX_DIGEST_EXTENTS) {
    throw new FerryError('ERR_BAD_REQUEST', `${extents.length} extents: at most ${MAX_DIGEST_EXTENTS} per digest`);
  }
  extents.forEach((e, i) => {
    if (!Number.isSafeInteger(e?.lba) || e.lba < 0 || !Number.isSafeInteger(e.blocks) || e.blocks < 1) {
      const why = `extent ${i} ${JSON.stringify(e)}: lba ≥ 0 and blocks ≥ 1, whole numbers`;
      throw new FerryError('ERR_BAD_REQUEST', why);
    }
    try {
      checkRange(dev, e.lba, e.blocks);
    } catch (err) {
      throw new FerryError('ERR_RANGE', `extent ${i}: ${(err as Error).message}`);
    }
  });
}
