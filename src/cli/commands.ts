import type { Command } from 'commander';
import { registerNtfs } from './ntfs.ts';
import { registerTarget } from './target.ts';
import { registerMover } from './mover.ts';
import { registerSnapshot } from './snapshot.ts';
import { registerVtl } from './vtl.ts';
import { registerDemo } from './demo.ts';

/** Each role's command lives in its own file and adds itself here. */
export function registerCommands(program: Command): void {
  registerTarget(program);
  registerMover(program);
  registerSnapshot(program);
  registerNtfs(program);
  registerVtl(program);
  registerDemo(program);
}
