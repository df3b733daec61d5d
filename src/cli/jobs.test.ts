import { UNAUTHORIZED } from '../util/bearer-token.ts';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServerApi, type ServerApi } from '../server/api.ts';
import { Scheduler } from '../jobs/scheduler.ts';
import { MemoryJobService } from '../server/testing/memory-job-service.ts';
import { FERRY_BIN, NODE_FLAGS } from '../../test/helpers/ferry-cli.ts';

// The client commands run as child processes (as users run them) against the real REST API
// over MemoryJobService, a test double of the server library: these test the CLI face only.

const run = promisify(execFile);
const TOKEN = 'cli-jobs-test-token-0123456789';

let dir: string;
let service: MemoryJobService;
let api: ServerApi;
let common: string[];

async function ferry(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const env = { ...process.env, FERRY_SERVER: '', FERRY_TOKEN_FILE: '', ...opts.env };
  try {
    const r = await run(process.execPath, [...NODE_FLAGS, FERRY_BIN, ...args], { encoding: 'utf8', ...opts, env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr, ms: Date.now() - t0 };
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-cli-jobs-'));
  // Slow enough steps that --detach is measurably quicker than the whole job (~10 steps).
  service = new MemoryJobService({ stepMs: 150 });
  const scheduler = new Scheduler(service, [
    {
      name: 'nightly',
      volume: 'store:0',
      mode: 'used',
      level: 'incremental',
      cron: '0 22 * * 1-5',
      fullEveryMs: 7 * 86_400_000,
    },
  ]);
  api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN, schedules: () => scheduler.list() });
  await writeFile(join(dir, 'server.token'), `${TOKEN}\n`);
  common = ['--server', api.url, '--token-file', join(dir, 'server.token')];
});

after(async () => {
  await api.close();
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

test('ferry backup store:0 --json waits for the job and prints {job, state, set, bytes}', async () => {
  const r = await ferry(['backup', 'store:0', '--level', 'full', '--quiet-period', '1s', '--json', ...common]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['job', 'state', 'set', 'bytes']);
  assert.equal(out.state, 'done');
  assert.equal(typeof out.job, 'number');
  assert.equal(out.set, (await service.getJob(out.job)).set);
  assert.equal(out.bytes, 1024 ** 3);
  assert.equal(r.stderr, '');

  // Without --json on a non-TTY: one line per state change on stderr, a summary on stdout.
  const text = await ferry(['backup', 'store:1', ...common]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stderr, /^job \d+: queued\njob \d+: waiting for 3 s without writes\n/);
  assert.match(text.stderr, /job \d+: copying\n(job \d+: done\n)$/);
  assert.match(text.stdout, /^job \d+ done: set \d+ of store:1, 1\.0 GiB moved\n$/);
});

test('ferry backup --detach prints the job id at once', async () => {
  const r = await ferry(['backup', 'store:0', '--detach', ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+\n$/);
  const job = await service.getJob(Number(r.stdout));
  assert.equal(job.type, 'backup');
  assert.notEqual(job.state, 'done');
  await service.waitForJob(job.id);
  const j = await ferry(['verify', '1', '--detach', '--json', ...common]);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(Object.keys(JSON.parse(j.stdout)), ['job', 'state']);
  await service.waitForJob(JSON.parse(j.stdout).job);
});

test('a failed job exits 1 with `ferry: job N failed: MESSAGE`; --json prints its shape and error', async () => {
  const r = await ferry(['backup', 'store:0', '--pool', 'empty', ...common]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ferry: job (\d+) failed: pool "empty" has no cartridge in state append or blank\n$/);
  const j = await ferry(['backup', 'store:0', '--pool', 'empty', '--json', ...common]);
  assert.equal(j.code, 1);
  const out = JSON.parse(j.stdout);
  assert.equal(out.state, 'failed');
  assert.equal(out.set, null);
  const message = 'pool "empty" has no cartridge in state append or blank';
  assert.deepEqual(out.error, { code: 'ERR_POOL_EMPTY', message });
  assert.match(j.stderr, new RegExp(`^ferry: job ${out.job} failed: pool "empty"`));
  // A request the server refuses: exit 1 with its message.
  const unknown = await ferry(['backup', 'nope:7', ...common]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^ferry: unknown volume nope:7: known volumes are store:0, store:1\n$/);
});

test('usage errors exit 2 and name the option', async () => {
  const level = await ferry(['backup', 'store:0', '--level', 'weekly', ...common]);
  assert.equal(level.code, 2);
  assert.equal(level.stderr, 'ferry: --level "weekly" is not one of full, incremental\n');
  const mode = await ferry(['backup', 'store:0', '--mode', 'blocks', ...common]);
  assert.equal(mode.code, 2);
  assert.match(mode.stderr, /--mode "blocks" is not one of image, used, files/);
  const both = await ferry(['restore', '1', '--to', 'store:new', '--file', '/a', '--out', '/tmp/x', ...common]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either --to NODE:LUN .* or --file PATH --out DIR/);
  const noOut = await ferry(['restore', '1', '--file', '/a', ...common]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /--file needs --out DIR/);
  const nowhere = await ferry(['restore', '1', ...common]);
  assert.equal(nowhere.code, 2);
  assert.match(nowhere.stderr, /say where to restore: --to NODE:LUN/);
  const vol = await ferry(['backup', 'store', ...common]);
  assert.equal(vol.code, 2);
  assert.match(vol.stderr, /volume "store" is not a volume: use NODE:LUN/);
  const quiet = await ferry(['backup', 'store:0', '--quiet-period', 'soon', ...common]);
  assert.equal(quiet.code, 2);
  assert.match(quiet.stderr, /--quiet-period "soon" is not a duration/);
  const set = await ferry(['restore', 'x', '--to', 'store:1', ...common]);
  assert.equal(set.code, 2);
  assert.match(set.stderr, /set "x" is not a number/);
  const to = await ferry(['restore', '1', '--to', 'store:next', ...common]);
  assert.equal(to.code, 2);
  assert.match(to.stderr, /--to "store:next" is not a volume: use NODE:LUN, e.g. store:0, or NODE:new/);
  const state = await ferry(['jobs', '--state', 'sleeping', ...common]);
  assert.equal(state.code, 2);
  assert.match(state.stderr, /--state "sleeping" is not one of queued, waiting-quiet/);
});

test('ferry jobs, job, sets, cartridges: --json shapes and tables', async () => {
  const j = await ferry(['jobs', '--json', ...common]);
  assert.equal(j.code, 0, j.stderr);
  const jobs = JSON.parse(j.stdout);
  assert.ok(jobs.length >= 3);
  for (const x of jobs) {
    assert.deepEqual(Object.keys(x), ['id', 'type', 'volume', 'state', 'startedAt', 'endedAt', 'bytes', 'set']);
  }
  const done = jobs.find((x: { state: string; type: string }) => x.state === 'done' && x.type === 'backup');
  assert.ok(done);
  const filtered = JSON.parse((await ferry(['jobs', '--json', '--state', 'failed', ...common])).stdout);
  assert.ok(filtered.length >= 1 && filtered.every((x: { state: string }) => x.state === 'failed'));
  const table = await ferry(['jobs', ...common]);
  assert.match(table.stdout, /^ID\s+TYPE\s+VOLUME\s+STATE\s+STARTED\s+ENDED\s+BYTES\s+SET\n/);
  assert.match(table.stdout, new RegExp(`\\n${done.id}\\s+backup\\s+store:\\d\\s+done\\s+\\d{4}-`));

  const one = await ferry(['job', String(done.id), '--json', ...common]);
  const view = JSON.parse(one.stdout);
  assert.equal(view.id, done.id);
  assert.deepEqual(view.events, await service.events(done.id));
  const shown = await ferry(['job', String(done.id), ...common]);
  assert.match(shown.stdout, new RegExp(`^job ${done.id}: backup of store:\\d, done\\n`));
  assert.match(shown.stdout, /\s+copying\s+copying\n/);
  const missing = await ferry(['job', '999', ...common]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'ferry: no job 999\n');

  const s = await ferry(['sets', '--json', ...common]);
  const sets = JSON.parse(s.stdout);
  assert.ok(sets.length >= 1);
  const setKeys = ['id', 'volume', 'mode', 'level', 'base', 'startedAt', 'endedAt', 'bytes', 'cartridges', 'protected'];
  assert.deepEqual(Object.keys(sets[0]), setKeys);
  assert.deepEqual(sets[0].cartridges, ['A00001']);
  const byVol = JSON.parse((await ferry(['sets', '--volume', 'store:1', '--json', ...common])).stdout);
  assert.ok(byVol.every((x: { volume: string }) => x.volume === 'store:1'));
  assert.match((await ferry(['sets', ...common])).stdout, /^ID\s+VOLUME\s+MODE\s+LEVEL\s+BASE/);
  const c = JSON.parse((await ferry(['cartridges', '--json', ...common])).stdout);
  assert.deepEqual(
    c.map((x: { barcode: string }) => x.barcode),
    ['A00001', 'A00002'],
  );
  assert.match((await ferry(['cartridges', ...common])).stdout, /^BARCODE\s+POOL\s+LIBRARY\s+STATE/);
});

test('ferry job ID --follow waits for the end; verify, restore and catalog rebuild --json', async () => {
  const id = Number((await ferry(['backup', 'store:0', '--detach', ...common])).stdout);
  const f = await ferry(['job', String(id), '--follow', ...common]);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, new RegExp(`job ${id}: backup of store:0, done\\n`));
  const nd = await ferry(['job', String(id), '--follow', '--json', ...common]);
  const lines = nd.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(lines, await service.events(id));

  const set = (await service.getJob(id)).set!;
  const v = await ferry(['verify', String(set), '--json', ...common]);
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual(JSON.parse(v.stdout), { set, ok: true });
  const bad = service.addSet({ volume: 'store:1' }); // the double says its digests differ
  const vb = await ferry(['verify', String(bad.id), '--json', ...common]);
  assert.equal(vb.code, 1);
  assert.deepEqual(JSON.parse(vb.stdout), {
    set: bad.id,
    ok: false,
    error: {
      code: 'ERR_VERIFY_MISMATCH',
      message: `set ${bad.id} did not verify: the digests on tape and disk differ`,
    },
  });
  assert.match(vb.stderr, /^ferry: job \d+ failed: set \d+ did not verify/);

  const r = await ferry(['restore', String(set), '--to', 'store:new', '--json', ...common]);
  assert.equal(r.code, 0, r.stderr);
  const ro = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(ro), ['job', 'state', 'set', 'bytes']);
  assert.equal(ro.set, set);
  assert.equal(ro.state, 'done');
  const rb = await ferry(['catalog', 'rebuild', '--json', ...common]);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(JSON.parse(rb.stdout).state, 'done');
  const nf = await ferry(['restore', '999', '--to', 'store:1', ...common]);
  assert.equal(nf.code, 1);
  assert.equal(nf.stderr, 'ferry: no backup set 999\n');
});

test('where the server is: FERRY_SERVER, ./ferry-data/server.json, and a helpful error when none answers', async () => {
  const env = { FERRY_SERVER: api.url, FERRY_TOKEN_FILE: join(dir, 'server.token') };
  assert.equal((await ferry(['cartridges', '--json'], { env })).code, 0);
  const cwd = join(dir, 'work');
  await mkdir(join(cwd, 'ferry-data'), { recursive: true });
  const none = await ferry(['jobs'], { cwd });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^ferry: no backup server given and no .*ferry-data\/server\.json: /);
  assert.match(none.stderr, /start one with `ferry up`/);
  await writeFile(join(cwd, 'ferry-data', 'server.token'), `${TOKEN}\n`);
  await writeFile(join(cwd, 'ferry-data', 'server.json'), JSON.stringify({ url: api.url, tokenFile: 'server.token' }));
  assert.equal((await ferry(['jobs', '--json'], { cwd })).code, 0);
  const gone = await startServerApi(new MemoryJobService(), { host: '127.0.0.1', port: 0, token: TOKEN });
  const url = gone.url;
  await gone.close();
  const down = await ferry(['backup', 'store:0', '--server', url, '--token-file', join(dir, 'server.token')]);
  assert.equal(down.code, 1);
  const unreachable = `^ferry: cannot reach the backup server at ${url} \\(ECONNREFUSED\\): start one with`;
  assert.match(down.stderr, new RegExp(unreachable));
  assert.match(down.stderr, /or pass --server URL --token-file FILE\n$/);
  await writeFile(join(dir, 'wrong.token'), 'wrong-token-0123456789\n');
  const wrong = await ferry(['jobs', '--server', api.url, '--token-file', join(dir, 'wrong.token')]);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stderr, `ferry: ${UNAUTHORIZED.message}\n`);
});

test('ferry server: a bad config exits 2 naming the field', async () => {
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ tokenFile: 't', catalog: 'c', nodes: [{ name: 'n' }] }));
  const r = await ferry(['server', '--config', join(dir, 'bad.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ferry: config .*bad\.json: nodes\[0\]\.portal is missing: expected HOST:PORT/);
  const missing = await ferry(['server', '--config', join(dir, 'nope.json')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /config .*nope\.json does not exist/);
  const level = await ferry(['server', '--config', join(dir, 'bad.json'), '--log-level', 'loud']);
  assert.equal(level.code, 2);
  assert.match(level.stderr, /--log-level "loud" is not one of/);
});

test('ferry schedules: the configured schedules with their next run, as a table and as --json', async () => {
  const r = await ferry(['schedules', '--json', ...common]);
  assert.equal(r.code, 0, r.stderr);
  const [s] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    { ...s, nextRun: undefined },
    {
      name: 'nightly',
      volume: 'store:0',
      mode: 'used',
      level: 'incremental',
      cron: '0 22 * * 1-5',
      fullEveryMs: 604_800_000,
      pool: null,
      nextRun: undefined,
      last: null,
    },
  );
  const next = new Date(s.nextRun as string);
  assert.ok(
    next.getTime() > Date.now() &&
      next.getHours() === 22 &&
      next.getMinutes() === 0 &&
      next.getDay() >= 1 &&
      next.getDay() <= 5,
    `next run ${String(s.nextRun)}`,
  );
  const t = await ferry(['schedules', ...common]);
  assert.match(t.stdout, /^NAME\s+VOLUME\s+MODE\s+LEVEL\s+FULL EVERY\s+CRON\s+NEXT RUN\s+LAST\n/);
  assert.match(t.stdout, /nightly\s+store:0\s+used\s+incremental\s+7d\s+0 22 \* \* 1-5\s+\S+.*\s+-\n?$/m);
  assert.match((await ferry(['schedules', '--help'])).stdout, /list the server's backup schedules/);
});

test('ferry sets protect and ferry prune: --json shapes, tables, and a protected set survives the prune', async () => {
  const mine = new MemoryJobService();
  for (const volume of ['store:0', 'store:0', 'store:0', 'store:1']) mine.addSet({ volume });
  const own = await startServerApi(mine, { host: '127.0.0.1', port: 0, token: TOKEN });
  const args = ['--server', own.url, '--token-file', join(dir, 'server.token')];
  try {
    const p = await ferry(['sets', 'protect', '1', '--json', ...args]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(JSON.parse(p.stdout).protected, true);
    assert.equal(
      (await ferry(['sets', 'protect', '1', ...args])).stdout,
      'set 1 (store:0, image full) is protected from pruning\n',
    );
    const missing = await ferry(['sets', 'protect', '99', ...args]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no backup set 99/);
    assert.equal(
      (await ferry(['sets', 'protect', 'x', ...args])).code,
      2,
      'a set id that is not a number is a usage error',
    );

    const dry = await ferry(['prune', '--dry-run', '--json', ...args]);
    assert.equal(dry.code, 0, dry.stderr);
    const r = JSON.parse(dry.stdout);
    assert.deepEqual(Object.keys(r), ['dryRun', 'expired', 'kept', 'scratch', 'unmanaged']);
    assert.deepEqual(
      [r.dryRun, r.expired.map((e: { set: number }) => e.set)],
      [true, [2]],
      'set 1 is protected, 3 and 4 are the newest of their volumes',
    );
    const table = await ferry(['prune', '--dry-run', ...args]);
    assert.match(
      table.stdout,
      /^SET\s+VOLUME\s+MODE\s+LEVEL\s+SNAPSHOT\s+POOL\s+CARTRIDGES\n2\s+store:0\s+image\s+full\s/,
    );
    assert.match(table.stdout, /\nwould expire 1 set, kept 3\n$/);
    const real = await ferry(['prune', ...args]);
    assert.match(real.stdout, /\nexpired 1 set, kept 3\n$/);
    assert.deepEqual(
      JSON.parse((await ferry(['sets', '--json', ...args])).stdout).map((x: { id: number }) => x.id),
      [1, 3, 4],
    );
    assert.match((await ferry(['prune', '--help'])).stdout, /--dry-run/);
  } finally {
    await own.close();
    await mine.close();
  }
});

test('ferry drives, ferry cartridges export, import and label: --json shapes, tables, and errors', async () => {
  const mine = new MemoryJobService();
  const own = await startServerApi(mine, { host: '127.0.0.1', port: 0, token: TOKEN });
  const args = ['--server', own.url, '--token-file', join(dir, 'server.token')];
  try {
    const d = await ferry(['drives', '--json', ...args]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(Object.keys(JSON.parse(d.stdout)[0]), ['name', 'library', 'element', 'cartridge', 'job', 'pools']);
    assert.match(
      (await ferry(['drives', ...args])).stdout,
      /^DRIVE\s+CARTRIDGE\s+IN USE BY\s+POOLS\nvtl\/256\s+-\s+idle\s+default\n/,
    );
    const c = JSON.parse((await ferry(['cartridges', '--json', ...args])).stdout);
    assert.deepEqual(Object.keys(c[0]), [
      'pool',
      'library',
      'lastWrittenAt',
      'loadCount',
      'recycled',
      'barcode',
      'state',
      'bytesUsed',
      'sets',
      'where',
    ]);
    assert.match(
      (await ferry(['cartridges', ...args])).stdout,
      new RegExp(
        String.raw`^BARCODE\s+POOL\s+LIBRARY\s+STATE\s+WHERE\s+USED\s+SETS\s+LAST WRITTEN\s+LOADS\n` +
          String.raw`A00001\s+default\s+vtl\s+append\s+slot 1024\s`,
      ),
    );
    assert.equal(
      (await ferry(['cartridges', 'export', 'A00002', ...args])).stdout,
      'cartridge A00002 is in import/export element 768 of library vtl\n',
    );
    const back = await ferry(['cartridges', 'import', 'A00002', '--json', ...args]);
    assert.equal(JSON.parse(back.stdout).where, 'slot 1030');
    const again = await ferry(['cartridges', 'import', 'A00002', ...args]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /cartridge A00002 is in no import\/export element/);
    assert.equal((await ferry(['cartridges', 'export', 'bad barcode!', ...args])).code, 1, 'a barcode the API refuses');
    assert.match((await ferry(['cartridges', 'export', '--help'])).stdout, /import\/export element/);
    const l = await ferry(['cartridges', 'label', 'A00002', '--pool', 'default', '--json', ...args]);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(JSON.parse(l.stdout).result, { cartridge: 'A00002', pool: 'default' });
    assert.match(
      (await ferry(['cartridges', 'label', 'A00002', ...args])).stdout,
      /job \d+ done: cartridge A00002 labeled for pool default\n$/,
    );
    assert.match((await ferry(['cartridges', 'label', 'A00002', '--detach', ...args])).stdout, /^\d+\n$/);
    const none = await ferry(['cartridges', 'label', 'ZZZ', ...args]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no cartridge ZZZ in the catalog/);
    assert.match((await ferry(['jobs', '--type', 'label', ...args])).stdout, /\slabel\s/);
  } finally {
    await own.close();
    await mine.close();
  }
});
