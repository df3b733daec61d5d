import type { Command } from 'commander';
import { registerNtfs } from './ntfs.ts';
import { registerTarget } from './target.ts';
import { registerSnapshot } from './snapshot.ts';
import { registerVtl } from './vtl.ts';

/** Each role's command lives in its own file and adds itself here. */
export function registerCommands(program: Command): void {
  registerTarget(program);
  registerSnapshot(program);
  registerNtfs(program);
  registerVtl(program);
}
