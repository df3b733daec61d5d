import { UNAUTHORIZED } from '../util/bearer-token.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { buildServerApi, startServerApi } from './api.ts';
import { MemoryJobService } from './testing/memory-job-service.ts';
import type { JobEvent, JobService } from '../jobs/types.ts';
import { FerryError } from '../util/errors.ts';

// The API runs over MemoryJobService, a test double of the server library: these tests cover
// the thin face only (auth, validation, error mapping, streaming, OpenAPI).

const TOKEN = 'api-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
type App = ReturnType<typeof buildServerApi>;
const post = (app: App, url: string, payload: object, headers: Record<string, string> = auth) =>
  app.inject({ method: 'POST', url, payload, headers });

test('bearer token: none or wrong is 401 JSON, right is 200; /openapi.json needs none', async () => {
  const app = buildServerApi(new MemoryJobService(), TOKEN);
  const none = await app.inject({ method: 'GET', url: '/v1/jobs' });
  assert.equal(none.statusCode, 401);
  assert.deepEqual(none.json(), UNAUTHORIZED);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const wrongAuth = { authorization: 'Bearer nope-nope-nope' };
  const wrong = await app.inject({ method: 'GET', url: '/v1/jobs', headers: wrongAuth });
  assert.equal(wrong.statusCode, 401);
  assert.equal(wrong.json().code, 'ERR_UNAUTHORIZED');
  const right = await app.inject({ method: 'GET', url: '/v1/jobs', headers: auth });
  assert.equal(right.statusCode, 200);
  assert.deepEqual(right.json(), []);
  assert.equal((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 200);
  assert.equal((await post(app, '/v1/jobs/backup', { volume: 'store:0' }, {})).statusCode, 401);
  await app.close();
});

test('validation failures are 400 ERR_BAD_REQUEST naming the field', async () => {
  const app = buildServerApi(new MemoryJobService(), TOKEN);
  const message = async (url: string, payload: object) => (await post(app, url, payload)).json().message as string;
  const level = await post(app, '/v1/jobs/backup', { volume: 'store:0', level: 'weekly' });
  assert.equal(level.statusCode, 400);
  assert.equal(level.json().code, 'ERR_BAD_REQUEST');
  assert.match(level.json().message, /^body\.level: .*"full"\|"incremental"/);
  assert.match(await message('/v1/jobs/backup', {}), /^body\.volume: missing/);
  assert.match(await message('/v1/jobs/backup', { volume: 'store' }), /^body\.volume: expected NODE:LUN/);
  assert.match(await message('/v1/jobs/backup', { volume: 'store:0', colour: 1 }), /body\.colour: not a known field/);
  assert.match(await message('/v1/jobs/restore', { set: 1, to: 'x' }), /^body\.to: expected NODE:LUN or NODE:new/);
  assert.match(await message('/v1/jobs/verify', { set: 'one' }), /^body\.set: Invalid input: expected number/);
  const q = await app.inject({ method: 'GET', url: '/v1/jobs?state=sleeping', headers: auth });
  assert.equal(q.statusCode, 400);
  assert.match(q.json().message, /^query\.state: /);
  const id = await app.inject({ method: 'GET', url: '/v1/jobs/abc', headers: auth });
  assert.equal(id.statusCode, 400);
  assert.match(id.json().message, /^path\.id: /);
  const badJson = await app.inject({
    method: 'POST',
    url: '/v1/jobs/backup',
    payload: '{"volume": ',
    headers: { ...auth, 'content-type': 'application/json' },
  });
  assert.equal(badJson.statusCode, 400);
  assert.equal(badJson.json().code, 'ERR_BAD_REQUEST');
  await app.close();
});

test('ServiceErrors keep their status and code; other errors are 500 with no stack', async () => {
  const service = new MemoryJobService();
  const app = buildServerApi(service, TOKEN);
  const unknown = await post(app, '/v1/jobs/backup', { volume: 'x:9' });
  assert.equal(unknown.statusCode, 404);
  const known = 'known volumes are store:0, store:1';
  assert.deepEqual(unknown.json(), { code: 'ERR_NOT_FOUND', message: `unknown volume x:9: ${known}` });
  assert.equal((await app.inject({ method: 'GET', url: '/v1/sets/7', headers: auth })).json().code, 'ERR_NOT_FOUND');
  const job = (await app.inject({ method: 'POST', url: '/v1/jobs/rebuild', payload: {}, headers: auth })).json();
  assert.equal(job.type, 'rebuild');
  await service.waitForJob(job.id);
  const again = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: auth });
  assert.equal(again.statusCode, 409);
  assert.equal(again.json().code, 'ERR_CONFLICT');
  await app.close();

  const broken = new MemoryJobService();
  broken.listCartridges = async () => {
    throw new TypeError('x is not a function');
  };
  broken.listVolumes = async () => {
    throw new FerryError('ERR_NODE_DOWN', 'node store is not answering');
  };
  const app2 = buildServerApi(broken, TOKEN);
  const internal = await app2.inject({ method: 'GET', url: '/v1/cartridges', headers: auth });
  assert.equal(internal.statusCode, 500);
  assert.deepEqual(internal.json(), { code: 'ERR_INTERNAL', message: 'x is not a function' });
  const ferry = await app2.inject({ method: 'GET', url: '/v1/volumes', headers: auth });
  assert.equal(ferry.statusCode, 500);
  assert.deepEqual(ferry.json(), { code: 'ERR_NODE_DOWN', message: 'node store is not answering' });
  assert.equal((await app2.inject({ method: 'GET', url: '/v1/nope', headers: auth })).statusCode, 404);
  await app2.close();
});

test('jobs: start, list with filters, show, cancel; sets, cartridges, volumes', async () => {
  const service = new MemoryJobService({ manual: true });
  const app = buildServerApi(service, TOKEN);
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url, headers: auth });
    assert.equal(r.statusCode, 200, r.body);
    return r.json();
  };
  const b = await post(app, '/v1/jobs/backup', { volume: 'store:0', level: 'full' });
  assert.equal(b.statusCode, 201);
  assert.equal(b.json().state, 'queued');
  service.addSet({ volume: 'store:1' });
  const v = await app.inject({ method: 'POST', url: '/v1/jobs/verify', payload: { set: 1 }, headers: auth });
  assert.equal(v.json().type, 'verify');
  assert.deepEqual(
    (await get('/v1/jobs')).map((j: { id: number }) => j.id),
    [2, 1],
  );
  const filtered = await get('/v1/jobs?type=backup&volume=store:0&state=queued');
  assert.deepEqual(
    filtered.map((j: { id: number }) => j.id),
    [1],
  );
  assert.deepEqual(await get('/v1/jobs?limit=1&type=verify'), [await get('/v1/jobs/2')]);
  const c = await app.inject({ method: 'POST', url: '/v1/jobs/1/cancel', headers: auth });
  assert.equal(c.json().state, 'canceled');
  assert.equal((await get('/v1/sets?volume=store:1')).length, 1);
  assert.deepEqual(await get('/v1/sets?volume=store:0'), []);
  assert.equal((await get('/v1/sets/1')).volume, 'store:1');
  assert.equal((await get('/v1/cartridges'))[0].barcode, 'A00001');
  assert.deepEqual(
    (await get('/v1/volumes')).map((x: { id: string }) => x.id),
    ['store:0', 'store:1'],
  );
  assert.equal((await app.inject({ method: 'GET', url: '/v1/jobs/99', headers: auth })).statusCode, 404);
  await app.close();
});

/** Raw SSE read: the events, and whether the server ended the stream. */
function readSse(url: string, onFirst?: () => void): Promise<JobEvent[]> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: auth }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      let text = '';
      let first = true;
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (first) {
          first = false;
          onFirst?.();
        }
      });
      res.on('end', () =>
        resolve(
          text
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => JSON.parse(l.slice(6)) as JobEvent),
        ),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('the SSE stream delivers every event (history and live) and closes at the final state', async () => {
  const service = new MemoryJobService({ manual: true });
  const api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    const job = await service.startBackup({ volume: 'store:0' });
    service.step(job.id); // waiting-quiet: in the history before the stream opens
    const got = readSse(`${api.url}/v1/jobs/${job.id}/stream`, () => {
      // Then the rest, live, while the stream is open.
      const tick = setInterval(() => {
        service.step(job.id);
      }, 5);
      void service.waitForJob(job.id).then(() => clearInterval(tick));
    });
    const events = await got;
    const all = await service.events(job.id);
    assert.deepEqual(events, all);
    assert.equal(events.at(-1)!.state, 'done');
    assert.deepEqual(
      events.filter((e) => e.kind === 'state').map((e) => e.state),
      ['queued', 'waiting-quiet', 'planning', 'mounting', 'copying', 'done'],
    );
    // A stream of a job that has already ended replays it and closes; ?after skips.
    assert.deepEqual(await readSse(`${api.url}/v1/jobs/${job.id}/stream`), all);
    assert.deepEqual(await readSse(`${api.url}/v1/jobs/${job.id}/stream?after=${all[2].id}`), all.slice(3));
    const missing = await fetch(`${api.url}/v1/jobs/99/stream`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_NOT_FOUND');
  } finally {
    await api.close();
  }
});

test('long poll: returns at once when events exist, waits for the next one, gives up after wait', async () => {
  const service = new MemoryJobService({ manual: true });
  const api = await startServerApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    const job = await service.startBackup({ volume: 'store:0' });
    const get = async (q: string): Promise<JobEvent[]> =>
      (await fetch(`${api.url}/v1/jobs/${job.id}/events${q}`, { headers: auth })).json() as Promise<JobEvent[]>;
    const first = await get('');
    assert.deepEqual(
      first.map((e) => e.state),
      ['queued'],
    );
    const t0 = Date.now();
    const waiting = get(`?after=${first[0].id}&wait=10`);
    setTimeout(() => service.step(job.id), 150);
    const next = await waiting;
    assert.equal(next.length, 1);
    assert.equal(next[0].state, 'waiting-quiet');
    const took = Date.now() - t0;
    assert.ok(took >= 100 && took < 5000, `took ${took} ms`);
    const t1 = Date.now();
    assert.deepEqual(await get(`?after=${next[0].id}&wait=0.3`), []);
    assert.ok(Date.now() - t1 >= 250);
    // close() ends a pending long poll rather than waiting it out.
    const pending = get(`?after=${next[0].id}&wait=60`).catch(() => []);
    await new Promise((r) => setTimeout(r, 100));
    const t2 = Date.now();
    await api.close();
    await pending;
    assert.ok(Date.now() - t2 < 5000);
  } finally {
    await api.close().catch(() => {});
  }
});

test('OpenAPI lists every route the server has, with its methods', async () => {
  const service: JobService = new MemoryJobService();
  const app = buildServerApi(service, TOKEN);
  await app.ready();
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  assert.equal(doc.openapi, '3.1.0');
  const documented = Object.entries(doc.paths as Record<string, object>)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  assert.deepEqual(documented, servedRoutes(app.printRoutes({ commonPrefix: false })));
  const backup = doc.paths['/v1/jobs/backup'].post.requestBody.content['application/json'].schema;
  assert.deepEqual(backup.required, ['volume']);
  assert.deepEqual(backup.properties.level.enum, ['full', 'incremental']);
  const events = doc.paths['/v1/jobs/{id}/events'].get.parameters.map((p: { name: string }) => p.name);
  assert.deepEqual(events, ['id', 'after', 'wait']);
  await app.close();
});

/** "METHOD /path/{id}" for each route in fastify's printRoutes tree, but HEAD and /openapi.json. */
function servedRoutes(tree: string): string[] {
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of tree.split('\n')) {
    // A segment is `/name`, or a suffix of its parent's (`-files` under `/restore`).
    const m = /^([│├└─\s]*)([/\w-]\S*) \(([^)]+)\)$/.exec(line);
    if (!m) continue;
    const depth = [...m[1]].length / 4 - 1;
    stack[depth] = m[2];
    const path = stack
      .slice(0, depth + 1)
      .join('')
      .replace(/:(\w+)/g, '{$1}');
    if (path === '/openapi.json') continue;
    for (const method of m[3].split(', ')) if (method !== 'HEAD') out.push(`${method} ${path}`);
  }
  return out.sort();
}

test('retry starts a failed job again (201), throughput lists its samples, volumes?discover is a flag', async () => {
  const service = new MemoryJobService();
  const app = buildServerApi(service, TOKEN);
  const failed = await service.waitForJob((await service.startBackup({ volume: 'store:0', pool: 'empty' })).id);
  const r = await post(app, `/v1/jobs/${failed.id}/retry`, {});
  assert.equal(r.statusCode, 201);
  assert.equal(r.json().volume, 'store:0');
  assert.notEqual(r.json().id, failed.id);
  const again = await post(app, `/v1/jobs/${r.json().id}/retry`, {});
  assert.equal(again.statusCode, 409);
  assert.equal(again.json().code, 'ERR_CONFLICT');
  const t = await app.inject({ method: 'GET', url: `/v1/jobs/${failed.id}/throughput`, headers: auth });
  assert.deepEqual(t.json(), [
    [1, 400],
    [2, 512],
  ]);
  const v = await app.inject({ method: 'GET', url: '/v1/volumes?discover=true', headers: auth });
  assert.equal(v.statusCode, 200);
  const bad = await app.inject({ method: 'GET', url: '/v1/volumes?discover=yes', headers: auth });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /^query\.discover: /);
  await app.close();
});
