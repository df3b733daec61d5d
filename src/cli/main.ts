import { Command, CommanderError } from 'commander';
import { FerryError } from '../util/errors.ts';
import { registerCommands } from './commands.ts';

// `ferry … | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('ferry')
  .description('Serverless backup for iSCSI storage: targets, data movers (EXTENDED COPY), tape library, NTFS planner')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof FerryError) {
    process.stderr.write(`ferry: ${err.message}\n`);
    process.exitCode = err.code === 'ERR_USAGE' ? 2 : 1;
  } else {
    process.stderr.write(`ferry: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
