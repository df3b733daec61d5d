// `ferry demo` as users run it (`npm run demo`): the real CLI in a child process. `ferry up` in
// that process, workstations writing, a full backup, an incremental, a restore of the chain and
// verify, all through the backup server's REST API. The test checks the demo's claims on its own
// (the restored LUN's image file on disk hashes to what the workstations wrote) and runs it
// several times: a flaky main command is a broken product.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FERRY_BIN, NODE_FLAGS } from '../helpers/ferry-cli.ts';
import type { DemoResult } from '../../src/demo/demo.ts';

const exec = promisify(execFile);
const SIZE = 64 << 20;

async function ferry(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(process.execPath, [...NODE_FLAGS, FERRY_BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

test(
  'ferry demo --json: full, incremental, restore of the chain, verified, < 0.1% through the server; 3 runs in a row',
  { timeout: 300_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-demo-'));
    try {
      const results: DemoResult[] = [];
      for (let run = 0; run < 3; run++) {
        const r = await ferry('demo', '--size', '64M', '--json', '--keep', '--dir', dir);
        assert.equal(r.code, 0, `run ${run}: ${r.stderr}`);
        assert.equal(r.stdout.trim().split('\n').length, 1, 'one JSON object on stdout');
        const d = JSON.parse(r.stdout) as DemoResult;
        results.push(d);
        assert.equal(d.verified, true, JSON.stringify(d.sha256));
        assert.equal(d.sha256.expected, d.sha256.restoredOnNode);
        assert.ok(d.ratio < 0.001, `ratio ${d.ratio}: ${d.serverBytesOnWire} server bytes for ${d.moverBytes} moved`);
        assert.equal(d.sizeBytes, SIZE);
        assert.equal(d.workstations, 3);
        assert.deepEqual([d.full.state, d.incremental.state, d.restore.state], ['done', 'done', 'done']);
        // The full moved the LUN (plus label, header, trailer); the incremental only changed blocks.
        assert.ok(d.full.bytes >= SIZE && d.full.bytes <= SIZE + (2 << 20), `full moved ${d.full.bytes}`);
        assert.ok(d.incremental.bytes < SIZE / 8, `incremental moved ${d.incremental.bytes}`);
        assert.ok(d.incremental.bytes >= d.incremental.changedBytes);
        assert.ok(
          d.full.quietWaitSeconds >= 1,
          `the full waited ${d.full.quietWaitSeconds} s while a workstation wrote`,
        );
        assert.equal(d.verify.ok, true);

        // Independent of the demo's own check: the restored LUN's image on disk is what was written.
        const lun = Number(d.restore.volume.split(':')[1]);
        assert.equal(await sha256File(join(dir, 'luns', `lun-${lun}.img`)), d.sha256.expected);
        const vtl = await ferry('vtl', 'ls', join(dir, 'library'), '--json');
        assert.equal(vtl.code, 0, vtl.stderr);
        const carts = JSON.parse(vtl.stdout) as Array<{ barcode: string; files: number }>;
        assert.equal(
          carts.reduce((n, c) => n + c.files, 0),
          3,
          'label + 2 sets: a fresh library each run',
        );
      }
      assert.notEqual(results[0].sha256.expected, results[1].sha256.expected, 'each run writes new random data');

      // Without --keep the site's files go away.
      const r = await ferry('demo', '--size', '4M', '--json', '--quiet-period', '200ms', '--dir', dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as DemoResult).verified, true);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
