// SOURCE as an iscsi:// URL: `ferry ntfs` through our initiator against `ferry target` serving a
// copy of the main image as a 4096-byte-block LUN gives what the image file gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ferry, ntfsImages } from './ntfs-images.ts';
import { spawnTarget } from '../helpers/ferry-cli.ts';

test('ferry ntfs ls/cat/used/plan over iscsi:// equal the image file', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ntfs-iscsi-'));
  const iqn = 'iqn.2026-11.dev.ferry:ntfs-test';
  const lun = join(dir, 'main.img');
  await copyFile(imgs.main, lun);
  const target = await spawnTarget(['--iqn', iqn, '--disk', lun, '--block-size', '4096']);
  try {
    const url = `iscsi://127.0.0.1:${target.port}/${iqn}/0`;
    const json = (src: string, ...args: string[]): unknown =>
      JSON.parse(ferry(['ntfs', ...args.slice(0, 1), src, ...args.slice(1)]).stdout.toString('utf8'));
    assert.deepEqual(json(url, 'ls', '/', '-R', '--json'), json(imgs.main, 'ls', '/', '-R', '--json'));
    assert.deepEqual(json(url, 'used', '--json'), json(imgs.main, 'used', '--json'));
    for (const p of ['/comp/text.txt', '/sparse.bin', '/ads:big'])
      assert.deepEqual(ferry(['ntfs', 'cat', url, p]).stdout, ferry(['ntfs', 'cat', imgs.main, p]).stdout, p);
    const remote = json(url, 'plan', '--json') as { blockSize: number; extents: [number, number][] };
    const local = json(imgs.main, 'plan', '--json') as { blockSize: number; extents: [number, number][] };
    assert.equal(remote.blockSize, 4096);
    assert.deepEqual(
      remote.extents.map(([l, n]) => [l * 8, n * 8]),
      local.extents,
      'the same extents in 4096-byte LBAs',
    );
  } finally {
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
