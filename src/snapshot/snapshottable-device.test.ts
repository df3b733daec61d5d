import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryDevice } from '../block/memory-device.ts';
import { FileDevice } from '../block/file-device.ts';
import type { BlockDevice } from '../block/block-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { EntryKind, MAP_ENTRY_BYTES, MAP_HEADER_BYTES, decodeMapEntry } from './row-format.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

const BS = 512;

function pattern(seed: number, blocks: number): Uint8Array {
  const b = new Uint8Array(blocks * BS);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function readAll(dev: BlockDevice): Promise<Buffer> {
  return Buffer.from(await dev.read(0, dev.blockCount));
}

test(
  'a snapshot taken under concurrent writers equals the LUN at one instant, and later writes do not ' + 'change it',
  async () => {
    await inTempDir('snap', async (dir) => {
      const blockCount = 700; // not a multiple of the chunk: the last chunk is short
      const dev = await SnapshottableDevice.open(new MemoryDevice(BS, blockCount), { dir, chunkBytes: 8 * BS });
      // Each writer owns a quarter, so the LUN at an instant does not depend on the order of
      // concurrent writes. A write started before createSnapshot() is called is before the snapshot.
      const log: Array<{ lba: number; data: Uint8Array; before: number }> = [];
      const rand = rng(7);
      let stop = false;
      let seq = 0;
      let taken = 0;
      const part = blockCount / 4;
      const writer = async (w: number): Promise<void> => {
        while (!stop) {
          const blocks = 1 + Math.floor(rand() * 20);
          const lba = w * part + Math.floor(rand() * (part - blocks));
          const data = pattern(w * 100000 + seq++, blocks);
          log.push({ lba, data, before: taken });
          await dev.write(lba, data);
          await new Promise((r) => setImmediate(r)); // a memory write never yields to timers
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      await new Promise((r) => setTimeout(r, 20));
      const snaps = [];
      for (let k = 0; k < 3; k++) {
        const made = dev.createSnapshot();
        taken++;
        snaps.push(await made);
        await new Promise((r) => setTimeout(r, 15));
      }
      stop = true;
      await Promise.all(writers);
      assert.ok(seq > 50, `writers made ${seq} writes`);
      const replay = (k: number): Buffer => {
        const img = Buffer.alloc(blockCount * BS);
        for (const e of log) if (e.before <= k) img.set(e.data, e.lba * BS);
        return img;
      };
      for (let k = 0; k < snaps.length; k++) {
        const want = replay(k);
        const view = dev.openSnapshot(snaps[k].id);
        assert.equal(view.readOnly, true);
        assert.ok((await readAll(view)).equals(want), `snapshot ${k} equals the LUN at its instant`);
        // Odd-sized reads that straddle chunks and the short last chunk.
        assert.ok(Buffer.from(await view.read(5, 13)).equals(want.subarray(5 * BS, 18 * BS)));
        assert.ok(Buffer.from(await view.read(690, 10)).equals(want.subarray(690 * BS)));
      }
      assert.ok((await readAll(dev)).equals(replay(Infinity)), 'the LUN has every write');
      await assert.rejects(dev.openSnapshot(snaps[0].id).write(0, new Uint8Array(BS)), { code: 'ERR_READ_ONLY' });
      await dev.close();
    });
  },
);

test('snapshot reads racing writes to the same chunks always see the frozen content', async () => {
  await inTempDir('snap', async (dir) => {
    const base = new MemoryDevice(BS, 256);
    const dev = await SnapshottableDevice.open(base, { dir, chunkBytes: 4 * BS });
    await dev.write(0, pattern(1, 256));
    const frozen = await readAll(dev);
    const snap = await dev.createSnapshot();
    const view = dev.openSnapshot(snap.id);
    const jobs: Array<Promise<unknown>> = [];
    for (let i = 0; i < 64; i++) {
      jobs.push(dev.write(i * 4, pattern(1000 + i, 4)));
      jobs.push(
        view
          .read(i * 4, 4)
          .then((b) => assert.ok(Buffer.from(b).equals(frozen.subarray(i * 4 * BS, (i + 1) * 4 * BS)))),
      );
    }
    await Promise.all(jobs);
    assert.ok((await readAll(view)).equals(frozen));
    assert.equal(dev.snapshot(snap.id)?.preservedChunks, 64);
    await dev.close();
  });
});

test('snapshots persist across a reopen and a torn append is ignored', async () => {
  await inTempDir('snap', async (dir) => {
    const img = join(dir, 'lun.img');
    const sdir = join(dir, 'lun.img.snapshots');
    const open = async (): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: 300 * BS }), {
        dir: sdir,
        chunkBytes: 16 * BS,
      });
    let dev = await open();
    await dev.write(0, pattern(3, 300));
    const at1 = await readAll(dev);
    const s1 = await dev.createSnapshot();
    await dev.write(10, pattern(4, 50));
    const at2 = await readAll(dev);
    const s2 = await dev.createSnapshot();
    await dev.write(200, pattern(5, 90));
    const changed = await dev.changed(s1.id);
    await dev.close();
    // A crash mid-append leaves a torn entry at the end of the redirect map.
    await appendFile(join(sdir, 'map.log'), Buffer.alloc(40, 0xab));
    dev = await open();
    assert.deepEqual(
      dev.snapshots().map((s) => s.id),
      [s1.id, s2.id],
    );
    assert.equal(dev.snapshots()[0].createdAt, s1.createdAt);
    assert.ok((await readAll(dev.openSnapshot(s1.id))).equals(at1));
    assert.ok((await readAll(dev.openSnapshot(s2.id))).equals(at2));
    assert.deepEqual(await dev.changed(s1.id), changed);
    // Appends after the torn slot still work and survive another reopen.
    await dev.write(299, pattern(6, 1));
    await dev.close();
    dev = await open();
    assert.ok((await readAll(dev.openSnapshot(s2.id))).equals(at2));
    await dev.close();
  });
});

test('deleting any snapshot leaves the LUN and the other snapshots intact; the last one folds back', async () => {
  await inTempDir('snap', async (dir) => {
    const base = new MemoryDevice(BS, 128);
    const dev = await SnapshottableDevice.open(base, { dir, chunkBytes: 4 * BS });
    const rand = rng(11);
    const ids: string[] = [];
    const images = new Map<string, Buffer>();
    for (let k = 0; k < 5; k++) {
      for (let w = 0; w < 10; w++) {
        const blocks = 1 + Math.floor(rand() * 8);
        await dev.write(Math.floor(rand() * (128 - blocks)), pattern(k * 100 + w, blocks));
      }
      const img = await readAll(dev);
      const s = await dev.createSnapshot();
      ids.push(s.id);
      images.set(s.id, img);
    }
    await dev.write(0, pattern(999, 128));
    const live = await readAll(dev);
    for (const victim of [ids[2], ids[4], ids[0]]) {
      await dev.deleteSnapshot(victim);
      images.delete(victim);
      assert.throws(() => dev.openSnapshot(victim), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
      for (const [id, img] of images)
        assert.ok((await readAll(dev.openSnapshot(id))).equals(img), `${id} intact after deleting ${victim}`);
      assert.ok((await readAll(dev)).equals(live));
    }
    assert.deepEqual((await readdir(dir)).filter((f) => !f.endsWith('.chg') && f !== 'changes.json').sort(), [
      'chunks.dat',
      'manifest.json',
      'map.log',
    ]);
    await assert.rejects(dev.deleteSnapshot(ids[0]), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
    // With the last snapshot gone, the image is the LUN again and the map is empty; chunks.dat
    // keeps at most the LUN's size for the next snapshot.
    await dev.deleteSnapshot(ids[1]);
    await dev.deleteSnapshot(ids[3]);
    assert.ok(Buffer.from(await base.read(0, 128)).equals(live), 'the image holds the LUN');
    assert.equal((await stat(join(dir, 'map.log'))).size, 64);
    const kept = (await stat(join(dir, 'chunks.dat'))).size;
    assert.ok(kept <= 128 * BS, `chunks.dat keeps ${kept} bytes`);
    const again = await dev.createSnapshot();
    await dev.write(0, pattern(1000, 128));
    assert.ok((await readAll(dev.openSnapshot(again.id))).equals(live), 'slots are reused after the fold');
    assert.ok((await readAll(dev)).equals(Buffer.from(pattern(1000, 128))));
    await dev.close();
  });
});

test('a snapshot costs no copy of the volume: only overwritten chunks are stored', async () => {
  await inTempDir('snap', async (dir) => {
    const dev = await SnapshottableDevice.open(new MemoryDevice(BS, 4096), { dir, chunkBytes: 8 * BS });
    const s = await dev.createSnapshot();
    assert.equal(dev.snapshot(s.id)?.preservedChunks, 0);
    await dev.write(8, pattern(1, 8));
    await dev.write(9, pattern(2, 1));
    assert.equal(dev.snapshot(s.id)?.preservedChunks, 1);
    await dev.close();
  });
});

test('writes after close fail instead of hanging', async () => {
  await inTempDir('snap', async (dir) => {
    const dev = await SnapshottableDevice.open(new MemoryDevice(BS, 16), { dir });
    await dev.close();
    await assert.rejects(dev.write(0, new Uint8Array(BS)), { code: 'ERR_CLOSED' });
    await dev.close();
  });
});

/** Run row-crash.fixture.ts until `writes` writes are acknowledged, SIGKILL it; its snapshots and digests. */
async function killMidWrites(dir: string, seed: number, writes: number): Promise<Array<[string, string]>> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'row-crash.fixture.ts'), dir, String(seed)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let text = '';
  let killed = false;
  const exited = new Promise<void>((r) => child.on('close', () => r()));
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
  return text
    .split('\n')
    .filter((l) => l.startsWith('S '))
    .map((l) => l.split(' ').slice(1, 3) as [string, string]);
}

test(
  'SIGKILL in the middle of first writes with live snapshots: every snapshot keeps its instant and every ' +
    'acknowledged write is there',
  async () => {
    await inTempDir('snap', async (dir) => {
      const snaps: Array<[string, string]> = [];
      for (const [seed, writes] of [
        [1, 500],
        [2, 200],
      ]) {
        // The second run opens the first's state (six snapshots in all, layers from both runs).
        snaps.push(...(await killMidWrites(dir, seed, writes)));
        const dev = await SnapshottableDevice.open(
          await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: 4 << 20 }),
          { dir: join(dir, 'lun.img.snapshots'), chunkBytes: 16 * BS },
        );
        try {
          assert.deepEqual(
            dev.snapshots().map((s) => s.id),
            snaps.map(([id]) => id),
          );
          for (const [id, digest] of snaps) {
            const got = createHash('sha256')
              .update(await readAll(dev.openSnapshot(id)))
              .digest('hex');
            assert.equal(got, digest, `snapshot ${id} holds its instant after SIGKILL`);
          }
          // The LUN = the newest snapshot + the acknowledged writes; the one in flight per writer may be
          // there or not, block by block.
          const want = await readAll(dev.openSnapshot(snaps[snaps.length - 1][0]));
          const maybe = new Map<number, number>(); // block → the fill of a write not acknowledged
          const pending = new Map<string, number[]>();
          for (const line of (await readFile(join(dir, 'acks.log'), 'utf8')).split('\n')) {
            const [kind, w, ...rest] = line.split(' ');
            if (kind === 'I') pending.set(w, rest.map(Number));
            if (kind === 'A') {
              const [lba, blocks, fill] = pending.get(w) as number[];
              want.fill(fill, lba * BS, (lba + blocks) * BS);
              pending.delete(w);
            }
          }
          for (const [lba, blocks, fill] of pending.values())
            for (let b = lba; b < lba + blocks; b++) maybe.set(b, fill);
          const live = await readAll(dev);
          for (let b = 0; b < dev.blockCount; b++) {
            const got = live.subarray(b * BS, (b + 1) * BS);
            if (got.equals(want.subarray(b * BS, (b + 1) * BS))) continue;
            assert.ok(maybe.has(b) && got.every((x) => x === maybe.get(b)), `block ${b} has an acknowledged write`);
          }
        } finally {
          await dev.close();
        }
      }
    });
  },
);

test('after a power loss (another boot), first writes after the last flush read old data, never zeros', async () => {
  await inTempDir('snap', async (dir) => {
    const img = join(dir, 'lun.img');
    const open = async (bootId?: Buffer): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: 256 * BS }), {
        dir: join(dir, 'lun.img.snapshots'),
        chunkBytes: 16 * BS,
        commitAfterMs: 0,
        ...(bootId ? { bootId } : {}),
      });
    const dev = await open();
    await dev.write(0, pattern(1, 256));
    const frozen = await readAll(dev);
    const snap = await dev.createSnapshot();
    await dev.write(0, pattern(2, 64)); // first writes, then flushed: committed
    await dev.flush();
    const flushed = await readAll(dev);
    await dev.write(128, pattern(3, 40)); // first writes, partial chunks, not flushed
    await dev.write(8, pattern(4, 8)); // a rewrite in place, not flushed
    // Reopen without closing, as another boot: only what the last flush committed is mapped.
    const after = await open(Buffer.alloc(16, 0x5a));
    try {
      const live = await readAll(after);
      assert.ok(live.subarray(128 * BS).equals(frozen.subarray(128 * BS)), 'unflushed first writes read old data');
      assert.ok(live.subarray(0, 64 * BS).equals((await readAll(dev)).subarray(0, 64 * BS)), 'flushed chunks mapped');
      assert.ok(live.subarray(0, 8 * BS).equals(flushed.subarray(0, 8 * BS)));
      assert.ok((await readAll(after.openSnapshot(snap.id))).equals(frozen), 'the snapshot holds its instant');
    } finally {
      await after.close();
      await dev.close();
    }
  });
});

test('first writes are committed within commitAfterMs without a flush, and survive a power loss then', async () => {
  await inTempDir('snap', async (dir) => {
    const img = join(dir, 'lun.img');
    const sdir = join(dir, 'lun.img.snapshots');
    const open = async (bootId: Buffer): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: 256 * BS }), {
        dir: sdir,
        chunkBytes: 16 * BS,
        commitAfterMs: 20,
        bootId,
      });
    const dev = await open(Buffer.alloc(16, 0xa1));
    await dev.write(0, pattern(1, 256));
    const snap = await dev.createSnapshot();
    const committedBefore = await commitsIn(join(sdir, 'map.log'));
    await dev.write(128, pattern(5, 32)); // first writes, never flushed
    const want = await readAll(dev);
    // Wait (without a time bound on the result) for the background COMMIT.
    for (let i = 0; i < 600 && (await commitsIn(join(sdir, 'map.log'))) === committedBefore; i++) await sleep(50);
    assert.ok((await commitsIn(join(sdir, 'map.log'))) > committedBefore, 'a COMMIT followed the first writes');
    // Power loss: another boot, dev never closed.
    const after = await open(Buffer.alloc(16, 0x5a));
    try {
      assert.ok((await readAll(after)).equals(want), 'the committed first writes survive');
      const ans = await after.changed(snap.changeId as string);
      for (let c = 8; c < 10; c++) assert.ok((ans.bits[c >> 3] & (1 << (c & 7))) !== 0, `chunk ${c} is reported`);
    } finally {
      await after.close();
      await dev.close();
    }
  });
});

/** COMMIT entries in a map.log (row-format.ts). */
async function commitsIn(path: string): Promise<number> {
  const bytes = await readFile(path);
  let n = 0;
  for (let at = MAP_HEADER_BYTES; at + MAP_ENTRY_BYTES <= bytes.length; at += MAP_ENTRY_BYTES)
    if (decodeMapEntry(bytes, at)?.kind === EntryKind.COMMIT) n++;
  return n;
}

test('a change mark without a snapshot flushes first: after a power loss no write before it reverts', async () => {
  await inTempDir('snap', async (dir) => {
    const img = join(dir, 'lun.img');
    const open = async (bootId: Buffer): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: 256 * BS }), {
        dir: join(dir, 'lun.img.snapshots'),
        chunkBytes: 16 * BS,
        commitAfterMs: 0,
        bootId,
      });
    const dev = await open(Buffer.alloc(16, 0xa1));
    await dev.write(0, pattern(1, 256));
    const snap = await dev.createSnapshot();
    await dev.write(64, pattern(6, 32)); // first writes after the snapshot, not flushed
    const want = await readAll(dev);
    const mark = await dev.markChanges();
    // Power loss right after the mark: another boot, dev never closed.
    const after = await open(Buffer.alloc(16, 0x5a));
    try {
      assert.ok((await readAll(after)).equals(want), 'the writes before the mark are there');
      const since = await after.changed(mark.id);
      assert.ok(
        since.bits.every((b) => b === 0),
        'nothing changed since the mark',
      );
      assert.ok(after.snapshot(snap.id), 'the snapshot is there');
    } finally {
      await after.close();
      await dev.close();
    }
  });
});
