// Fault injection for redirect-on-write (docs/snapshots.md, "Crash"): each test builds the state
// a disk may hold after a power loss at one step, or a snapshot request at a bad moment, and
// checks that no flushed write is lost, no redirected chunk is visible unmarked, and a write is
// never held for a whole fold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, copyFile, open as fsOpen } from 'node:fs/promises';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import type { BlockDevice } from '../block/block-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { ChangeMap } from './change-map.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

const BS = 512;
const CHUNK = 16 * BS;
const BOOT_A = Buffer.alloc(16, 0xa1);
const BOOT_B = Buffer.alloc(16, 0xb2);

function fill(v: number, blocks: number): Uint8Array {
  return new Uint8Array(blocks * BS).fill(v);
}

async function readChunk(dev: BlockDevice, c: number): Promise<Buffer> {
  return Buffer.from(await dev.read(c * (CHUNK / BS), CHUNK / BS));
}

/** Contents of each file as they were when an fdatasync of it started (what that sync made durable). */
async function trackDatasyncs(): Promise<{ synced: Map<string, Buffer[]>; restore: () => void }> {
  const fh = await fsOpen('/dev/null', 'r');
  const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
  await fh.close();
  const orig = proto.datasync;
  const synced = new Map<string, Buffer[]>();
  proto.datasync = function (this: { fd: number }) {
    try {
      const path = readlinkSync(`/proc/self/fd/${this.fd}`);
      const list = synced.get(path) ?? [];
      list.push(readFileSync(path));
      synced.set(path, list);
    } catch {
      // not a regular file
    }
    return orig.call(this);
  };
  return { synced, restore: () => void (proto.datasync = orig) };
}

function hasBit(bits: Uint8Array, g: number): boolean {
  return (bits[g >> 3] & (1 << (g & 7))) !== 0;
}

test('power loss during a commit: a COMMIT on disk before an earlier map.log page loses no flushed write', async () => {
  await inTempDir('rowrev', async (dir) => {
    const img = join(dir, 'lun.img');
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 512;
    const open = async (bootId: Buffer): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: chunks * CHUNK }), {
        dir: sdir,
        chunkBytes: CHUNK,
        commitAfterMs: 0,
        bootId,
      });
    const dev = await open(BOOT_A);
    await dev.write(0, fill(0xaa, chunks * (CHUNK / BS))); // A: the image
    await dev.flush();
    await dev.createSnapshot(); // S1
    await dev.write(0, fill(0xbb, CHUNK / BS)); // B: chunk 0 → layer of S1
    await dev.flush(); // B is flushed: it must survive any power loss
    const s2 = await dev.createSnapshot(); // S2 (commit)
    const before = await readFile(join(sdir, 'map.log'));
    const tracker = await trackDatasyncs();
    await dev.write(0, fill(0xcc, CHUNK / BS)); // C: chunk 0 → layer of S2, MAP not committed
    // 200 more first writes push the next entries onto the following 4 KiB page of map.log.
    for (let c = 1; c <= 200; c++) await dev.write(c * (CHUNK / BS), fill(0xdd, CHUNK / BS));
    // Deleting S2 unmaps chunk 0 from S1's layer (shadowed by S2's), then commits: COMMIT lands on page 1.
    await dev.deleteSnapshot(s2.id);
    tracker.restore();
    const now = await readFile(join(sdir, 'map.log'));
    // map.log as made durable by the syncs before the last one (the one after the COMMIT append);
    // none since S2 was created: as it was then.
    const syncs = tracker.synced.get(join(sdir, 'map.log')) ?? [];
    const durable =
      syncs.length >= 2 ? syncs[syncs.length - 2] : await readFile(join(sdir, 'map.log')).then(() => before);
    assert.ok(now.length > 4096 + 64, `map.log is ${now.length} bytes`);
    // Power loss during that commit's fdatasync of map.log: page 1 (UNMAP + COMMIT) reached the
    // disk, page 0 (MAP of C) did not. chunks.dat and the image were fdatasync'ed before.
    const lost = Buffer.alloc(now.length);
    durable.copy(lost, 0, 0, Math.min(4096, durable.length));
    now.copy(lost, 4096, 4096);
    // "Kill" the process: abandon dev without closing it, then write the state the disk holds.
    await writeFile(join(sdir, 'map.log'), lost);
    const after = await open(BOOT_B);
    try {
      const got = await readChunk(after, 0);
      const v = got[0];
      assert.ok(
        v === 0xbb || v === 0xcc,
        `chunk 0 reads 0x${v.toString(16)} after the power loss: the flushed write (0xbb) is gone, ` +
          `neither the old (0xbb) nor the new (0xcc) data`,
      );
    } finally {
      await after.close();
      void dev; // never closed: the process died
    }
  });
});

test('power loss right after a same-boot reopen: a redirected chunk is never visible unmarked', async () => {
  await inTempDir('rowrev', async (dir) => {
    const img = join(dir, 'lun.img');
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 64;
    const open = async (bootId: Buffer): Promise<SnapshottableDevice> =>
      SnapshottableDevice.open(await FileDevice.open(img, { blockSize: BS, sizeBytes: chunks * CHUNK }), {
        dir: sdir,
        chunkBytes: CHUNK,
        commitAfterMs: 0,
        bootId,
      });
    const dev = await open(BOOT_A);
    await dev.write(0, fill(0xaa, chunks * (CHUNK / BS)));
    await dev.flush();
    const s1 = await dev.createSnapshot();
    const epoch = s1.changeId as string;
    const chg = join(sdir, `${epoch}.chg`);
    // The epoch's file as last fdatasync'ed (openWorking at the epoch's start).
    const durableChg = await readFile(chg);
    await dev.write(5 * (CHUNK / BS), fill(0xee, CHUNK / BS)); // redirected first write: markWritten, no sync
    assert.ok(hasBit((await dev.changed(epoch)).bits, 5), 'chunk 5 is marked in memory');
    // SIGKILL (same boot): abandon dev. The restart replays map.log and rewrites it committed
    // (RedirectMap.open) before ChangeMap.open has made the marks durable. Power fails in between.
    const origOpen = ChangeMap.open;
    ChangeMap.open = async () => {
      throw new Error('power lost here');
    };
    try {
      await assert.rejects(open(BOOT_A), /power lost here/);
    } finally {
      ChangeMap.open = origOpen;
    }
    // What the disk holds: map.log was replaced durably, chunks.dat fdatasync'ed; the .chg bytes
    // written by markWritten were never fdatasync'ed.
    await copyFile(chg, chg + '.pagecache');
    await writeFile(chg, durableChg);
    const after = await open(BOOT_B);
    try {
      // The write was never flushed: after a power loss it may be gone (0xaa), but if it is
      // visible (0xee), changed(since) must report it.
      const v = (await readChunk(after, 5))[0];
      assert.ok(v === 0xaa || v === 0xee, `chunk 5 reads 0x${v.toString(16)}`);
      const ans = await after.changed(epoch);
      assert.ok(
        v === 0xaa || hasBit(ans.bits, 5),
        `chunk 5 holds data written after ${epoch} but changed(since) does not report it (tracking: ${ans.tracking})`,
      );
    } finally {
      await after.close();
      void dev;
    }
  });
});

test("a snapshot requested during the last snapshot's fold waits one fold step; the fold stops", async () => {
  await inTempDir('rowrev', async (dir) => {
    const img = join(dir, 'lun.img');
    const chunkBytes = 64 * 1024;
    const chunks = 2048; // 128 MiB: 8 fold steps of 256 chunks
    const file = await FileDevice.open(img, { blockSize: BS, sizeBytes: chunks * chunkBytes });
    // Fold steps end with a flush of the image: count them, and act at the first.
    let flushes = 0;
    let onFlush: (() => void) | undefined;
    const base: BlockDevice = Object.create(file, {
      flush: {
        value: async () => {
          await file.flush();
          flushes++;
          const f = onFlush;
          onFlush = undefined;
          f?.();
        },
      },
    });
    const dev = await SnapshottableDevice.open(base, {
      dir: join(dir, 'lun.img.snapshots'),
      chunkBytes,
      bootId: BOOT_A,
    });
    try {
      const s = await dev.createSnapshot();
      const piece = 16 << 20;
      for (let off = 0; off < chunks * chunkBytes; off += piece)
        await dev.write(off / BS, new Uint8Array(piece).fill(7));
      await dev.flush();
      let made: Promise<unknown> | undefined;
      let written: Promise<void> | undefined;
      let flushesAtWrite = -1;
      onFlush = () => {
        // The first fold step is done: a snapshot request, then a write behind it.
        made = dev.createSnapshot();
        written = dev.write(0, fill(1, 1)).then(() => void (flushesAtWrite = flushes));
      };
      const before = flushes;
      await dev.deleteSnapshot(s.id);
      await made;
      await written;
      const steps = flushesAtWrite - before;
      // One fold step, plus the flush of the snapshot's own creation.
      assert.ok(steps <= 2, `the write waited for ${steps} image flushes: the fold went on with a snapshot requested`);
      const left = dev.snapshots()[0].preservedChunks;
      assert.equal(dev.snapshots().length, 1);
      // The new snapshot froze the LUN as it was: 7 everywhere, whatever the fold had copied.
      const view = dev.openSnapshot(dev.snapshots()[0].id);
      for (const c of [0, 255, 256, 1000, 2047]) {
        const got = await view.read(c * (chunkBytes / BS), chunkBytes / BS);
        assert.ok(
          got.every((b) => b === 7),
          `snapshot chunk ${c}`,
        );
      }
      assert.equal((await dev.read(0, 1))[0], 1, 'the write after the snapshot is in the LUN');
      assert.equal(left, 1, 'only the write after it is kept apart for the new snapshot');
    } finally {
      await dev.close();
    }
  });
});
