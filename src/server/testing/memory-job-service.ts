import { isFinal, type JobState } from '../../jobs/states.ts';
import {
  idleProgress,
  ServiceError,
  type CartridgeView,
  type JobEvent,
  type JobFilter,
  type JobService,
  type JobType,
  type JobView,
  type SetView,
  type StartBackup,
  type StartRebuild,
  type StartRestore,
  type StartVerify,
  type StartFileRestore,
  type FileView,
  type ListFiles,
  type VolumeView,
  type PruneResult,
  type DriveView,
  type StartLabel,
  type ThroughputSample,
} from '../../jobs/types.ts';

/**
 * A TEST DOUBLE of the server library: an in-memory JobService whose jobs walk through scripted
 * states on timers. It exists only to test the thin faces (REST API, HTTP client, CLI); it plans
 * and copies nothing. Scripted behaviours:
 *   - volumes `store:0` (1 GiB) and `store:1` exist; another volume is a 404;
 *   - a backup to pool `empty` fails at mounting with ERR_POOL_EMPTY;
 *   - verify of a set of `store:1` fails with ERR_VERIFY_MISMATCH, as the real service does;
 *   - prune keeps the newest set of each volume and expires the rest; a protected set stays;
 *   - `manual: true`: jobs move only when the test calls `step(id)`.
 */

interface Step {
  state?: JobState;
  message: string;
  progress?: Partial<JobView['progress']>;
  data?: Record<string, unknown>;
  apply?: (j: JobView) => void;
}

interface Running {
  view: JobView;
  steps: Step[];
  timer?: NodeJS.Timeout;
}

const GiB = 1024 ** 3;
const cartridge = { pool: 'default', library: 'vtl', lastWrittenAt: null, loadCount: null, recycled: false };

export class MemoryJobService implements JobService {
  readonly stepMs: number;
  readonly manual: boolean;
  private readonly jobs = new Map<number, Running>();
  private readonly log: JobEvent[] = [];
  private readonly listeners = new Map<number, Set<(e: JobEvent) => void>>();
  private readonly sets: SetView[] = [];
  private readonly volumes: VolumeView[] = [
    { id: 'store:0', node: 'store', lun: 0, sizeBytes: GiB, lastSet: null },
    { id: 'store:1', node: 'store', lun: 1, sizeBytes: GiB, lastSet: null },
  ];
  private readonly requests = new Map<number, StartBackup>();
  private readonly samples = new Map<number, ThroughputSample[]>();
  private nextJob = 1;
  private nextEvent = 1;

  constructor(opts: { stepMs?: number; manual?: boolean } = {}) {
    this.stepMs = opts.stepMs ?? 20;
    this.manual = opts.manual ?? false;
  }

  /** Add a complete set directly (as if an earlier backup had written it). */
  addSet(s: Partial<SetView> & { volume: string }): SetView {
    const now = new Date().toISOString();
    const set: SetView = {
      id: this.sets.length + 1,
      mode: 'image',
      level: 'full',
      base: null,
      startedAt: now,
      endedAt: now,
      bytes: GiB,
      cartridges: ['A00001'],
      snapshot: `snap-${this.sets.length + 1}`,
      reason: null,
      protected: false,
      ...s,
    };
    this.sets.push(set);
    return set;
  }

  async startBackup(req: StartBackup): Promise<JobView> {
    const vol = this.volume(req.volume);
    const j = this.create('backup', req.volume);
    this.requests.set(j.id, req);
    this.samples.set(j.id, [
      [1, 400],
      [2, 512],
    ]);
    const total = vol.sizeBytes;
    const steps: Step[] = [
      { state: 'waiting-quiet', message: 'waiting for 3 s without writes', progress: { lastWriteMsAgo: 1200 } },
      { message: 'last write 2.4 s ago', progress: { lastWriteMsAgo: 2400 } },
      { state: 'planning', message: 'planning', progress: { bytesTotal: total, lastWriteMsAgo: null } },
      { state: 'mounting', message: 'loading A00001', progress: { cartridge: 'A00001' } },
    ];
    if (req.pool === 'empty') {
      const message = 'pool "empty" has no cartridge in state append or blank';
      steps.push({ state: 'failed', message, apply: (v) => (v.error = { code: 'ERR_POOL_EMPTY', message }) });
    } else {
      steps.push(
        { state: 'copying', message: 'copying' },
        { message: 'copied', progress: { bytesDone: total / 2, mbPerSecond: 512, etaSeconds: 1 } },
        { message: 'copied', progress: { bytesDone: total, mbPerSecond: 512, etaSeconds: 0 } },
      );
      if (req.verify) steps.push({ state: 'verifying', message: 'verifying' });
      steps.push({
        state: 'done',
        message: 'done',
        apply: (v) => {
          const set = this.addSet({ volume: req.volume, mode: req.mode ?? 'image', level: req.level ?? 'full' });
          vol.lastSet = set.id;
          v.set = set.id;
          v.bytes = total;
        },
      });
    }
    return this.launch(j, steps);
  }

  async startRestore(req: StartRestore): Promise<JobView> {
    const set = await this.getSet(req.set);
    if (!req.to.endsWith(':new')) this.volume(req.to);
    const j = this.create('restore', req.to);
    j.set = set.id;
    return this.launch(j, [
      { state: 'mounting', message: 'loading A00001', progress: { cartridge: 'A00001', bytesTotal: set.bytes } },
      { state: 'copying', message: 'copying' },
      { message: 'copied', progress: { bytesDone: set.bytes } },
      { state: 'done', message: 'done', apply: (v) => ((v.bytes = set.bytes), (v.result = {})) },
    ]);
  }

  async startVerify(req: StartVerify): Promise<JobView> {
    const set = await this.getSet(req.set);
    const j = this.create('verify', set.volume);
    j.set = set.id;
    const ok = set.volume !== 'store:1';
    return this.launch(j, [
      { state: 'mounting', message: 'loading A00001' },
      { state: 'verifying', message: 'verifying' },
      ok
        ? { state: 'done', message: 'digests match', apply: (v) => (v.result = { ok }) }
        : {
            state: 'failed',
            message: `set ${set.id} did not verify: the digests on tape and disk differ`,
            apply: (v) =>
              (v.error = {
                code: 'ERR_VERIFY_MISMATCH',
                message: `set ${set.id} did not verify: the digests on tape and disk differ`,
              }),
          },
    ]);
  }

  async startLabel(req: StartLabel): Promise<JobView> {
    if (!this.places.has(req.barcode))
      throw new ServiceError('ERR_NOT_FOUND', `no cartridge ${req.barcode} in the catalog`);
    const j = this.create('label', null);
    return this.launch(j, [
      { state: 'mounting', message: `loading ${req.barcode}` },
      { state: 'copying', message: `writing the label of ${req.barcode}` },
      {
        state: 'done',
        message: 'labeled',
        apply: (v) => (v.result = { cartridge: req.barcode, pool: req.pool ?? 'default' }),
      },
    ]);
  }

  async startRebuild(_req: StartRebuild): Promise<JobView> {
    const j = this.create('rebuild', null);
    return this.launch(j, [
      { state: 'mounting', message: 'loading A00001' },
      { state: 'done', message: `${this.sets.length} sets`, apply: (v) => (v.result = { sets: this.sets.length }) },
    ]);
  }

  async cancel(id: number): Promise<JobView> {
    const r = this.running(id);
    if (isFinal(r.view.state)) throw new ServiceError('ERR_CONFLICT', `job ${id} has already ended (${r.view.state})`);
    clearTimeout(r.timer);
    r.steps = [];
    this.apply(r, { state: 'canceled', message: 'canceled by the user' });
    return this.copy(r.view);
  }

  /** Retried backups only (enough for the faces): the same request again. */
  async retry(id: number): Promise<JobView> {
    const r = this.running(id);
    if (r.view.state !== 'failed' && r.view.state !== 'canceled')
      throw new ServiceError('ERR_CONFLICT', `job ${id} is ${r.view.state}: only a failed or canceled job is retried`);
    const req = this.requests.get(id);
    if (!req)
      throw new ServiceError('ERR_CONFLICT', `job ${id} is a ${r.view.type} job, which this double cannot retry`);
    return this.startBackup(req);
  }

  async throughput(id: number): Promise<ThroughputSample[]> {
    this.running(id);
    return this.samples.get(id) ?? [];
  }

  async getJob(id: number): Promise<JobView> {
    return this.copy(this.running(id).view);
  }

  async listJobs(f: JobFilter = {}): Promise<JobView[]> {
    const all = [...this.jobs.values()].map((r) => r.view).reverse();
    const hit = all.filter(
      (v) =>
        (f.state === undefined || (typeof f.state === 'string' ? v.state === f.state : f.state.includes(v.state))) &&
        (f.type === undefined || v.type === f.type) &&
        (f.volume === undefined || v.volume === f.volume),
    );
    return hit.slice(0, f.limit ?? hit.length).map((v) => this.copy(v));
  }

  async events(id: number, afterId?: number): Promise<JobEvent[]> {
    this.running(id);
    return this.log.filter((e) => e.job === id && (afterId === undefined || e.id > afterId));
  }

  subscribe(id: number, listener: (e: JobEvent) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  async waitForJob(id: number): Promise<JobView> {
    const v = await this.getJob(id);
    if (isFinal(v.state)) return v;
    return new Promise((resolve) => {
      const off = this.subscribe(id, (e) => {
        if (e.state && isFinal(e.state)) {
          off();
          resolve(this.getJob(id));
        }
      });
    });
  }

  async listSets(f: { volume?: string } = {}): Promise<SetView[]> {
    return this.sets.filter((s) => f.volume === undefined || s.volume === f.volume).map((s) => ({ ...s }));
  }

  async getSet(id: number): Promise<SetView> {
    const s = this.sets.find((x) => x.id === id);
    if (!s) throw new ServiceError('ERR_NOT_FOUND', `no backup set ${id}`);
    return { ...s };
  }

  /** Files of `files` sets: tests fill this. */
  files: FileView[] = [];

  async startFileRestore(req: StartFileRestore): Promise<JobView> {
    const set = await this.getSet(req.set);
    const j = this.create('restore', null);
    j.set = set.id;
    return this.launch(j, [
      { state: 'planning', message: `finding ${req.files.join(', ')}` },
      { state: 'done', message: 'restore done' },
    ]);
  }

  async listFiles(id: number, q: ListFiles = {}): Promise<FileView[]> {
    const set = await this.getSet(id);
    if (set.mode !== 'files')
      throw new ServiceError('ERR_BAD_REQUEST', `set ${id} is a ${set.mode} set and has no file index`);
    const dir = q.path ?? '/';
    const under = (p: string) => (dir === '/' ? p.startsWith('/') : p.startsWith(`${dir}/`));
    const parent = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
    return this.files.filter((f) => f.set === id && (q.recursive ? under(f.path) : parent(f.path) === dir));
  }

  async findFiles(id: number, pattern: string): Promise<FileView[]> {
    await this.listFiles(id);
    return this.files.filter((f) => f.set === id && f.path.includes(pattern.replaceAll('*', '')));
  }

  /** Where A00001 and A00002 are (`export` and `import` move them). */
  private readonly places = new Map([
    ['A00001', 'slot 1024'],
    ['A00002', 'slot 1025'],
  ]);

  async listCartridges(): Promise<CartridgeView[]> {
    return [
      {
        ...cartridge,
        barcode: 'A00001',
        state: 'append',
        bytesUsed: this.sets.length * GiB,
        sets: this.sets.length,
        where: this.places.get('A00001')!,
      },
      { ...cartridge, barcode: 'A00002', state: 'blank', bytesUsed: 0, sets: 0, where: this.places.get('A00002')! },
    ];
  }

  async listDrives(): Promise<DriveView[]> {
    return [
      { name: 'vtl/256', library: 'vtl', element: 256, cartridge: null, job: null, pools: ['default'] },
      { name: 'vtl/257', library: 'vtl', element: 257, cartridge: null, job: null, pools: ['default'] },
    ];
  }

  async exportCartridge(barcode: string): Promise<CartridgeView> {
    if (!this.places.has(barcode)) throw new ServiceError('ERR_NOT_FOUND', `no cartridge ${barcode}`);
    this.places.set(barcode, 'import/export element 768');
    return (await this.listCartridges()).find((c) => c.barcode === barcode)!;
  }

  async importCartridge(barcode: string): Promise<CartridgeView> {
    if (this.places.get(barcode) !== 'import/export element 768')
      throw new ServiceError('ERR_NOT_FOUND', `cartridge ${barcode} is in no import/export element`);
    this.places.set(barcode, 'slot 1030');
    return (await this.listCartridges()).find((c) => c.barcode === barcode)!;
  }

  async prune(o: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const newest = new Map<string, number>();
    for (const x of this.sets) newest.set(x.volume, Math.max(newest.get(x.volume) ?? 0, x.id));
    const keep = (x: SetView) => x.protected || newest.get(x.volume) === x.id;
    const expired = this.sets.filter((x) => !keep(x));
    const out: PruneResult = {
      dryRun: o.dryRun ?? false,
      expired: expired.map((x) => ({
        set: x.id,
        volume: x.volume,
        mode: x.mode,
        level: x.level,
        snapshotAt: x.startedAt,
        pool: 'default',
        cartridges: x.cartridges,
      })),
      kept: this.sets.filter(keep).map((x) => ({ set: x.id, why: x.protected ? 'protected' : 'keepLast' })),
      scratch: [],
      unmanaged: [],
    };
    if (!o.dryRun) for (const x of expired) this.sets.splice(this.sets.indexOf(x), 1);
    return out;
  }

  async protectSet(id: number, protect: boolean): Promise<SetView> {
    const s = this.sets.find((x) => x.id === id);
    if (!s) throw new ServiceError('ERR_NOT_FOUND', `no backup set ${id}`);
    s.protected = protect;
    return { ...s };
  }

  async listVolumes(): Promise<VolumeView[]> {
    return this.volumes.map((v) => ({ ...v }));
  }

  async close(): Promise<void> {
    for (const r of this.jobs.values()) clearTimeout(r.timer);
  }

  /** Run the next scripted step of a job now (for `manual: true`). */
  step(id: number): void {
    const r = this.running(id);
    const s = r.steps.shift();
    if (s) this.apply(r, s);
  }

  /** Emit a log event (a test's way to make an event appear at a chosen time). */
  emitLog(id: number, message: string): JobEvent {
    return this.emit(this.running(id).view, { message });
  }

  private volume(id: string): VolumeView {
    const v = this.volumes.find((x) => x.id === id);
    const known = this.volumes.map((x) => x.id).join(', ');
    if (!v) throw new ServiceError('ERR_NOT_FOUND', `unknown volume ${id}: known volumes are ${known}`);
    return v;
  }

  private running(id: number): Running {
    const r = this.jobs.get(id);
    if (!r) throw new ServiceError('ERR_NOT_FOUND', `no job ${id}`);
    return r;
  }

  private create(type: JobType, volume: string | null): JobView {
    const now = new Date().toISOString();
    return {
      id: this.nextJob++,
      type,
      volume,
      state: 'queued',
      createdAt: now,
      startedAt: null,
      endedAt: null,
      bytes: 0,
      set: null,
      mover: 'm1',
      cartridge: null,
      error: null,
      progress: idleProgress('queued'),
      result: null,
    };
  }

  private launch(view: JobView, steps: Step[]): JobView {
    const r: Running = { view, steps };
    this.jobs.set(view.id, r);
    this.emit(view, { state: 'queued', message: 'queued' });
    if (!this.manual) this.schedule(r);
    return this.copy(view);
  }

  private schedule(r: Running): void {
    r.timer = setTimeout(() => {
      const s = r.steps.shift();
      if (!s) return;
      this.apply(r, s);
      if (r.steps.length > 0) this.schedule(r);
    }, this.stepMs);
  }

  private apply(r: Running, s: Step): void {
    const v = r.view;
    if (s.state) {
      v.state = s.state;
      v.progress.phase = s.state;
      v.progress.waitingFor = s.state === 'waiting-quiet' ? `3 s without writes to ${v.volume}` : null;
      v.startedAt ??= new Date().toISOString();
      if (isFinal(s.state)) v.endedAt = new Date().toISOString();
    }
    Object.assign(v.progress, s.progress);
    if (s.progress?.cartridge) v.cartridge = s.progress.cartridge;
    s.apply?.(v);
    this.emit(v, s);
  }

  private emit(v: JobView, s: { state?: JobState; message: string; data?: Record<string, unknown> }): JobEvent {
    const e: JobEvent = {
      id: this.nextEvent++,
      job: v.id,
      at: new Date().toISOString(),
      kind: s.state ? 'state' : s.message === 'copied' || s.message.startsWith('last write') ? 'progress' : 'log',
      state: s.state ?? null,
      message: s.message,
      data: s.data ?? { ...v.progress },
    };
    this.log.push(e);
    for (const l of [...(this.listeners.get(v.id) ?? [])]) l(e);
    return e;
  }

  private copy(v: JobView): JobView {
    return structuredClone(v);
  }
}
