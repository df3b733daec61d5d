// Benchmark: a `files` backup of the 2 GiB, ~20,000-file volume of bench/ntfs-vs-ntfsclone.ts
// against a `used` backup of the same LUN and against `ntfsclone --save-image` of the image, in
// the same run, alternating; then a single-file restore against restoring the whole set.
//   node --import tsx bench/files-backup.ts [--runs 3] [--image PATH]
// The server's library runs in this process over real iSCSI (src/jobs/testing.ts): a storage node
// whose target also serves the tape library, the drive LU as the copy manager (as a `ferry mover`
// on the tape node would be), a SQLite catalog. Each backup is timed from the job's start to its
// end: snapshot, plan (the server reads $MFT over iSCSI), copy, catalog. ntfsclone reads the image
// file and writes its image to /dev/shm (deleted after each run). Every timed step starts after `sync`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startJobsWorld, type JobsWorld } from '../src/jobs/testing.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    image: { type: 'string', default: join(REPO, 'test/fixtures/ntfs/out/bench-2g.img') },
  },
});
const RUNS = Number(values.runs);
const img = values.image;
const MIB = 2 ** 20;

if (!existsSync(img)) {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'bench/ntfs-vs-ntfsclone.ts'), '--make-only', '--image', img],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) throw new Error(`could not make ${img} (see above)`);
}
for (const t of ['ntfsclone'])
  if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
    throw new Error(`${t} is missing (Debian: apt-get install ntfs-3g)`);

function settle(): void {
  spawnSync('sync');
}

async function backup(
  w: JobsWorld,
  volume: string,
  mode: 'files' | 'used',
): Promise<{ ms: number; set: number; bytes: number }> {
  settle();
  const t = performance.now();
  const job = await w.service.waitForJob((await w.service.startBackup({ volume, mode })).id);
  const ms = performance.now() - t;
  if (job.state !== 'done') throw new Error(`${mode} backup ${job.state}: ${job.error?.message}`);
  return { ms, set: job.set!, bytes: (await w.service.getSet(job.set!)).bytes };
}

function ntfsclone(): { ms: number; bytes: number } {
  const dir = mkdtempSync('/dev/shm/ferry-bench-');
  try {
    settle();
    const t = performance.now();
    const r = spawnSync('ntfsclone', ['--save-image', '--output', join(dir, 'x.img'), img], { encoding: 'utf8' });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`ntfsclone failed: ${r.stderr}`);
    const bytes = Number(spawnSync('stat', ['-c', '%s', join(dir, 'x.img')], { encoding: 'utf8' }).stdout.trim());
    return { ms, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timedJob(
  w: JobsWorld,
  start: () => Promise<{ id: number }>,
): Promise<{ ms: number; result: Record<string, unknown> | null }> {
  settle();
  const t = performance.now();
  const job = await w.service.waitForJob((await start()).id);
  const ms = performance.now() - t;
  if (job.state !== 'done') throw new Error(`job ${job.id} ${job.state}: ${job.error?.message}`);
  return { ms, result: job.result };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (bytes: number, ms: number): string => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-files-'));
  const size = statSync(img).size;
  const w = await startJobsWorld(dir, {
    iqn: 'iqn.2026-12.dev.ferry:bench-files',
    cartridgeSize: 3 * 1024 * MIB,
    tapeBlockBytes: 256 * 1024,
  });
  try {
    // The image into the LUN over iSCSI, 4 MiB at a time (Node reads no file over 2 GiB whole).
    const src = await w.lun(size);
    const fh = await open(img, 'r');
    try {
      const buf = new Uint8Array(4 * MIB);
      for (let off = 0; off < size; off += buf.length) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, off);
        await src.dev.write(off / 512, buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
    await src.dev.flush();
    const volume = `store:${src.lun}`;
    const rows: Record<string, number[]> = { files: [], used: [], ntfsclone: [] };
    let filesSet = 0;
    let setBytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const f = await backup(w, volume, 'files');
      const u = await backup(w, volume, 'used');
      const n = ntfsclone();
      rows.files.push(f.ms);
      rows.used.push(u.ms);
      rows.ntfsclone.push(n.ms);
      filesSet = f.set;
      setBytes = f.bytes;
      console.log(
        `run ${i + 1}: files ${f.ms.toFixed(0)} ms (${f.bytes} bytes, ${mbps(f.bytes, f.ms)}), used ` +
          `${u.ms.toFixed(0)} ms (${u.bytes} bytes, ${mbps(u.bytes, u.ms)}), ntfsclone --save-image ` +
          `${n.ms.toFixed(0)} ms (${n.bytes} bytes)`,
      );
    }
    const mf = median(rows.files);
    console.log(
      `median: files ${mf.toFixed(0)} ms, used ${median(rows.used).toFixed(0)} ms, ntfsclone ` +
        `${median(rows.ntfsclone).toFixed(0)} ms`,
    );
    console.log(
      `ratio (time): files/used ${(mf / median(rows.used)).toFixed(2)}x, files/ntfsclone ` +
        `${(mf / median(rows.ntfsclone)).toFixed(2)}x`,
    );

    // One small file, one 3 MiB file, and the whole set to a new LUN.
    const one = await timedJob(w, () =>
      w.service.startFileRestore({ set: filesSet, files: ['/d050/f0100'], out: join(dir, 'one') }),
    );
    const big = await timedJob(w, () =>
      w.service.startFileRestore({ set: filesSet, files: ['/big100'], out: join(dir, 'big') }),
    );
    const dirOf = await timedJob(w, () =>
      w.service.startFileRestore({ set: filesSet, files: ['/d050'], out: join(dir, 'dir') }),
    );
    const whole = await timedJob(w, () => w.service.startRestore({ set: filesSet, to: 'store:new' }));
    const tape = (r: { result: Record<string, unknown> | null }): string =>
      `${String(r.result?.tapeBytes)} bytes from tape`;
    console.log(
      `restore of a ${setBytes}-byte files set: one small file ${one.ms.toFixed(0)} ms (${tape(one)}), one 3 MiB ` +
        `file ` +
        `${big.ms.toFixed(0)} ms (${tape(big)}), one directory of 198 files ${dirOf.ms.toFixed(0)} ms ` +
        `(${tape(dirOf)}), the whole set to a LUN ${whole.ms.toFixed(0)} ms`,
    );
    console.log(
      `ratio (time): one file / whole set ${(one.ms / whole.ms).toFixed(3)}x, one directory / whole set ` +
        `${(dirOf.ms / whole.ms).toFixed(3)}x`,
    );
  } finally {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
