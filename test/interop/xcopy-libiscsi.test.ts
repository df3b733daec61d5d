import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, runTool } from '../helpers/tools.ts';
import { spawnTarget } from '../helpers/ferry-cli.ts';

// libiscsi's iscsi-test-cu ExtendedCopy and ReceiveCopyResults suites against a Ferry disk LUN:
// every test must run (tgtd skips all eight) and pass (reference scsi.md §4). The target is the
// real `ferry target` CLI in its own process, so the copy manager is checked where users get it.

const IQN = 'iqn.2026-11.dev.ferry:xcopy-cu';

test('iscsi-test-cu --dataloss ALL.ExtendedCopy and ALL.ReceiveCopyResults run and pass', async (t) => {
  if (!requireTools(t, 'iscsi-test-cu')) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-cu-'));
  const tgt = await spawnTarget([
    '--iqn',
    IQN,
    '--disk',
    `${join(dir, 'disk0.img')}:64M`,
    '--lun-dir',
    join(dir, 'luns'),
  ]);
  try {
    const host = '127.0.0.1';
    const url = `iscsi://${host}:${tgt.port}/${IQN}/0`;
    const expected: Record<string, string[]> = {
      'ALL.ExtendedCopy': ['Simple', 'ParamHdr', 'DescrLimits', 'DescrType', 'ValidTgtDescr', 'ValidSegDescr'],
      'ALL.ReceiveCopyResults': ['CopyStatus', 'OpParams'],
    };
    for (const [suite, tests] of Object.entries(expected)) {
      const { code, out } = await runTool('iscsi-test-cu', ['-V', '--dataloss', '-t', suite, url]);
      assert.equal(code, 0, `${suite} exit code\n${out}`);
      assert.doesNotMatch(
        out,
        /\[SKIPPED\]|\[FAILED\]|not implemented|SKIPPED/,
        `${suite} skipped or failed something:\n${out}`,
      );
      for (const name of tests)
        assert.match(out, new RegExp(`Test: ${name} \\.\\.\\.`), `${suite}.${name} did not run`);
      const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
      assert.ok(summary, `no CUnit summary:\n${out}`);
      assert.deepEqual(
        summary.slice(1, 5).map(Number),
        [tests.length, tests.length, tests.length, 0],
        `${suite} summary`,
      );
    }
  } finally {
    await tgt.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
