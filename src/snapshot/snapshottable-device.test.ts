import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryDevice } from '../block/memory-device.ts';
import { FileDevice } from '../block/file-device.ts';
import type { BlockDevice } from '../block/block-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

const BS = 512;

/** A MemoryDevice that logs every applied write, and flushes as markers, in order. */
class RecordingDevice extends MemoryDevice {
  readonly log: Array<{ lba: number; data: Uint8Array } | 'flush'> = [];
  override async write(lba: number, data: Uint8Array): Promise<void> {
    await super.write(lba, data);
    this.log.push({ lba, data: data.slice() });
  }
  override async flush(): Promise<void> {
    this.log.push('flush');
  }
}

function replay(blockCount: number, log: RecordingDevice['log'], untilFlush: number): Uint8Array {
  const img = new Uint8Array(blockCount * BS);
  let flushes = 0;
  for (const e of log) {
    if (e === 'flush') {
      if (++flushes === untilFlush) break;
      continue;
    }
    img.set(e.data, e.lba * BS);
  }
  return img;
}

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
      const base = new RecordingDevice(BS, blockCount);
      const dev = await SnapshottableDevice.open(base, { dir, chunkBytes: 8 * BS });
      const rand = rng(7);
      let stop = false;
      let seq = 0;
      const writer = async (w: number): Promise<void> => {
        while (!stop) {
          const blocks = 1 + Math.floor(rand() * 20);
          const lba = Math.floor(rand() * (blockCount - blocks));
          await dev.write(lba, pattern(w * 100000 + seq++, blocks));
          await new Promise((r) => setImmediate(r)); // a memory write never yields to timers
        }
      };
      const writers = [1, 2, 3, 4].map(writer);
      await new Promise((r) => setTimeout(r, 20));
      const snaps = [];
      for (let k = 0; k < 3; k++) {
        snaps.push(await dev.createSnapshot());
        await new Promise((r) => setTimeout(r, 15));
      }
      stop = true;
      await Promise.all(writers);
      assert.ok(seq > 50, `writers made ${seq} writes`);
      for (let k = 0; k < snaps.length; k++) {
        const want = replay(blockCount, base.log, k + 1);
        const view = dev.openSnapshot(snaps[k].id);
        assert.equal(view.readOnly, true);
        assert.ok((await readAll(view)).equals(Buffer.from(want)), `snapshot ${k} equals the LUN at its instant`);
        // Odd-sized reads that straddle chunks and the short last chunk.
        assert.ok(Buffer.from(await view.read(5, 13)).equals(Buffer.from(want.subarray(5 * BS, 18 * BS))));
        assert.ok(Buffer.from(await view.read(690, 10)).equals(Buffer.from(want.subarray(690 * BS))));
      }
      assert.ok(
        (await readAll(dev)).equals(Buffer.from(replay(blockCount, base.log, Infinity))),
        'the LUN has every write',
      );
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
    // A crash mid-append leaves a partial slot at the end of the newest store.
    await appendFile(join(sdir, `${s2.id}.cow`), Buffer.alloc(1000, 0xab));
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

test('deleting any snapshot leaves the LUN and the other snapshots intact, and removes its file', async () => {
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
    assert.deepEqual(
      (await readdir(dir)).filter((f) => !f.endsWith('.chg') && f !== 'changes.json').sort(),
      ['manifest.json', `${ids[1]}.cow`, `${ids[3]}.cow`].sort(),
    );
    await assert.rejects(dev.deleteSnapshot(ids[0]), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
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
