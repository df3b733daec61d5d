import type { Command } from 'commander';
import { registerNtfs } from './ntfs.ts';
import { registerTarget } from './target.ts';
import { registerMover } from './mover.ts';
import { registerSnapshot } from './snapshot.ts';
import { registerVtl } from './vtl.ts';
import { registerDemo } from './demo.ts';
import { registerServer } from './server.ts';
import { registerJobs } from './jobs.ts';
import { registerSets } from './sets.ts';
import { registerUp } from './up.ts';

/**
 * Each role's command lives in its own file and adds itself here. A command file imports only
 * what its options need; the role itself (storage node, mover, demo, API) is imported in the
 * action, so `ferry ntfs …` or `ferry vtl ls` do not pay for loading the others (~0.3 s).
 */
export function registerCommands(program: Command): void {
  registerTarget(program);
  registerMover(program);
  registerSnapshot(program);
  registerNtfs(program);
  registerVtl(program);
  registerDemo(program);
  registerServer(program);
  registerJobs(program);
  registerSets(program);
  registerUp(program);
}
