import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { UsageError } from '../util/errors.ts';

/** Commander reducer for repeatable options (`--disk a --disk b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Read a JSON config file; errors say which file and what is wrong with it. */
export async function readJsonConfig<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UsageError(`config ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Serve until SIGINT or SIGTERM, then run `close` once (flushing whatever it owns). A failure
 * while closing is logged and makes the exit code 1.
 */
export function serveUntilSignal(log: Logger, close: () => Promise<void>, stoppingMessage = 'stopping'): Promise<void> {
  return new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, stoppingMessage);
      close().then(
        () => {
          log.info('stopped');
          resolveStop();
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          process.exitCode = 1;
          resolveStop();
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/**
 * `--metrics HOST:PORT` of a role: serve /metrics there (and say where) until the role stops.
 * Returns what stops it; nothing to stop without the flag.
 */
export async function serveMetricsFlag(log: Logger, listen: unknown): Promise<() => Promise<void>> {
  if (typeof listen !== 'string') return async () => {};
  const { serveMetrics } = await import('../metrics/serve.ts');
  const m = await serveMetrics(listen);
  log.info({ metrics: `http://${m.host}:${m.port}/metrics` }, 'metrics served');
  return () => m.close();
}
