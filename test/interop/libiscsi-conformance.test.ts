// libiscsi's iscsi-test-cu against a `ferry target` disk LUN: the conformance gate of issue 2.
// Runs the exact command, then the SANITIZE suite with --allow-sanitize and the
// MultipathIO suite with a second path, and requires 0 failed tests in each. The summary is printed.
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

test('iscsi-test-cu --dataloss against a Ferry disk LUN: 0 failed tests', { timeout: 900_000 }, async (t) => {
  if (!requireTools(t, 'iscsi-test-cu')) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-cu-'));
  const tgt = await spawnTarget([
    '--iqn',
    IQN,
    '--disk',
    `${join(dir, 'lun0.img')}:128M`,
    '--disk',
    `${join(dir, 'lun1.img')}:64M`,
  ]);
  try {
    const url = `iscsi://127.0.0.1:${tgt.port}/${IQN}/0`;
    // SANITIZE runs at a throttled rate (8 MiB/s) to expose its in-progress states, which
    // Sanitize.Reset checks seconds later: a 64 MiB LUN keeps it running long enough.
    const small = `iscsi://127.0.0.1:${tgt.port}/${IQN}/1`;
    const base = ['--dataloss', '-i', 'iqn.2026-11.dev.ferry:client-1', '-I', 'iqn.2026-11.dev.ferry:client-2'];
    for (const [label, args] of [
      ['issue command', [...base, url]],
      ['SANITIZE suite with --allow-sanitize', [...base, '--allow-sanitize', '-t', 'SCSI.Sanitize', small]],
      ['MultipathIO suite with a second path', [...base, '-t', 'SCSI.MultipathIO', url, url]],
    ] as const) {
      const { out } = await runTool('iscsi-test-cu', args);
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
      assert.equal(s.ran, s.total, 'every test ran');
      assert.equal(s.failed, 0, `failed tests: ${[...new Set(s.failedTests)].join(', ')}`);
      assert.ok(s.passed > 0);
    }
  } finally {
    await tgt.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
