import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerApi } from './api.ts';
import { ServerClient, connectToServer, resolveServerConnection } from './client.ts';
import { MemoryJobService } from './testing/memory-job-service.ts';
import { ServiceError, type JobEvent } from '../jobs/types.ts';
import { FerryError, UsageError } from '../util/errors.ts';

// ServerClient against the real API over MemoryJobService (a test double of the server library).

const TOKEN = 'client-test-token-0123456789';

test('ServerClient: the JobService calls over HTTP, errors with the server code and message', async () => {
  const service = new MemoryJobService({ stepMs: 5 });
  const api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  const client = new ServerClient(api.url, TOKEN);
  try {
    const job = await client.startBackup({ volume: 'store:0', level: 'full', verify: true });
    assert.equal(job.state, 'queued');
    const done = await client.waitForJob(job.id);
    assert.equal(done.state, 'done');
    assert.equal(done.set, 1);
    assert.deepEqual(await client.getSet(1), await service.getSet(1));
    assert.deepEqual(await client.listSets({ volume: 'store:0' }), await service.listSets());
    assert.deepEqual(await client.listJobs({ type: 'backup' }), await service.listJobs());
    assert.deepEqual(await client.events(job.id, 3), await service.events(job.id, 3));
    assert.equal((await client.listCartridges()).length, 2);
    assert.equal((await client.listVolumes())[0].id, 'store:0');
    const v = await client.waitForJob((await client.startVerify({ set: 1 })).id);
    assert.deepEqual(v.result, { ok: true });
    const r = await client.waitForJob((await client.startRestore({ set: 1, to: 'store:new' })).id);
    assert.equal(r.state, 'done');
    assert.equal((await client.waitForJob((await client.startRebuild({})).id)).type, 'rebuild');

    await assert.rejects(client.startBackup({ volume: 'nope:3' }), (e: unknown) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.code, 'ERR_NOT_FOUND');
      assert.equal(e.status, 404);
      assert.match(e.message, /^unknown volume nope:3/);
      return true;
    });
    await assert.rejects(client.cancel(job.id), { code: 'ERR_CONFLICT' });
    await assert.rejects(client.startBackup({ volume: 'store:0', mode: 'weird' as 'image' }), (e: unknown) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.code, 'ERR_BAD_REQUEST');
      assert.match(e.message, /^body\.mode: /);
      return true;
    });
    await assert.rejects(new ServerClient(api.url, 'wrong-token-0123456789').listJobs(), { code: 'ERR_UNAUTHORIZED' });
  } finally {
    await api.close();
  }
});

test('subscribe and follow deliver every event over SSE until the job ends', async () => {
  const service = new MemoryJobService({ manual: true });
  const api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  const client = new ServerClient(api.url, TOKEN);
  try {
    const job = await client.startBackup({ volume: 'store:0' });
    const seen: JobEvent[] = [];
    const followed = client.follow(job.id, (e) => seen.push(e));
    const live: JobEvent[] = [];
    const off = client.subscribe(job.id, (e) => live.push(e));
    const tick = setInterval(() => service.step(job.id), 10);
    await followed;
    clearInterval(tick);
    off();
    assert.deepEqual(seen, await service.events(job.id));
    assert.equal(seen.at(-1)!.state, 'done');
    assert.ok(live.length > 0 && live.at(-1)!.state === 'done');
    assert.ok(!live.some((e) => e.state === 'queued'), 'subscribe sends live events, not the history');
    await assert.rejects(
      client.follow(99, () => {}),
      { code: 'ERR_NOT_FOUND' },
    );
  } finally {
    await api.close();
  }
});

test('an unreachable server: the error names the URL and suggests ferry up or --server', async () => {
  const api = await startServerApi(new MemoryJobService(), { host: '127.0.0.1', port: 0, token: TOKEN });
  const url = api.url;
  await api.close();
  await assert.rejects(new ServerClient(url, TOKEN).listJobs(), (e: unknown) => {
    assert.ok(e instanceof FerryError);
    assert.equal(e.code, 'ERR_SERVER_UNREACHABLE');
    const re = new RegExp(`^cannot reach the backup server at ${url} \\(ECONNREFUSED\\): .*ferry up.*--server`);
    assert.match(e.message, re);
    return true;
  });
});

test('where the server is: --server, then FERRY_SERVER, then ./ferry-data/server.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-client-'));
  try {
    const none = resolveServerConnection({}, {}, dir);
    await assert.rejects(none, (e: unknown) => {
      assert.ok(e instanceof FerryError);
      assert.equal(e.code, 'ERR_NO_SERVER');
      assert.match(e.message, /no backup server given and no .*ferry-data\/server\.json: start one with `ferry up`/);
      assert.match(e.message, /or pass --server URL --token-file FILE$/);
      return true;
    });
    await mkdir(join(dir, 'ferry-data'));
    const connection = { url: 'http://127.0.0.1:9999', tokenFile: 'server.token' };
    await writeFile(join(dir, 'ferry-data', 'server.json'), JSON.stringify(connection));
    assert.deepEqual(await resolveServerConnection({}, {}, dir), {
      url: 'http://127.0.0.1:9999/',
      tokenFile: join(dir, 'ferry-data', 'server.token'),
      source: join(dir, 'ferry-data', 'server.json'),
    });
    const env = { FERRY_SERVER: '127.0.0.1:8000', FERRY_TOKEN_FILE: 'env.token' };
    assert.deepEqual(await resolveServerConnection({}, env, dir), {
      url: 'http://127.0.0.1:8000/',
      tokenFile: join(dir, 'env.token'),
      source: 'FERRY_SERVER',
    });
    const flags = await resolveServerConnection({ server: 'http://h:1', tokenFile: '/t' }, env, dir);
    assert.deepEqual(flags, { url: 'http://h:1/', tokenFile: '/t', source: '--server' });
    await assert.rejects(resolveServerConnection({ server: 'http://h:1' }, {}, dir), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /--server needs a token: give --token-file FILE or set FERRY_TOKEN_FILE/);
      return true;
    });
    await assert.rejects(resolveServerConnection({ server: 'ftp://x', tokenFile: '/t' }, {}, dir), UsageError);
    await writeFile(join(dir, 'ferry-data', 'server.json'), '{"tokenFile": "x"}');
    await assert.rejects(resolveServerConnection({}, {}, dir), /"url" is missing/);
    // connectToServer reads the token file.
    await writeFile(join(dir, 'short.token'), 'short\n');
    const short = connectToServer({ server: 'http://h:1', tokenFile: join(dir, 'short.token') }, {});
    await assert.rejects(short, /at least 16/);
    await writeFile(join(dir, 'good.token'), `${TOKEN}\n`);
    const c = await connectToServer({ server: 'http://h:1', tokenFile: join(dir, 'good.token') }, {});
    assert.equal(c.base.href, 'http://h:1/');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
