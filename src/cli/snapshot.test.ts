import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSnapshotApi } from '../storage-node/api.ts';
import { DirLunRegistry } from '../storage-node/lun-registry.ts';
import { SnapshotService } from '../storage-node/node-service.ts';

const run = promisify(execFile);
const TOKEN = 'cli-test-token-0123456789';

async function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['bin/ferry.mjs', ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test('ferry snapshot create/ls/changed/rm against a running API, with the JSON shapes of issue 6', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-cli-snap-'));
  const registry = await DirLunRegistry.open(join(dir, 'luns'), { blockSize: 512 });
  const service = new SnapshotService(registry);
  const api = await startSnapshotApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const common = ['--api', `http://127.0.0.1:${api.address.port}`, '--token-file', tokenFile];
    await registry.create({ sizeBytes: 1 << 20 });
    const disk = registry.device(0)!;
    await disk.write(0, Buffer.alloc(4096, 1));

    const c = await ferry(['snapshot', 'create', '--lun', '0', '--quiet-period', '0', '--json', ...common]);
    assert.equal(c.code, 0, c.stderr);
    const s = JSON.parse(c.stdout);
    assert.equal(typeof s.id, 'string');
    assert.equal(s.lun, 1);
    assert.equal(s.mode, 'crash-consistent');
    assert.equal(typeof s.waitedMs, 'number');
    assert.equal(new Date(s.takenAt).toISOString(), s.takenAt);
    assert.match(s.changeId, /^chg-[0-9a-f]{12}$/);

    await disk.write(300, Buffer.alloc(512 * 200, 2)); // blocks 300..499: granules 2 and 3 (128 blocks each)
    const ch = await ferry(['snapshot', 'changed', '--lun', '0', '--since', s.id, '--json', ...common]);
    assert.equal(ch.code, 0, ch.stderr);
    assert.deepEqual(JSON.parse(ch.stdout), { granularity: 65536, blockSize: 512, extents: [[256, 256]] });
    const chText = await ferry(['snapshot', 'changed', '--lun', '0', '--since', s.id, ...common]);
    assert.match(
      chText.stdout,
      /1 extent\(s\), 256 block\(s\) \(128\.0 KiB\) changed since .* at 64\.0 KiB granularity/,
    );

    const ls = await ferry(['snapshot', 'ls', '--json', ...common]);
    assert.deepEqual(
      JSON.parse(ls.stdout).map((x: { id: string; lun: number }) => [x.id, x.lun]),
      [[s.id, 1]],
    );
    const lsText = await ferry(['snapshot', 'ls', ...common]);
    assert.match(lsText.stdout, new RegExp(`^ID\\s+LUN\\s+SOURCE[^\\n]*\\n${s.id}\\s+1\\s+0\\s`));

    // Writes that never pause: non-zero exit, the reason on stderr, nothing created.
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        await disk.write(i % 64, Buffer.alloc(512, i));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const t = await ferry([
      'snapshot',
      'create',
      '--lun',
      '0',
      '--quiet-period',
      '300ms',
      '--timeout',
      '1s',
      ...common,
    ]);
    stop = true;
    await writer;
    assert.notEqual(t.code, 0);
    assert.match(t.stderr, /^ferry: LUN 0: no 300 ms pause in writes came within the 1000 ms timeout; waited \d+ ms/);
    assert.equal(t.stdout, '');
    assert.equal((await service.listSnapshots()).length, 1);

    const bad = await ferry([
      'snapshot',
      'ls',
      '--api',
      `http://127.0.0.1:${api.address.port}`,
      '--token-file',
      tokenFile + '.missing',
    ]);
    assert.equal(bad.code, 2);
    await writeFile(join(dir, 'wrong'), 'wrong-token-0123456789\n');
    const wrong = await ferry([
      'snapshot',
      'ls',
      '--api',
      `http://127.0.0.1:${api.address.port}`,
      '--token-file',
      join(dir, 'wrong'),
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /missing or wrong bearer token/);

    const r = await ferry(['snapshot', 'rm', s.id, ...common]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await service.listSnapshots()).length, 0);
    const again = await ferry(['snapshot', 'rm', s.id, ...common]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no snapshot/);

    // The change id outlives the snapshot; a mark starts an epoch without one.
    const after = await ferry(['snapshot', 'changed', '--lun', '0', '--since', s.changeId, '--json', ...common]);
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(JSON.parse(after.stdout).extents, [
      [0, 128], // the never-pausing writer's blocks 0..63
      [256, 256],
    ]);
    const mk = await ferry(['snapshot', 'mark', '--lun', '0', '--json', ...common]);
    assert.equal(mk.code, 0, mk.stderr);
    const m = JSON.parse(mk.stdout);
    assert.match(m.changeId, /^chg-[0-9a-f]{12}$/);
    await disk.write(0, Buffer.alloc(512, 3));
    const sinceMark = await ferry(['snapshot', 'changed', '--lun', '0', '--since', m.changeId, '--json', ...common]);
    assert.deepEqual(JSON.parse(sinceMark.stdout).extents, [[0, 128]]);
    const tr = await ferry(['snapshot', 'tracking', '--lun', '0', ...common]);
    assert.equal(tr.code, 0, tr.stderr);
    assert.match(
      tr.stdout,
      new RegExp(`^LUN 0: 2 of at most 32 epochs at 64\\.0 KiB granularity, \\d+ B of bitmaps\\n`),
    );
    assert.match(tr.stdout, new RegExp(`${s.changeId}\\s+\\S+\\s+${s.id}`));
    assert.match(tr.stdout, new RegExp(`${m.changeId}\\s+\\S+\\s+-`));
  } finally {
    await api.close();
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  }
});
