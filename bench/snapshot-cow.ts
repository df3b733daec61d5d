// Benchmark: the cost of live snapshots on writes. Sequential 1 MiB writes over a LUN image
// (FileDevice under SnapshottableDevice) with 0, 1 and 8 live snapshots, each pass right after
// the newest snapshot so every chunk is written for the first time since it (redirected once);
// the peer is the same pass with no snapshot, in the same run. A bare FileDevice and a
// MemoryDevice are shown beside it, and the pass with change tracking on and no snapshot (an
// epoch started by a mark: the state between backups).
//
// Every timed pass (baselines included) comes right after writing and deleting a scratch file of
// twice the LUN's size. This VM (Firecracker) reports freed guest memory to the host
// (page_reporting_order=11), which discards it: a page the kernel hands out again is faulted in
// by the hypervisor at ~330 MB/s, a cost a storage node whose memory is full of page cache does
// not pay. The scratch file leaves backed pages on the free lists for the pass that follows.
//
//   node --import tsx bench/snapshot-cow.ts [--size 256M] [--runs 3] [--depth 1] [--no-warm]
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../src/block/block-device.ts';
import { FileDevice } from '../src/block/file-device.ts';
import { MemoryDevice } from '../src/block/memory-device.ts';
import { SnapshottableDevice } from '../src/snapshot/snapshottable-device.ts';
import { formatBytes, parseSize } from '../src/util/units.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const sizeBytes = parseSize(opt('size', '256M'));
const runs = Number(opt('runs', '3'));
const depth = Number(opt('depth', '1'));
const BS = 512;
const IO = 1 << 20;
const data = randomBytes(IO);
const warm = !args.includes('--no-warm');
let scratchDir = '';

/** Write and delete a scratch file of `bytes`, so the page cache's next pages are ones already backed. */
async function warmMemory(bytes: number): Promise<void> {
  const path = join(scratchDir, 'warm.tmp');
  const fh = await open(path, 'w');
  try {
    for (let at = 0; at < bytes; at += IO) await fh.write(data, 0, IO, at);
  } finally {
    await fh.close();
  }
  await rm(path);
}

/** One sequential pass of 1 MiB writes (`depth` in flight) plus a flush; MB/s. */
async function pass(dev: BlockDevice, timed = true): Promise<number> {
  if (timed && warm) await warmMemory(2 * sizeBytes);
  const ios = Math.floor((dev.blockCount * BS) / IO);
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < ios) {
        const i = next++;
        await dev.write((i * IO) / BS, data);
      }
    }),
  );
  await dev.flush();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (ios * IO) / 1e6 / s;
}

async function lun(dir: string, name: string): Promise<SnapshottableDevice> {
  const file = await FileDevice.open(join(dir, `${name}.img`), { blockSize: BS, sizeBytes });
  return SnapshottableDevice.open(file, { dir: join(dir, `${name}.img.snapshots`) });
}

/**
 * MB/s of a pass taken right after the `live`-th snapshot (each snapshot after a full pass),
 * and of a second pass, when every chunk has already been redirected. With `reuse`, an earlier
 * snapshot was taken, written after and deleted first: chunks.dat is the one it left.
 */
async function withSnapshots(
  dir: string,
  live: number,
  opts: { tracked?: boolean; reuse?: boolean } = {},
): Promise<[number, number]> {
  const dev = await lun(dir, `lun-${live}`);
  try {
    await pass(dev, false); // allocate the image: no pass measures first-touch file growth
    if (opts.tracked) await dev.markChanges();
    if (opts.reuse) {
      const s = await dev.createSnapshot();
      await pass(dev, false);
      await dev.deleteSnapshot(s.id);
    }
    for (let k = 0; k < live; k++) {
      await dev.createSnapshot();
      if (k < live - 1) await pass(dev, false);
    }
    return [await pass(dev), await pass(dev)];
  } finally {
    await dev.close();
    await rm(join(dir, `lun-${live}.img`), { force: true });
    await rm(join(dir, `lun-${live}.img.snapshots`), { recursive: true, force: true });
  }
}

async function bare(dir: string): Promise<number> {
  const dev = await FileDevice.open(join(dir, 'bare.img'), { blockSize: BS, sizeBytes });
  try {
    await pass(dev, false);
    return await pass(dev);
  } finally {
    await dev.close();
    await rm(join(dir, 'bare.img'), { force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-cow-'));
scratchDir = dir;
try {
  const rows: Record<string, number[]> = {
    memory: [],
    bare: [],
    '0': [],
    tracked: [],
    '1': [],
    '8': [],
    again: [],
    reuse: [],
  };
  for (let r = 0; r < runs; r++) {
    rows.memory.push(await pass(new MemoryDevice(BS, sizeBytes / BS)));
    rows.bare.push(await bare(dir));
    rows.tracked.push((await withSnapshots(dir, 0, { tracked: true }))[0]);
    for (const live of [0, 1, 8]) {
      const [first, second] = await withSnapshots(dir, live);
      rows[String(live)].push(first);
      if (live === 1) rows.again.push(second);
    }
    rows.reuse.push((await withSnapshots(dir, 1, { reuse: true }))[0]);
  }
  const base = median(rows['0']);
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(
    `sequential 1 MiB writes over ${formatBytes(sizeBytes)}, ${depth} in flight, ${runs} run(s), ` +
      `${warm ? 'memory warmed before each timed pass' : 'memory not warmed'}; ` +
      `ratio = median / median with 0 snapshots`,
  );
  console.log(`| Device | Runs (MB/s) | Median | Ratio |`);
  console.log(`|---|---|---|---|`);
  console.log(
    `| MemoryDevice (no disk) | ${fmt(rows.memory)} | ${median(rows.memory).toFixed(0)} MB/s | ` +
      `${(median(rows.memory) / base).toFixed(2)}× |`,
  );
  console.log(
    `| FileDevice alone | ${fmt(rows.bare)} | ${median(rows.bare).toFixed(0)} MB/s | ` +
      `${(median(rows.bare) / base).toFixed(2)}× |`,
  );
  console.log(
    `| SnapshottableDevice, 0 snapshots, change tracking on | ${fmt(rows.tracked)} | ` +
      `${median(rows.tracked).toFixed(0)} MB/s | **${(median(rows.tracked) / base).toFixed(2)}×** |`,
  );
  for (const live of [0, 1, 8]) {
    const xs = rows[String(live)];
    console.log(
      `| SnapshottableDevice, ${live} live snapshot(s) | ${fmt(xs)} | ${median(xs).toFixed(0)} MB/s | ` +
        `**${(median(xs) / base).toFixed(2)}×** |`,
    );
  }
  const xs = rows.again;
  console.log(
    `| SnapshottableDevice, 1 live snapshot, chunks already redirected | ${fmt(xs)} | ` +
      `${median(xs).toFixed(0)} MB/s | ` +
      `${(median(xs) / base).toFixed(2)}× |`,
  );
  const ys = rows.reuse;
  console.log(
    `| SnapshottableDevice, 1 live snapshot, chunks.dat left by an earlier snapshot | ${fmt(ys)} | ` +
      `${median(ys).toFixed(0)} MB/s | **${(median(ys) / base).toFixed(2)}×** |`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
