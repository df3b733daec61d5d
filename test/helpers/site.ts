// A whole Ferry site, each role its own `ferry` child process as users run them:
//   store   `ferry target --disk … --api … --api-token-file …`: the storage node (disk LUNs, snapshots, API)
//   tape    `ferry target --library DIR --drives 2 … --copy-portal STORE`: the tape library node
//   empty   (optional) a second library node whose library holds no cartridge: pool "empty"
//   mover   `ferry mover --portal STORE --portal TAPE`: the data mover (m1; `movers: N` adds m2 … mN)
//   server  `ferry server --config FILE`: the backup server, with a config written here
// Every process's stderr (JSON log lines) is kept in memory and written to DIR/logs/NAME.log.
// Used by test/interop/backup-server.test.ts and bench/backup-e2e.ts.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createWriteStream, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FERRY_BIN, NODE_FLAGS, spawnFerry, type FerryProcess } from './ferry-cli.ts';
import { freePort } from './tgtd.ts';

const execFileP = promisify(execFile);

export const STORE_IQN = 'iqn.2026-11.dev.ferry:site-store';
export const TAPE_IQN = 'iqn.2026-11.dev.ferry:site-vtl';
export const EMPTY_IQN = 'iqn.2026-11.dev.ferry:site-empty';
export const MOVER_IQN = 'iqn.2026-11.dev.ferry:site-mover';

export interface SiteOptions {
  dir: string;
  /** Disk LUNs of the storage node, in bytes: LUN 0, 1, … (volumes store:0, store:1, …). */
  disks: number[];
  cartridgeBytes: number;
  slots?: number;
  /** Add a second library node with no cartridge at all, and a pool "empty" over it. */
  emptyLibrary?: boolean;
  tapeBlockBytes?: number;
  quietPeriodMs?: number;
  timeoutMs?: number;
  /** Log level of every role (default info; the roles announce they are ready at info). */
  logLevel?: string;
  /** Data movers m1 … mN, each its own `ferry mover` (default 1). With 0 the drive LUs copy. */
  movers?: number;
  /** Each mover's `--max-rate` (a copy that takes seconds, for drills that act mid-copy). */
  moverRate?: string;
}

export interface Role {
  name: string;
  proc: FerryProcess;
  pid: number;
  /** host:port of its iSCSI portal (not the server). */
  portal: string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not). */
  json<T = Record<string, unknown>>(): T;
}

export interface Site {
  dir: string;
  store: Role & { api: string; tokenFile: string };
  tape: Role & { library: string };
  empty?: Role;
  /** m1, the first of `movers` (none with `movers: 0`). */
  mover?: Role;
  /** Every data mover, by config name (m1 …); a killed one stays here until startMover. */
  movers: Array<Role & { config: string }>;
  server: Omit<Role, 'portal'> & { url: string; tokenFile: string; configFile: string };
  /** FERRY_SERVER and FERRY_TOKEN_FILE for client commands. */
  env: Record<string, string>;
  /** Run a client command (`ferry backup …`) as its own process against the server. */
  ferry(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Stop the tape node (SIGTERM: it flushes its cartridges and library.json; SIGKILL: it cannot). */
  stopTape(signal?: NodeJS.Signals): Promise<void>;
  /** Stop the backup server with `signal`. */
  stopServer(signal?: NodeJS.Signals): Promise<void>;
  /** Start the backup server again with its config (a new URL: `env` and `ferry` follow it). */
  startServer(): Promise<void>;
  /** Stop the storage node with `signal`. */
  stopStore(signal?: NodeJS.Signals): Promise<void>;
  /** Start the storage node again on the same portal and API address. */
  startStore(): Promise<void>;
  /** Start the tape node again on the same portal. */
  startTape(): Promise<void>;
  /** Kill mover `name` (m1 …) with `signal` and wait for it to exit. */
  killMover(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Start mover `name` again on its portal. */
  startMover(name: string): Promise<void>;
  /** The last lines of every role's log, for a failure message. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

async function tokenFile(path: string): Promise<string> {
  await writeFile(path, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  return path;
}

/** Run `ferry ARGS` to its end (async: the caller may hold iSCSI sessions that must stay serviced). */
export function runFerry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...NODE_FLAGS, FERRY_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`ferry ${args.join(' ')} (exit ${code}) printed no JSON: ${stdout}${stderr}`);
          }
        },
      }),
    );
  });
}

/** Spawn a role and wait for its ready log line (which carries its address). */
async function role(
  name: string,
  args: string[],
  readyMsg: string,
  logs: string,
): Promise<{ proc: FerryProcess; ready: Record<string, unknown> }> {
  const proc = spawnFerry(args);
  // A copy on disk (appended across restarts); the in-memory copy is what failures print.
  const file = createWriteStream(join(logs, `${name}.log`), { flags: 'a' });
  proc.proc.stderr!.pipe(file);
  try {
    const ready = await proc.waitForLog(readyMsg, 30_000);
    return { proc, ready };
  } catch (e) {
    await proc.stop('SIGKILL');
    throw new Error(`${name}: ${(e as Error).message}`, { cause: e });
  }
}

const pidOf = (p: FerryProcess): number => p.proc.pid!;

export async function startSite(o: SiteOptions): Promise<Site> {
  const dir = o.dir;
  const logs = join(dir, 'logs');
  await mkdir(logs, { recursive: true });
  const level = o.logLevel ?? 'info';
  const started: FerryProcess[] = [];
  const stopAll = async (): Promise<void> => {
    for (const p of started.reverse()) {
      const exit = p.stop('SIGTERM');
      const t = setTimeout(() => void p.stop('SIGKILL'), 10_000);
      await exit;
      clearTimeout(t);
    }
  };
  try {
    const nodeToken = await tokenFile(join(dir, 'node.token'));
    const serverToken = await tokenFile(join(dir, 'server.token'));

    // The storage node, the tape node and the empty library start together: the tape node's copy
    // portal is the storage node's port, chosen here (its copy managers connect only on first use).
    const storePort = await freePort();
    const storePortal = `127.0.0.1:${storePort}`;
    const disks = o.disks.map((bytes, i) => ['--disk', `${join(dir, `disk${i}.img`)}:${bytes}`]).flat();
    const library = join(dir, 'library');
    const tapeArgs = (listen: string): string[] => [
      'target',
      '--listen',
      listen,
      '--iqn',
      TAPE_IQN,
      '--library',
      library,
      '--drives',
      '2',
      '--slots',
      String(o.slots ?? 6),
      '--cartridge-size',
      String(o.cartridgeBytes),
      '--copy-portal',
      storePortal,
      '--lun-dir',
      join(dir, 'tape-luns'),
      '--log-level',
      level,
    ];
    const emptyDir = join(dir, 'empty-library');
    if (o.emptyLibrary) {
      // A library whose slots are all empty (every cartridge taken out): library.json written before it starts.
      await mkdir(emptyDir, { recursive: true });
      await writeFile(
        join(emptyDir, 'library.json'),
        JSON.stringify({
          version: 1,
          drives: 1,
          slots: 2,
          importExport: 1,
          cartridgeSizeBytes: o.cartridgeBytes,
          contents: {},
        }),
      );
    }
    const storeArgs = (api: string): string[] => [
      'target',
      '--listen',
      storePortal,
      '--iqn',
      STORE_IQN,
      ...disks,
      '--lun-dir',
      join(dir, 'luns'),
      '--api',
      api,
      '--api-token-file',
      nodeToken,
      '--log-level',
      level,
    ];
    const first = await Promise.allSettled([
      role('store', storeArgs('127.0.0.1:0'), 'target ready', logs),
      role('tape', tapeArgs('127.0.0.1:0'), 'target ready', logs),
      ...(o.emptyLibrary
        ? [
            role(
              'empty',
              [
                'target',
                '--listen',
                '127.0.0.1:0',
                '--iqn',
                EMPTY_IQN,
                '--library',
                emptyDir,
                '--drives',
                '1',
                '--slots',
                '2',
                '--lun-dir',
                join(dir, 'empty-luns'),
                '--log-level',
                level,
              ],
              'target ready',
              logs,
            ),
          ]
        : []),
    ]);
    for (const r of first) if (r.status === 'fulfilled') started.push(r.value.proc);
    const failed = first.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [st, tp, ep] = first.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof role>>>).value);
    const store = {
      name: 'store',
      proc: st.proc,
      pid: pidOf(st.proc),
      portal: storePortal,
      api: String(st.ready.api),
      tokenFile: nodeToken,
    };
    const tapePortal = String(tp.ready.listen);
    const tape = { name: 'tape', proc: tp.proc, pid: pidOf(tp.proc), portal: tapePortal, library };
    const empty: Role | undefined = ep
      ? { name: 'empty', proc: ep.proc, pid: pidOf(ep.proc), portal: String(ep.ready.listen) }
      : undefined;

    const moverArgs = (i: number, listen: string): string[] => [
      'mover',
      '--listen',
      listen,
      '--iqn',
      `${MOVER_IQN}-${i}`,
      '--portal',
      storePortal,
      '--portal',
      tapePortal,
      '--log-level',
      level,
      ...(o.moverRate ? ['--max-rate', o.moverRate] : []),
    ];
    const movers: Site['movers'] = [];
    for (let i = 1; i <= (o.movers ?? 1); i++) {
      const mv = await role(i === 1 ? 'mover' : `mover${i}`, moverArgs(i, '127.0.0.1:0'), 'mover ready', logs);
      started.push(mv.proc);
      movers.push({
        name: i === 1 ? 'mover' : `mover${i}`,
        config: `m${i}`,
        proc: mv.proc,
        pid: pidOf(mv.proc),
        portal: String(mv.ready.listen),
      });
    }
    const mover = movers[0];

    const configFile = join(dir, 'server-config.json');
    const config = {
      listen: '127.0.0.1:0',
      tokenFile: 'server.token',
      catalog: 'catalog.db',
      nodes: [{ name: 'store', portal: storePortal, iqn: STORE_IQN, api: store.api, tokenFile: 'node.token' }],
      libraries: [
        { name: 'vtl', portal: tapePortal, iqn: TAPE_IQN },
        ...(empty ? [{ name: 'bare', portal: empty.portal, iqn: EMPTY_IQN }] : []),
      ],
      movers: movers.map((m, i) => ({ name: m.config, portal: m.portal, iqn: `${MOVER_IQN}-${i + 1}` })),
      pools: [
        { name: 'default', library: 'vtl', tapeBlockBytes: o.tapeBlockBytes ?? 262_144 },
        ...(empty ? [{ name: 'empty', library: 'bare' }] : []),
      ],
      defaults: { quietPeriodMs: o.quietPeriodMs ?? 1000, timeoutMs: o.timeoutMs ?? 30_000 },
    };
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const sv = await role(
      'server',
      ['server', '--config', configFile, '--log-level', level],
      'backup server listening',
      logs,
    );
    started.push(sv.proc);
    const server = {
      name: 'server',
      proc: sv.proc,
      pid: pidOf(sv.proc),
      url: String(sv.ready.url),
      tokenFile: serverToken,
      configFile,
    };
    const env = { FERRY_SERVER: server.url, FERRY_TOKEN_FILE: serverToken };

    const site: Site = {
      dir,
      store,
      tape,
      empty,
      mover,
      movers,
      server,
      env,
      ferry: (args, extra = {}) => runFerry(args, { ...env, ...extra }),
      async stopTape(signal = 'SIGTERM') {
        await site.tape.proc.stop(signal);
      },
      async stopServer(signal = 'SIGTERM') {
        await site.server.proc.stop(signal);
      },
      async startServer() {
        const again = await role(
          'server',
          ['server', '--config', configFile, '--log-level', level],
          'backup server listening',
          logs,
        );
        const i = started.indexOf(site.server.proc);
        if (i >= 0) started[i] = again.proc;
        else started.push(again.proc);
        site.server = { ...site.server, proc: again.proc, pid: pidOf(again.proc), url: String(again.ready.url) };
        env.FERRY_SERVER = site.server.url;
      },
      async stopStore(signal = 'SIGTERM') {
        await site.store.proc.stop(signal);
      },
      async startStore() {
        const again = await role('store', storeArgs(new URL(site.store.api).host), 'target ready', logs);
        const i = started.indexOf(site.store.proc);
        if (i >= 0) started[i] = again.proc;
        else started.push(again.proc);
        site.store = { ...site.store, proc: again.proc, pid: pidOf(again.proc) };
      },
      async startTape() {
        const again = await role('tape', tapeArgs(tapePortal), 'target ready', logs);
        const i = started.indexOf(site.tape.proc);
        if (i >= 0) started[i] = again.proc;
        else started.push(again.proc);
        site.tape = { ...site.tape, proc: again.proc, pid: pidOf(again.proc) };
      },
      async killMover(name, signal = 'SIGKILL') {
        const m = site.movers.find((x) => x.config === name);
        if (!m) throw new Error(`no mover ${name}`);
        await m.proc.stop(signal);
      },
      async startMover(name) {
        const i = site.movers.findIndex((x) => x.config === name);
        const m = site.movers[i];
        const again = await role(m.name, moverArgs(i + 1, m.portal), 'mover ready', logs);
        const k = started.indexOf(m.proc);
        if (k >= 0) started[k] = again.proc;
        else started.push(again.proc);
        site.movers[i] = { ...m, proc: again.proc, pid: pidOf(again.proc) };
      },
      logTail(lines = 15) {
        const roles: Array<{ name: string; proc: FerryProcess }> = [
          site.store,
          site.tape,
          ...(site.empty ? [site.empty] : []),
          ...site.movers,
          site.server,
        ];
        return roles
          .map(
            (r) =>
              `--- ${r.name} (pid ${r.proc.proc.pid}) ---\n${r.proc.stderr().split('\n').slice(-lines).join('\n')}`,
          )
          .join('\n');
      },
      stop: stopAll,
    };
    return site;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** CPU seconds (user + system) of a process so far, from /proc/PID/stat (USER_HZ = 100). */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** /proc/PID/io: bytes through read-like and write-like system calls (files and sockets alike). */
export function ioBytes(pid: number): { rchar: number; wchar: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rchar: field('rchar'), wchar: field('wchar') };
}

/** Every socket inode a process holds, from /proc/PID/fd. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Bytes sent + received so far on each TCP socket of `pid` (by inode), from `ss -tie`. */
export async function tcpBytes(pid: number): Promise<Map<string, number>> {
  const mine = socketInodes(pid);
  const { stdout } = await execFileP('ss', ['-tieHn'], { maxBuffer: 16 << 20 });
  const out = new Map<string, number>();
  // One socket per record: a line starting in column 0 (with ino:N), then indented lines (bytes_sent:N …).
  for (const rec of stdout.split(/\n(?=\S)/)) {
    const ino = /\bino:(\d+)/.exec(rec)?.[1];
    if (!ino || !mine.has(ino)) continue;
    const n = (k: string): number => Number(new RegExp(`\\b${k}:(\\d+)`).exec(rec)?.[1] ?? 0);
    out.set(ino, n('bytes_sent') + n('bytes_received'));
  }
  return out;
}

/**
 * The bytes on a process's TCP sockets over a span of time: `ss` sampled every `intervalMs`
 * (a socket that closes between samples loses what it carried after the last one).
 */
export class SocketMeter {
  private readonly pid: number;
  private readonly intervalMs: number;
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private started = false;
  private stopped = false;
  private sampling: Promise<void> = Promise.resolve();

  constructor(pid: number, intervalMs = 50) {
    this.pid = pid;
    this.intervalMs = intervalMs;
  }

  private async sample(): Promise<void> {
    for (const [ino, n] of await tcpBytes(this.pid)) {
      // Sockets open at start() count from their bytes then; later ones from zero.
      if (!this.first.has(ino)) this.first.set(ino, this.started ? 0 : n);
      this.last.set(ino, n);
    }
  }

  async start(): Promise<void> {
    await this.sample();
    this.started = true;
    void (async () => {
      while (!this.stopped) {
        await sleep(this.intervalMs);
        if (this.stopped) break;
        this.sampling = this.sample().catch(() => undefined);
        await this.sampling;
      }
    })();
  }

  /** Stop sampling: bytes carried since start() on every socket seen. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.sampling;
    await this.sample();
    let n = 0;
    for (const [ino, v] of this.last) n += v - (this.first.get(ino) ?? 0);
    return n;
  }
}
