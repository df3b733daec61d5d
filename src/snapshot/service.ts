import { createHash } from 'node:crypto';
import { FerryError } from '../util/errors.ts';
import { checkRange } from '../block/block-device.ts';
import { changedBlocks, type ChangedBlocks } from './cbt.ts';
import type { LunRegistry } from './lun-registry.ts';
import { DEFAULT_QUIESCE_TIMEOUT_MS, DEFAULT_QUIET_PERIOD_MS, checkQuiescePeriods, takeWhenQuiet, type SnapshotMode } from './quiesce.ts';
import type { SnapshotInfo, SnapshottableDevice } from './snapshottable-device.ts';

/** A snapshot as the management API shows it. */
export interface SnapshotRecord {
  id: string;
  /** The snapshot's own read-only LUN on the same target. */
  lun: number;
  sourceLun: number;
  /** The frozen instant, ISO 8601. */
  takenAt: string;
  mode: SnapshotMode | 'unknown';
  waitedMs: number | null;
  quietPeriodMs: number | null;
  timeoutMs: number | null;
  /** Chunks it holds in its own store. */
  preservedChunks: number;
  damaged?: string;
}

export interface CreateSnapshotOptions {
  quietPeriodMs?: number;
  timeoutMs?: number;
}

export interface Digest {
  lun: number;
  algorithm: 'sha256';
  lba: number;
  blockCount: number;
  blockSize: number;
  digest: string;
}

const DIGEST_READ_BYTES = 1 << 20;

/**
 * Snapshot lifecycle over a LunRegistry: quiesce, create, map as a LUN, list, delete, changed
 * blocks, digests. One snapshot request per LUN at a time; a failed request leaves nothing.
 */
export class SnapshotService {
  readonly registry: LunRegistry;
  /** snapshot id → its LUN. */
  private readonly mapped = new Map<string, number>();
  private readonly busy = new Set<number>();

  constructor(registry: LunRegistry) {
    this.registry = registry;
  }

  /** Map every persisted snapshot of every disk LUN (after a restart). */
  async start(): Promise<void> {
    for (const l of this.registry.list()) {
      const dev = l.kind === 'disk' ? this.registry.snapshottable(l.lun) : undefined;
      if (!dev) continue;
      for (const s of dev.snapshots()) {
        if (!this.mapped.has(s.id) && !s.damaged) this.mapped.set(s.id, await this.registry.mapSnapshot(l.lun, s.id, dev.openSnapshot(s.id)));
      }
    }
  }

  async create(sourceLun: number, opts: CreateSnapshotOptions = {}): Promise<SnapshotRecord> {
    const quietPeriodMs = opts.quietPeriodMs ?? DEFAULT_QUIET_PERIOD_MS;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_QUIESCE_TIMEOUT_MS;
    checkQuiescePeriods(quietPeriodMs, timeoutMs);
    const dev = this.disk(sourceLun);
    if (this.busy.has(sourceLun)) throw new FerryError('ERR_SNAPSHOT_IN_PROGRESS', `a snapshot of LUN ${sourceLun} is already being taken`);
    this.busy.add(sourceLun);
    try {
      const r = await takeWhenQuiet(dev, (at) => dev.createSnapshot({ ...at }), { quietPeriodMs, timeoutMs, label: `LUN ${sourceLun}` });
      const snap = r.value;
      try {
        this.mapped.set(snap.id, await this.registry.mapSnapshot(sourceLun, snap.id, dev.openSnapshot(snap.id)));
      } catch (e) {
        await dev.deleteSnapshot(snap.id); // nothing half-made
        throw e;
      }
      return this.record(sourceLun, snap);
    } finally {
      this.busy.delete(sourceLun);
    }
  }

  list(sourceLun?: number): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    for (const l of this.registry.list()) {
      if (l.kind !== 'disk' || (sourceLun !== undefined && l.lun !== sourceLun)) continue;
      const dev = this.registry.snapshottable(l.lun);
      for (const s of dev?.snapshots() ?? []) out.push(this.record(l.lun, s));
    }
    return out;
  }

  get(id: string): SnapshotRecord {
    const r = this.list().find((s) => s.id === id);
    if (!r) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${id}`);
    return r;
  }

  async delete(id: string): Promise<void> {
    const r = this.get(id);
    const lun = this.mapped.get(id);
    if (lun !== undefined) {
      await this.registry.unmapSnapshot(lun);
      this.mapped.delete(id);
    }
    await this.disk(r.sourceLun).deleteSnapshot(id);
  }

  async deleteLun(lun: number): Promise<void> {
    const info = this.registry.list().find((l) => l.lun === lun);
    if (!info) throw new FerryError('ERR_LUN_NOT_FOUND', `no LUN ${lun}`);
    if (info.kind === 'disk') {
      if (this.busy.has(lun)) throw new FerryError('ERR_SNAPSHOT_IN_PROGRESS', `a snapshot of LUN ${lun} is being taken`);
      const n = this.registry.snapshottable(lun)?.snapshots().length ?? 0;
      if (n > 0) throw new FerryError('ERR_LUN_HAS_SNAPSHOTS', `LUN ${lun} has ${n} snapshot(s): delete them first`);
    }
    await this.registry.delete(lun);
  }

  changed(lun: number, since: string, until?: string): ChangedBlocks {
    const dev = this.disk(lun);
    if (!dev.snapshot(since)) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${since} of LUN ${lun}`);
    if (until !== undefined && !dev.snapshot(until)) throw new FerryError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${until} of LUN ${lun}`);
    return changedBlocks(dev, since, until);
  }

  /** SHA-256 of blocks [lba, lba+blockCount) of any LUN, read on the node. */
  async digest(lun: number, lba: number, blockCount?: number): Promise<Digest> {
    const dev = this.registry.device(lun);
    if (!dev) throw new FerryError('ERR_LUN_NOT_FOUND', `no LUN ${lun}`);
    const n = blockCount ?? dev.blockCount - lba;
    try {
      checkRange(dev, lba, n);
    } catch (e) {
      throw new FerryError('ERR_RANGE', (e as Error).message);
    }
    const h = createHash('sha256');
    const per = Math.max(1, Math.floor(DIGEST_READ_BYTES / dev.blockSize));
    const buf = Buffer.allocUnsafe(Math.min(per, Math.max(n, 1)) * dev.blockSize);
    for (let done = 0; done < n; ) {
      const k = Math.min(per, n - done);
      const part = buf.subarray(0, k * dev.blockSize);
      await dev.readInto(lba + done, part);
      h.update(part);
      done += k;
    }
    return { lun, algorithm: 'sha256', lba, blockCount: n, blockSize: dev.blockSize, digest: h.digest('hex') };
  }

  private disk(lun: number): SnapshottableDevice {
    const info = this.registry.list().find((l) => l.lun === lun);
    if (!info) throw new FerryError('ERR_LUN_NOT_FOUND', `no LUN ${lun}`);
    const dev = this.registry.snapshottable(lun);
    if (info.kind !== 'disk' || !dev) throw new FerryError('ERR_NOT_A_DISK', `LUN ${lun} is a snapshot (${info.snapshotId}): snapshots are taken of disk LUNs`);
    return dev;
  }

  private record(sourceLun: number, s: SnapshotInfo): SnapshotRecord {
    const m = s.meta ?? {};
    const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
    const r: SnapshotRecord = {
      id: s.id,
      lun: this.mapped.get(s.id) ?? -1,
      sourceLun,
      takenAt: s.createdAt,
      mode: m.mode === 'quiesced' || m.mode === 'crash-consistent' ? m.mode : 'unknown',
      waitedMs: num(m.waitedMs),
      quietPeriodMs: num(m.quietPeriodMs),
      timeoutMs: num(m.timeoutMs),
      preservedChunks: s.preservedChunks,
    };
    if (s.damaged) r.damaged = s.damaged;
    return r;
  }
}
