import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Cron } from 'croner';
import { z } from 'zod';
import { isIscsiName, ISCSI_NAME_HINT } from '../iscsi/names.ts';
import { UsageError } from '../util/errors.ts';
import { parseDuration, parseHostPort } from '../util/units.ts';
import { keepsSomething, type RetentionRules } from '../jobs/retention.ts';

/**
 * `ferry server --config FILE`: the backup server's JSON config, checked by zod. Every error
 * names the field by its JSON path (`nodes[0].portal`) and says what it expects. Paths in the
 * file are relative to the file's directory.
 */

export const DEFAULT_LISTEN = '127.0.0.1:8470';
export const DEFAULT_TAPE_BLOCK_BYTES = 262_144;
export const DEFAULT_QUIET_PERIOD_MS = 3000;
export const DEFAULT_TIMEOUT_MS = 80_000;
/** How long a copy may go without progress before its mover counts as failed. */
export const DEFAULT_MOVER_STALL_MS = 120_000;
/** Jobs that run at once; more wait, queued. */
export const DEFAULT_MAX_JOBS = 4;
/** Jobs one data mover runs at once unless its config says (`maxJobs`) or `maxJobsPerMover` does. */
export const DEFAULT_MAX_JOBS_PER_MOVER = 4;

export interface HostPort {
  host: string;
  port: number;
}
export interface Chap {
  user: string;
  secret: string;
}
export interface IscsiEndpoint {
  name: string;
  portal: HostPort;
  iqn: string;
  chap?: Chap;
}
export interface NodeConfig extends IscsiEndpoint {
  /** Management API base URL. */
  api: string;
  /** Absolute path of the node API's bearer token file. */
  tokenFile: string;
}
/**
 * A Ferry library node's (or stand-alone drive's) management API, when it has one: verify then
 * digests the tape's blocks there (POST /v1/tapes/digest) instead of restoring into a scratch LUN.
 */
export interface TapeApi {
  /** Management API base URL; set together with tokenFile. */
  api?: string;
  /** Absolute path of that API's bearer token file. */
  tokenFile?: string;
}
export interface LibraryConfig extends IscsiEndpoint, TapeApi {}
export interface DriveConfig extends IscsiEndpoint, TapeApi {
  lun: number;
}
export interface MoverConfig extends IscsiEndpoint {
  /** Jobs this mover runs at once; more wait for it or go to another mover. */
  maxJobs: number;
}
export interface PoolConfig {
  name: string;
  /** Exactly one of library and drive is set, naming a configured one. */
  library?: string;
  drive?: string;
  tapeBlockBytes: number;
  /** What `ferry prune` keeps; every set when absent. */
  retention?: RetentionRules;
}
export interface ServerConfig {
  /** Absolute path of the config file. */
  file: string;
  listen: HostPort;
  /** The web console's address; no console when absent. */
  console?: HostPort;
  /** Absolute path: where the console offers to restore files (DIR/set-N); `restores` beside the config by default. */
  restoreDir?: string;
  /** Absolute path. */
  tokenFile: string;
  /** Absolute path of the SQLite catalog. */
  catalog: string;
  nodes: NodeConfig[];
  libraries: LibraryConfig[];
  drives: DriveConfig[];
  movers: MoverConfig[];
  pools: PoolConfig[];
  /** A job's defaults: the quiet period and its timeout, and how long a copy may make no progress (moverStallMs). */
  defaults: { quietPeriodMs: number; timeoutMs: number; moverStallMs?: number };
  /** Jobs that run at once (DEFAULT_MAX_JOBS when absent); the rest wait, queued, in order. */
  maxJobs?: number;
  /** Backups the server starts by itself; none when absent. */
  schedules?: ScheduleConfig[];
}
/** A backup the server starts on its own (croner pattern, server local time). */
export interface ScheduleConfig {
  /** Unique; the volume when not given. */
  name: string;
  volume: string;
  mode: 'image' | 'used' | 'files';
  level: 'full' | 'incremental';
  cron: string;
  /** Run a full instead when the volume's last full set of this mode is older than this. */
  fullEveryMs?: number;
  pool?: string;
}

// Each field's expectation, in words; the error map puts it after the field's path.
const expect = (what: string) => ({ error: () => `expected ${what}` });

/** A string field that must pass `check`; both a wrong type and a failed check say `what`. */
const str = (what: string, check: (s: string) => boolean) => z.string(expect(what)).refine(check, expect(what));

const hostPort = str('HOST:PORT, e.g. 127.0.0.1:3260', (s) => /^(?:\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(s));
const name = str('a name of letters, digits, "-" or "_"', (s) => /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(s));
const iqn = str(`an iSCSI name (${ISCSI_NAME_HINT})`, isIscsiName);
const chap = str('"USER:SECRET" with a secret of at least 12 characters', (s) => /^[^:]+:.{12,}$/.test(s));
const path = str('a file path', (s) => s.length > 0);
const isHttpUrl = (s: string): boolean => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol);
const apiUrl = str('an http(s) URL, e.g. http://127.0.0.1:8460', isHttpUrl);
const DURATION = 'milliseconds or a duration such as "3s" or "300ms"';
const DURATION_RE = /^\d+(?:\.\d+)?\s*(?:ms|s|m|h)?$/i;
const isDuration = (v: number | string): boolean =>
  typeof v === 'number' ? Number.isSafeInteger(v) && v >= 0 : DURATION_RE.test(v.trim());
const duration = z
  .union([z.number(), z.string()], expect(DURATION))
  .refine(isDuration, expect(DURATION))
  .transform((v) => (typeof v === 'number' ? v : parseDuration(v)));
const lun = z.number(expect('a LUN number')).int().min(0).max(0xffff);
const isCron = (p: string): boolean => {
  try {
    new Cron(p, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
};
const cron = str('a cron pattern such as "0 22 * * 1-5" (minute hour day month weekday)', isCron);
const PERIOD_RE = /^(\d+)\s*(h|d|w)$/i;
const period = str('a period such as "7d", "2w" or "36h"', (p) => PERIOD_RE.test(p.trim())).transform((p) => {
  const [, n, u] = PERIOD_RE.exec(p.trim())!;
  return Number(n) * { h: 3_600_000, d: 86_400_000, w: 604_800_000 }[u.toLowerCase() as 'h'];
});
const volume = str('NODE:LUN, e.g. store:0', (v) => /^[A-Za-z0-9][A-Za-z0-9_-]*:\d+$/.test(v));

const endpoint = { name, portal: hostPort, iqn, chap: chap.optional() };
const keepCount = z
  .number(expect('a whole number of sets, 0 or more'))
  .int(expect('a whole number of sets, 0 or more'))
  .min(0, expect('a whole number of sets, 0 or more'));
const retention = z
  .strictObject(
    {
      keepLast: keepCount.optional(),
      keepDaily: keepCount.optional(),
      keepWeekly: keepCount.optional(),
      keepMonthly: keepCount.optional(),
    },
    expect('an object {keepLast?, keepDaily?, keepWeekly?, keepMonthly?}'),
  )
  .refine(keepsSomething, {
    ...expect(
      'rules that keep at least one set: keepLast, keepDaily, keepWeekly or keepMonthly above 0 (leave retention out ' +
        'to keep every set)',
    ),
    when: (p) => p.issues.length === 0, // a field already named is enough
  });
const jobCount = z
  .number(expect('a whole number of jobs, 1 to 64'))
  .int(expect('a whole number of jobs, 1 to 64'))
  .min(1, expect('a whole number of jobs, 1 to 64'))
  .max(64, expect('a whole number of jobs, 1 to 64'));
/** A Ferry tape node's management API (optional; both or neither). */
const tapeApi = { api: apiUrl.optional(), tokenFile: path.optional() };
const obj = <T extends z.ZodRawShape>(shape: T, what: string) => z.strictObject(shape, expect(what));
const list = <T extends z.ZodType>(item: T, what: string) => z.array(item, expect(`an array of ${what}`)).default([]);

export const ServerConfigSchema = obj(
  {
    listen: hostPort.default(DEFAULT_LISTEN),
    console: hostPort.optional(),
    restoreDir: path.default('restores'),
    tokenFile: path,
    catalog: path,
    nodes: list(
      obj({ ...endpoint, api: apiUrl, tokenFile: path }, 'a node {name, portal, iqn, api, tokenFile, chap?}'),
      'nodes',
    ),
    libraries: list(
      obj({ ...endpoint, ...tapeApi }, 'a library {name, portal, iqn, chap?, api?, tokenFile?}'),
      'libraries',
    ),
    drives: list(
      obj({ ...endpoint, lun, ...tapeApi }, 'a drive {name, portal, iqn, lun, chap?, api?, tokenFile?}'),
      'drives',
    ),
    movers: list(
      obj({ ...endpoint, maxJobs: jobCount.optional() }, 'a mover {name, portal, iqn, chap?, maxJobs?}'),
      'movers',
    ),
    pools: list(
      obj(
        {
          name,
          library: name.optional(),
          drive: name.optional(),
          tapeBlockBytes: z
            .number(expect('a block size in bytes, a multiple of 512'))
            .int()
            .min(512)
            .max(16 * 1024 * 1024)
            .refine((n) => n % 512 === 0, expect('a block size in bytes, a multiple of 512'))
            .default(DEFAULT_TAPE_BLOCK_BYTES),
          retention: retention.optional(),
        },
        'a pool {name, library | drive, tapeBlockBytes?, retention?}',
      ),
      'pools',
    ),
    defaults: obj(
      {
        quietPeriodMs: duration.default(DEFAULT_QUIET_PERIOD_MS),
        timeoutMs: duration.default(DEFAULT_TIMEOUT_MS),
        moverStallMs: duration.default(DEFAULT_MOVER_STALL_MS),
      },
      'an object {quietPeriodMs?, timeoutMs?, moverStallMs?}',
    ).default({
      quietPeriodMs: DEFAULT_QUIET_PERIOD_MS,
      timeoutMs: DEFAULT_TIMEOUT_MS,
      moverStallMs: DEFAULT_MOVER_STALL_MS,
    }),
    maxJobs: jobCount.default(DEFAULT_MAX_JOBS),
    maxJobsPerMover: jobCount.default(DEFAULT_MAX_JOBS_PER_MOVER),
    schedules: list(
      obj(
        {
          name: name.optional(),
          volume,
          mode: z.enum(['image', 'used', 'files'], expect('"image", "used" or "files"')).default('image'),
          level: z.enum(['full', 'incremental'], expect('"full" or "incremental"')).default('incremental'),
          cron,
          fullEvery: period.optional(),
          pool: name.optional(),
        },
        'a schedule {volume, cron, mode?, level?, fullEvery?, pool?, name?}',
      ),
      'schedules',
    ),
  },
  'an object with listen, console?, restoreDir?, tokenFile, catalog, nodes, libraries, drives, movers, pools',
);

/** `nodes[0].portal` from zod's path. */
export function jsonPath(p: readonly PropertyKey[]): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s || '(top level)';
}

function valueAt(raw: unknown, p: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const k of p) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function shown(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describeIssue(raw: unknown, i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys') {
    return i.keys.map((k) => `${jsonPath([...i.path, k])} is not a known key`).join('; ');
  }
  const v = valueAt(raw, i.path);
  const what = v === undefined ? 'is missing' : `is ${shown(v)}`;
  return `${jsonPath(i.path)} ${what}: ${i.message}`;
}

/** Validate a parsed config object. `file` is the config's absolute path (paths resolve against its directory). */
export function parseServerConfig(raw: unknown, file: string): ServerConfig {
  const r = ServerConfigSchema.safeParse(raw);
  if (!r.success) {
    // Report the first issue per field; zod may give several.
    const msgs = [...new Set(r.error.issues.map((i) => describeIssue(raw, i)))];
    throw new UsageError(`config ${file}: ${msgs.join('; ')}`);
  }
  const c = r.data;
  const err = (msg: string): never => {
    throw new UsageError(`config ${file}: ${msg}`);
  };

  // Names are unique within each kind (a drive and a library may not share one either: pools name both).
  const kinds = [
    ['nodes', c.nodes],
    ['libraries', c.libraries],
    ['drives', c.drives],
    ['movers', c.movers],
    ['pools', c.pools],
  ] as const;
  for (const [kind, items] of kinds) {
    const seen = new Map<string, number>();
    items.forEach((it, i) => {
      const first = seen.get(it.name);
      if (first !== undefined) {
        err(`${kind}[${i}].name "${it.name}" is already used by ${kind}[${first}]: names must be unique`);
      }
      seen.set(it.name, i);
    });
  }
  for (const [kind, items] of [
    ['libraries', c.libraries],
    ['drives', c.drives],
  ] as const) {
    items.forEach((it, i) => {
      if ((it.api === undefined) !== (it.tokenFile === undefined)) {
        err(
          `${kind}[${i}] ("${it.name}") needs both api and tokenFile (the tape node's management API and its bearer ` +
            `token file), or neither`,
        );
      }
    });
  }
  const libs = new Set(c.libraries.map((l) => l.name));
  const drives = new Set(c.drives.map((d) => d.name));
  c.pools.forEach((p, i) => {
    if ((p.library === undefined) === (p.drive === undefined)) {
      err(`pools[${i}] ("${p.name}") needs exactly one of library or drive`);
    }
    if (p.library !== undefined && !libs.has(p.library)) {
      err(`pools[${i}].library: pool "${p.name}" names library "${p.library}", which is not in libraries`);
    }
    if (p.drive !== undefined && !drives.has(p.drive)) {
      err(`pools[${i}].drive: pool "${p.name}" names drive "${p.drive}", which is not in drives`);
    }
  });

  const nodeNames = new Set(c.nodes.map((n) => n.name));
  const poolNames = new Set(c.pools.map((p) => p.name));
  const scheduleNames = new Map<string, number>();
  const scheduledVolumes = new Map<string, number>();
  c.schedules.forEach((sc, i) => {
    const node = sc.volume.split(':')[0];
    if (!nodeNames.has(node)) err(`schedules[${i}].volume "${sc.volume}" names node "${node}", which is not in nodes`);
    if (sc.pool !== undefined && !poolNames.has(sc.pool)) err(`schedules[${i}].pool "${sc.pool}" is not in pools`);
    const nm = sc.name ?? sc.volume;
    const dup = scheduleNames.get(nm);
    if (dup !== undefined)
      err(`schedules[${i}].name "${nm}" is already used by schedules[${dup}]: names must be unique`);
    scheduleNames.set(nm, i);
    const other = scheduledVolumes.get(sc.volume);
    if (other !== undefined) {
      err(
        `schedules[${i}] and schedules[${other}] both back up ${sc.volume}: one schedule per volume (use level and ` +
          `fullEvery for fulls among incrementals)`,
      );
    }
    scheduledVolumes.set(sc.volume, i);
  });

  const dir = dirname(file);
  const at = (p: string): string => resolve(dir, p);
  const tapeApiOf = (t: { api?: string; tokenFile?: string }): TapeApi =>
    t.api !== undefined && t.tokenFile !== undefined ? { api: t.api, tokenFile: at(t.tokenFile) } : {};
  const ep = <T extends { name: string; portal: string; iqn: string; chap?: string }>(e: T) => ({
    name: e.name,
    portal: parseHostPort(e.portal, 3260, 'portal'),
    iqn: e.iqn,
    ...(e.chap === undefined ? {} : { chap: splitChap(e.chap) }),
  });
  return {
    file,
    listen: parseHostPort(c.listen, 8470, 'listen'),
    ...(c.console === undefined ? {} : { console: parseHostPort(c.console, 8471, 'console') }),
    restoreDir: at(c.restoreDir),
    tokenFile: at(c.tokenFile),
    catalog: at(c.catalog),
    nodes: c.nodes.map((n) => ({ ...ep(n), api: n.api, tokenFile: at(n.tokenFile) })),
    libraries: c.libraries.map((l) => ({ ...ep(l), ...tapeApiOf(l) })),
    drives: c.drives.map((d) => ({ ...ep(d), lun: d.lun, ...tapeApiOf(d) })),
    movers: c.movers.map((m) => ({ ...ep(m), maxJobs: m.maxJobs ?? c.maxJobsPerMover })),
    pools: c.pools.map((p) => ({
      name: p.name,
      ...(p.library === undefined ? {} : { library: p.library }),
      ...(p.drive === undefined ? {} : { drive: p.drive }),
      tapeBlockBytes: p.tapeBlockBytes,
      ...(p.retention === undefined ? {} : { retention: p.retention }),
    })),
    defaults: c.defaults,
    maxJobs: c.maxJobs,
    schedules: c.schedules.map((sc) => ({
      name: sc.name ?? sc.volume,
      volume: sc.volume,
      mode: sc.mode,
      level: sc.level,
      cron: sc.cron,
      ...(sc.fullEvery === undefined ? {} : { fullEveryMs: sc.fullEvery }),
      ...(sc.pool === undefined ? {} : { pool: sc.pool }),
    })),
  };
}

function splitChap(s: string): Chap {
  const i = s.indexOf(':');
  return { user: s.slice(0, i), secret: s.slice(i + 1) };
}

/** Read, parse and validate `ferry server --config FILE`. */
export async function loadServerConfig(path: string): Promise<ServerConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`config ${file} does not exist`);
    throw new UsageError(`cannot read config ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseServerConfig(raw, file);
}
