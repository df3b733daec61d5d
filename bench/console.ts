// Benchmark: the web console over a big catalog (issue 15, "Speed"). Budgets: the dashboard's HTML
// in under 100 ms with 1,000 jobs in the catalog, one directory of a 1,000,000-file set in under
// 200 ms. Each is timed over real HTTP (keep-alive, bearer token) against its peer in the same run:
// the REST API's job list (JSON of the same jobs) and the catalog query alone (listDirectory).
//   node --import tsx bench/console.ts [--jobs 1000] [--dirs 1000] [--per-dir 1000] [--runs 9]
// The catalog is a real one (openCatalog) in a temp dir, served by the real server library
// (LocalJobService over a Site with no nodes, libraries or drives: nothing to reach).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCatalog } from '../src/catalog/db.ts';
import { upsertCartridge, type CartridgeState } from '../src/catalog/queries/cartridges.ts';
import { listDirectory } from '../src/catalog/queries/files.ts';
import { addJobEvent, createJob, transitionJob, type JobType } from '../src/catalog/queries/jobs.ts';
import { completeSet } from '../src/catalog/queries/sets.ts';
import { upsertVolume } from '../src/catalog/queries/volumes.ts';
import type { Db } from '../src/catalog/queries/common.ts';
import { fakeFileIndex, fakePiece, fakeSet } from '../src/catalog/testing.ts';
import { startConsole } from '../src/console/app.ts';
import { LocalJobService } from '../src/jobs/service.ts';
import { Site } from '../src/jobs/site.ts';
import { startServerApi } from '../src/server/api.ts';
import type { ServerConfig } from '../src/server/config.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    dirs: { type: 'string', default: '1000' },
    'per-dir': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '9' },
  },
});
const JOBS = Number(values.jobs);
const DIRS = Number(values.dirs);
const PER_DIR = Number(values['per-dir']);
const RUNS = Number(values.runs);
const WARMUP = 3;
const VOLUMES = 8;
/** Jobs still running when the console is read (created after the service opened: it fails the older ones). */
const ACTIVE = Math.min(4, JOBS);
const TOKEN = randomBytes(24).toString('hex');
const FILES_SET = 1;
const DIR = `/d${Math.floor(DIRS / 2)}`;

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]): number => sorted(xs)[Math.max(0, Math.ceil(xs.length * 0.9) - 1)];

const TYPES: JobType[] = ['backup', 'backup', 'backup', 'backup', 'verify', 'restore', 'rebuild', 'label'];
/** The states each type passes through on its way to done. */
const PATHS: Record<JobType, string[]> = {
  backup: ['waiting-quiet', 'planning', 'waiting-drive', 'mounting', 'copying', 'verifying'],
  restore: ['planning', 'mounting', 'copying'],
  verify: ['planning', 'mounting', 'verifying'],
  rebuild: ['mounting', 'copying'],
  label: ['mounting', 'copying'],
};

const volumeOf = (i: number): string => `store:${i % VOLUMES}`;

/** Job `i`: a mix of types; done most often, some failed (at a random step) and canceled; a few log events each. */
async function oldJob(db: Db, i: number, t0: number): Promise<void> {
  const type = TYPES[i % TYPES.length];
  const at = (step: number): string => new Date(t0 + i * 3_600_000 + step * 60_000).toISOString();
  const volume = type === 'label' ? null : volumeOf(i);
  const j = await createJob(db, { type, volumeId: volume, params: { i }, bytesTotal: 1 << 30, at: at(0) });
  const end = i % 20 === 7 ? 'failed' : i % 50 === 11 ? 'canceled' : 'done';
  const path = PATHS[type];
  const steps = end === 'done' ? path.length : 1 + (i % path.length);
  let from = 'queued';
  for (let s = 0; s < steps; s++) {
    await transitionJob(db, j.id, from, path[s], { message: `${path[s]}`, at: at(s + 1) });
    from = path[s];
    if (path[s] === 'mounting')
      await addJobEvent(db, j.id, { kind: 'cartridge', message: `mounted FER00${i % 10}L8`, at: at(s + 1) });
    if (path[s] === 'copying')
      await addJobEvent(db, j.id, { kind: 'log', message: 'copying 1.0 GiB by EXTENDED COPY', at: at(s + 1) });
  }
  await transitionJob(db, j.id, from, end, {
    message: end,
    at: at(steps + 1),
    error: end === 'failed' ? { code: 'ERR_TARGET', message: 'the drive reported MEDIUM ERROR' } : undefined,
    result: end === 'done' ? { bytes: 1 << 30 } : undefined,
  });
}

async function buildCatalog(db: Db): Promise<{ files: number }> {
  for (let lun = 0; lun < VOLUMES; lun++)
    await upsertVolume(db, {
      node: 'store',
      lun,
      designator: `6001405000000000000000000000${String(lun).padStart(2, '0')}a0`,
      diskBlockBytes: 512,
      volumeBlocks: 2 ** 31,
    });
  const states: CartridgeState[] = ['append', 'full', 'full', 'blank', 'error'];
  for (let c = 0; c < 24; c++)
    await upsertCartridge(db, {
      barcode: `FER${String(c).padStart(3, '0')}L8`,
      pool: c % 3 === 2 ? 'weekly' : 'daily',
      state: states[c % states.length],
      labeled: true,
      endBlock: 1,
    });
  // One image set per volume but the first, whose latest set is the files set.
  for (let lun = 1; lun < VOLUMES; lun++)
    await completeSet(db, {
      set: fakeSet(FILES_SET + lun, { volumeId: volumeOf(lun) }),
      pieces: [fakePiece(1, 'FER001L8')],
      cartridges: [],
      volume: { keptChangeId: null, keptSetId: FILES_SET + lun },
    });
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < JOBS - ACTIVE; i++) await oldJob(trx, i, t0);
  });
  const index = fakeFileIndex(DIRS, PER_DIR);
  await completeSet(db, {
    set: fakeSet(FILES_SET, { mode: 'files' }),
    pieces: [fakePiece(1, 'FER000L8')],
    cartridges: [],
    files: index,
    volume: { keptChangeId: null, keptSetId: FILES_SET },
  });
  return { files: index.files.length };
}

/** Running jobs, created after LocalJobService.open (which fails the jobs a dead server left running). */
async function activeJobs(db: Db): Promise<void> {
  const where = ['copying', 'waiting-drive', 'queued', 'mounting'];
  for (let i = 0; i < ACTIVE; i++) {
    const j = await createJob(db, { type: 'backup', volumeId: volumeOf(i), params: {}, bytesTotal: 1 << 30 });
    if (where[i % where.length] !== 'queued')
      await transitionJob(db, j.id, 'queued', where[i % where.length], { message: where[i % where.length] });
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** GET `url` with the token: status, body and the time to the body's last byte. */
function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - t,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function timed(what: string, url: string, check: (body: string) => boolean): Promise<number> {
  const r = await get(url);
  if (r.status !== 200 || !check(r.body))
    throw new Error(`${what}: GET ${url} answered ${r.status} (${r.body.length} bytes): ${r.body.slice(0, 300)}`);
  return r.ms;
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-console-'));
const config: ServerConfig = {
  file: join(dir, 'server.json'),
  listen: { host: '127.0.0.1', port: 0 },
  tokenFile: join(dir, 'token'),
  catalog: join(dir, 'catalog.db'),
  nodes: [],
  libraries: [],
  drives: [],
  movers: [],
  pools: [{ name: 'daily', tapeBlockBytes: 262144 }],
  defaults: { quietPeriodMs: 0, timeoutMs: 10_000 },
};
const cat = await openCatalog(config.catalog);
let service: LocalJobService | undefined;
try {
  let t = performance.now();
  const { files } = await buildCatalog(cat.db);
  console.log(
    `catalog: ${JOBS} jobs, ${VOLUMES} volumes, 24 cartridges, a files set of ${files} files ` +
      `(${DIRS} directories of ${PER_DIR}), built in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  service = await LocalJobService.open(cat, new Site(config));
  await activeJobs(cat.db);
  const ui = await startConsole(service, {
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    pools: ['daily'],
    restoreDir: join(dir, 'restores'),
  });
  const api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    const entries = (html: string): number => html.split('role="treeitem"').length - 1;
    const probes = {
      dashboard: () =>
        timed('dashboard', `${ui.url}/`, (b) => b.includes('id="h-running"') && b.includes(`store:${VOLUMES - 1}`)),
      rest: () => timed('REST jobs', `${api.url}/v1/jobs`, (b) => (JSON.parse(b) as unknown[]).length === JOBS),
      dirPage: () =>
        timed('directory page', `${ui.url}/sets/${FILES_SET}/dir?path=${encodeURIComponent(DIR)}`, (b) => {
          return entries(b) === PER_DIR;
        }),
      query: async () => {
        const q = performance.now();
        const n = (await listDirectory(cat.db, FILES_SET, DIR)).length;
        if (n !== PER_DIR) throw new Error(`listDirectory ${DIR}: ${n} entries, expected ${PER_DIR}`);
        return performance.now() - q;
      },
      // Between the two: the server library's listFiles (set checks, path lookup, then listDirectory).
      service: async () => {
        const q = performance.now();
        const n = (await service!.listFiles(FILES_SET, { path: DIR })).length;
        if (n !== PER_DIR) throw new Error(`listFiles ${DIR}: ${n} entries, expected ${PER_DIR}`);
        return performance.now() - q;
      },
      setPage: () => timed('set page', `${ui.url}/sets/${FILES_SET}`, (b) => entries(b) === Math.min(DIRS, 1000)),
    };
    type Probe = keyof typeof probes;
    const ms: Record<Probe, number[]> = { dashboard: [], rest: [], dirPage: [], query: [], service: [], setPage: [] };
    for (let i = 0; i < WARMUP; i++) for (const p of Object.keys(probes) as Probe[]) await probes[p]();
    t = performance.now();
    // Interleaved, so that load from elsewhere on the machine falls on every figure alike.
    for (let i = 0; i < RUNS; i++) for (const p of Object.keys(probes) as Probe[]) ms[p].push(await probes[p]());
    const row = (what: string, p: Probe, budget: number | null, peer?: Probe): string => {
      const ratio = peer ? `${(median(ms[p]) / median(ms[peer])).toFixed(2)}×` : '';
      const met = budget === null ? '' : median(ms[p]) < budget ? `< ${budget} ms: met` : `< ${budget} ms: NOT met`;
      return `| ${what} | ${median(ms[p]).toFixed(1)} | ${p90(ms[p]).toFixed(1)} | ${ratio} | ${met} |`;
    };
    console.log(`\n${RUNS} runs each after ${WARMUP} warm-up runs (ms; ratio = median / the peer's median):\n`);
    console.log('| request | median | p90 | ratio to peer | budget |');
    console.log('|---|---|---|---|---|');
    console.log(row(`console GET / (dashboard, ${JOBS} jobs, ${ACTIVE} running)`, 'dashboard', 100, 'rest'));
    console.log(row(`peer: REST GET /v1/jobs (${JOBS} jobs as JSON)`, 'rest', null));
    console.log(row(`console GET /sets/${FILES_SET}/dir?path=${DIR} (${PER_DIR} entries)`, 'dirPage', 200, 'query'));
    console.log(row(`peer: listDirectory(${DIR}) alone, in process`, 'query', null));
    console.log(row(`between: service.listFiles(${DIR}), in process`, 'service', null, 'query'));
    console.log(row(`console GET /sets/${FILES_SET} (set page, root listed)`, 'setPage', null, 'query'));
  } finally {
    await Promise.all([ui.close(), api.close()]);
    agent.destroy();
  }
} finally {
  if (service) await service.close();
  else await cat.close();
  rmSync(dir, { recursive: true, force: true });
}
