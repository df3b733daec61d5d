// Benchmark: Ferry's NTFS used-blocks scan and full file-level plan against `ntfsclone --metadata`
// on a 2 GiB volume with about 20,000 files, in the same run, alternating, hot cache.
//   node --import tsx bench/ntfs-vs-ntfsclone.ts [--runs 9] [--image PATH] [--make-only]
// Makes the image (root, ntfs-3g FUSE) at test/fixtures/ntfs/out/bench-2g.img if missing
// (--make-only: just that; bench/files-backup.ts uses the same image).
// ntfsclone cannot write metadata to /dev/null (it ftruncates its output), so it writes its
// sparse metadata image to /dev/shm, which is deleted after each run.
// Ferry runs in child processes with the node flags of bin/ferry.mjs's shebang (what `ferry`
// users get): each child times its first call (cold: a fresh process, like one `ferry ntfs plan`,
// node and module loading excluded) and then WARM more calls in the same process. The whole
// `ferry ntfs plan IMG` command (node and tsx start-up included) is timed as a process too.
// plan+files also turns every file into its document object (paths, names, attributes).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FileDevice } from '../src/block/file-device.ts';
import { usedClusters } from '../src/ntfs/bitmap.ts';
import { buildPlan } from '../src/ntfs/plan.ts';
import { openVolume } from '../src/ntfs/volume.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    image: { type: 'string', default: join(REPO, 'test/fixtures/ntfs/out/bench-2g.img') },
    child: { type: 'string' },
    'make-only': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const img = values.image;
const WARM = 5;

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

interface Sample {
  wallMs: number;
  cpuMs: number;
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

const ops: Record<string, (dev: FileDevice) => Promise<unknown>> = {
  used: (dev) => openVolume(dev).then(usedClusters),
  plan: async (dev) => buildPlan(await openVolume(dev), { blockSize: 512 }),
  // and every file as a document object (names, path, attributes), as a catalog would read it
  'plan+files': async (dev) => {
    const plan = await buildPlan(await openVolume(dev), { blockSize: 512 });
    let n = 0;
    for (const f of plan.files()) n += f.attributes.length;
    return n;
  },
};

if (values.child) {
  // Child: 1 + WARM timed calls of one operation; samples as JSON on stdout.
  const samples: Sample[] = [];
  for (let i = 0; i <= WARM; i++) samples.push(await timed(ops[values.child]));
  process.stdout.write(JSON.stringify(samples));
  process.exit(0);
}

if (!existsSync(img)) {
  // What the image needs, checked first so that a failure names its cause.
  const missing = ['mkntfs', 'ntfs-3g', 'python3', 'ntfsclone'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length)
    throw new Error(
      `making the benchmark image needs ${missing.join(', ')} on PATH (Debian: apt-get install ntfs-3g python3)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error('making the benchmark image mounts it with ntfs-3g: run as root once, or pass --image FILE');
  mkdirSync(dirname(img), { recursive: true });
  console.log(`making ${img} (2 GiB, ~20,000 files) ...`);
  const r = spawnSync('bash', ['-c', MAKE, 'make', img], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not make the benchmark image ${img} (the script's error is above)`);
}
if (values['make-only']) process.exit(0);

/** ntfsclone's wall time, and its CPU time (user + sys) from bash's `time`: the box may be shared. */
function ntfsclone(): Sample {
  const dir = mkdtempSync('/dev/shm/ferry-bench-');
  try {
    const t = process.hrtime.bigint();
    const r = spawnSync(
      'bash',
      [
        '-c',
        'TIMEFORMAT="%3U %3S"; time ntfsclone --metadata --output "$1" "$2" >/dev/null 2>&1',
        'x',
        join(dir, 'meta.img'),
        img,
      ],
      { encoding: 'utf8' },
    );
    const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`ntfsclone failed: ${r.stderr}`);
    const [u, s] = r.stderr.trim().split(/\s+/).slice(-2).map(Number);
    return { wallMs, cpuMs: (u + s) * 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The node flags `ferry` runs with (bin/ferry.mjs shebang: `#!/usr/bin/env -S node FLAGS`). */
const LAUNCHER_FLAGS = (
  readFileSync(join(REPO, 'bin/ferry.mjs'), 'utf8')
    .split('\n')[0]
    .split(/\s+node\s+/)[1] ?? ''
)
  .split(/\s+/)
  .filter(Boolean);

/** One child process (launcher flags): [cold, ...warm] samples of `op`. */
function child(op: string): Sample[] {
  const r = spawnSync(
    process.execPath,
    [...LAUNCHER_FLAGS, '--import', 'tsx', join(REPO, 'bench/ntfs-vs-ntfsclone.ts'), '--child', op, '--image', img],
    { cwd: REPO, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`bench child ${op} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Sample[];
}

/** The whole `ferry ntfs plan IMG` command as a process (node + tsx start-up included), timed like ntfsclone. */
function command(): Sample {
  const t = process.hrtime.bigint();
  const r = spawnSync(
    'bash',
    [
      '-c',
      'TIMEFORMAT="%3U %3S"; time "$@" >/dev/null 2>&1',
      'x',
      process.execPath,
      ...LAUNCHER_FLAGS,
      join(REPO, 'bin/ferry.mjs'),
      'ntfs',
      'plan',
      img,
    ],
    { cwd: REPO, encoding: 'utf8' },
  );
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`ferry ntfs plan failed: ${r.stderr}`);
  const [u, s] = r.stderr.trim().split(/\s+/).slice(-2).map(Number);
  return { wallMs, cpuMs: (u + s) * 1000 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mid = (xs: Sample[]): Sample => ({
  wallMs: median(xs.map((x) => x.wallMs)),
  cpuMs: median(xs.map((x) => x.cpuMs)),
});

// warm the page cache
ntfsclone();
child('plan');
command();
const t: Record<string, Sample[]> = {
  ntfsclone: [],
  'used, cold': [],
  'plan, cold': [],
  'plan, warm': [],
  'plan+files, cold': [],
  'plan+files, warm': [],
  'plan command': [],
};
for (let i = 0; i < runs; i++) {
  t.ntfsclone.push(ntfsclone());
  t['used, cold'].push(child('used')[0]);
  const [cold, ...warm] = child('plan');
  t['plan, cold'].push(cold);
  t['plan, warm'].push(mid(warm));
  const [coldF, ...warmF] = child('plan+files');
  t['plan+files, cold'].push(coldF);
  t['plan+files, warm'].push(mid(warmF));
  t['plan command'].push(command());
}
const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
const p = await buildPlan(await openVolume(dev), { blockSize: 512 });
await dev.close();
console.log(
  `image: ${img}, ${p.fileCount} files, ${p.extents.length} merged extents, ${p.used.ranges.length} used ranges, ` +
    `${runs} runs, hot cache`,
);
console.log(
  `ferry children: node ${LAUNCHER_FLAGS.join(' ')} --import tsx; cold = first call in a fresh process, ` +
    `warm = median of the next ${WARM}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);
const base = mid(t.ntfsclone);
for (const [k, xs] of Object.entries(t)) {
  const m = mid(xs);
  console.log(
    `${k.padEnd(17)} wall ${xs.map((x) => x.wallMs.toFixed(0)).join(', ')} ms (median ${m.wallMs.toFixed(0)}, ` +
      `${(m.wallMs / base.wallMs).toFixed(2)}x ntfsclone -m); ` +
      `cpu median ${m.cpuMs.toFixed(0)} ms (${(m.cpuMs / base.cpuMs).toFixed(2)}x)`,
  );
}
