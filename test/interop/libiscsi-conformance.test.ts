// libiscsi's iscsi-test-cu against a `ferry target` disk LUN: the conformance gate of issue 2.
// Runs the exact command, then the MultipathIO suite with a second path; beside them, on
// a second target, the SANITIZE suite with --allow-sanitize (Sanitize.Reset apart, on a larger
// LUN). Requires 0 failed tests in each invocation. The summaries are printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, runTool } from '../helpers/tools.ts';
import { spawnTarget } from '../helpers/ferry-cli.ts';

const IQN = 'iqn.2026-11.dev.ferry:store';

interface Summary {
  total: number;
  ran: number;
  passed: number;
  failed: number;
  skipped: string[];
  failedTests: string[];
}

function summarize(out: string): Summary {
  const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
  if (!m) throw new Error(`no CUnit summary in iscsi-test-cu output:\n${out.slice(-3000)}`);
  let suite = '';
  let test = '';
  const skipped: string[] = [];
  const failedTests: string[] = [];
  for (const line of out.split('\n')) {
    const s = /^Suite: (\S+)/.exec(line);
    if (s) suite = s[1];
    const t = /Test: (\S+) \.\.\./.exec(line);
    if (t) test = t[1];
    if (line.includes('[SKIPPED]')) skipped.push(`${suite}.${test}: ${line.replace(/.*\[SKIPPED\]\s*/, '')}`);
    if (/^FAILED$|\.\.\.FAILED$/.test(line.trim())) failedTests.push(`${suite}.${test}`);
  }
  return { total: +m[1], ran: +m[2], passed: +m[3], failed: +m[4], skipped, failedTests };
}

/** Every test of a suite, by name, as `iscsi-test-cu -l` lists them (FAMILY.SUITE.TEST). */
async function testsOf(suite: string): Promise<string[]> {
  const { out } = await runTool('iscsi-test-cu', ['-l']);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${suite}.`));
}

test('iscsi-test-cu --dataloss against a Ferry disk LUN: 0 failed tests', { timeout: 900_000 }, async (t) => {
  if (!requireTools(t, 'iscsi-test-cu')) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-cu-'));
  const targets: Array<Awaited<ReturnType<typeof spawnTarget>>> = [];
  try {
    const tgt = await spawnTarget(['--iqn', IQN, '--disk', `${join(dir, 'lun0.img')}:128M`]);
    targets.push(tgt);
    // The SANITIZE tests get a target of their own: Sanitize.Reset sends LUN, warm and cold
    // resets and waits a minute in sleep(60), so they run beside the issue command, not after it.
    // SANITIZE runs at a throttled rate (8 MiB/s) to expose its in-progress states, which
    // Sanitize.Reset checks 3 and 4 seconds after starting it: a 64 MiB LUN keeps it running for
    // 8 s. The other Sanitize tests check no in-progress state; on a 16 MiB LUN each of their
    // SANITIZEs takes 2 s instead of 8.
    const san = await spawnTarget([
      '--iqn',
      IQN,
      '--disk',
      `${join(dir, 'san0.img')}:64M`,
      '--disk',
      `${join(dir, 'san1.img')}:16M`,
    ]);
    targets.push(san);
    const url = `iscsi://127.0.0.1:${tgt.port}/${IQN}/0`;
    const sanReset = `iscsi://127.0.0.1:${san.port}/${IQN}/0`;
    const sanSmall = `iscsi://127.0.0.1:${san.port}/${IQN}/1`;
    const base = ['--dataloss', '-i', 'iqn.2026-11.dev.ferry:client-1', '-I', 'iqn.2026-11.dev.ferry:client-2'];
    const sanitizeTests = await testsOf('SCSI.Sanitize');
    const reset = 'SCSI.Sanitize.Reset';
    assert.ok(sanitizeTests.includes(reset), `${reset} in iscsi-test-cu -l`);
    const sanitizeRest = sanitizeTests.filter((n) => n !== reset);
    type Run = readonly [label: string, args: readonly string[], expectedTests?: number];
    // Each chain runs its invocations in order against its own target; the chains run at once.
    const chains: Run[][] = [
      [
        ['issue command', [...base, url]],
        ['MultipathIO suite with a second path', [...base, '-t', 'SCSI.MultipathIO', url, url]],
      ],
      [
        [
          'SANITIZE suite but Reset, with --allow-sanitize',
          [...base, '--allow-sanitize', '-t', sanitizeRest.join(','), sanSmall],
          sanitizeRest.length,
        ],
        ['Sanitize.Reset with --allow-sanitize', [...base, '--allow-sanitize', '-t', reset, sanReset], 1],
      ],
    ];
    const results = await Promise.all(
      chains.map(async (chain) => {
        const outs: Array<{ run: Run; out: string }> = [];
        for (const run of chain) outs.push({ run, out: (await runTool('iscsi-test-cu', run[1])).out });
        return outs;
      }),
    );
    for (const {
      run: [label, , expectedTests],
      out,
    } of results.flat()) {
      const s = summarize(out);
      console.log(`\n=== iscsi-test-cu (${label}) ===`);
      console.log(out.slice(out.indexOf('Run Summary')).trim());
      console.log(`SKIPPED lines: ${s.skipped.length}`);
      for (const k of new Set(s.skipped)) console.log(`  skipped ${k}`);
      if (s.failedTests.length) {
        console.log(`FAILED: ${[...new Set(s.failedTests)].join(', ')}`);
        for (const line of out.split('\n'))
          if (/\[FAILED\]|CU_FAIL|CU_ASSERT/.test(line)) console.log(`  ${line.trim()}`);
      }
      if (expectedTests !== undefined) assert.equal(s.total, expectedTests, `${label}: every test selected`);
      assert.equal(s.ran, s.total, 'every test ran');
      assert.equal(s.failed, 0, `failed tests: ${[...new Set(s.failedTests)].join(', ')}`);
      assert.ok(s.passed > 0);
    }
  } finally {
    await Promise.all(targets.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
});
