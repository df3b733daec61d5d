import { readTokenFile } from '../util/bearer-token.ts';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isFinal } from '../jobs/states.ts';
import type { ScheduleView } from '../jobs/scheduler.ts';
import {
  ServiceError,
  ServiceErrorStatus,
  type CartridgeView,
  type PruneResult,
  type DriveView,
  type StartLabel,
  type JobEvent,
  type JobFilter,
  type JobService,
  type JobView,
  type SetView,
  type StartBackup,
  type StartRebuild,
  type StartRestore,
  type StartVerify,
  type StartFileRestore,
  type ListFiles,
  type FileView,
  type VolumeView,
  type ThroughputSample,
} from '../jobs/types.ts';
import { FerryError, UsageError } from '../util/errors.ts';

// The CLI's way to the backup server: JobService over the REST API. Kept free of fastify and
// zod so that `ferry jobs` starts quickly.

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8470';
/** The connection file `ferry up` writes: `{"url", "tokenFile"}` (tokenFile relative to it). */
export const CONNECTION_FILE = 'ferry-data/server.json';

const HOW_TO_CONNECT =
  'start one with `ferry up` (or `ferry server --config FILE`), or pass --server URL --token-file FILE';

/** Seconds one long poll waits on the server before asking again. */
const POLL_WAIT_SECONDS = 25;

export interface ServerConnection {
  url: string;
  tokenFile: string;
  /** Where the settings came from, for error messages. */
  source: string;
}

/** "127.0.0.1:8470" or "http://host:port" → a base URL. */
export function parseServerUrl(text: string, what = '--server'): URL {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  if (!URL.canParse(withScheme)) throw new UsageError(`${what} "${text}" is not a URL: use e.g. ${DEFAULT_SERVER_URL}`);
  const u = new URL(withScheme);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} "${text}": only http and https`);
  return u;
}

/**
 * Where the server is: `--server URL --token-file FILE`, else FERRY_SERVER and FERRY_TOKEN_FILE,
 * else the connection file `./ferry-data/server.json` that `ferry up` writes.
 */
export async function resolveServerConnection(
  opts: { server?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<ServerConnection> {
  const tokenFile = opts.tokenFile ?? env.FERRY_TOKEN_FILE;
  const server = opts.server ?? env.FERRY_SERVER;
  if (server !== undefined && server !== '') {
    const source = opts.server !== undefined ? '--server' : 'FERRY_SERVER';
    if (!tokenFile) throw new UsageError(`${source} needs a token: give --token-file FILE or set FERRY_TOKEN_FILE`);
    return { url: parseServerUrl(server, source).href, tokenFile: resolve(cwd, tokenFile), source };
  }
  const file = resolve(cwd, CONNECTION_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
    throw new FerryError('ERR_NO_SERVER', `no backup server given and no ${file}: ${HOW_TO_CONNECT}`);
  }
  let c: { url?: unknown; tokenFile?: unknown };
  try {
    c = JSON.parse(text) as typeof c;
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof c?.url !== 'string') {
    throw new UsageError(`${file}: "url" is missing (expected e.g. ${DEFAULT_SERVER_URL})`);
  }
  const tf = opts.tokenFile ?? (typeof c.tokenFile === 'string' ? resolve(dirname(file), c.tokenFile) : undefined);
  if (!tf) throw new UsageError(`${file}: "tokenFile" is missing (the server's bearer token file)`);
  return { url: parseServerUrl(c.url, file).href, tokenFile: resolve(cwd, tf), source: file };
}

/** Resolve the connection and read its token. */
export async function connectToServer(
  opts: { server?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerClient> {
  const c = await resolveServerConnection(opts, env);
  return new ServerClient(c.url, await readTokenFile(c.tokenFile));
}

/** The server answered with an error it has no ServiceError code for; carries the HTTP status. */
export class ServerApiError extends FerryError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

function apiError(status: number, body: unknown, fallback: string): FerryError {
  const e = (body ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : 'ERR_HTTP';
  const message = typeof e.message === 'string' ? e.message : fallback;
  if (code in ServiceErrorStatus) return new ServiceError(code as keyof typeof ServiceErrorStatus, message);
  return new ServerApiError(status, code, message);
}

/**
 * JobService over the backup server's REST API. `subscribe` follows the job's SSE stream;
 * `waitForJob` long-polls its events. close() is a no-op (no connection is kept).
 */
export class ServerClient implements JobService {
  readonly base: URL;
  private readonly token: string;

  constructor(base: URL | string, token: string) {
    this.base = typeof base === 'string' ? parseServerUrl(base) : base;
    this.token = token;
  }

  startBackup(req: StartBackup): Promise<JobView> {
    return this.call('POST', '/v1/jobs/backup', req);
  }
  startRestore(req: StartRestore): Promise<JobView> {
    return this.call('POST', '/v1/jobs/restore', req);
  }
  startFileRestore(req: StartFileRestore): Promise<JobView> {
    return this.call('POST', '/v1/jobs/restore-files', req);
  }
  startVerify(req: StartVerify): Promise<JobView> {
    return this.call('POST', '/v1/jobs/verify', req);
  }
  startRebuild(req: StartRebuild): Promise<JobView> {
    return this.call('POST', '/v1/jobs/rebuild', req);
  }
  startLabel(req: StartLabel): Promise<JobView> {
    return this.call('POST', '/v1/jobs/label', req);
  }
  cancel(job: number): Promise<JobView> {
    return this.call('POST', `/v1/jobs/${job}/cancel`, {});
  }
  retry(job: number): Promise<JobView> {
    return this.call('POST', `/v1/jobs/${job}/retry`, {});
  }
  throughput(job: number): Promise<ThroughputSample[]> {
    return this.call('GET', `/v1/jobs/${job}/throughput`);
  }
  getJob(job: number): Promise<JobView> {
    return this.call('GET', `/v1/jobs/${job}`);
  }
  listJobs(filter: JobFilter = {}): Promise<JobView[]> {
    return this.call('GET', `/v1/jobs${query(filter)}`);
  }
  /** Events after `afterId`; with `waitSeconds`, the server holds the request until one comes. */
  events(job: number, afterId?: number, opts: { waitSeconds?: number } = {}): Promise<JobEvent[]> {
    return this.call('GET', `/v1/jobs/${job}/events${query({ after: afterId, wait: opts.waitSeconds })}`);
  }
  listSets(filter: { volume?: string } = {}): Promise<SetView[]> {
    return this.call('GET', `/v1/sets${query(filter)}`);
  }
  getSet(set: number): Promise<SetView> {
    return this.call('GET', `/v1/sets/${set}`);
  }
  listFiles(set: number, q: ListFiles = {}): Promise<FileView[]> {
    return this.call('GET', `/v1/sets/${set}/files${query(q)}`);
  }
  findFiles(set: number, pattern: string): Promise<FileView[]> {
    return this.call('GET', `/v1/sets/${set}/find${query({ pattern })}`);
  }
  listCartridges(): Promise<CartridgeView[]> {
    return this.call('GET', '/v1/cartridges');
  }
  listDrives(): Promise<DriveView[]> {
    return this.call('GET', '/v1/drives');
  }
  exportCartridge(barcode: string): Promise<CartridgeView> {
    return this.call('POST', `/v1/cartridges/${encodeURIComponent(barcode)}/export`, {});
  }
  importCartridge(barcode: string): Promise<CartridgeView> {
    return this.call('POST', `/v1/cartridges/${encodeURIComponent(barcode)}/import`, {});
  }
  prune(o: { dryRun?: boolean } = {}): Promise<PruneResult> {
    return this.call('POST', '/v1/prune', o);
  }
  protectSet(set: number, protect: boolean): Promise<SetView> {
    return this.call('POST', `/v1/sets/${set}/protect`, { protected: protect });
  }
  listVolumes(o: { discover?: boolean } = {}): Promise<VolumeView[]> {
    return this.call('GET', `/v1/volumes${o.discover ? '?discover=true' : ''}`);
  }
  /** The server's configured schedules, their next run and what the last one did. */
  listSchedules(): Promise<ScheduleView[]> {
    return this.call('GET', '/v1/schedules');
  }
  async close(): Promise<void> {}

  async waitForJob(job: number): Promise<JobView> {
    let after: number | undefined;
    for (;;) {
      const v = await this.getJob(job);
      if (isFinal(v.state)) return v;
      const evs = await this.events(job, after, { waitSeconds: POLL_WAIT_SECONDS });
      if (evs.length > 0) after = evs[evs.length - 1].id;
    }
  }

  /**
   * Live events of one job (those after the latest already logged) over SSE, reconnecting after
   * a drop. Errors go nowhere: use follow() to see them.
   */
  subscribe(job: number, listener: (e: JobEvent) => void): () => void {
    const ac = new AbortController();
    this.events(job)
      .then((past) => this.follow(job, listener, { after: past.at(-1)?.id ?? 0, signal: ac.signal }))
      .catch(() => {});
    return () => ac.abort();
  }

  /**
   * Every event of the job (after `after`) over the SSE stream, resolving once the stream ends
   * after the job's final state. A dropped connection is retried from the last event seen.
   */
  async follow(
    job: number,
    onEvent: (e: JobEvent) => void,
    opts: { after?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    let after = opts.after;
    for (let attempt = 0; ; attempt++) {
      let sawEvent = false;
      const ended = await this.stream(job, after, opts.signal, (e) => {
        sawEvent = true;
        after = e.id;
        onEvent(e);
      }).then(
        () => true,
        (err: unknown) => {
          // Give up on an API error (the job is gone) or after repeated failures with no progress.
          if (err instanceof ServiceError || err instanceof ServerApiError || (!sawEvent && attempt >= 5)) throw err;
          return false;
        },
      );
      if (opts.signal?.aborted) return;
      if (ended && isFinal((await this.getJob(job)).state)) return;
      if (sawEvent) attempt = 0;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** One SSE connection; resolves when the server ends it. */
  private stream(
    job: number,
    after: number | undefined,
    signal: AbortSignal | undefined,
    onEvent: (e: JobEvent) => void,
  ): Promise<void> {
    return new Promise<void>((resolveStream, reject) => {
      const url = new URL(`/v1/jobs/${job}/stream${query({ after })}`, this.base);
      const req = this.send(url, 'GET', undefined, 'text/event-stream', signal, reject, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const status = res.statusCode ?? 0;
          return readBody(res).then((b) => reject(apiError(status, parseJson(b), `HTTP ${status}`)), reject);
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const lines = block.split('\n');
            const type =
              lines
                .find((l) => l.startsWith('event:'))
                ?.slice(6)
                .trim() ?? 'message';
            const data = lines
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trimStart())
              .join('\n');
            if (!data) continue;
            const parsed = parseJson(data);
            if (type === 'error') return reject(apiError(500, parsed, data));
            if (parsed) onEvent(parsed as JobEvent);
          }
        });
        res.on('end', () => resolveStream());
        res.on('error', reject);
        res.on('aborted', () => reject(new FerryError('ERR_SERVER_UNREACHABLE', 'event stream aborted')));
      });
      req.end();
    });
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolveCall, reject) => {
      const req = this.send(url, method, payload, 'application/json', undefined, reject, (res) => {
        readBody(res).then((text) => {
          const status = res.statusCode ?? 0;
          const json = parseJson(text);
          if (status >= 200 && status < 300) return resolveCall(json as T);
          reject(apiError(status, json, `${method} ${url.pathname}: HTTP ${status} ${text.slice(0, 200)}`));
        }, reject);
      });
      req.end(payload);
    });
  }

  private send(
    url: URL,
    method: string,
    payload: Buffer | undefined,
    accept: string,
    signal: AbortSignal | undefined,
    reject: (e: Error) => void,
    onResponse: (res: IncomingMessage) => void,
  ) {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method,
        signal,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      onResponse,
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.name === 'AbortError') return reject(e);
      const why = e.code ?? e.message;
      const msg = `cannot reach the backup server at ${this.base.origin} (${why}): ${HOW_TO_CONNECT}`;
      reject(new FerryError('ERR_SERVER_UNREACHABLE', msg));
    });
    return req;
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
  });
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function query(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
