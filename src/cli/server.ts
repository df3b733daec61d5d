import type { Command } from 'commander';
import { oneOf } from './client.ts';

// `ferry server --config FILE`: parse the options and the config, then hand over to runServer.

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function registerServer(program: Command): void {
  program
    .command('server')
    .summary('run the backup server: catalog, planner, job runner and REST API')
    .description(
      'Run the backup server from a JSON config (checked field by field; paths relative to the file):\n' +
        '  {"listen": "127.0.0.1:8470", "tokenFile": "server.token", "catalog": "catalog.db",\n' +
        '   "nodes": [{"name", "portal": "HOST:PORT", "iqn", "api": "http://…", "tokenFile", "chap"?}],\n' +
        '   "libraries": [{"name", "portal", "iqn", "chap"?}], "drives": [{"name", "portal", "iqn", "lun"}],\n' +
        '   "movers": [{"name", "portal", "iqn"}], "pools": [{"name", "library" | "drive", "tapeBlockBytes"?}],\n' +
        '   "defaults": {"quietPeriodMs": "3s", "timeoutMs": "80s"}}\n' +
        'Exit status: 0 stopped by a signal, 1 failed, 2 bad config or usage.',
    )
    .requiredOption('--config <file>', 'the JSON config')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, oneOf('--log-level', LOG_LEVELS), 'info')
    .action(async (o: { config: string; logLevel: string }) => {
      const { loadServerConfig } = await import('../server/config.ts');
      const config = await loadServerConfig(o.config);
      const { runServer } = await import('../server/run.ts'); // the server library: loaded on use
      await runServer(config, { logLevel: o.logLevel });
    });
}
