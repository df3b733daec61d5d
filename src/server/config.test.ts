import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig, parseServerConfig } from './config.ts';
import { UsageError } from '../util/errors.ts';

const FILE = '/etc/ferry/server.json';
const node = {
  name: 'store',
  portal: '127.0.0.1:3260',
  iqn: 'iqn.2026-11.dev.ferry:store',
  api: 'http://127.0.0.1:8460',
  tokenFile: 'node.token',
};
const good = {
  tokenFile: 'server.token',
  catalog: 'catalog.db',
  nodes: [node],
  libraries: [{ name: 'vtl', portal: '127.0.0.1:3261', iqn: 'iqn.2026-11.dev.ferry:vtl' }],
  drives: [
    { name: 't1', portal: '127.0.0.1:3262', iqn: 'iqn.2026-11.dev.ferry:tape', lun: 1, chap: 'ferry:averylongsecret' },
  ],
  movers: [{ name: 'm1', portal: '127.0.0.1:3270', iqn: 'iqn.2026-11.dev.ferry:mover' }],
  pools: [
    { name: 'default', library: 'vtl' },
    { name: 'tgt', drive: 't1', tapeBlockBytes: 65536 },
  ],
};

function fails(raw: unknown, re: RegExp): void {
  assert.throws(
    () => parseServerConfig(raw, FILE),
    (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.code, 'ERR_USAGE');
      assert.match(e.message, re);
      return true;
    },
  );
}

test('a full config resolves: defaults, parsed portals and CHAP, paths against the file directory', () => {
  const c = parseServerConfig(
    { ...good, defaults: { quietPeriodMs: '1.5s', timeoutMs: 20000, moverStallMs: '5m' } },
    FILE,
  );
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8470 });
  assert.equal(c.tokenFile, '/etc/ferry/server.token');
  assert.equal(c.catalog, '/etc/ferry/catalog.db');
  assert.equal(c.nodes[0].tokenFile, '/etc/ferry/node.token');
  assert.deepEqual(c.nodes[0].portal, { host: '127.0.0.1', port: 3260 });
  assert.deepEqual(c.drives[0].chap, { user: 'ferry', secret: 'averylongsecret' });
  assert.equal(c.drives[0].lun, 1);
  assert.deepEqual(c.pools, [
    { name: 'default', library: 'vtl', tapeBlockBytes: 262144 },
    { name: 'tgt', drive: 't1', tapeBlockBytes: 65536 },
  ]);
  assert.deepEqual(c.defaults, { quietPeriodMs: 1500, timeoutMs: 20000, moverStallMs: 300_000 });
  const d = parseServerConfig({ tokenFile: '/abs/t', catalog: '../c.db', listen: '[::1]:9000' }, FILE);
  assert.deepEqual(d.defaults, { quietPeriodMs: 3000, timeoutMs: 80000, moverStallMs: 120_000 });
  assert.equal(d.tokenFile, '/abs/t');
  assert.equal(d.catalog, '/etc/c.db');
  assert.deepEqual(d.listen, { host: '::1', port: 9000 });
  assert.deepEqual([d.nodes, d.libraries, d.drives, d.movers, d.pools], [[], [], [], [], []]);
  // The web console: off unless `console` is given; files restore under `restores` beside the config.
  assert.equal(d.console, undefined);
  assert.equal(d.restoreDir, '/etc/ferry/restores');
  const w = parseServerConfig({ ...good, console: '0.0.0.0:8471', restoreDir: '/srv/restore' }, FILE);
  assert.deepEqual(w.console, { host: '0.0.0.0', port: 8471 });
  assert.equal(w.restoreDir, '/srv/restore');
  fails({ ...good, console: 'everywhere' }, /console is "everywhere": expected HOST:PORT/);
});

test('missing and wrong fields name their JSON path and what they expect', () => {
  fails({ catalog: 'c.db' }, /^config \/etc\/ferry\/server\.json: tokenFile is missing: expected a file path$/);
  fails(5, /\(top level\) is 5: expected an object/);
  fails(
    { ...good, nodes: [{ ...node, portal: 'abc' }] },
    /: nodes\[0\]\.portal is "abc": expected HOST:PORT, e\.g\. 127\.0\.0\.1:3260$/,
  );
  const { portal: _p, ...noPortal } = node;
  fails({ ...good, nodes: [node, { ...noPortal, name: 'b' }] }, /: nodes\[1\]\.portal is missing: expected HOST:PORT/);
  fails({ ...good, nodes: 3 }, /: nodes is 3: expected an array of nodes$/);
  fails({ ...good, nodes: [{ ...node, prtal: 'x' }] }, /: nodes\[0\]\.prtal is not a known key$/);
  fails({ ...good, nodes: [{ ...node, iqn: 'bad' }] }, /: nodes\[0\]\.iqn is "bad": expected an iSCSI name/);
  fails(
    { ...good, nodes: [{ ...node, api: 'ftp://x' }] },
    /: nodes\[0\]\.api is "ftp:\/\/x": expected an http\(s\) URL/,
  );
  fails(
    { ...good, movers: [{ ...good.movers[0], chap: 'u:short' }] },
    /: movers\[0\]\.chap is "u:short": expected "USER:SECRET"/,
  );
  fails({ ...good, drives: [{ ...good.drives[0], lun: -1 }] }, /: drives\[0\]\.lun is -1: expected a LUN number$/);
  fails(
    { ...good, drives: [{ ...good.drives[0], lun: undefined }] },
    /: drives\[0\]\.lun is missing: expected a LUN number$/,
  );
  fails(
    { ...good, defaults: { timeoutMs: 'soon' } },
    /: defaults\.timeoutMs is "soon": expected milliseconds or a duration such as "3s"/,
  );
  fails(
    { ...good, pools: [{ name: 'p', library: 'vtl', tapeBlockBytes: 1000 }] },
    /: pools\[0\]\.tapeBlockBytes is 1000: expected a block size/,
  );
  fails({ ...good, listen: 8470 }, /: listen is 8470: expected HOST:PORT/);
  fails(
    { ...good, pools: [{ name: 'p', library: 'vtl', retention: { keepLast: 0, keepDaily: 0 } }] },
    new RegExp(
      String.raw`: pools\[0\]\.retention is \{"keepLast":0,"keepDaily":0\}: ` +
        String.raw`expected rules that keep at least one set: ` +
        String.raw`keepLast, keepDaily, keepWeekly or keepMonthly above 0`,
    ),
  );
  fails(
    { ...good, pools: [{ name: 'p', library: 'vtl', retention: { keepYearly: 2 } }] },
    /: pools\[0\]\.retention\.keepYearly is not a known key$/,
  );
  fails(
    { ...good, pools: [{ name: 'p', library: 'vtl', retention: { keepLast: -1 } }] },
    /: pools\[0\]\.retention\.keepLast is -1: expected a whole number of sets, 0 or more$/,
  );
  fails(
    { ...good, movers: [{ ...good.movers[0], maxJobs: 0 }] },
    /: movers\[0\]\.maxJobs is 0: expected a whole number of jobs, 1 to 64$/,
  );
  fails({ ...good, nodes: [{ ...node, name: 'a b' }] }, /: nodes\[0\]\.name is "a b": expected a name/);
});

test('names are unique and pools name exactly one configured library or drive', () => {
  fails(
    { ...good, libraries: [good.libraries[0], good.libraries[0]] },
    /: libraries\[1\]\.name "vtl" is already used by libraries\[0\]: names must be unique$/,
  );
  fails(
    { ...good, pools: [{ name: 'p', library: 'nope' }] },
    /: pools\[0\]\.library: pool "p" names library "nope", which is not in libraries$/,
  );
  fails(
    { ...good, pools: [{ name: 'p', drive: 'vtl' }] },
    /: pools\[0\]\.drive: pool "p" names drive "vtl", which is not in drives$/,
  );
  fails({ ...good, pools: [{ name: 'p' }] }, /: pools\[0\] \("p"\) needs exactly one of library or drive$/);
  fails({ ...good, pools: [{ name: 'p', library: 'vtl', drive: 't1' }] }, /needs exactly one of library or drive/);
});

test('loadServerConfig: a missing file, bad JSON, and paths relative to the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-server-config-'));
  try {
    await assert.rejects(loadServerConfig(join(dir, 'nope.json')), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, `config ${join(dir, 'nope.json')} does not exist`);
      return true;
    });
    await writeFile(join(dir, 'bad.json'), '{"listen": ');
    await assert.rejects(loadServerConfig(join(dir, 'bad.json')), /^UsageError: config .*bad\.json is not valid JSON/);
    await writeFile(join(dir, 'server.json'), JSON.stringify(good));
    const c = await loadServerConfig(join(dir, 'server.json'));
    assert.equal(c.file, join(dir, 'server.json'));
    assert.equal(c.catalog, join(dir, 'catalog.db'));
    assert.equal(c.nodes[0].tokenFile, join(dir, 'node.token'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
