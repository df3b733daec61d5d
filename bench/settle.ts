// Before every timed step of a benchmark: memory warmed, then `sync`, and dd timed after it.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the scratch file goes and how large it is (0: leave memory as it is, --cold). This VM
 * hands freed guest memory back to its host within seconds, and memory touched again after that
 * costs a host fault per page (~2.7 s of kernel CPU per GiB here, against ~0.4 s). Writing and
 * deleting a scratch file as large as the step's data just before it leaves as many just-freed
 * pages for the step, whichever path it times (as bench/tape-vs-dd.ts and bench/snapshot-cow.ts do).
 */
const scratch = { path: '', mib: 0 };

export function warmBeforeEachStep(dir: string, bytes: number): void {
  scratch.path = join(dir, 'scratch.img');
  scratch.mib = Math.ceil(bytes / 2 ** 20);
}

/** Warm memory (if set up), then `sync`. */
export function settle(): void {
  if (scratch.mib) {
    spawnSync('dd', ['if=/dev/zero', `of=${scratch.path}`, 'bs=1M', `count=${scratch.mib}`, 'status=none']);
    rmSync(scratch.path, { force: true });
  }
  spawnSync('sync');
}

/** `dd bs=1M` with `args` (if=, of=, conv=, …) after `settle`: ms. */
export function dd(...args: string[]): number {
  settle();
  const t0 = performance.now();
  const r = spawnSync('dd', ['bs=1M', 'status=none', ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`dd ${args.join(' ')} failed`);
  return performance.now() - t0;
}
