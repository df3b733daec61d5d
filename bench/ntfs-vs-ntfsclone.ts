// Benchmark: Ferry's NTFS used-blocks scan and full file-level plan against `ntfsclone --metadata`
// on a 2 GiB volume with about 20,000 files, in the same run, hot cache.
//   node --import tsx bench/ntfs-vs-ntfsclone.ts [--runs 5] [--image PATH]
// Makes the image (root, ntfs-3g FUSE) at test/fixtures/ntfs/out/bench-2g.img if missing.
// ntfsclone cannot write metadata to /dev/null (it ftruncates its output), so it writes its
// sparse metadata image to /dev/shm, which is deleted after each run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FileDevice } from '../src/block/file-device.ts';
import { usedClusters } from '../src/ntfs/bitmap.ts';
import { buildPlan } from '../src/ntfs/plan.ts';
import { openVolume } from '../src/ntfs/volume.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, image: { type: 'string', default: join(REPO, 'test/fixtures/ntfs/out/bench-2g.img') } } });
const runs = Number(values.runs);
const img = values.image;

const MAKE = `
set -euo pipefail
img="$1"; mnt=$(mktemp -d)
truncate -s 2G "$img.tmp"; mkntfs -F -q -c 4096 "$img.tmp" 2>/dev/null
ntfs-3g "$img.tmp" "$mnt"
trap 'umount "$mnt" 2>/dev/null; rmdir "$mnt"' EXIT
python3 - "$mnt" <<'PY'
import os, sys, random
m = sys.argv[1]; r = random.Random(20000)
blob = r.randbytes(4 << 20)
for d in range(100):
    os.mkdir(f'{m}/d{d:03d}')
    for i in range(198):
        n = r.randrange(0, 6000)
        with open(f'{m}/d{d:03d}/f{i:04d}', 'wb') as f: f.write(blob[n:n + n])
for i in range(200):
    with open(f'{m}/big{i:03d}', 'wb') as f: f.write(blob[i * 1000:i * 1000 + (3 << 20)])
PY
sync; umount "$mnt"; trap - EXIT; rmdir "$mnt"; mv "$img.tmp" "$img"
`;

if (!existsSync(img)) {
  console.log(`making ${img} (2 GiB, ~20,000 files) ...`);
  const r = spawnSync('bash', ['-c', MAKE, 'make', img], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('could not make the benchmark image (needs root, ntfs-3g, python3)');
}

interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** ntfsclone's wall time, and its CPU time (user + sys) from bash's `time`: the box may be shared. */
function ntfsclone(): Sample {
  const dir = mkdtempSync('/dev/shm/ferry-bench-');
  try {
    const t = process.hrtime.bigint();
    const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%3U %3S"; time ntfsclone --metadata --output "$1" "$2" >/dev/null 2>&1', 'x', join(dir, 'meta.img'), img], { encoding: 'utf8' });
    const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`ntfsclone failed: ${r.stderr}`);
    const [u, s] = r.stderr.trim().split(/\s+/).slice(-2).map(Number);
    return { wallMs, cpuMs: (u + s) * 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed(fn: (dev: FileDevice) => Promise<unknown>): Promise<Sample> {
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
  try {
    await fn(dev);
  } finally {
    await dev.close();
  }
  const cpu = process.cpuUsage(c);
  return { wallMs: Number(process.hrtime.bigint() - t) / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const used = (dev: FileDevice): Promise<unknown> => openVolume(dev).then(usedClusters);
const plan = async (dev: FileDevice): Promise<unknown> => buildPlan(await openVolume(dev), { blockSize: 512 });

// warm the page cache and the JIT
ntfsclone();
await timed(plan);
await timed(used);
const t: Record<string, Sample[]> = { ntfsclone: [], used: [], plan: [] };
for (let i = 0; i < runs; i++) {
  t.ntfsclone.push(ntfsclone());
  t.used.push(await timed(used));
  t.plan.push(await timed(plan));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
const p = await buildPlan(await openVolume(dev), { blockSize: 512 });
await dev.close();
console.log(`image: ${img}, ${p.fileCount} files, ${p.extents.length} merged extents, ${p.used.ranges.length} used ranges, ${runs} runs, hot cache`);
const wall0 = median(t.ntfsclone.map((x) => x.wallMs));
const cpu0 = median(t.ntfsclone.map((x) => x.cpuMs));
for (const [k, xs] of Object.entries(t)) {
  const w = median(xs.map((x) => x.wallMs));
  const c = median(xs.map((x) => x.cpuMs));
  console.log(
    `${k.padEnd(10)} wall ${xs.map((x) => x.wallMs.toFixed(0)).join(', ')} ms (median ${w.toFixed(0)}, ${(w / wall0).toFixed(2)}x ntfsclone -m); ` +
      `cpu median ${c.toFixed(0)} ms (${(c / cpu0).toFixed(2)}x)`,
  );
}
