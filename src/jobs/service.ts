import { EventEmitter } from 'node:events';
import type { Catalog } from '../catalog/db.ts';
import {
  addJobEvent,
  createJob,
  getJob,
  interruptRunningJobs,
  listJobEvents,
  listJobs,
  transitionJob,
  updateJobProgress,
  type Job,
} from '../catalog/queries/jobs.ts';
import { listSets, getSet } from '../catalog/queries/sets.ts';
import { fileIndexInfo, findEntry, findFiles, listDirectory, normalizePath } from '../catalog/queries/files.ts';
import { runFileRestore } from './file-restore.ts';
import {
  ReservedError,
  cartridgeResource,
  driveResource,
  listCartridges,
  listReservations,
  releaseAll,
  release,
  upsertCartridge,
  getCartridge,
} from '../catalog/queries/cartridges.ts';
import { cartridgesEmptiedBy, expireSets, keptSets, setProtected } from '../catalog/queries/retention.ts';
import { pruneMarks } from './retention.ts';
import { listVolumes } from '../catalog/queries/volumes.ts';
import { FerryError } from '../util/errors.ts';
import { DEFAULT_MAX_JOBS } from '../server/config.ts';
import { JobContext, toEvent } from './context.ts';
import { runBackup, type BackupRequest } from './backup.ts';
import { runRestore } from './restore.ts';
import { runVerify, verifyNewSet } from './verify.ts';
import { runRebuild } from './rebuild.ts';
import { runLabel } from './label.ts';
import { elementName, type Site } from './site.ts';
import { isFinal, isJobState, type JobState } from './states.ts';
import { deleteOrOwe, payOwedSnapshotDeletes } from './owed-snapshots.ts';
import { jobEnded, knownDrives, loadLastSuccess, refreshMedia } from './server-metrics.ts';
import {
  ServiceError,
  idleProgress,
  type CartridgeView,
  type JobEvent,
  type JobFilter,
  type JobService,
  type JobView,
  type SetView,
  type StartBackup,
  type StartRebuild,
  type JobType,
  type StartRestore,
  type StartVerify,
  type StartFileRestore,
  type ListFiles,
  type FileView,
  type VolumeView,
  type PruneResult,
  type DriveView,
  type StartLabel,
  type ThroughputSample,
} from './types.ts';

/** How long listVolumes({discover}) waits for a storage node's LUN list. */
const DISCOVER_TIMEOUT_MS = 2000;

/**
 * The backup server's library: jobs run here, over the catalog and the site. The REST API,
 * the CLI, `ferry up` and `ferry demo` are faces of this class.
 */
export class LocalJobService implements JobService {
  readonly catalog: Catalog;
  readonly site: Site;
  private readonly defaults: { quietPeriodMs: number; timeoutMs: number };
  private readonly bus = new EventEmitter();
  private readonly running = new Map<number, { ctx: JobContext; abort: AbortController; done: Promise<void> }>();
  /** Jobs past their slot wait (maxJobs), and those waiting for one, oldest first. */
  private activeJobs = 0;
  private readonly slotWaiters: Array<() => void> = [];

  private constructor(catalog: Catalog, site: Site) {
    this.catalog = catalog;
    this.site = site;
    this.defaults = site.config.defaults;
    this.bus.setMaxListeners(0);
  }

  /** Open: jobs a dead server left running become failed, their reservations go, and libraries are inventoried. */
  static async open(catalog: Catalog, site: Site): Promise<LocalJobService> {
    const s = new LocalJobService(catalog, site);
    site.onMount = async (barcode, loadCount) => void (await upsertCartridge(catalog.db, { barcode, loadCount }));
    const interrupted = await interruptRunningJobs(catalog.db, new Date(), 'interrupted by server restart');
    await releaseAll(catalog.db);
    await s.releaseSnapshots(interrupted);
    await s.inventory();
    knownDrives(site.config.drives.map((d) => d.name));
    await loadLastSuccess(catalog.db);
    await refreshMedia(catalog.db);
    return s;
  }

  /**
   * The snapshots that interrupted backups took go, and so do those earlier jobs could not
   * delete: a node that does not answer now is named in the job's events, and the delete stays
   * owed (owed-snapshots.ts).
   */
  private async releaseSnapshots(jobs: readonly number[]): Promise<void> {
    const db = this.catalog.db;
    for (const r of await payOwedSnapshotDeletes(db, this.site)) {
      if (r.jobId !== null) await addJobEvent(db, r.jobId, { kind: 'log', message: r.message });
    }
    for (const id of jobs) {
      const taken = (await listJobEvents(db, id))
        .map((e) => e.data as { snapshot?: unknown; volume?: unknown } | null)
        .find((d) => typeof d?.snapshot === 'string');
      if (!taken) continue;
      const snapshot = String(taken.snapshot);
      const volume = String(taken.volume);
      const node = volume.slice(0, volume.lastIndexOf(':'));
      const control = await this.site.nodeControl(node).catch(() => undefined);
      const r = await deleteOrOwe(db, control, { node, snapshotId: snapshot, volumeId: volume, jobId: id });
      const said = r.deleted
        ? `released snapshot ${snapshot} of ${volume}, taken by this job before the server stopped`
        : r.message;
      await addJobEvent(db, id, { kind: 'log', message: said, data: { snapshot } });
    }
  }

  /** Every library's cartridges into the catalog (new ones as blank, scratch). */
  async inventory(): Promise<void> {
    for (const lib of this.site.config.libraries) {
      for (const c of await this.site.inventory(lib.name)) {
        if (!(await getCartridge(this.catalog.db, c.barcode)))
          await upsertCartridge(this.catalog.db, { barcode: c.barcode, library: lib.name });
      }
    }
    for (const d of this.site.config.drives) {
      if (!(await getCartridge(this.catalog.db, d.name)))
        await upsertCartridge(this.catalog.db, { barcode: d.name, library: d.name });
    }
  }

  async startBackup(req: StartBackup): Promise<JobView> {
    const r: BackupRequest = {
      volume: req.volume,
      mode: req.mode ?? 'image',
      level: req.level ?? 'full',
      quietPeriodMs: req.quietPeriodMs ?? this.defaults.quietPeriodMs,
      timeoutMs: req.timeoutMs ?? this.defaults.timeoutMs,
      verify: req.verify ?? false,
      pool: req.pool,
      mover: req.mover,
    };
    this.site.pool(r.pool); // an unknown pool is refused before a job exists
    return this.start('backup', r.volume, r, async (ctx) => {
      const x = await runBackup(ctx, r);
      // --verify: the same job moves to verifying once the set is complete (a mismatch fails it).
      const v = r.verify ? await verifyNewSet(ctx, x.set, r.mover) : undefined;
      return {
        set: x.set,
        bytes: x.bytes + (v?.bytes ?? 0),
        result: { set: x.set, quietWaitMs: x.quietWaitMs, ...(v ? { verify: v.result } : {}) },
      };
    });
  }

  /** A set that is in the catalog and not expired, or why not. */
  private async liveSet(id: number): Promise<NonNullable<Awaited<ReturnType<typeof getSet>>>> {
    const set = await getSet(this.catalog.db, id);
    if (!set) throw new ServiceError('ERR_NOT_FOUND', `no set ${id} in the catalog (see \`ferry sets\`)`);
    if (set.expiredAt)
      throw new ServiceError(
        'ERR_CONFLICT',
        `set ${id} expired on ${set.expiredAt} (\`ferry prune\`): its cartridge may have been written over; use a ` +
          `set ` +
          `that \`ferry sets\` lists`,
      );
    return set;
  }

  async startRestore(req: StartRestore): Promise<JobView> {
    await this.liveSet(req.set);
    return this.start('restore', req.to, req, (ctx) =>
      runRestore(ctx, req).then((x) => ({ set: req.set, bytes: x.bytes, result: { lun: x.lun, volume: x.volume } })),
    );
  }

  async startFileRestore(req: StartFileRestore): Promise<JobView> {
    await this.filesSet(req.set);
    return this.start('restore', null, req, (ctx) =>
      runFileRestore(ctx, req).then((x) => ({
        set: req.set,
        bytes: x.bytes,
        result: { out: x.out, files: x.files, tapeBytes: x.tapeBytes },
      })),
    );
  }

  async startVerify(req: StartVerify): Promise<JobView> {
    const set = await this.liveSet(req.set);
    return this.start('verify', set.volumeId, req, (ctx) =>
      runVerify(ctx, { set: req.set }).then((x) => ({ set: req.set, bytes: x.bytes, result: { ...x.result } })),
    );
  }

  async startLabel(req: StartLabel): Promise<JobView> {
    this.site.pool(req.pool); // a pool that is not configured: 400 now, not a failed job
    if (!(await getCartridge(this.catalog.db, req.barcode)))
      throw new ServiceError('ERR_NOT_FOUND', `no cartridge ${req.barcode} in the catalog (see \`ferry cartridges\`)`);
    return this.start('label', null, req, (ctx) =>
      runLabel(ctx, req).then((x) => ({ set: null, bytes: 0, result: { ...x } })),
    );
  }

  async startRebuild(req: StartRebuild = {}): Promise<JobView> {
    const { libraries, drives } = this.site.config;
    if (req.library !== undefined && ![...libraries, ...drives].some((l) => l.name === req.library)) {
      const names = (xs: Array<{ name: string }>) => xs.map((x) => x.name).join(', ') || 'none';
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `no library or drive named ${req.library}: the config's libraries are ${names(libraries)}, its drives ` +
          `${names(drives)}`,
      );
    }
    return this.start('rebuild', null, req, (ctx) =>
      runRebuild(ctx, req).then((x) => ({ set: null, bytes: 0, result: { ...x } })),
    );
  }

  private async start(
    type: JobType,
    volume: string | null,
    params: unknown,
    body: (ctx: JobContext) => Promise<{ set: number | null; bytes: number; result: Record<string, unknown> }>,
  ): Promise<JobView> {
    const job = await createJob(this.catalog.db, { type, volumeId: volume, params });
    const abort = new AbortController();
    const ctx = new JobContext({
      id: job.id,
      db: this.catalog.db,
      site: this.site,
      signal: abort.signal,
      state: 'queued',
      emit: (e) => {
        this.bus.emit(`job:${job.id}`, e);
        if (e.kind === 'state') void refreshMedia(this.catalog.db).catch(() => undefined);
      },
    });
    const done = (async () => {
      let slot = false;
      try {
        slot = await this.takeSlot(ctx, abort.signal);
        const out = await body(ctx);
        ctx.update({ bytesDone: ctx.progress.bytesTotal });
        // The job's bytes are what the data mover moved (COPY STATUS), records and padding included.
        await updateJobProgress(this.catalog.db, job.id, { bytesDone: out.bytes });
        await transitionJob(this.catalog.db, job.id, ctx.state, 'done', {
          message: `${type} done`,
          setId: out.set,
          result: { ...out.result, bytes: out.bytes },
          data: { throughput: ctx.throughput },
        });
        ctx.state = 'done';
      } catch (err) {
        const canceled = abort.signal.aborted;
        const e =
          err instanceof FerryError
            ? err
            : new FerryError('ERR_INTERNAL', err instanceof Error ? err.message : String(err));
        const to: JobState = canceled ? 'canceled' : 'failed';
        await transitionJob(this.catalog.db, job.id, ctx.state, to, {
          message: canceled ? 'canceled' : e.message,
          error: { code: canceled ? 'ERR_CANCELED' : e.code, message: e.message },
          setId: null,
          data: { throughput: ctx.throughput },
        }).catch(() => undefined);
        ctx.state = to;
      } finally {
        if (slot) this.giveSlot();
        ctx.ended();
        await release(this.catalog.db, job.id).catch(() => undefined);
        await this.measure(job.id).catch(() => undefined);
        this.running.delete(job.id);
        await ctx.publishStored().catch(() => undefined);
        this.bus.emit(`end:${job.id}`);
      }
    })();
    this.running.set(job.id, { ctx, abort, done });
    return this.view(job);
  }

  /** A job ended: its metrics, and the media gauges it may have changed. */
  private async measure(id: number): Promise<void> {
    const j = await getJob(this.catalog.db, id);
    if (j) jobEnded(j);
    await refreshMedia(this.catalog.db);
  }

  /** Wait, queued, until fewer than maxJobs jobs run (FIFO); a cancel ends the wait. */
  private async takeSlot(ctx: JobContext, signal: AbortSignal): Promise<true> {
    const max = this.site.config.maxJobs ?? DEFAULT_MAX_JOBS;
    if (this.activeJobs < max && this.slotWaiters.length === 0) {
      this.activeJobs++;
      return true;
    }
    const why = `a job slot: ${max} job${max > 1 ? 's' : ''} run at once (maxJobs)`;
    ctx.update({ waitingFor: why });
    await ctx.log(`waiting for ${why}`);
    await new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', stop);
        resolve();
      };
      const stop = (): void => {
        const i = this.slotWaiters.indexOf(go);
        if (i >= 0) this.slotWaiters.splice(i, 1);
        reject(new FerryError('ERR_CANCELED', `job ${ctx.id} was canceled while waiting for a job slot`));
      };
      this.slotWaiters.push(go);
      signal.addEventListener('abort', stop, { once: true });
    });
    ctx.update({ waitingFor: null });
    return true; // the slot was handed over by giveSlot: activeJobs already counts it
  }

  private giveSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.activeJobs--;
  }

  async cancel(id: number): Promise<JobView> {
    const r = this.running.get(id);
    if (!r) {
      const j = await this.getJob(id);
      if (isFinal(j.state)) throw new ServiceError('ERR_CONFLICT', `job ${id} is already ${j.state}`);
      return j;
    }
    r.abort.abort();
    await r.done;
    return this.getJob(id);
  }

  async retry(id: number): Promise<JobView> {
    const j = await getJob(this.catalog.db, id);
    if (!j) throw new ServiceError('ERR_NOT_FOUND', `no job ${id} (see \`ferry jobs\`)`);
    if (j.state !== 'failed' && j.state !== 'canceled')
      throw new ServiceError('ERR_CONFLICT', `job ${id} is ${j.state}: only a failed or canceled job is retried`);
    const p = (j.params ?? {}) as Record<string, unknown>;
    switch (j.type as JobType) {
      case 'backup':
        return this.startBackup(p as unknown as StartBackup);
      case 'restore':
        return 'files' in p
          ? this.startFileRestore(p as unknown as StartFileRestore)
          : this.startRestore(p as unknown as StartRestore);
      case 'verify':
        return this.startVerify(p as unknown as StartVerify);
      case 'rebuild':
        return this.startRebuild(p as StartRebuild);
      case 'label':
        return this.startLabel(p as unknown as StartLabel);
    }
    throw new ServiceError('ERR_CONFLICT', `job ${id} is a ${j.type} job, which cannot be retried`);
  }

  async throughput(id: number): Promise<ThroughputSample[]> {
    const r = this.running.get(id);
    if (r) return [...r.ctx.throughput];
    const ended = (await this.events(id)).filter((e) => e.kind === 'state' && e.state !== null && isFinal(e.state));
    const t = ended.at(-1)?.data?.throughput;
    return Array.isArray(t) ? (t as ThroughputSample[]) : [];
  }

  async getJob(id: number): Promise<JobView> {
    const j = await getJob(this.catalog.db, id);
    if (!j) throw new ServiceError('ERR_NOT_FOUND', `no job ${id} (see \`ferry jobs\`)`);
    return this.view(j);
  }

  async listJobs(f: JobFilter = {}): Promise<JobView[]> {
    const jobs = await listJobs(this.catalog.db, { state: f.state, type: f.type, volumeId: f.volume, limit: f.limit });
    return jobs.map((j) => this.view(j));
  }

  async events(id: number, afterId?: number): Promise<JobEvent[]> {
    await this.getJob(id);
    return (await listJobEvents(this.catalog.db, id, afterId)).map(toEvent);
  }

  subscribe(id: number, listener: (e: JobEvent) => void): () => void {
    this.bus.on(`job:${id}`, listener);
    return () => this.bus.off(`job:${id}`, listener);
  }

  async waitForJob(id: number): Promise<JobView> {
    const r = this.running.get(id);
    if (r) await r.done;
    return this.getJob(id);
  }

  async listSets(f: { volume?: string } = {}): Promise<SetView[]> {
    return (await listSets(this.catalog.db, { volumeId: f.volume })).map((s) => ({
      id: s.id,
      volume: s.volumeId,
      mode: s.mode,
      level: s.level,
      base: s.baseSetId,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      bytes: s.streamBytes,
      cartridges: s.cartridges,
      snapshot: s.snapshotId,
      reason: s.reason,
      protected: s.protected ?? false,
    }));
  }

  async protectSet(id: number, protect: boolean): Promise<SetView> {
    await setProtected(this.catalog.db, id, protect).catch((e: FerryError) => {
      throw e.code === 'ERR_CATALOG_NOT_FOUND'
        ? new ServiceError('ERR_NOT_FOUND', `no set ${id} in the catalog (see \`ferry sets\`)`)
        : e;
    });
    return this.getSet(id);
  }

  /**
   * Apply each pool's retention rules (config `pools[].retention`). Refused while a job holds a
   * cartridge of a set that would expire: the set may be in use, and its cartridge may be written.
   */
  async prune(o: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const db = this.catalog.db;
    const out: PruneResult = { dryRun: o.dryRun ?? false, expired: [], kept: [], scratch: [], unmanaged: [] };
    const expire = new Map<number, PruneResult['expired'][number]>();
    const all = new Map((await keptSets(db)).map((s) => [s.id, s]));
    for (const pool of this.site.config.pools) {
      if (!pool.retention) {
        out.unmanaged.push(pool.name);
        continue;
      }
      const sets = [...all.values()].filter((s) => s.pool === pool.name);
      const byId = new Map(sets.map((s) => [s.id, s]));
      for (const m of pruneMarks(sets, pool.retention)) {
        const s = byId.get(m.set)!;
        if (m.keep) out.kept.push({ set: m.set, why: m.why });
        else
          expire.set(s.id, {
            set: s.id,
            volume: s.volumeId,
            mode: s.mode,
            level: s.level,
            snapshotAt: s.snapshotAt,
            pool: pool.name,
            cartridges: s.cartridges,
          });
      }
    }
    // A set stays when any set kept anywhere builds on it (an incremental may be in another pool than its base).
    for (const s of all.values()) {
      if (expire.has(s.id)) continue;
      for (let from = s.id, b = s.baseSetId; b !== null && all.has(b); from = b, b = all.get(b)!.baseSetId) {
        if (!expire.delete(b)) continue;
        out.kept.push({ set: b, why: `base of set ${from}` });
      }
    }
    out.kept.sort((a, b) => a.set - b.set);
    out.expired = [...expire.values()].sort((a, b) => a.set - b.set);
    const ids = out.expired.map((e) => e.set);
    out.scratch = o.dryRun
      ? await cartridgesEmptiedBy(db, ids)
      : await expireSets(db, ids).catch((e: FerryError) => {
          if (!(e instanceof ReservedError)) throw e;
          const barcode = e.resource.slice(e.resource.indexOf(':') + 1);
          const set = out.expired.find((x) => x.cartridges.includes(barcode))?.set;
          throw new ServiceError(
            'ERR_CONFLICT',
            `set ${set} would expire, but its cartridge ${barcode} is in use by job ${e.holderJobId}: prune again ` +
              `when the job has ended (nothing was pruned)`,
          );
        });
    return out;
  }

  async getSet(id: number): Promise<SetView> {
    await this.liveSet(id);
    const s = (await this.listSets()).find((x) => x.id === id);
    if (!s) throw new ServiceError('ERR_NOT_FOUND', `no set ${id} in the catalog (see \`ferry sets\`)`);
    return s;
  }

  /** A files set, or why not. */
  private async filesSet(id: number): Promise<void> {
    const set = await this.liveSet(id);
    if (set.mode !== 'files')
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        `set ${id} is a ${set.mode} set and has no file index: browse and restore files from sets made with \`ferry ` +
          `backup VOLUME --mode files\`, or restore set ${id} to a LUN`,
      );
    if (!(await fileIndexInfo(this.catalog.db, id)))
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `set ${id} has no file index in the catalog: run \`ferry catalog rebuild\``,
      );
  }

  async listFiles(id: number, q: ListFiles = {}): Promise<FileView[]> {
    await this.filesSet(id);
    const at = await findEntry(this.catalog.db, id, q.path ?? '/');
    if (at === undefined)
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `${normalizePath(q.path ?? '/')} is not in set ${id} (see \`ferry ls ${id} /\`)`,
      );
    if (at !== 'root' && at.type !== 'dir') {
      const { data: _d, modifiedMs: _m, ...entry } = at;
      return [entry];
    }
    return listDirectory(this.catalog.db, id, at === 'root' ? '/' : at.path, {
      recursive: q.recursive,
      system: q.system,
    });
  }

  async findFiles(id: number, pattern: string): Promise<FileView[]> {
    await this.filesSet(id);
    return findFiles(this.catalog.db, id, pattern);
  }

  async listCartridges(): Promise<CartridgeView[]> {
    const sets = await listSets(this.catalog.db);
    // Where each one is, library by library (a library that does not answer leaves it unknown).
    const where = new Map<string, string>();
    for (const lib of this.site.config.libraries) {
      const els = await this.site.elements(lib.name).catch(() => []);
      for (const e of els) if (e.full && e.barcode) where.set(e.barcode, elementName(e));
    }
    for (const d of this.site.config.drives) where.set(d.name, `drive ${d.name}`);
    return (await listCartridges(this.catalog.db)).map((c) => ({
      barcode: c.barcode,
      pool: c.pool,
      library: c.library,
      state: c.state,
      bytesUsed: c.bytesUsed,
      sets: sets.filter((s) => s.cartridges.includes(c.barcode)).length,
      lastWrittenAt: c.lastWrittenAt,
      where: where.get(c.barcode) ?? (c.exportedAt ? 'exported' : null),
      loadCount: c.loadCount,
      recycled: c.recycledAt !== null,
    }));
  }

  async listDrives(): Promise<DriveView[]> {
    const held = new Map((await listReservations(this.catalog.db)).map((r) => [r.resource, r.jobId]));
    const pools = (name: string) =>
      this.site.config.pools.filter((p) => p.library === name || p.drive === name).map((p) => p.name);
    const out: DriveView[] = [];
    for (const lib of this.site.config.libraries) {
      const els = await this.site.elements(lib.name).catch((e: Error) => {
        throw new ServiceError('ERR_CONFLICT', `library ${lib.name} does not answer (${e.message}): check its node`);
      });
      for (const e of els.filter((x) => x.type === 'drive')) {
        const name = `${lib.name}/${e.address}`;
        out.push({
          name,
          library: lib.name,
          element: e.address,
          cartridge: e.full ? (e.barcode ?? null) : null,
          job: held.get(driveResource(name)) ?? null,
          pools: pools(lib.name),
        });
      }
    }
    for (const d of this.site.config.drives)
      out.push({
        name: d.name,
        library: null,
        element: null,
        cartridge: d.name,
        job: held.get(driveResource(d.name)) ?? null,
        pools: pools(d.name),
      });
    return out;
  }

  /** A cartridge of a configured library, or why not. */
  private async libraryCartridge(barcode: string): Promise<{ library: string }> {
    const c = await getCartridge(this.catalog.db, barcode);
    const library = c?.library ?? undefined;
    if (!c || !library || !this.site.config.libraries.some((l) => l.name === library)) {
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `no cartridge ${barcode} in a library of the config (see \`ferry cartridges\`)`,
      );
    }
    return { library };
  }

  private async cartridgeView(barcode: string): Promise<CartridgeView> {
    return (await this.listCartridges()).find((c) => c.barcode === barcode)!;
  }

  async exportCartridge(barcode: string): Promise<CartridgeView> {
    const { library } = await this.libraryCartridge(barcode);
    const db = this.catalog.db;
    // Out of the jobs' reach first (no new job picks or reserves it), then: is one using it, or its drive?
    await upsertCartridge(db, { barcode, exportedAt: new Date() });
    try {
      const held = new Map((await listReservations(db)).map((r) => [r.resource, r.jobId]));
      const job = held.get(cartridgeResource(barcode));
      if (job !== undefined)
        throw new ServiceError(
          'ERR_CONFLICT',
          `cartridge ${barcode} is in use by job ${job}: export it when the job has ended`,
        );
      const inDrive = (await this.site.elements(library)).find(
        (e) => e.type === 'drive' && e.full && e.barcode === barcode,
      );
      const driveJob = inDrive && held.get(driveResource(`${library}/${inDrive.address}`));
      if (driveJob !== undefined)
        throw new ServiceError(
          'ERR_CONFLICT',
          `cartridge ${barcode} is in drive ${library}/${inDrive!.address}, which job ${driveJob} holds: export it ` +
            `when the job has ended`,
        );
      await this.site.moveCartridge(library, barcode, 'ie');
    } catch (e) {
      await upsertCartridge(db, { barcode, exportedAt: null });
      throw e;
    }
    return this.cartridgeView(barcode);
  }

  async importCartridge(barcode: string): Promise<CartridgeView> {
    for (const lib of this.site.config.libraries) {
      const els = await this.site.elements(lib.name).catch(() => []);
      if (!els.some((e) => e.type === 'ie' && e.full && e.barcode === barcode)) continue;
      await this.site.moveCartridge(lib.name, barcode, 'slot');
      await upsertCartridge(this.catalog.db, { barcode, library: lib.name, exportedAt: null });
      return this.cartridgeView(barcode);
    }
    throw new ServiceError(
      'ERR_NOT_FOUND',
      `cartridge ${barcode} is in no import/export element of the config's libraries: put it into one first`,
    );
  }

  async listVolumes(o: { discover?: boolean } = {}): Promise<VolumeView[]> {
    const known: VolumeView[] = (await listVolumes(this.catalog.db)).map((v) => ({
      id: v.id,
      node: v.node,
      lun: v.lun,
      sizeBytes: v.volumeBlocks * v.diskBlockBytes,
      lastSet: v.keptSetId,
    }));
    if (!o.discover) return known;
    const byId = new Map(known.map((v) => [v.id, v]));
    const found = await Promise.all(this.site.config.nodes.map((n) => this.diskLuns(n.name)));
    for (const v of found.flat()) if (!byId.has(v.id)) byId.set(v.id, v);
    return [...byId.values()].sort((a, b) => (a.node === b.node ? a.lun - b.lun : a.node < b.node ? -1 : 1));
  }

  /** A node's disk LUNs as volumes, or none when it does not answer in time. */
  private async diskLuns(node: string): Promise<VolumeView[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in 2 s')), DISCOVER_TIMEOUT_MS);
    });
    try {
      const luns = await Promise.race([this.site.nodeControl(node).then((c) => c.listLuns()), late]);
      return luns
        .filter((l) => l.kind === 'disk')
        .map((l) => ({ id: `${node}:${l.lun}`, node, lun: l.lun, sizeBytes: l.sizeBytes, lastSet: null }));
    } catch {
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    for (const r of this.running.values()) r.abort.abort();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
    await this.site.close();
    await this.catalog.close();
  }

  private view(j: Job): JobView {
    const live = this.running.get(j.id)?.ctx.progress;
    const state: JobState = isJobState(j.state) ? j.state : 'failed';
    return {
      id: j.id,
      type: j.type,
      volume: j.volumeId,
      state,
      createdAt: j.createdAt,
      startedAt: j.startedAt,
      endedAt: j.endedAt,
      bytes: j.bytesDone,
      set: isFinal(state) && state !== 'done' ? null : j.setId,
      mover: j.mover,
      cartridge: j.cartridge,
      error: j.errorCode ? { code: j.errorCode, message: j.error ?? '' } : null,
      progress: live
        ? { ...live }
        : idleProgress(state, {
            waitingFor: j.waitingFor,
            bytesDone: j.bytesDone,
            bytesTotal: j.bytesTotal,
            cartridge: j.cartridge,
          }),
      result: (j.result as Record<string, unknown> | null) ?? null,
    };
  }
}
