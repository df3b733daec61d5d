import { spawnSync } from 'node:child_process';
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
  const msg = `missing ${missing.join(', ')} (install: apt-get install libiscsi-bin tgt qemu-utils qemu-block-extra ntfs-3g partclone)`;
  if (process.env.CI === 'true') throw new Error(`CI: ${msg}`);
  process.stderr.write(`\n*** SKIPPING ${t.name}: ${msg} ***\n`);
  t.skip(msg);
  return false;
}
