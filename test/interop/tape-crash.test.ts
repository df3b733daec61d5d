// Crash test: SIGKILL the tape target while a writer streams records through our initiator.
// After a restart the cartridge loads and every acknowledged record reads back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, settle, record, streamUntilKilled, TAPE_IQN } from './tape-script.ts';
import { buildRead6 } from '../../src/scsi/cdb/ssc.ts';

const CHILD = fileURLToPath(new URL('./tape-target-child.ts', import.meta.url));

async function startChild(cart: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, cart], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`target child exited (${code}) before listening`)));
  });
  return { proc, port };
}

const recordLength = (i: number): number => 4096 + ((i * 7919) % 60000);

test('SIGKILL the target mid-stream: after restart every acknowledged record reads back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tape-crash-'));
  const cart = join(dir, 'crash.cart');
  let child = await startChild(cart);
  try {
    const s = await login('127.0.0.1', child.port, TAPE_IQN);
    await settle(s, 0);
    // Keep 4 writes in flight so some are unacknowledged when the target dies.
    const acked = await streamUntilKilled(s, 0, recordLength, 300, () => child.proc.kill('SIGKILL'));
    await new Promise((r) =>
      child.proc.exitCode !== null || child.proc.signalCode !== null ? r(undefined) : child.proc.once('exit', r),
    );
    assert.ok(acked >= 300);

    child = await startChild(cart);
    const s2 = await login('127.0.0.1', child.port, TAPE_IQN);
    await settle(s2, 0);
    let i = 0;
    for (; ; i++) {
      const r = await s2.command(0, buildRead6(65536), { inLength: 65536, allowCheckCondition: true });
      if (r.status !== 0 && r.sense?.key === 0x8) break; // end of data
      assert.ok(r.status === 0 || r.sense?.ili, `read ${i}: ${JSON.stringify(r.sense)}`);
      assert.ok(Buffer.from(r.data).equals(record(i, recordLength(i))), `record ${i} reads back intact`);
    }
    assert.ok(i >= acked + 1, `read back ${i} records, ${acked + 1} were acknowledged`);
    await s2.logout();
  } finally {
    child.proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
