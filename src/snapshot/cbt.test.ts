import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { changedBlocks, granulesToExtents, type Extent } from './cbt.ts';

const BS = 512;
const GRANULE_BLOCKS = 8;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function granulesOf(extents: Extent[]): Set<number> {
  const out = new Set<number>();
  for (const [lba, n] of extents) {
    assert.equal(lba % GRANULE_BLOCKS, 0, 'extents start on a granule');
    for (let b = lba; b < lba + n; b += GRANULE_BLOCKS) out.add(b / GRANULE_BLOCKS);
  }
  return out;
}

function sorted(s: Set<number>): number[] {
  return [...s].sort((a, b) => a - b);
}

async function openLun(dir: string, blocks = 4000): Promise<SnapshottableDevice> {
  return SnapshottableDevice.open(await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: blocks * BS }), {
    dir: join(dir, 'lun.img.snapshots'),
    chunkBytes: GRANULE_BLOCKS * BS,
  });
}

test('granules become merged extents clipped to the LUN', () => {
  assert.deepEqual(granulesToExtents([0, 1, 2, 5, 7, 8], 8, 70), [
    [0, 24],
    [40, 8],
    [56, 14],
  ]);
  assert.deepEqual(granulesToExtents([], 8, 70), []);
});

test('changed extents after random writes between snapshots match a reference model exactly, also after a clean restart', async () => {
  await inTempDir('cbt', async (dir) => {
    let dev = await openLun(dir); // 4000 blocks: the last granule is short
    const rand = rng(42);
    const ids: string[] = [];
    const touched: Array<Set<number>> = []; // granules written in each interval
    for (let round = 0; round < 4; round++) {
      ids.push((await dev.createSnapshot()).id);
      const t = new Set<number>();
      for (let w = 0; w < 40; w++) {
        const blocks = 1 + Math.floor(rand() * 30);
        const lba = Math.floor(rand() * (dev.blockCount - blocks + 1));
        await dev.write(lba, Buffer.alloc(blocks * BS, w + 1));
        for (let g = Math.floor(lba / GRANULE_BLOCKS); g <= Math.floor((lba + blocks - 1) / GRANULE_BLOCKS); g++) t.add(g);
      }
      touched.push(t);
    }
    const check = (): void => {
      for (let i = 0; i < ids.length; i++) {
        for (let k = i; k <= ids.length; k++) {
          const want = new Set<number>();
          for (let j = i; j < k; j++) for (const g of touched[j]) want.add(g);
          const r = changedBlocks(dev, ids[i], k < ids.length ? ids[k] : undefined);
          assert.equal(r.tracking, 'exact');
          assert.equal(r.granularity, GRANULE_BLOCKS * BS);
          assert.equal(r.blockSize, BS);
          assert.deepEqual(sorted(granulesOf(r.extents)), sorted(want), `changes ${i}→${k}`);
          for (const [lba, n] of r.extents) assert.ok(lba + n <= dev.blockCount);
        }
      }
    };
    check();
    await dev.close();
    dev = await openLun(dir);
    check();
    assert.throws(() => changedBlocks(dev, ids[2], ids[1]), { code: 'ERR_SNAPSHOT_ORDER' });
    assert.throws(() => changedBlocks(dev, 'snap-nope'), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
    // Deleting a middle snapshot folds its interval into its predecessor.
    await dev.deleteSnapshot(ids[2]);
    const want = new Set([...touched[1], ...touched[2]]);
    assert.deepEqual(sorted(granulesOf(changedBlocks(dev, ids[1], ids[3]).extents)), sorted(want));
    await dev.close();
  });
});

/** Run the crash fixture until it has logged `writes` writes, then SIGKILL it. */
async function runAndKill(dir: string, seed: number, writes: number): Promise<{ snap: string; digest: string; written: Extent[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-writer.fixture.ts'), dir, String(seed)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  let killed = false;
  const exited = new Promise<void>((r) => child.on('close', () => r())); // 'close': stdout fully read
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    text += d;
    if (!killed && (text.match(/\nW/g)?.length ?? 0) >= writes) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  await exited;
  assert.ok(killed, `fixture exited on its own:\n${text.slice(0, 500)}`);
  const [, snap, digest] = text.split('\n')[0].split(' ');
  const log = await readFile(join(dir, `writes-${seed}.log`), 'utf8');
  const written = log
    .split('\n')
    .filter((l) => l.startsWith('W '))
    .map((l) => l.split(' ').slice(1).map(Number) as Extent);
  return { snap, digest, written };
}

test('after SIGKILL mid-writes, tracking is still exact and the snapshot still holds its instant', async () => {
  await inTempDir('cbt', async (dir) => {
    const snaps: Array<{ snap: string; digest: string; written: Extent[] }> = [];
    for (const [seed, writes] of [
      [1, 300],
      [2, 150],
    ]) {
      snaps.push(await runAndKill(dir, seed, writes));
      const dev = await openLun(dir, 4096);
      try {
        const live = Buffer.from(await dev.read(0, dev.blockCount));
        for (let i = 0; i < snaps.length; i++) {
          const { snap, digest } = snaps[i];
          const view = dev.openSnapshot(snap);
          const frozen = Buffer.from(await view.read(0, view.blockCount));
          assert.equal(createHash('sha256').update(frozen).digest('hex'), digest, `snapshot ${i} content survived the crash`);
          const r = changedBlocks(dev, snap);
          assert.equal(r.tracking, 'exact');
          const reported = granulesOf(r.extents);
          // Every granule whose content differs from the snapshot is reported...
          const G = GRANULE_BLOCKS * BS;
          for (let g = 0; g * G < live.length; g++) {
            if (!live.subarray(g * G, (g + 1) * G).equals(frozen.subarray(g * G, (g + 1) * G))) assert.ok(reported.has(g), `changed granule ${g} reported`);
          }
          // ...and nothing outside the granules some write after the snapshot was issued to.
          const issued = new Set<number>();
          for (const s of snaps.slice(i)) {
            for (const [lba, n] of s.written) for (let g = Math.floor(lba / GRANULE_BLOCKS); g <= Math.floor((lba + n - 1) / GRANULE_BLOCKS); g++) issued.add(g);
          }
          for (const g of reported) assert.ok(issued.has(g), `granule ${g} reported but never written`);
          assert.ok(reported.size > 20, `${reported.size} granules reported`);
        }
      } finally {
        await dev.close();
      }
    }
  });
});

test('a store that cannot be read back: the snapshot is marked damaged and tracking through it says lost, covering the whole LUN', async () => {
  await inTempDir('cbt', async (dir) => {
    let dev = await openLun(dir, 1000);
    const s1 = (await dev.createSnapshot()).id;
    await dev.write(0, Buffer.alloc(8 * BS, 1));
    const s2 = (await dev.createSnapshot()).id;
    await dev.write(800, Buffer.alloc(8 * BS, 2));
    const s3 = (await dev.createSnapshot()).id;
    await dev.close();
    // Damage s2's store header.
    const fh = await open(join(dir, 'lun.img.snapshots', `${s2}.cow`), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 0);
    await fh.close();
    dev = await openLun(dir, 1000);
    try {
      assert.match(dev.snapshot(s2)?.damaged ?? '', /magic/);
      await assert.rejects(dev.openSnapshot(s2).read(0, 1), { code: 'ERR_SNAPSHOT_DAMAGED' });
      await assert.rejects(dev.openSnapshot(s1).read(0, 8), { code: 'ERR_SNAPSHOT_DAMAGED' });
      for (const since of [s1, s2]) {
        const r = changedBlocks(dev, since);
        assert.equal(r.tracking, 'lost');
        assert.match(r.reason ?? '', new RegExp(s2));
        assert.deepEqual(r.extents, [[0, 1000]]);
      }
      const r3 = changedBlocks(dev, s3);
      assert.equal(r3.tracking, 'exact');
      assert.deepEqual(r3.extents, []);
      assert.ok(Buffer.from(await dev.openSnapshot(s3).read(800, 8)).equals(Buffer.alloc(8 * BS, 2)));
    } finally {
      await dev.close();
    }
  });
});

test('deleting a damaged snapshot marks the older ones lost too, durably', async () => {
  await inTempDir('cbt', async (dir) => {
    let dev = await openLun(dir, 1000);
    const s1 = (await dev.createSnapshot()).id;
    await dev.write(0, Buffer.alloc(8 * BS, 1));
    const s2 = (await dev.createSnapshot()).id;
    await dev.write(8, Buffer.alloc(8 * BS, 2));
    await dev.close();
    const fh = await open(join(dir, 'lun.img.snapshots', `${s2}.cow`), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 0);
    await fh.close();
    dev = await openLun(dir, 1000);
    await dev.deleteSnapshot(s2);
    assert.equal(changedBlocks(dev, s1).tracking, 'lost');
    await assert.rejects(dev.openSnapshot(s1).read(0, 8), { code: 'ERR_SNAPSHOT_DAMAGED' });
    await dev.close();
    dev = await openLun(dir, 1000);
    try {
      assert.match(dev.snapshot(s1)?.damaged ?? '', new RegExp(`${s2}\\) was damaged and deleted`));
      assert.equal(changedBlocks(dev, s1).tracking, 'lost');
    } finally {
      await dev.close();
    }
  });
});
