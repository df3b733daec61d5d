import type { ScheduleView } from '../jobs/scheduler.ts';
import { UNAUTHORIZED, bearerTokenMatches } from '../util/bearer-token.ts';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { isFinal } from '../jobs/states.ts';
import { ServiceError, type JobEvent, type JobService } from '../jobs/types.ts';
import { FerryError } from '../util/errors.ts';
import { SERVER_OPENAPI } from './openapi.ts';
import {
  EventsQuery,
  IdParams,
  JobsQuery,
  SetsQuery,
  FilesQuery,
  FindQuery,
  StartFileRestoreBody,
  StartBackupBody,
  StartRebuildBody,
  StartLabelBody,
  StartRestoreBody,
  StartVerifyBody,
  PruneBody,
  ProtectBody,
  BarcodeParams,
  StreamQuery,
  VolumesQuery,
  validate,
} from './schemas.ts';
import { metricsText, registry } from '../metrics/metrics.ts';
import { listenOrExplain } from '../util/listen.ts';
import { SSE_HEADERS } from '../util/sse.ts';

/** Seconds between SSE comment lines that keep idle proxies from closing the stream. */
const SSE_HEARTBEAT_MS = 15_000;

export interface ServerApiOptions {
  /** Where 500s are logged (nothing is logged without it). */
  log?: Logger;
  /** The configured schedules with their next run (GET /v1/schedules); none without it. */
  schedules?: () => ScheduleView[];
}

/**
 * Error → `{code, message}` with a status: a ServiceError's own status, 400 for a request that
 * failed validation, 500 for anything else (a FerryError keeps its stable code; other errors
 * become ERR_INTERNAL). Never a stack.
 */
function sendError(reply: FastifyReply, err: unknown, log?: Logger): FastifyReply {
  if (err instanceof ServiceError) return reply.code(err.status).send({ code: err.code, message: err.message });
  if (err instanceof FerryError && err.code === 'ERR_BAD_REQUEST') {
    return reply.code(400).send({ code: err.code, message: err.message });
  }
  const e = err as { statusCode?: number; message?: string };
  if (!(err instanceof FerryError) && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own: unparsable JSON, body too large, wrong content type.
    return reply.code(e.statusCode).send({ code: 'ERR_BAD_REQUEST', message: e.message ?? 'bad request' });
  }
  log?.error({ err }, 'request failed');
  const code = err instanceof FerryError ? err.code : 'ERR_INTERNAL';
  return reply.code(500).send({ code, message: e.message ?? String(err) });
}

/**
 * The backup server's REST API (not listening): a thin face over a JobService. Every route but
 * GET /openapi.json needs `Authorization: Bearer <token>`.
 */
export function buildServerApi(service: JobService, token: string, opts: ServerApiOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  // Open streams and long polls end when the server closes, rather than holding close() up.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of [...open]) stop();
  });
  app.setErrorHandler((err, _req, reply) => sendError(reply, err, opts.log));
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' && req.url === '/openapi.json') return;
    if (!bearerTokenMatches(req.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send(UNAUTHORIZED);
    }
  });

  app.get('/openapi.json', async () => SERVER_OPENAPI);

  app.post('/v1/jobs/backup', async (req, reply) =>
    reply.code(201).send(await service.startBackup(validate(StartBackupBody, req.body ?? {}, 'body'))),
  );
  app.post('/v1/jobs/restore', async (req, reply) =>
    reply.code(201).send(await service.startRestore(validate(StartRestoreBody, req.body ?? {}, 'body'))),
  );
  app.post('/v1/jobs/verify', async (req, reply) =>
    reply.code(201).send(await service.startVerify(validate(StartVerifyBody, req.body ?? {}, 'body'))),
  );
  app.post('/v1/jobs/restore-files', async (req, reply) =>
    reply.code(201).send(await service.startFileRestore(validate(StartFileRestoreBody, req.body ?? {}, 'body'))),
  );
  app.post('/v1/jobs/rebuild', async (req, reply) =>
    reply.code(201).send(await service.startRebuild(validate(StartRebuildBody, req.body ?? {}, 'body'))),
  );
  app.post('/v1/jobs/label', async (req, reply) =>
    reply.code(201).send(await service.startLabel(validate(StartLabelBody, req.body ?? {}, 'body'))),
  );
  app.get('/v1/jobs', async (req) => service.listJobs(validate(JobsQuery, req.query, 'query')));
  app.get('/v1/jobs/:id', async (req) => service.getJob(validate(IdParams, req.params, 'path').id));
  app.post('/v1/jobs/:id/cancel', async (req) => service.cancel(validate(IdParams, req.params, 'path').id));
  app.post('/v1/jobs/:id/retry', async (req, reply) =>
    reply.code(201).send(await service.retry(validate(IdParams, req.params, 'path').id)),
  );
  app.get('/v1/jobs/:id/throughput', async (req) => service.throughput(validate(IdParams, req.params, 'path').id));

  app.get('/v1/jobs/:id/events', async (req) => {
    const { id } = validate(IdParams, req.params, 'path');
    const q = validate(EventsQuery, req.query, 'query');
    return longPoll(service, id, q.after, (q.wait ?? 0) * 1000, open);
  });

  app.get('/v1/jobs/:id/stream', async (req, reply) => {
    const { id } = validate(IdParams, req.params, 'path');
    const q = validate(StreamQuery, req.query, 'query');
    await service.getJob(id); // 404 as JSON before the stream starts
    reply.hijack();
    streamEvents(service, id, q.after, reply, open);
  });

  app.get('/v1/sets', async (req) => service.listSets(validate(SetsQuery, req.query, 'query')));
  app.get('/v1/sets/:id', async (req) => service.getSet(validate(IdParams, req.params, 'path').id));
  app.get('/v1/sets/:id/files', async (req) =>
    service.listFiles(validate(IdParams, req.params, 'path').id, validate(FilesQuery, req.query, 'query')),
  );
  app.get('/v1/sets/:id/find', async (req) =>
    service.findFiles(validate(IdParams, req.params, 'path').id, validate(FindQuery, req.query, 'query').pattern),
  );
  app.post('/v1/sets/:id/protect', async (req) =>
    service.protectSet(
      validate(IdParams, req.params, 'path').id,
      validate(ProtectBody, req.body ?? {}, 'body').protected,
    ),
  );
  app.post('/v1/prune', async (req) => service.prune(validate(PruneBody, req.body ?? {}, 'body')));
  app.get('/v1/cartridges', async () => service.listCartridges());
  app.post('/v1/cartridges/:barcode/export', async (req) =>
    service.exportCartridge(validate(BarcodeParams, req.params, 'path').barcode),
  );
  app.post('/v1/cartridges/:barcode/import', async (req) =>
    service.importCartridge(validate(BarcodeParams, req.params, 'path').barcode),
  );
  app.get('/v1/drives', async () => service.listDrives());
  app.get('/v1/volumes', async (req) => service.listVolumes(validate(VolumesQuery, req.query, 'query')));
  // Prometheus text format; scrape with the same bearer token (prometheus.yml `authorization`).
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await metricsText()));
  app.get('/v1/schedules', async () => opts.schedules?.() ?? []);
  return app;
}

/** Events after `after`; with none yet and waitMs > 0, wait up to waitMs for the next one. */
async function longPoll(
  service: JobService,
  id: number,
  after: number | undefined,
  waitMs: number,
  open: Set<() => void>,
): Promise<JobEvent[]> {
  const first = await service.events(id, after);
  if (first.length > 0 || waitMs <= 0) return first;
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  // Subscribe, then look again: an event between the first look and the subscription is not lost.
  const unsubscribe = service.subscribe(id, (e) => {
    if (after === undefined || e.id > after) wake();
  });
  const timer = setTimeout(wake, waitMs);
  open.add(wake);
  try {
    const again = await service.events(id, after);
    if (again.length > 0) return again;
    if (isFinal((await service.getJob(id)).state)) return again;
    await woken;
    return await service.events(id, after);
  } finally {
    clearTimeout(timer);
    unsubscribe();
    open.delete(wake);
  }
}

/**
 * Server-sent events: every event of the job (after `after`) as `id:` and `data: JSON`, live
 * ones as they come, and the stream ends once the job is in a final state.
 */
function streamEvents(
  service: JobService,
  id: number,
  after: number | undefined,
  reply: FastifyReply,
  open: Set<() => void>,
): void {
  const res = reply.raw;
  res.writeHead(200, SSE_HEADERS);
  let last = after ?? 0;
  let replaying = true;
  let ended = false;
  const pending: JobEvent[] = [];
  const end = (): void => {
    if (ended) return;
    ended = true;
    open.delete(end);
    unsubscribe();
    clearInterval(heartbeat);
    res.end();
  };
  const send = (e: JobEvent): void => {
    // Ids skip what history and live both delivered; an event without an id (0) always goes.
    if (ended || (e.id > 0 && e.id <= last)) return;
    last = Math.max(last, e.id);
    res.write(`id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);
    if (e.kind === 'state' && e.state !== null && isFinal(e.state)) end();
  };
  // Subscribe before reading the history; live events wait until the history is out.
  const unsubscribe = service.subscribe(id, (e) => (replaying ? pending.push(e) : send(e)));
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
  res.once('close', end);
  open.add(end);
  void (async () => {
    try {
      for (const e of await service.events(id, after)) send(e);
      replaying = false;
      for (const e of pending.sort((a, b) => a.id - b.id)) send(e);
      pending.length = 0;
      // Final with no final state event in the log: nothing more will come.
      if (!ended && isFinal((await service.getJob(id)).state)) {
        for (const e of await service.events(id, last)) send(e);
        end();
      }
    } catch (err) {
      if (!ended) res.write(`event: error\ndata: ${JSON.stringify(errorBody(err))}\n\n`);
      end();
    }
  })();
}

function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof FerryError) return { code: err.code, message: err.message };
  return { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

export interface ServerApi {
  readonly app: FastifyInstance;
  readonly address: { host: string; port: number };
  /** `http://HOST:PORT`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serve the REST API (`ferry server`, `ferry up`). Port 0 picks a free port. */
export async function startServerApi(
  service: JobService,
  opts: { host: string; port: number; token: string; log?: Logger; schedules?: () => ScheduleView[] },
): Promise<ServerApi> {
  const app = buildServerApi(service, opts.token, { log: opts.log, schedules: opts.schedules });
  const port = await listenOrExplain(
    app,
    opts.host,
    opts.port,
    "the backup server's REST API",
    '`listen` in the server config, --listen of ferry up',
  );
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { app, address: { host: opts.host, port }, url: `http://${host}:${port}`, close: () => app.close() };
}
