import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../../src/target/target.ts';
import { TargetServer } from '../../src/target/server.ts';
import { openDiskLu } from '../../src/target/storage-node.ts';

// libiscsi's iscsi-test-cu ExtendedCopy and ReceiveCopyResults suites against a Ferry disk LUN:
// every test must run (tgtd skips all eight) and pass (reference scsi.md §4).

const IQN = 'iqn.2026-11.dev.ferry:xcopy-cu';

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

test('iscsi-test-cu --dataloss ALL.ExtendedCopy and ALL.ReceiveCopyResults run and pass', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v iscsi-test-cu'], { stdio: 'ignore' }).status !== 0) {
    const msg = 'iscsi-test-cu missing (apt-get install libiscsi-bin)';
    if (process.env.CI === 'true') throw new Error(`CI: ${msg}`);
    process.stderr.write(`\n*** SKIPPING: ${msg} ***\n`);
    t.skip(msg);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-cu-'));
  const target = new Target({ name: IQN });
  target.addLun(0, await openDiskLu(IQN, join(dir, 'disk0.img'), 512, 64 << 20));
  const server = new TargetServer({ targets: [target] });
  try {
    const { host, port } = await server.listen('127.0.0.1', 0);
    const url = `iscsi://${host}:${port}/${IQN}/0`;
    const expected: Record<string, string[]> = {
      'ALL.ExtendedCopy': ['Simple', 'ParamHdr', 'DescrLimits', 'DescrType', 'ValidTgtDescr', 'ValidSegDescr'],
      'ALL.ReceiveCopyResults': ['CopyStatus', 'OpParams'],
    };
    for (const [suite, tests] of Object.entries(expected)) {
      const { code, out } = await run('iscsi-test-cu', ['-V', '--dataloss', '-t', suite, url]);
      assert.equal(code, 0, `${suite} exit code\n${out}`);
      assert.doesNotMatch(out, /\[SKIPPED\]|\[FAILED\]|not implemented|SKIPPED/, `${suite} skipped or failed something:\n${out}`);
      for (const name of tests) assert.match(out, new RegExp(`Test: ${name} \\.\\.\\.`), `${suite}.${name} did not run`);
      const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
      assert.ok(summary, `no CUnit summary:\n${out}`);
      assert.deepEqual(summary.slice(1, 5).map(Number), [tests.length, tests.length, tests.length, 0], `${suite} summary`);
    }
  } finally {
    await server.close();
    await Promise.all([...target.luns.values()].map((lu) => lu.close()));
    await rm(dir, { recursive: true, force: true });
  }
});
