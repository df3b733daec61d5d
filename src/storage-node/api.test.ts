import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildSnapshotApi } from './api.ts';
import { DirLunRegistry } from './lun-registry.ts';
import { MAX_DIGEST_EXTENTS } from './node-control.ts';
import { SnapshotService } from './node-service.ts';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const BS = 512;

interface Node {
  dir: string;
  registry: DirLunRegistry;
  service: SnapshotService;
  app: FastifyInstance;
}

async function openNode(dir: string): Promise<Node> {
  const registry = await DirLunRegistry.open(dir, { blockSize: BS, chunkBytes: 8 * BS });
  const service = new SnapshotService(registry);
  await service.start();
  return { dir, registry, service, app: buildSnapshotApi(service, TOKEN) };
}

async function closeNode(n: Node): Promise<void> {
  await n.app.close();
  await n.registry.close();
}

async function withNode(fn: (n: Node) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-api-'));
  const n = await openNode(dir);
  try {
    await fn(n);
  } finally {
    await closeNode(n);
    await rm(dir, { recursive: true, force: true });
  }
}

async function call(
  n: Node,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads arbitrary JSON
): Promise<{ status: number; json: any }> {
  const r = await n.app.inject({
    method,
    url,
    headers: auth,
    ...(body === undefined ? {} : { payload: body as object }),
  });
  return { status: r.statusCode, json: r.body ? JSON.parse(r.body) : undefined };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test(
  'every call needs the bearer token; errors are JSON {code, message}; the OpenAPI description is ' + 'served',
  async () => {
    await withNode(async (n) => {
      for (const headers of [
        {},
        { authorization: 'Bearer wrong-token-0123456789' },
        { authorization: `Basic ${TOKEN}` },
        { authorization: `Bearer ${TOKEN}x` },
      ]) {
        for (const [method, url] of [
          ['GET', '/v1/luns'],
          ['POST', '/v1/luns/0/snapshots'],
          ['DELETE', '/v1/snapshots/x'],
        ] as const) {
          const r = await n.app.inject({ method, url, headers });
          assert.equal(r.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`);
          assert.equal(r.json().code, 'ERR_UNAUTHORIZED');
          assert.equal(typeof r.json().message, 'string');
        }
      }
      const spec = await n.app.inject({ method: 'GET', url: '/openapi.json' });
      assert.equal(spec.statusCode, 200);
      const doc = spec.json();
      assert.equal(doc.openapi, '3.1.0');
      const paths = [
        '/v1/luns',
        '/v1/luns/{lun}/snapshots',
        '/v1/luns/{lun}/changed',
        '/v1/luns/{lun}/digest',
        '/v1/luns/{lun}/activity',
        '/v1/snapshots/{id}',
      ];
      for (const p of paths) assert.ok(doc.paths[p], p);
      const none = await call(n, 'GET', '/v1/nothing');
      assert.equal(none.status, 404);
      assert.equal(none.json.code, 'ERR_NOT_FOUND');
    });
  },
);

test('LUNs: create, list, delete; bad sizes and unknown LUNs are 4xx', async () => {
  await withNode(async (n) => {
    const a = await call(n, 'POST', '/v1/luns', { size: '1M' });
    assert.equal(a.status, 201);
    const { designator, ...rest } = a.json;
    const want = { lun: 0, kind: 'disk', blockSize: BS, blockCount: 2048, sizeBytes: 1 << 20, readOnly: false };
    assert.deepEqual(rest, want);
    assert.match(designator, /^6[0-9a-f]{31}$/, 'NAA 6h, 16 bytes');
    assert.equal((await call(n, 'POST', '/v1/luns', { size: 4096 })).json.lun, 1);
    const bad = [
      { size: 'lots' },
      { size: 1000 },
      { size: -4096 },
      {},
      { size: '1M', extra: 1 },
      { size: '1M', blockSize: 4096 },
    ];
    for (const body of bad) {
      const r = await call(n, 'POST', '/v1/luns', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.code, /^ERR_(BAD_REQUEST|USAGE)$/);
    }
    assert.deepEqual(
      (await call(n, 'GET', '/v1/luns')).json.map((l: { lun: number }) => l.lun),
      [0, 1],
    );
    assert.equal((await call(n, 'DELETE', '/v1/luns/1')).status, 204);
    const gone = await call(n, 'DELETE', '/v1/luns/1');
    assert.equal(gone.status, 404);
    assert.equal(gone.json.code, 'ERR_LUN_NOT_FOUND');
    assert.equal((await call(n, 'DELETE', '/v1/luns/abc')).status, 400);
    assert.deepEqual(
      (await call(n, 'GET', '/v1/luns')).json.map((l: { lun: number }) => l.lun),
      [0],
    );
  });
});

test('snapshot, digest, changed extents and delete through the API; the node restarts with its snapshots', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-api-'));
  let n = await openNode(dir);
  try {
    await call(n, 'POST', '/v1/luns', { size: '256K' });
    const disk = n.registry.device(0)!;
    const before = Buffer.alloc(512 * BS, 0x11);
    await disk.write(0, before);
    const s = await call(n, 'POST', '/v1/luns/0/snapshots', { quietPeriodMs: 0 });
    assert.equal(s.status, 201);
    assert.equal(s.json.sourceLun, 0);
    assert.equal(s.json.lun, 1);
    assert.equal(s.json.mode, 'crash-consistent');
    assert.equal(typeof s.json.waitedMs, 'number');
    assert.ok(!Number.isNaN(Date.parse(s.json.takenAt)));
    await disk.write(20, Buffer.alloc(3 * BS, 0x22)); // granule 2
    await disk.write(100, Buffer.alloc(20 * BS, 0x33)); // granules 12..14
    const luns = (await call(n, 'GET', '/v1/luns')).json;
    assert.deepEqual(luns[1], {
      lun: 1,
      kind: 'snapshot',
      blockSize: BS,
      blockCount: 512,
      sizeBytes: 512 * BS,
      readOnly: true,
      designator: s.json.designator,
      snapshotId: s.json.id,
      sourceLun: 0,
    });
    assert.notEqual(s.json.designator, luns[0].designator);
    const d1 = await call(n, 'POST', '/v1/luns/1/digest', { extents: [{ lba: 0, blocks: 512 }] });
    assert.deepEqual(d1.json, { sha256: sha(before), bytes: 512 * BS });
    const d0 = await call(n, 'POST', '/v1/luns/0/digest', { extents: [{ lba: 20, blocks: 3 }] });
    assert.equal(d0.json.sha256, sha(Buffer.alloc(3 * BS, 0x22)));
    const past = await call(n, 'POST', '/v1/luns/0/digest', { extents: [{ lba: 510, blocks: 3 }] });
    assert.deepEqual([past.status, past.json.code], [400, 'ERR_RANGE']);
    const ch = await call(n, 'GET', `/v1/luns/0/changed?since=${s.json.id}`);
    assert.equal(ch.status, 200);
    assert.deepEqual(ch.json, {
      granularity: 8 * BS,
      blockSize: BS,
      since: s.json.id,
      until: null,
      tracking: 'exact',
      extents: [
        [16, 8],
        [96, 24],
      ],
    });
    const s2 = (await call(n, 'POST', '/v1/luns/0/snapshots', { quietPeriodMs: 0 })).json;
    assert.deepEqual((await call(n, 'GET', `/v1/luns/0/changed?since=${s.json.id}&until=${s2.id}`)).json.extents, [
      [16, 8],
      [96, 24],
    ]);
    assert.deepEqual((await call(n, 'GET', `/v1/luns/0/changed?since=${s2.id}`)).json.extents, []);
    assert.equal((await call(n, 'GET', `/v1/luns/0/changed?since=${s2.id}&until=${s.json.id}`)).status, 400);
    assert.equal((await call(n, 'GET', `/v1/luns/0/changed?since=nope`)).status, 404);
    assert.equal((await call(n, 'GET', `/v1/luns/0/changed`)).status, 400);
    assert.equal((await call(n, 'GET', `/v1/luns/7/changed?since=${s.json.id}`)).status, 404);
    // A LUN with snapshots cannot be deleted; nor can a snapshot LUN through the LUN route.
    assert.equal((await call(n, 'DELETE', '/v1/luns/0')).json.code, 'ERR_LUN_HAS_SNAPSHOTS');
    assert.equal((await call(n, 'DELETE', '/v1/luns/1')).status, 400);

    // Restart: same snapshots, mapped again, modes remembered, content intact.
    await closeNode(n);
    n = await openNode(dir);
    const list = (await call(n, 'GET', '/v1/snapshots')).json;
    assert.deepEqual(
      list.map((x: { id: string; mode: string; sourceLun: number }) => [x.id, x.mode, x.sourceLun]),
      [
        [s.json.id, 'crash-consistent', 0],
        [s2.id, 'crash-consistent', 0],
      ],
    );
    const lunOfS = list[0].lun;
    const whole = { extents: [{ lba: 0, blocks: 512 }] };
    assert.equal((await call(n, 'POST', `/v1/luns/${lunOfS}/digest`, whole)).json.sha256, sha(before));
    assert.deepEqual((await call(n, 'GET', `/v1/luns/0/changed?since=${s.json.id}`)).json.extents, [
      [16, 8],
      [96, 24],
    ]);
    assert.equal((await call(n, 'GET', `/v1/snapshots?lun=0`)).json.length, 2);
    assert.equal((await call(n, 'GET', `/v1/snapshots/${s2.id}`)).json.id, s2.id);

    assert.equal((await call(n, 'DELETE', `/v1/snapshots/${s.json.id}`)).status, 204);
    assert.equal((await call(n, 'DELETE', `/v1/snapshots/${s.json.id}`)).status, 404);
    assert.equal((await call(n, 'POST', `/v1/luns/${lunOfS}/digest`, whole)).status, 404);
    assert.equal((await call(n, 'GET', `/v1/snapshots`)).json.length, 1);
    assert.equal((await call(n, 'DELETE', `/v1/snapshots/${s2.id}`)).status, 204);
    assert.equal((await call(n, 'DELETE', '/v1/luns/0')).status, 204);
    assert.deepEqual((await call(n, 'GET', '/v1/luns')).json, []);
  } finally {
    await closeNode(n);
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'bad snapshot requests: unknown LUN, snapshot of a snapshot, absurd periods, concurrent requests, timeout; ' +
    'nothing half-made',
  async () => {
    await withNode(async (n) => {
      await call(n, 'POST', '/v1/luns', { size: '64K' });
      const unknown = await call(n, 'POST', '/v1/luns/9/snapshots', { quietPeriodMs: 0 });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.code, 'ERR_LUN_NOT_FOUND');
      for (const body of [
        { quietPeriodMs: -1 },
        { quietPeriodMs: 5000, timeoutMs: 1000 },
        { timeoutMs: 36_000_000 },
        { quietPeriodMs: 0.5 },
        { quietPeriodMs: '3s' },
        { quiet: 3000 },
      ]) {
        const r = await call(n, 'POST', '/v1/luns/0/snapshots', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.match(r.json.code, /^ERR_(BAD_PERIOD|BAD_REQUEST)$/);
        assert.ok(r.json.message.length > 10);
      }
      assert.deepEqual((await call(n, 'GET', '/v1/snapshots')).json, []);

      // Concurrent requests for one LUN: the second is refused while the first waits for quiet.
      const disk = n.registry.device(0)!;
      await disk.write(0, Buffer.alloc(BS, 1));
      const first = call(n, 'POST', '/v1/luns/0/snapshots', { quietPeriodMs: 400, timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 50));
      const second = await call(n, 'POST', '/v1/luns/0/snapshots', { quietPeriodMs: 0 });
      assert.equal(second.status, 409);
      assert.equal(second.json.code, 'ERR_SNAPSHOT_IN_PROGRESS');
      const ok = await first;
      assert.equal(ok.status, 201);
      assert.equal(ok.json.mode, 'quiesced');
      const snapLun = ok.json.lun;
      assert.equal((await call(n, 'GET', '/v1/snapshots')).json.length, 1);
      const again = await call(n, 'POST', `/v1/luns/${snapLun}/snapshots`, { quietPeriodMs: 0 });
      assert.equal(again.json.code, 'ERR_NOT_A_DISK');

      // Writes that never pause: 409 with the reason, no snapshot and no LUN left behind.
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          await disk.write(i % 100, Buffer.alloc(BS, i));
          await new Promise((r) => setTimeout(r, 15));
        }
      })();
      const lunsBefore = (await call(n, 'GET', '/v1/luns')).json;
      const t = await call(n, 'POST', '/v1/luns/0/snapshots', { quietPeriodMs: 200, timeoutMs: 800 });
      stop = true;
      await writer;
      assert.equal(t.status, 409);
      assert.equal(t.json.code, 'ERR_QUIESCE_TIMEOUT');
      assert.match(
        t.json.message,
        new RegExp(
          String.raw`LUN 0: no 200 ms pause in writes came within the 800 ms timeout; waited \d+ ms, ` +
            String.raw`the last write came \d+ ms before giving up`,
        ),
      );
      assert.equal((await call(n, 'GET', '/v1/snapshots')).json.length, 1);
      assert.deepEqual((await call(n, 'GET', '/v1/luns')).json, lunsBefore);
    });
  },
);

test('digest and activity requests are validated: shape, extent count, body size', async () => {
  await withNode(async (n) => {
    await call(n, 'POST', '/v1/luns', { size: '64K' });
    const bad = [
      undefined,
      {},
      { extents: 'all' },
      { extents: [[0, 1]] },
      { extents: [{ lba: -1, blocks: 1 }] },
      { extents: [{ lba: 0, blocks: 0 }] },
      { extents: [{ lba: 0.5, blocks: 1 }] },
      { extents: [{ lba: 0, blocks: 1, extra: true }] },
      { extents: [], more: 1 },
      { extents: Array.from({ length: MAX_DIGEST_EXTENTS + 1 }, () => ({ lba: 0, blocks: 1 })) },
    ];
    for (const body of bad) {
      const r = await call(n, 'POST', '/v1/luns/0/digest', body);
      assert.equal(r.status, 400, JSON.stringify(body)?.slice(0, 80));
      assert.equal(r.json.code, 'ERR_BAD_REQUEST');
    }
    // The most extents allowed, with 16-digit numbers, fit the body limit (then fail the range check);
    // far more bytes than that do not.
    const big = 2 ** 52;
    const most = { extents: Array.from({ length: MAX_DIGEST_EXTENTS }, () => ({ lba: big, blocks: big })) };
    const past = await call(n, 'POST', '/v1/luns/0/digest', most);
    assert.deepEqual([past.status, past.json.code], [400, 'ERR_RANGE']);
    const many = { extents: Array.from({ length: 1000 }, (_, i) => ({ lba: i % 128, blocks: 1 })) };
    assert.equal((await call(n, 'POST', '/v1/luns/0/digest', many)).json.bytes, 1000 * BS);
    const huge = await call(n, 'POST', '/v1/luns/0/digest', { extents: [], pad: 'x'.repeat(16 << 20) });
    assert.equal(huge.status, 413);
    const empty = await call(n, 'POST', '/v1/luns/0/digest', { extents: [] });
    assert.deepEqual(empty.json, { sha256: sha(Buffer.alloc(0)), bytes: 0 });
    assert.deepEqual((await call(n, 'GET', '/v1/luns/0/activity')).json, { lastWriteMsAgo: null });
    assert.equal((await call(n, 'GET', '/v1/luns/x/activity')).status, 400);
    assert.equal((await call(n, 'GET', '/v1/luns/5/activity')).json.code, 'ERR_LUN_NOT_FOUND');
  });
});
