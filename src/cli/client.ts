import type { Command } from 'commander';
import type { ServerClient } from '../server/client.ts';
import { FerryError, UsageError } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';

// What the backup server's client commands share: how to reach the server, option parsers
// that fail with exit 2, and table output. The HTTP client is imported on use.

export interface ServerOpts {
  server?: string;
  tokenFile?: string;
  json?: boolean;
}

/** Add --server, --token-file and --json to a client command. */
export function withServer(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'backup server URL (default: $FERRY_SERVER, else ferry-data/server.json of `ferry up`)')
    .option('--token-file <file>', "file whose first line is the server's bearer token (default: $FERRY_TOKEN_FILE)")
    .option('--json', 'print JSON on stdout');
}

export async function connect(o: ServerOpts): Promise<ServerClient> {
  const { connectToServer } = await import('../server/client.ts');
  return connectToServer({ server: o.server, tokenFile: o.tokenFile });
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(v: unknown): void {
  out(JSON.stringify(v));
}

/** Commander argParser: one of `values`, else a usage error naming the option (exit 2). */
export function oneOf<T extends string>(option: string, values: readonly T[]): (v: string) => T {
  return (v: string) => {
    if ((values as readonly string[]).includes(v)) return v as T;
    throw new UsageError(`${option} "${v}" is not one of ${values.join(', ')}`);
  };
}

const NAME = '[A-Za-z0-9][A-Za-z0-9_-]*';

/** `NODE:LUN`, e.g. store:0 (and `NODE:new` when `allowNew`). */
export function volumeArg(what: string, allowNew = false): (v: string) => string {
  const re = new RegExp(`^${NAME}:(\\d+${allowNew ? '|new' : ''})$`);
  return (v: string) => {
    if (!re.test(v)) {
      const orNew = allowNew ? ', or NODE:new' : '';
      throw new UsageError(`${what} "${v}" is not a volume: use NODE:LUN, e.g. store:0${orNew}`);
    }
    return v;
  };
}

/** A positive integer id (job or set). */
export function idArg(what: string): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
      throw new UsageError(`${what} "${v}" is not a number: use e.g. 1`);
    }
    return Number(v);
  };
}

export function formatTime(iso: string | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number): string => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${day} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function bytes(n: number): string {
  return n === 0 ? '0' : formatBytes(n);
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A job that ended badly: `ferry: job N failed: MESSAGE` on stderr (by main.ts) and exit 1. */
export class JobFailedError extends FerryError {
  constructor(job: number, state: string, message: string | undefined) {
    const why = state === 'canceled' ? 'was canceled' : `failed: ${message ?? 'no reason given'}`;
    super('ERR_JOB_FAILED', `job ${job} ${why}`);
  }
}
