// Every benchmark command the README lists runs on this checkout, in its quick form: small sizes,
// one run, the same code path and the same peer. A command added to the README without a quick
// form here fails this test, so the list cannot drift from what users are told to run.
// (`npm run demo` and `npm test`, the README's other two commands, are test/interop/demo.test.ts
// and this suite itself.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools, runTool, skipLoudly } from '../helpers/tools.ts';

const REPO = join(import.meta.dirname, '..', '..');

interface Quick {
  args: string[];
  /** Outside tools the benchmark's peer needs. */
  tools: string[];
  /** Needs root (it mounts an image with ntfs-3g the first time). */
  root?: boolean;
  /** Its ratio against the peer, as it prints it. */
  ratio: RegExp;
}

const TIMES = /\d\.\d+×/;

const QUICK: Record<string, Quick> = {
  'bench/target-vs-tgtd.ts': {
    args: ['--size-mb', '16', '--seconds', '1'],
    tools: ['tgtd', 'tgtadm', 'iscsi-perf', 'qemu-img'],
    ratio: /^\| sequential read[^\n]*\| \d+\.\d\d \|$/m,
  },
  'bench/xcopy-vs-dd.ts': { args: ['--size', '32M', '--runs', '1'], tools: ['dd'], ratio: TIMES },
  'bench/tape-vs-dd.ts': {
    args: ['--size', '32M', '--runs', '1'],
    tools: ['dd', 'tgtd', 'tgtadm', 'tgtimg'],
    ratio: TIMES,
  },
  'bench/snapshot-cow.ts': { args: ['--size', '16M', '--runs', '1'], tools: [], ratio: TIMES },
  'bench/ntfs-vs-ntfsclone.ts': {
    args: ['--runs', '1'],
    tools: ['mkntfs', 'ntfs-3g', 'ntfsclone', 'python3'],
    root: true,
    ratio: /\d\.\d\dx ntfsclone -m\)/,
  },
  'bench/backup-e2e.ts': { args: ['--size', '32M', '--runs', '1'], tools: ['dd'], ratio: TIMES },
  'bench/console.ts': {
    args: ['--jobs', '200', '--dirs', '20', '--per-dir', '100', '--runs', '3'],
    tools: [],
    ratio: TIMES,
  },
};

/** The `npx tsx bench/…` lines of the README's Benchmarks section. */
function readmeBenchmarks(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Benchmarks'));
  return [...section.matchAll(/^npx tsx (bench\/[\w-]+\.ts)/gm)].map((m) => m[1]);
}

test('the README lists benchmarks, and each has a quick form here', () => {
  const listed = readmeBenchmarks();
  assert.ok(listed.length >= 6, `README lists ${listed.length} benchmarks`);
  assert.deepEqual(
    listed.filter((b) => !QUICK[b]),
    [],
    'give these README commands a quick form in this test',
  );
});

for (const script of readmeBenchmarks()) {
  const q = QUICK[script];
  if (!q) continue;
  test(`README: npx tsx ${script} ${q.args.join(' ')}`, { timeout: 600_000 }, async (t) => {
    if (!requireTools(t, ...q.tools)) return;
    if (q.root && process.getuid?.() !== 0)
      return void skipLoudly(t, `${script} makes its image as root (ntfs-3g mount)`);
    // As the README says it: `npx tsx bench/…`, from the checkout (the scripts find the repo themselves).
    const r = await runTool('npx', ['tsx', join(REPO, script), ...q.args]);
    assert.equal(r.code, 0, `${script} exited ${r.code}:\n${r.out.slice(-3000)}`);
    // Each benchmark prints its ratio against the peer measured in the same run.
    assert.match(r.out, q.ratio, `${script} printed no ratio:\n${r.out.slice(-2000)}`);
    t.diagnostic(r.out.trim().split('\n').slice(-3).join(' | '));
  });
}
