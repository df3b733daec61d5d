import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.mjs', import.meta.url));
/** Node flags the `ferry` launcher's shebang sets (see bin/ferry.mjs). */
export const NODE_FLAGS = ['--max-semi-space-size=64'];

export interface FerryProcess {
  proc: ChildProcess;
  /** JSON log lines seen on stderr so far. */
  logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the first log line matching msg. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Run `ferry ARGS…` as a child process (the way users run it) and follow its JSON logs. */
export function spawnFerry(args: string[], env: NodeJS.ProcessEnv = {}): FerryProcess {
  const proc = spawn(process.execPath, [...NODE_FLAGS, FERRY_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  let partial = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    logs,
    stderr: () => err,
    async waitForLog(msg, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find((l) => l.msg === msg);
        if (hit) return hit;
        if (proc.exitCode !== null) throw new Error(`ferry exited (${proc.exitCode}) before "${msg}": ${err}`);
        if (Date.now() > end) throw new Error(`timed out waiting for "${msg}": ${err}`);
        await sleep(50);
      }
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Start `ferry target` on a random port; resolves when it logs "target ready". */
export async function spawnTarget(args: string[]): Promise<FerryProcess & { port: number }> {
  const p = spawnFerry(['target', '--listen', '127.0.0.1:0', ...args]);
  const ready = await p.waitForLog('target ready');
  const port = Number(String(ready.listen).split(':').pop());
  return Object.assign(p, { port });
}
