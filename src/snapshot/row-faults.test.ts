// Disk faults, power loss and crashes for redirect-on-write (docs/snapshots.md, "Crash",
// "Crash-safety order"). Each test builds the state the disk (or the page cache, after a
// SIGKILL) may hold after a failure at one step, then reopens and checks an invariant: flushed
// writes survive, a snapshot never changes, changed(since) never under-reports, writes never
// hang, a snapshot request waits one fold step at most. No wall-clock assertions.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readFileSync, readlinkSync } from 'node:fs';
import { copyFile, readFile, writeFile, open as fsOpen } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import type { BlockDevice } from '../block/block-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import { ChangeMap } from './change-map.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

const BS = 512;
const CHUNK = 16 * BS;
const CB = CHUNK / BS;
const BOOT_A = Buffer.alloc(16, 0xa1);
const BOOT_B = Buffer.alloc(16, 0xb2);

function fill(v: number, blocks: number): Uint8Array {
  return new Uint8Array(blocks * BS).fill(v);
}

async function readChunk(dev: BlockDevice, c: number): Promise<Buffer> {
  return Buffer.from(await dev.read(c * CB, CB));
}

function hasBit(bits: Uint8Array, g: number): boolean {
  return (bits[g >> 3] & (1 << (g & 7))) !== 0;
}

function pathOf(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
}

/** FileHandle.prototype, to intercept datasync/write as the kernel would answer them. */
async function fileHandleProto(): Promise<Record<string, (...a: unknown[]) => Promise<unknown>>> {
  const fh = await fsOpen('/dev/null', 'r');
  const proto = Object.getPrototypeOf(fh) as Record<string, (...a: unknown[]) => Promise<unknown>>;
  await fh.close();
  return proto;
}

/**
 * Record each file's content when an fdatasync of it starts (what that sync makes durable), and
 * let `fail(path)` make chosen syncs fail with EIO instead (the kernel then drops the dirty pages'
 * error; they never reach the disk).
 */
async function interceptDatasync(
  fail: (path: string) => boolean = () => false,
): Promise<{ synced: Map<string, Buffer[]>; restore: () => void }> {
  const proto = await fileHandleProto();
  const orig = proto.datasync;
  const synced = new Map<string, Buffer[]>();
  proto.datasync = function (this: { fd: number }) {
    const path = pathOf(this.fd);
    if (path && fail(path))
      return Promise.reject(Object.assign(new Error(`EIO: i/o error, fdatasync`), { code: 'EIO' }));
    if (path) {
      try {
        const list = synced.get(path) ?? [];
        list.push(readFileSync(path));
        synced.set(path, list);
      } catch {
        // not a regular file
      }
    }
    return orig.call(this);
  };
  return { synced, restore: () => void (proto.datasync = orig) };
}

async function openLun(
  dir: string,
  chunks: number,
  bootId: Buffer,
  extra: { commitAfterMs?: number; wrap?: (f: FileDevice) => BlockDevice } = {},
): Promise<SnapshottableDevice> {
  const file = await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: chunks * CHUNK });
  return SnapshottableDevice.open(extra.wrap ? extra.wrap(file) : file, {
    dir: join(dir, 'lun.img.snapshots'),
    chunkBytes: CHUNK,
    commitAfterMs: extra.commitAfterMs ?? 0,
    bootId,
  });
}

// ---- 1. CBT: the fold makes a redirected chunk durable in the image before its mark ----

test('power loss during the fold: a first write the fold copied is reported by changed(since)', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 64;
    // The fold's image flush is where the power fails (after it: the copy is on disk).
    let powerFailsAtFlush = false;
    const wrap = (f: FileDevice): BlockDevice =>
      Object.create(f, {
        flush: {
          value: async () => {
            await f.flush();
            if (powerFailsAtFlush) throw new Error('power lost here');
          },
        },
      }) as BlockDevice;
    const dev = await openLun(dir, chunks, BOOT_A, { wrap });
    await dev.write(0, fill(0xaa, chunks * CB));
    await dev.flush();
    const s1 = await dev.createSnapshot();
    const epoch = s1.changeId as string;
    const chg = join(sdir, `${epoch}.chg`);
    const chgAtStart = await readFile(chg); // fdatasync'ed when the epoch started
    const tracker = await interceptDatasync();
    let chgDurable: Buffer;
    try {
      // A first write after S1: redirected, its change mark written without an fdatasync (markWritten).
      await dev.write(5 * CB, fill(0xee, CB));
      // The backup is done: its snapshot is deleted before any commit (within commitAfterMs).
      powerFailsAtFlush = true;
      await assert.rejects(dev.deleteSnapshot(s1.id), /power lost here/);
    } finally {
      tracker.restore();
      chgDurable = tracker.synced.get(chg)?.at(-1) ?? chgAtStart;
    }
    // The disk: the image as flushed by the fold (chunk 5 = 0xee), the change bitmap as last
    // fdatasync'ed, map.log as it is (another boot counts only committed entries).
    await writeFile(chg, chgDurable);
    const after = await openLun(dir, chunks, BOOT_B);
    try {
      const v = (await readChunk(after, 5))[0];
      assert.ok(v === 0xaa || v === 0xee, `chunk 5 reads 0x${v.toString(16)}`);
      const ans = await after.changed(epoch);
      assert.ok(
        v === 0xaa || ans.tracking === 'lost' || hasBit(ans.bits, 5),
        `chunk 5 reads the write made after ${epoch} (0xee, from the image the fold wrote) but changed(since) ` +
          `does not report it: the fold flushed the image before the chunk's change mark was durable`,
      );
    } finally {
      await after.close();
      void dev; // never closed: the power failed
    }
  });
});

// ---- 2. Data loss: a background commit's failed fdatasync is swallowed ----

test('a background commit whose fdatasync of chunks.dat fails: the next flush fails or the data survives', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 32;
    const dev = await openLun(dir, chunks, BOOT_A, { commitAfterMs: 5000 });
    await dev.write(0, fill(0xaa, chunks * CB));
    await dev.flush();
    await dev.createSnapshot();
    const data = join(sdir, 'chunks.dat');
    mock.timers.enable({ apis: ['setTimeout'] });
    let failNext = false;
    let failed = 0;
    const tracker = await interceptDatasync((p) => {
      if (p !== data || !failNext) return false;
      failNext = false;
      failed++;
      return true;
    });
    let flushed: boolean | undefined;
    let dataDurable: Buffer;
    let syncsBeforeFailure = 0;
    try {
      await dev.write(3 * CB, fill(0xee, CB)); // redirected: MAP appended, background commit armed
      syncsBeforeFailure = tracker.synced.get(data)?.length ?? 0;
      failNext = true; // the disk fails the write-back of the slot: the kernel drops those pages' error
      mock.timers.tick(5000); // the background commit runs, and fails
      while (failed === 0) await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r)); // its failure handled (swallowed, or kept)
      // The initiator flushes afterwards (SYNCHRONIZE CACHE): it must not be told the write is durable.
      flushed = await dev.flush().then(
        () => true,
        () => false,
      );
      assert.equal(failed, 1, 'the background commit ran and its fdatasync of chunks.dat failed');
    } finally {
      tracker.restore();
      mock.timers.reset();
      // chunks.dat on disk: as its last successful fdatasync before the failure left it (the
      // pages the failed sync held are lost; later syncs had nothing dirty left to write).
      const list = tracker.synced.get(data) ?? [];
      dataDurable = syncsBeforeFailure > 0 ? list[syncsBeforeFailure - 1] : Buffer.alloc(0);
    }
    const now = await readFile(data);
    const disk = Buffer.alloc(now.length);
    dataDurable.copy(disk, 0, 0, Math.min(dataDurable.length, disk.length));
    await writeFile(data, disk);
    const after = await openLun(dir, chunks, BOOT_B);
    try {
      const v = (await readChunk(after, 3))[0];
      assert.ok(
        !flushed || v === 0xee,
        `flush() succeeded after the failed background commit, yet after a power loss chunk 3 reads ` +
          `0x${v.toString(16)}, not the flushed 0xee: the COMMIT vouches for a slot that never reached the disk`,
      );
      assert.ok(v === 0xaa || v === 0xee, `chunk 3 reads 0x${v.toString(16)}: bytes of a slot never written`);
    } finally {
      await after.close();
      void dev;
    }
  });
});

test('a failed fdatasync of map.log fails every later flush: the next would succeed without its pages', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const dev = await openLun(dir, 16, BOOT_A);
    await dev.createSnapshot();
    await dev.write(0, fill(0xee, CB)); // redirected: a MAP entry for the next commit
    let failNext = true;
    const tracker = await interceptDatasync((p) => {
      if (p !== join(sdir, 'map.log') || !failNext) return false;
      failNext = false;
      return true;
    });
    try {
      await assert.rejects(dev.flush(), /map\.log: an fdatasync failed \(EIO/);
      await assert.rejects(dev.flush(), /map\.log: an fdatasync failed/, 'a COMMIT would vouch for a lost page');
    } finally {
      tracker.restore();
      await dev.close().catch(() => undefined);
    }
  });
});

// ---- 3. Stall: a failed close leaves the write gate closed ----

test('close() that fails (its commit) leaves no write hanging: later writes fail', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 16;
    const dev = await openLun(dir, chunks, BOOT_A);
    await dev.createSnapshot();
    await dev.write(0, fill(0xee, CB)); // redirected: the close commits it
    const tracker = await interceptDatasync((p) => p === join(sdir, 'map.log'));
    try {
      await assert.rejects(dev.close(), /EIO/);
    } finally {
      tracker.restore();
    }
    const w = dev.write(CB, fill(1, 1)).then(
      () => 'acknowledged',
      (e: { code?: string }) => e.code ?? 'failed',
    );
    // A few turns of the event loop: a write to a closed LUN fails at once, it has nothing to wait for.
    const pending = new Promise<string>((r) =>
      setImmediate(() => setImmediate(() => setImmediate(() => r('pending')))),
    );
    const state = await Promise.race([w, pending]);
    assert.notEqual(state, 'pending', 'a write after the failed close hangs at the write gate forever');
    assert.equal(
      await dev.close().then(
        () => 'ok',
        () => 'failed',
      ),
      'ok',
      'a second close() does not hang',
    );
  });
});

// ---- 4. SIGKILL after a short map.log append (ENOSPC) ----

test('a MAP append cut short by ENOSPC: after a SIGKILL, a chunk never reads a reused slot', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 32;
    const dev = await openLun(dir, chunks, BOOT_A);
    await dev.write(0, fill(0xaa, chunks * CB));
    await dev.flush();
    const s1 = await dev.createSnapshot();
    // map.log is full after 3 of 4 entries of the next append: the 4th fails with ENOSPC.
    const orig = fs.writeSync;
    const mapPath = join(sdir, 'map.log');
    let stage = 0; // 0: armed, 1: cut short, 2: done
    (fs as unknown as { writeSync: unknown }).writeSync = function (
      fd: number,
      buf: Uint8Array,
      off: number,
      len: number,
      pos: number,
    ): number {
      if (stage < 2 && typeof len === 'number' && pathOf(fd) === mapPath) {
        if (stage === 0 && len === 4 * 32) {
          stage = 1;
          return orig(fd, buf, off, 3 * 32, pos);
        }
        if (stage === 1) {
          stage = 2;
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }
      }
      return orig(fd, buf, off, len, pos);
    };
    syncBuiltinESMExports();
    try {
      // Chunks 0..3, all first writes: data to 4 new slots, then 4 MAP entries; only 3 land.
      await assert.rejects(dev.write(0, fill(0x11, 4 * CB)), /ENOSPC/);
    } finally {
      (fs as unknown as { writeSync: unknown }).writeSync = orig;
      syncBuiltinESMExports();
    }
    // Space again: two more first writes reuse the slots the failed write gave back.
    await dev.write(10 * CB, fill(0x10, CB));
    await dev.write(11 * CB, fill(0x20, CB));
    // The failed write may have left some of its chunks written, as a disk may: 0xaa or 0x11.
    const lunBefore = Buffer.from(await dev.read(0, chunks * CB));
    const snapBefore = Buffer.from(await dev.openSnapshot(s1.id).read(0, chunks * CB));
    // SIGKILL: abandon dev; the page cache (map.log as written) survives. Same boot: every valid entry counts.
    const after = await openLun(dir, chunks, BOOT_A);
    try {
      for (const c of [0, 1, 2, 3]) {
        const v = (await readChunk(after, c))[0];
        assert.ok(
          v === 0xaa || v === 0x11,
          `chunk ${c} reads 0x${v.toString(16)} after a SIGKILL: neither its data (0xaa) nor the failed write's ` +
            `(0x11) — a MAP entry of the failed append names a slot since reused by another chunk`,
        );
      }
      for (const c of [10, 11]) assert.equal((await readChunk(after, c))[0], c === 10 ? 0x10 : 0x20, `chunk ${c}`);
      // Nothing was in flight at the kill: the LUN reads as it did.
      assert.ok(Buffer.from(await after.read(0, chunks * CB)).equals(lunBefore), 'the LUN is as before the SIGKILL');
      const snapAfter = Buffer.from(await after.openSnapshot(s1.id).read(0, chunks * CB));
      assert.ok(snapAfter.equals(snapBefore), 'the snapshot is unchanged');
    } finally {
      await after.close();
      void dev;
    }
  });
});

// ---- 5. Stall: a snapshot requested during the fold, with a write in flight ----

test('a snapshot requested during the fold while a write is in flight waits one fold step, not two', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const chunks = 3 * 256; // three fold steps of 256 chunks
    let flushes = 0;
    let onFlush: (() => void) | undefined;
    const wrap = (f: FileDevice): BlockDevice =>
      Object.create(f, {
        flush: {
          value: async () => {
            await f.flush();
            flushes++;
            const g = onFlush;
            onFlush = undefined;
            g?.();
          },
        },
      }) as BlockDevice;
    const dev = await openLun(dir, chunks, BOOT_A, { wrap });
    try {
      const s = await dev.createSnapshot();
      await dev.write(0, fill(7, chunks * CB)); // every chunk redirected: the fold has 3 steps
      await dev.flush();
      let made: Promise<unknown> | undefined;
      let inFlight: Promise<void> | undefined;
      let behind: Promise<void> | undefined;
      let flushesAtBehind = -1;
      onFlush = () => {
        // Inside the first fold step (it holds the map): a write arrives and waits for it, then
        // a snapshot is requested (the gate closes; that write is before it), then a write behind it.
        inFlight = dev.write(5 * CB, fill(8, 1));
        made = dev.createSnapshot();
        behind = dev.write(0, fill(1, 1)).then(() => void (flushesAtBehind = flushes));
      };
      const before = flushes;
      await dev.deleteSnapshot(s.id);
      await inFlight;
      await made;
      await behind;
      const steps = flushesAtBehind - before;
      // The first fold step's flush and the snapshot's own: the fold must stop after the step under way.
      assert.ok(steps <= 2, `the write behind the snapshot waited for ${steps} image flushes: another fold step ran`);
    } finally {
      await dev.close();
    }
  });
});

// ---- 6. A failed growth of chunks.dat fails that write only ----

test('a growth of chunks.dat that fails once fails that write only: later writes and the fold go on', async () => {
  await inTempDir('rowrev2', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 16;
    const dev = await openLun(dir, chunks, BOOT_A);
    try {
      const s = await dev.createSnapshot();
      const proto = await fileHandleProto();
      const orig = proto.truncate;
      let fail = true;
      proto.truncate = function (this: { fd: number }, ...a: unknown[]) {
        if (fail && pathOf(this.fd) === join(sdir, 'chunks.dat')) {
          fail = false;
          return Promise.reject(Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' }));
        }
        return orig.apply(this, a);
      };
      try {
        await assert.rejects(dev.write(0, fill(1, CB)), /EIO/); // chunks.dat grows: fails once
      } finally {
        proto.truncate = orig;
      }
      const later = await dev.write(CB, fill(2, CB)).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      assert.equal(later, 'ok', 'a later first write fails: the failed growth poisoned every later one');
      assert.equal((await readChunk(dev, 1))[0], 2);
      const deleted = await dev.deleteSnapshot(s.id).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      assert.equal(deleted, 'ok', 'the fold cannot finish (reset awaits the failed growth)');
      assert.equal((await readChunk(dev, 1))[0], 2);
    } finally {
      await dev.close();
    }
  });
});

// ---- Power loss at a commit, at a reopen; a snapshot requested during the fold ----

test('power loss during a commit: a COMMIT on disk before an earlier map.log page loses no flushed write', async () => {
  await inTempDir('rowrev', async (dir) => {
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 512;
    const open = (bootId: Buffer): Promise<SnapshottableDevice> => openLun(dir, chunks, bootId);
    const dev = await open(BOOT_A);
    await dev.write(0, fill(0xaa, chunks * (CHUNK / BS))); // A: the image
    await dev.flush();
    await dev.createSnapshot(); // S1
    await dev.write(0, fill(0xbb, CHUNK / BS)); // B: chunk 0 → layer of S1
    await dev.flush(); // B is flushed: it must survive any power loss
    const s2 = await dev.createSnapshot(); // S2 (commit)
    const before = await readFile(join(sdir, 'map.log'));
    const tracker = await interceptDatasync();
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
    const sdir = join(dir, 'lun.img.snapshots');
    const chunks = 64;
    const open = (bootId: Buffer): Promise<SnapshottableDevice> => openLun(dir, chunks, bootId);
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
    // SIGKILL (same boot): abandon dev. The restart replays map.log; power fails while it opens
    // the change map (before this fix map.log had already been rewritten committed by then).
    const origOpen = ChangeMap.open;
    ChangeMap.open = async () => {
      throw new Error('power lost here');
    };
    try {
      await assert.rejects(open(BOOT_A), /power lost here/);
    } finally {
      ChangeMap.open = origOpen;
    }
    // What the disk holds: the .chg bytes written by markWritten were never fdatasync'ed.
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
