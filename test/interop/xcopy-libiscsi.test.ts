import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { freePort } from '../helpers/tgtd.ts';

// libiscsi's iscsi-test-cu ExtendedCopy and ReceiveCopyResults suites against a Ferry disk LUN:
// every test must run (tgtd skips all eight) and pass (reference scsi.md §4). The target is the
// real `ferry target` CLI in its own process, so the copy manager is checked where users get it.

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
  const port = await freePort();
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/ferry.mjs'), 'target', '--listen', `127.0.0.1:${port}`, '--iqn', IQN, '--disk', `${join(dir, 'disk0.img')}:64M`, '--lun-dir', join(dir, 'luns'), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      await sleep(100);
      up = await InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: 'iqn.2026-11.dev.ferry:probe', targetName: IQN }).then(
        (s) => s.logout().then(() => true),
        () => false,
      );
    }
    assert.ok(up, 'ferry target did not start');
    const host = '127.0.0.1';
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
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
