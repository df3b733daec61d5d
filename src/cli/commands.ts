import type { Command } from 'commander';
import { registerNtfs } from './ntfs.ts';

/** Each role's command lives in its own file and adds itself here. */
export function registerCommands(program: Command): void {
  registerNtfs(program);
}
