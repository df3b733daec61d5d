import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** True when `cmd` is on PATH. */
export function haveTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Skip loudly when a tool is missing on a developer's machine; under CI (CI=true) a missing
 * tool is a failure, never a skip.
 */
export function requireTools(t: TestContext, ...cmds: string[]): boolean {
  const missing = cmds.filter((c) => !haveTool(c));
  if (missing.length === 0) return true;
  return skipLoudly(
    t,
    `missing ${missing.join(', ')} (install: apt-get install libiscsi-bin tgt qemu-utils qemu-block-extra ntfs-3g ` +
      `partclone)`,
  );
}

/** Skip with a banner on a developer's machine; under CI (CI=true) throw instead. Returns false. */
export function skipLoudly(t: TestContext, why: string): false {
  if (process.env.CI === 'true') throw new Error(`CI: ${why}`);
  process.stderr.write(`\n*** SKIPPING ${t.name}: ${why} ***\n`);
  t.skip(why);
  return false;
}

/** Run an outside tool asynchronously (the target may share this process); stdout+stderr together. */
export function runTool(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}
