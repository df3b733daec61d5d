// `ferry demo` as users run it (`npm run demo`): the real CLI in a child process, the all-in-one
// node backing a LUN up to tape and restoring it with EXTENDED COPY. The test checks the demo's
// claims on its own: the restored image file on disk hashes to what the workstation wrote, the
// cartridge holds the set header and a filemark, and a second run over the same --dir starts fresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FERRY_BIN, NODE_FLAGS } from '../helpers/ferry-cli.ts';
import type { DemoResult } from '../../src/demo/demo.ts';

const exec = promisify(execFile);
const SIZE = 16 << 20;

async function ferry(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(process.execPath, [...NODE_FLAGS, FERRY_BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
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

test('ferry demo --json: snapshot → tape → fresh LUN by EXTENDED COPY, verified, < 0.1% through the server; repeatable', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-demo-'));
  try {
    const results: DemoResult[] = [];
    for (let run = 0; run < 2; run++) {
      const r = await ferry('demo', '--size', '16M', '--json', '--keep', '--dir', dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split('\n').length, 1, 'one JSON object on stdout');
      const d = JSON.parse(r.stdout) as DemoResult;
      results.push(d);
      assert.equal(d.verified, true, JSON.stringify(d.sha256));
      assert.ok(d.ratio < 0.001, `ratio ${d.ratio}`);
      assert.equal(d.sizeBytes, SIZE);
      // The mover wrote the header record and every byte twice (tape, then the fresh LUN).
      assert.ok(d.backup.moverBytes >= SIZE && d.backup.moverBytes <= SIZE + 4096, `backup moved ${d.backup.moverBytes}`);
      assert.equal(d.restore.moverBytes, SIZE);
      assert.equal(d.moverBytes, d.backup.moverBytes + d.restore.moverBytes);
      assert.ok(d.serverBytesOnWire > 0 && d.serverBytesOnWire < 64 * 1024, `server session ${d.serverBytesOnWire} bytes`);
      assert.ok(d.write.workstationBytesOnWire >= SIZE, 'the workstation session carried the data it wrote');
      assert.ok(d.snapshot.waitedMs !== null && d.snapshot.quietPeriodMs === 1000);
      assert.equal(d.header?.magic, 'FERRY-SET');
      assert.deepEqual(d.header?.extents, [[0, SIZE / 512]]);

      // Independent of the demo's own check: the restored image on disk is what was written.
      assert.equal(await sha256File(join(dir, 'luns', `lun-${d.luns.restored}.img`)), d.sha256.written);
      const vtl = await ferry('vtl', 'ls', join(dir, 'library'), '--json');
      assert.equal(vtl.code, 0, vtl.stderr);
      const carts = JSON.parse(vtl.stdout) as Array<{ barcode: string; location: string; files: number; label: string }>;
      const loaded = carts.find((c) => c.location === 'drive 0');
      assert.ok(loaded, vtl.stdout);
      assert.equal(loaded.files, 1, 'one filemark after the set: a fresh library each run');
      assert.match(loaded.label, /^\{"magic":"FERRY-SET"/);
    }
    assert.notEqual(results[0].sha256.written, results[1].sha256.written, 'each run writes new random data');
    assert.deepEqual(results[0].luns, results[1].luns, 'same LUN layout each run');

    // Without --keep the node's files go away.
    const r = await ferry('demo', '--size', '1M', '--json', '--quiet-period', '200ms', '--dir', dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as DemoResult).verified, true);
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ferry demo: a bad --size is a usage error (exit 2) that says what to give', async () => {
  for (const size of ['lots', '100K', '5G']) {
    const r = await ferry('demo', '--size', size, '--json', '--dir', join(tmpdir(), 'ferry-demo-never-created'));
    assert.equal(r.code, 2, `--size ${size}: ${r.stderr}`);
    assert.match(r.stderr, /--size/);
    assert.equal(r.stdout, '');
  }
});

test('ferry demo: SIGINT mid-run stops cleanly (exit 130) and leaves no node files behind', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-demo-int-'));
  try {
    const child = spawn(process.execPath, [...NODE_FLAGS, FERRY_BIN, 'demo', '--size', '512M', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('workstation:')) res();
      });
      void exited.then(() => rej(new Error(`demo exited before writing: ${err}`)));
    });
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    assert.equal(await exited, 130, err);
    assert.match(err, /interrupted/);
    assert.deepEqual(await readdir(dir), [], 'LUN images and library removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
