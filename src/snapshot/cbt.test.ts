import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { bitsToExtents, changedBlocks, type Extent } from './cbt.ts';

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
  return SnapshottableDevice.open(
    await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: blocks * BS }),
    {
      dir: join(dir, 'lun.img.snapshots'),
      chunkBytes: GRANULE_BLOCKS * BS,
    },
  );
}

test('granules become merged extents clipped to the LUN', () => {
  const bitmap = (granules: number[]): Uint8Array => {
    const b = new Uint8Array(2);
    for (const g of granules) b[g >> 3] |= 1 << (g & 7);
    return b;
  };
  assert.deepEqual(bitsToExtents(bitmap([0, 1, 2, 5, 7, 8]), 9, 8, 70), [
    [0, 24],
    [40, 8],
    [56, 14],
  ]);
  assert.deepEqual(bitsToExtents(bitmap([]), 9, 8, 70), []);
});

for (const deleted of [false, true]) {
  const how = deleted ? 'with each snapshot deleted once taken (by change id)' : 'with the snapshots kept';
  test(
    `changed extents after random writes between snapshots match a reference model exactly, also after a clean ` +
      `restart, ${how}`,
    async () => {
      await inTempDir('cbt', async (dir) => {
        let dev = await openLun(dir); // 4000 blocks: the last granule is short
        const rand = rng(42);
        const ids: string[] = [];
        const touched: Array<Set<number>> = []; // granules written in each interval
        for (let round = 0; round < 4; round++) {
          const s = await dev.createSnapshot();
          assert.match(s.changeId ?? '', /^chg-[0-9a-f]{12}$/);
          ids.push(deleted ? (s.changeId as string) : s.id);
          if (deleted) await dev.deleteSnapshot(s.id);
          const t = new Set<number>();
          for (let w = 0; w < 40; w++) {
            const blocks = 1 + Math.floor(rand() * 30);
            const lba = Math.floor(rand() * (dev.blockCount - blocks + 1));
            await dev.write(lba, Buffer.alloc(blocks * BS, w + 1));
            for (let g = Math.floor(lba / GRANULE_BLOCKS); g <= Math.floor((lba + blocks - 1) / GRANULE_BLOCKS); g++)
              t.add(g);
          }
          touched.push(t);
        }
        assert.equal(dev.snapshots().length, deleted ? 0 : 4);
        const check = async (): Promise<void> => {
          for (let i = 0; i < ids.length; i++) {
            for (let k = i; k <= ids.length; k++) {
              const want = new Set<number>();
              for (let j = i; j < k; j++) for (const g of touched[j]) want.add(g);
              const r = await changedBlocks(dev, ids[i], k < ids.length ? ids[k] : undefined);
              assert.equal(r.tracking, 'exact');
              assert.equal(r.granularity, GRANULE_BLOCKS * BS);
              assert.equal(r.blockSize, BS);
              assert.deepEqual(sorted(granulesOf(r.extents)), sorted(want), `changes ${i}→${k}`);
              for (const [lba, n] of r.extents) assert.ok(lba + n <= dev.blockCount);
            }
          }
        };
        await check();
        await dev.close();
        dev = await openLun(dir);
        await check();
        await assert.rejects(changedBlocks(dev, ids[2], ids[1]), { code: 'ERR_SNAPSHOT_ORDER' });
        await assert.rejects(changedBlocks(dev, 'snap-nope'), { code: 'ERR_CHANGE_ID_NOT_FOUND' });
        if (!deleted) {
          // Deleting a middle snapshot leaves tracking as it was: its epoch stays.
          await dev.deleteSnapshot(ids[2]);
          const want = new Set([...touched[1], ...touched[2]]);
          assert.deepEqual(sorted(granulesOf((await changedBlocks(dev, ids[1], ids[3])).extents)), sorted(want));
          assert.deepEqual(sorted(granulesOf((await changedBlocks(dev, ids[2], ids[3])).extents)), sorted(touched[2]));
        }
        await dev.close();
      });
    },
  );
}

interface Killed {
  snap: string;
  changeId: string;
  digest: string;
  written: Extent[];
}

/** Run the crash fixture until it has logged `writes` writes, then SIGKILL it. */
async function runAndKill(dir: string, seed: number, writes: number, then = 'keep'): Promise<Killed> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'crash-writer.fixture.ts'), dir, String(seed), then],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
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
  const [, snap, digest, changeId] = text.split('\n')[0].split(' ');
  const log = await readFile(join(dir, `writes-${seed}.log`), 'utf8');
  const written = log
    .split('\n')
    .filter((l) => l.startsWith('W '))
    .map((l) => l.split(' ').slice(1).map(Number) as Extent);
  return { snap, changeId, digest, written };
}

for (const deleted of [false, true]) {
  const how = deleted ? 'with the snapshot deleted before the writes (by change id)' : 'with the snapshot kept';
  test(
    `after SIGKILL mid-writes, tracking is still exact and the snapshot still holds its instant, ` + `${how}`,
    async () => {
      await inTempDir('cbt', async (dir) => {
        const runs: Killed[] = [];
        for (const [seed, writes] of [
          [1, 300],
          [2, 150],
        ]) {
          runs.push(await runAndKill(dir, seed, writes, deleted ? 'delete' : 'keep'));
          const dev = await openLun(dir, 4096);
          try {
            const live = Buffer.from(await dev.read(0, dev.blockCount));
            for (let i = 0; i < runs.length; i++) {
              const { snap, changeId, digest } = runs[i];
              let frozen: Buffer;
              if (deleted) {
                assert.equal(dev.snapshot(snap), undefined);
                frozen = await readFile(join(dir, `frozen-${seedOf(i)}.img`));
              } else {
                const view = dev.openSnapshot(snap);
                frozen = Buffer.from(await view.read(0, view.blockCount));
              }
              assert.equal(
                createHash('sha256').update(frozen).digest('hex'),
                digest,
                `snapshot ${i} content survived the crash`,
              );
              const r = await changedBlocks(dev, deleted ? changeId : snap);
              assert.equal(r.tracking, 'exact');
              const reported = granulesOf(r.extents);
              // Every granule whose content differs from the snapshot is reported...
              const G = GRANULE_BLOCKS * BS;
              for (let g = 0; g * G < live.length; g++) {
                if (!live.subarray(g * G, (g + 1) * G).equals(frozen.subarray(g * G, (g + 1) * G)))
                  assert.ok(reported.has(g), `changed granule ${g} reported`);
              }
              // ...and nothing outside the granules some write after the snapshot was issued to.
              const issued = new Set<number>();
              for (const s of runs.slice(i)) {
                for (const [lba, n] of s.written)
                  for (let g = Math.floor(lba / GRANULE_BLOCKS); g <= Math.floor((lba + n - 1) / GRANULE_BLOCKS); g++)
                    issued.add(g);
              }
              for (const g of reported) assert.ok(issued.has(g), `granule ${g} reported but never written`);
              assert.ok(reported.size > 20, `${reported.size} granules reported`);
            }
          } finally {
            await dev.close();
          }
        }
      });
    },
  );
}

const seedOf = (i: number): number => i + 1;

test('a redirect map that cannot be read back fails the open and names the file; the image is untouched', async () => {
  await inTempDir('cbt', async (dir) => {
    const dev = await openLun(dir, 1000);
    await dev.write(0, Buffer.alloc(8 * BS, 1));
    await dev.createSnapshot();
    await dev.write(0, Buffer.alloc(8 * BS, 2));
    await dev.close();
    // The LUN's own newer data is mapped there: no open can serve it without the map.
    const fh = await open(join(dir, 'lun.img.snapshots', 'map.log'), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 0);
    await fh.close();
    const base = await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS });
    await assert.rejects(
      SnapshottableDevice.open(base, { dir: join(dir, 'lun.img.snapshots'), chunkBytes: GRANULE_BLOCKS * BS }),
      (e: Error & { code?: string }) => e.code === 'ERR_SNAPSHOT_STORE' && /map\.log: .*magic/.test(e.message),
    );
    assert.ok(Buffer.from(await base.read(0, 8)).equals(Buffer.alloc(8 * BS, 1)), 'the image keeps the snapshot');
    await base.close();
    await rm(join(dir, 'lun.img.snapshots', 'map.log'));
    const again = await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS });
    await assert.rejects(
      SnapshottableDevice.open(again, { dir: join(dir, 'lun.img.snapshots'), chunkBytes: GRANULE_BLOCKS * BS }),
      (e: Error & { code?: string }) => e.code === 'ERR_SNAPSHOT_STORE' && /map\.log is missing/.test(e.message),
    );
    await again.close();
  });
});

test(
  'a change bitmap that cannot be read back: tracking through its epoch says lost, covering the whole LUN; later ' +
    'epochs stay exact',
  async () => {
    await inTempDir('cbt', async (dir) => {
      let dev = await openLun(dir, 1000);
      const c1 = (await dev.markChanges()).id;
      await dev.write(0, Buffer.alloc(8 * BS, 1));
      const c2 = (await dev.markChanges()).id;
      await dev.write(800, Buffer.alloc(8 * BS, 2));
      const c3 = (await dev.markChanges()).id;
      await dev.write(400, Buffer.alloc(8 * BS, 3));
      await dev.close();
      // c1's sealed bitmap: flip a bit (its CRC no longer matches); the open epoch c3: truncated.
      const fh = await open(join(dir, 'lun.img.snapshots', `${c1}.chg`), 'r+');
      await fh.write(Buffer.from([0x80]), 0, 1, 40);
      await fh.close();
      dev = await openLun(dir, 1000);
      try {
        const r1 = await changedBlocks(dev, c1);
        assert.equal(r1.tracking, 'lost');
        assert.match(r1.reason ?? '', new RegExp(`${c1}.*CRC`));
        assert.deepEqual(r1.extents, [[0, 1000]]);
        const r2 = await changedBlocks(dev, c2);
        assert.equal(r2.tracking, 'exact');
        assert.deepEqual(r2.extents, [
          [400, 8],
          [800, 8],
        ]);
        await dev.close();
        const w = await open(join(dir, 'lun.img.snapshots', `${c3}.chg`), 'r+');
        await w.truncate(10);
        await w.close();
        dev = await openLun(dir, 1000);
        const r3 = await changedBlocks(dev, c2);
        assert.equal(r3.tracking, 'lost');
        assert.match(r3.reason ?? '', new RegExp(`${c3}.*could not be read back`));
        // Tracking goes on from the next epoch.
        const c4 = (await dev.markChanges()).id;
        await dev.write(16, Buffer.alloc(BS, 4));
        assert.deepEqual((await changedBlocks(dev, c4)).extents, [[16, 8]]);
      } finally {
        await dev.close();
      }
    });
  },
);

test('epochs started at once (a snapshot and a mark, two marks) are all kept; a crash loses no mark', async () => {
  await inTempDir('cbt', async (dir) => {
    const dev = await openLun(dir, 1000);
    const first = (await dev.markChanges()).id;
    await dev.write(0, Buffer.alloc(BS, 1)); // granule 0
    const [snap, mark] = await Promise.all([dev.createSnapshot(), dev.markChanges()]);
    const [m1, m2] = await Promise.all([dev.markChanges(), dev.markChanges()]);
    const ids = [first, snap.changeId as string, mark.id, m1.id, m2.id];
    assert.equal(new Set(ids).size, 5);
    assert.deepEqual(
      dev.changes
        .epochs()
        .map((e) => e.id)
        .sort(),
      [...ids].sort(),
    );
    await dev.write(5 * GRANULE_BLOCKS, Buffer.alloc(BS, 2)); // granule 5, after every start
    // A second open without closing the first: what a restart after SIGKILL sees.
    const again = await openLun(dir, 1000);
    try {
      for (const id of ids) {
        const r = await changedBlocks(again, id);
        assert.equal(r.tracking, 'exact', `since ${id}: ${r.reason}`);
        assert.ok(granulesOf(r.extents).has(5), `since ${id}: granule 5 reported`);
      }
      assert.ok(granulesOf((await changedBlocks(again, first)).extents).has(0));
    } finally {
      await again.close();
      await dev.close();
    }
  });
});

test('a query while an epoch start merges the oldest epochs answers every write', async () => {
  for (let round = 0; round < 5; round++) {
    await inTempDir('cbt', async (dir) => {
      const dev = await SnapshottableDevice.open(
        await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: 64 * GRANULE_BLOCKS * BS }),
        { dir: join(dir, 'lun.img.snapshots'), chunkBytes: GRANULE_BLOCKS * BS, maxEpochs: 16 },
      );
      try {
        const ids: string[] = [];
        for (let i = 0; i < 16; i++) {
          ids.push((await dev.markChanges()).id);
          await dev.write((i + 1) * GRANULE_BLOCKS, Buffer.alloc(BS, i + 1)); // granule i + 1
        }
        const started = dev.markChanges(); // the 17th: merges the two oldest
        // Ask once the 17th epoch is listed: the merge is then under way, or about to be.
        while (dev.changes.epochs().length < 17) await new Promise(setImmediate);
        for (let k = 0; k < round; k++) await new Promise(setImmediate);
        const r = await changedBlocks(dev, ids[0]);
        await started;
        assert.equal(r.tracking, 'exact', `round ${round}: ${r.reason}`);
        const want = Array.from({ length: 16 }, (_, i) => i + 1);
        assert.deepEqual(sorted(granulesOf(r.extents)), want, `round ${round}`);
      } finally {
        await dev.close();
      }
    });
  }
});
