import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Tgtd {
  port: number;
  iqn: string;
  proc: ChildProcess;
  /** LUN numbers on tgtd start at 1 (LUN 0 is its controller). */
  addLun(lun: number, file: string, opts?: { deviceType?: 'disk' | 'tape' }): void;
  stop(): Promise<void>;
}

/** Start a tgtd on a random loopback port with one target; control socket number chosen at random. */
export async function startTgtd(iqn = 'iqn.2026-11.dev.ferry:tgtd'): Promise<Tgtd> {
  const port = await freePort();
  const control = 1000 + Math.floor(Math.random() * 30000);
  const proc = spawn('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const adm = (...args: string[]): void => {
    const r = spawnSync('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.stderr || r.stdout}\ntgtd: ${stderr}`);
  };
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    await sleep(100);
    ready =
      spawnSync('tgtadm', ['-C', String(control), '--lld', 'iscsi', '--op', 'show', '--mode', 'target'], {
        stdio: 'ignore',
      }).status === 0;
  }
  if (!ready) {
    proc.kill('SIGKILL');
    throw new Error(`tgtd did not start: ${stderr}`);
  }
  adm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn);
  adm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  return {
    port,
    iqn,
    proc,
    addLun(lun, file, opts = {}) {
      const extra = opts.deviceType === 'tape' ? ['--device-type', 'tape', '--bstype', 'ssc'] : [];
      adm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(lun), '-b', file, ...extra);
    },
    async stop() {
      spawnSync('tgtadm', ['-C', String(control), '--op', 'delete', '--mode', 'system'], { stdio: 'ignore' });
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}
