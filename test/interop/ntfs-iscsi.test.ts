// SOURCE as an iscsi:// URL: `ferry ntfs` through our initiator against `ferry target` serving a
// copy of the main image as a 4096-byte-block LUN gives what the image file gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ferry, ntfsImages, REPO } from './ntfs-images.ts';

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`target did not listen on ${port}`);
}

test('ferry ntfs ls/cat/used/plan over iscsi:// equal the image file', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ntfs-iscsi-'));
  const port = 20000 + Math.floor(Math.random() * 30000);
  const iqn = 'iqn.2026-11.dev.ferry:ntfs-test';
  const lun = join(dir, 'main.img');
  await copyFile(imgs.main, lun);
  const target = spawn(process.execPath, [join(REPO, 'bin/ferry.mjs'), 'target', '--listen', `127.0.0.1:${port}`, '--iqn', iqn, '--disk', lun, '--block-size', '4096', '--log-level', 'warn'], { stdio: 'ignore' });
  try {
    await waitForPort(port);
    const url = `iscsi://127.0.0.1:${port}/${iqn}/0`;
    const json = (src: string, ...args: string[]): unknown => JSON.parse(ferry(['ntfs', ...args.slice(0, 1), src, ...args.slice(1)]).stdout.toString('utf8'));
    assert.deepEqual(json(url, 'ls', '/', '-R', '--json'), json(imgs.main, 'ls', '/', '-R', '--json'));
    assert.deepEqual(json(url, 'used', '--json'), json(imgs.main, 'used', '--json'));
    for (const p of ['/comp/text.txt', '/sparse.bin', '/ads:big']) assert.deepEqual(ferry(['ntfs', 'cat', url, p]).stdout, ferry(['ntfs', 'cat', imgs.main, p]).stdout, p);
    const remote = json(url, 'plan', '--json') as { blockSize: number; extents: [number, number][] };
    const local = json(imgs.main, 'plan', '--json') as { blockSize: number; extents: [number, number][] };
    assert.equal(remote.blockSize, 4096);
    assert.deepEqual(remote.extents.map(([l, n]) => [l * 8, n * 8]), local.extents, 'the same extents in 4096-byte LBAs');
  } finally {
    target.kill('SIGTERM');
    await new Promise((r) => target.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
});
