import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { isAbsolute } from 'node:path';
import { bearerTokenMatches } from '../util/bearer-token.ts';
import { listenOrExplain } from '../util/listen.ts';
import { SSE_HEADERS } from '../util/sse.ts';
import { FerryError } from '../util/errors.ts';
import { JOB_STATES, isFinal, isJobState } from '../jobs/states.ts';
import { ServiceError, type JobEvent, type JobFilter, type JobService, type JobType } from '../jobs/types.ts';
import { loadAssets } from './assets.ts';
import { html, type Html } from './html.ts';
import { ConsoleSessions, CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, SESSION_TTL_MS } from './session.ts';
import { DashboardFeed, dashboardPage, overview, runningJobs } from './pages/dashboard.ts';
import { eventItem, jobPage, jobStatus, jobsPage } from './pages/jobs.ts';
import { chainOf, dirEntries, findResults, restoreDirFor, setPage, setsPage } from './pages/sets.ts';
import { backupPage, libraryPage, signinPage, type BackupFormValues } from './pages/forms.ts';
import { errorBox, page, type PageContext } from './pages/layout.ts';

/**
 * The web console: server-rendered pages over a JobService, with htmx and server-sent events for
 * live parts. Like the REST API and the CLI it is a face: every action is one service call.
 *
 * Sign-in: a signed, HttpOnly, SameSite=Strict cookie (session.ts), or `Authorization: Bearer`
 * on any request. A POST signed in by cookie needs the anti-CSRF token (header or form field).
 */

export interface ConsoleOptions {
  /** The config's pools, for the backup and label forms. */
  pools: string[];
  /** Default parent directory for "restore to directory on the server" (DIR/set-N). */
  restoreDir: string;
  log?: Logger;
  /** How often the dashboard's live stream looks again (ms). */
  tickMs?: number;
  /** How long the dashboard reuses the nodes' and libraries' answers (ms; OVERVIEW_MS). */
  overviewMs?: number;
}

const JOB_TYPES: readonly JobType[] = ['backup', 'restore', 'verify', 'rebuild', 'label'];
const SSE_HEARTBEAT_MS = 15_000;
const STATUS_THROTTLE_MS = 250;

// No inline script or style anywhere; htmx is told not to inject its indicator style.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

interface Signed extends PageContext {
  /** The session cookie, when signed in by cookie (not by bearer token). */
  cookie: string | null;
}

type Body = Record<string, string | string[] | undefined>;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function many(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function idOf(req: FastifyRequest): number {
  const raw = (req.params as { id?: string }).id ?? '';
  if (!/^[1-9]\d{0,14}$/.test(raw)) throw new FerryError('ERR_BAD_REQUEST', `"${raw}" is not an id (a whole number)`);
  return Number(raw);
}

/** A same-site path to return to after sign-in; anything else goes to the dashboard. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[^\s\\]*$/.test(next) && !next.startsWith('/signin') ? next : '/';
}

function sendHtml(reply: FastifyReply, body: Html, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body.text);
}

export function buildConsole(service: JobService, token: string, o: ConsoleOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  const sessions = new ConsoleSessions(token);
  const assets = loadAssets();
  const signed = new WeakMap<FastifyRequest, Signed>();
  const open = new Set<() => void>();
  void app.register(formbody);
  void app.register(cookie);

  const ctxOf = (req: FastifyRequest): Signed =>
    signed.get(req) ?? { csrf: null, cookie: null, path: req.url.split('?')[0] };

  const errorPage = (req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply => {
    if (req.headers['hx-request']) return sendHtml(reply, errorBox(message), status);
    const ctx = ctxOf(req);
    return sendHtml(
      reply,
      page(
        ctx,
        status === 404 ? 'Not found' : 'Could not do that',
        html`${errorBox(message)}
          <p><a href="/">Dashboard</a></p>`,
      ),
      status,
    );
  };

  app.addHook('preClose', async () => {
    for (const stop of [...open]) stop();
  });
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ServiceError) return errorPage(req, reply, err.status, err.message);
    if (err instanceof FerryError && err.code === 'ERR_BAD_REQUEST') return errorPage(req, reply, 400, err.message);
    const e = err as { statusCode?: number; message?: string };
    if (!(err instanceof FerryError) && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
      return errorPage(req, reply, e.statusCode, e.message ?? 'bad request');
    o.log?.error({ err }, 'console request failed');
    const what = err instanceof FerryError ? `${err.code}: ${err.message}` : 'internal error (see the server log)';
    return errorPage(req, reply, 500, what);
  });
  app.setNotFoundHandler((req, reply) => errorPage(req, reply, 404, `There is no page ${req.url.split('?')[0]}.`));

  app.addHook('onRequest', async (req, reply) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
    const path = req.url.split('?')[0];
    if (path.startsWith('/assets/') || path === '/signin') return;
    if (bearerTokenMatches(req.headers.authorization, token)) {
      signed.set(req, { csrf: null, cookie: null, path });
      return;
    }
    const c = req.cookies[SESSION_COOKIE];
    if (c && sessions.valid(c)) {
      signed.set(req, { csrf: sessions.csrfFor(c), cookie: c, path });
      return;
    }
    reply.header('cache-control', 'no-store');
    if (req.headers['hx-request']) {
      reply.header('hx-redirect', '/signin');
      return reply.code(401).send('');
    }
    if (req.method === 'GET' || req.method === 'HEAD')
      return reply.redirect(`/signin?next=${encodeURIComponent(req.url)}`, 303);
    return sendHtml(reply, signinPage('/', 'Sign in first: this action needs the server token.'), 401);
  });

  // Anti-CSRF: a POST that rides on the session cookie must carry the token the page was given.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const s = signed.get(req);
    if (!s || s.cookie === null) return; // sign-in itself, or a bearer token (no cookie to ride on)
    const header = req.headers[CSRF_HEADER];
    const presented =
      (typeof header === 'string' ? header : undefined) ?? one((req.body as Body | undefined)?.[CSRF_FIELD]);
    if (!sessions.csrfMatches(s.cookie, presented))
      return errorPage(
        req,
        reply,
        403,
        'Refused: this request did not come from a console page (its anti-CSRF token is missing or wrong). ' +
          'Reload the page and try again.',
      );
  });

  app.get('/assets/:name', async (req, reply) => {
    const a = assets.get((req.params as { name: string }).name);
    if (!a) return errorPage(req, reply, 404, 'no such asset');
    return reply.header('cache-control', 'public, max-age=3600').type(a.type).send(a.body);
  });

  app.get('/signin', async (req, reply) => {
    const next = safeNext(one((req.query as Body).next));
    const c = req.cookies[SESSION_COOKIE];
    if (c && sessions.valid(c)) return reply.redirect(next, 303);
    return sendHtml(reply, signinPage(next));
  });
  app.post('/signin', async (req, reply) => {
    const b = (req.body ?? {}) as Body;
    const next = safeNext(one(b.next));
    const given = one(b.token)?.trim() ?? '';
    if (!bearerTokenMatches(`Bearer ${given}`, token)) {
      return sendHtml(
        reply,
        signinPage(
          next,
          'That is not the server token. Paste the first line of the token file the server was started with.',
        ),
        401,
      );
    }
    reply.setCookie(SESSION_COOKIE, sessions.issue(), {
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      maxAge: SESSION_TTL_MS / 1000,
    });
    return reply.redirect(next, 303);
  });
  app.post('/signout', async (_req, reply) => {
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/signin', 303);
  });

  // Dashboard
  const feed = new DashboardFeed(service, o.overviewMs);
  app.get('/', async (req, reply) => sendHtml(reply, dashboardPage(ctxOf(req), await feed.all())));
  app.get('/live', async (req, reply) => {
    const sse = openStream(reply, open);
    const sent = { running: '', overview: '' };
    let busy = false;
    const tick = async (): Promise<void> => {
      if (busy || sse.closed) return;
      busy = true;
      try {
        const [jobs, over] = await Promise.all([feed.running(), feed.overview().then((d) => overview(d).text)]);
        const running = runningJobs(jobs).text;
        if (running !== sent.running) sse.send('running', (sent.running = running));
        if (over !== sent.overview) sse.send('overview', (sent.overview = over));
      } catch (err) {
        o.log?.warn({ err }, 'console dashboard stream');
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), o.tickMs ?? 1000);
    sse.onClose(() => clearInterval(timer));
    void tick();
  });

  // Jobs
  app.get('/jobs', async (req, reply) => {
    const q = req.query as Body;
    const f: JobFilter = { limit: 200 };
    const state = one(q.state) || undefined;
    const type = one(q.type) || undefined;
    if (state !== undefined) {
      if (!isJobState(state))
        throw new FerryError('ERR_BAD_REQUEST', `state "${state}": one of ${JOB_STATES.join(', ')}`);
      f.state = state;
    }
    if (type !== undefined) {
      if (!JOB_TYPES.includes(type as JobType))
        throw new FerryError('ERR_BAD_REQUEST', `type "${type}": one of ${JOB_TYPES.join(', ')}`);
      f.type = type as JobType;
    }
    f.volume = one(q.volume) || undefined;
    const [jobs, volumes] = await Promise.all([service.listJobs(f), service.listVolumes({ discover: true })]);
    return sendHtml(
      reply,
      jobsPage(
        ctxOf(req),
        jobs,
        f,
        volumes.map((v) => v.id),
      ),
    );
  });
  app.get('/jobs/:id', async (req, reply) => {
    const id = idOf(req);
    const [j, events, samples] = await Promise.all([service.getJob(id), service.events(id), service.throughput(id)]);
    return sendHtml(reply, jobPage(ctxOf(req), j, events, samples));
  });
  app.get('/jobs/:id/live', async (req, reply) => {
    const id = idOf(req);
    await service.getJob(id); // a 404 before the stream starts
    const after = Number(one((req.query as Body).after) ?? 0) || 0;
    streamJob(service, id, after, ctxOf(req), openStream(reply, open), o.log);
  });
  app.post('/jobs/:id/cancel', async (req, reply) => {
    const id = idOf(req);
    await service.cancel(id);
    return reply.redirect(`/jobs/${id}`, 303);
  });
  app.post('/jobs/:id/retry', async (req, reply) => {
    const j = await service.retry(idOf(req));
    return reply.redirect(`/jobs/${j.id}`, 303);
  });

  // Backup
  app.get('/backup', async (req, reply) => {
    const q = req.query as Body;
    return sendHtml(
      reply,
      backupPage(ctxOf(req), await service.listVolumes({ discover: true }), o.pools, { volume: one(q.volume) }),
    );
  });
  app.post('/backup', async (req, reply) => {
    const b = (req.body ?? {}) as Body;
    const v: BackupFormValues = { volume: one(b.volume), mode: one(b.mode), level: one(b.level), pool: one(b.pool) };
    try {
      if (!v.volume) throw new FerryError('ERR_BAD_REQUEST', 'choose a volume');
      if (v.mode && !['image', 'used', 'files'].includes(v.mode))
        throw new FerryError('ERR_BAD_REQUEST', `mode "${v.mode}": one of image, used, files`);
      if (v.level && !['full', 'incremental'].includes(v.level))
        throw new FerryError('ERR_BAD_REQUEST', `level "${v.level}": full or incremental`);
      const j = await service.startBackup({
        volume: v.volume,
        mode: v.mode as 'image' | 'used' | 'files' | undefined,
        level: v.level as 'full' | 'incremental' | undefined,
        pool: v.pool || undefined,
      });
      return reply.redirect(`/jobs/${j.id}`, 303);
    } catch (err) {
      if (!(err instanceof FerryError)) throw err;
      const status = err instanceof ServiceError ? err.status : 400;
      return sendHtml(
        reply,
        backupPage(ctxOf(req), await service.listVolumes({ discover: true }), o.pools, v, err.message),
        status,
      );
    }
  });

  // Sets
  app.get('/sets', async (req, reply) => {
    const volume = one((req.query as Body).volume) || undefined;
    const [all, volumes] = await Promise.all([service.listSets(), service.listVolumes({ discover: true })]);
    const sets = all.filter((s) => volume === undefined || s.volume === volume).reverse();
    return sendHtml(reply, setsPage(ctxOf(req), sets, all, volume, volumes));
  });
  app.get('/sets/:id', async (req, reply) => {
    const id = idOf(req);
    const set = await service.getSet(id);
    const all = await service.listSets({ volume: set.volume });
    const root = set.mode === 'files' ? await service.listFiles(id, { path: '/' }) : null;
    const chain = chainOf(set, new Map(all.map((s) => [s.id, s])));
    return sendHtml(reply, setPage(ctxOf(req), { set, chain, root, restoreDir: restoreDirFor(o.restoreDir, id) }));
  });
  app.get('/sets/:id/dir', async (req, reply) => {
    const id = idOf(req);
    const path = one((req.query as Body).path) ?? '/';
    return sendHtml(reply, dirEntries(id, await service.listFiles(id, { path })));
  });
  app.get('/sets/:id/find', async (req, reply) => {
    const id = idOf(req);
    const pattern = (one((req.query as Body).pattern) ?? '').trim();
    const found = pattern
      ? await service.findFiles(
          id,
          pattern.includes('*') || pattern.includes('?') || pattern.includes('/') ? pattern : `*${pattern}*`,
        )
      : [];
    return sendHtml(reply, findResults(pattern, found));
  });
  app.post('/sets/:id/verify', async (req, reply) => {
    const j = await service.startVerify({ set: idOf(req) });
    return reply.redirect(`/jobs/${j.id}`, 303);
  });
  app.post('/sets/:id/protect', async (req, reply) => {
    const id = idOf(req);
    await service.protectSet(id, one((req.body as Body).protected) !== 'false');
    return reply.redirect(`/sets/${id}`, 303);
  });
  app.post('/sets/:id/restore', async (req, reply) => {
    const b = (req.body ?? {}) as Body;
    const to = one(b.to)?.trim() ?? '';
    if (!/^[^:\s]+:(new|\d+)$/.test(to))
      throw new FerryError('ERR_BAD_REQUEST', `restore target "${to}": NODE:LUN (store:3) or NODE:new`);
    const j = await service.startRestore({ set: idOf(req), to, force: one(b.force) === 'true' });
    return reply.redirect(`/jobs/${j.id}`, 303);
  });
  app.post('/sets/:id/restore-files', async (req, reply) => {
    const b = (req.body ?? {}) as Body;
    const files = many(b.files);
    const out = one(b.out)?.trim() ?? '';
    if (files.length === 0) throw new FerryError('ERR_BAD_REQUEST', 'check at least one file or directory to restore');
    if (!isAbsolute(out)) throw new FerryError('ERR_BAD_REQUEST', `directory "${out}": an absolute path on the server`);
    // Paths name entries of the set; none may climb out of the directory they are restored into.
    const bad = files.find((f) => !f.startsWith('/') || f.split('/').some((p) => p === '..' || p === '.'));
    if (bad !== undefined)
      throw new FerryError('ERR_BAD_REQUEST', `"${bad}" is not a path in the set (absolute, without . or ..)`);
    const j = await service.startFileRestore({ set: idOf(req), files, out, force: one(b.force) === 'true' });
    return reply.redirect(`/jobs/${j.id}`, 303);
  });

  // Library
  app.get('/library', async (req, reply) => {
    const [drives, cartridges] = await Promise.all([service.listDrives(), service.listCartridges()]);
    return sendHtml(reply, libraryPage(ctxOf(req), drives, cartridges, o.pools));
  });
  const barcodeOf = (req: FastifyRequest): string => {
    const b = (req.params as { barcode?: string }).barcode ?? '';
    if (!/^[\x21-\x7e]{1,32}$/.test(b)) throw new FerryError('ERR_BAD_REQUEST', `"${b}" is not a barcode`);
    return b;
  };
  app.post('/library/:barcode/export', async (req, reply) => {
    await service.exportCartridge(barcodeOf(req));
    return reply.redirect('/library', 303);
  });
  app.post('/library/:barcode/import', async (req, reply) => {
    await service.importCartridge(barcodeOf(req));
    return reply.redirect('/library', 303);
  });
  app.post('/library/:barcode/label', async (req, reply) => {
    const pool = one((req.body as Body).pool) || undefined;
    const j = await service.startLabel({ barcode: barcodeOf(req), pool });
    return reply.redirect(`/jobs/${j.id}`, 303);
  });
  return app;
}

interface Stream {
  readonly closed: boolean;
  /** One server-sent event; `data` may span lines. */
  send(event: string, data: string): void;
  onClose(f: () => void): void;
  close(): void;
}

function openStream(reply: FastifyReply, open: Set<() => void>): Stream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, SSE_HEADERS);
  const hooks: Array<() => void> = [];
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
  const s: Stream = {
    closed: false,
    send(event, data) {
      if (s.closed) return;
      res.write(
        `event: ${event}\n${data
          .split('\n')
          .map((l) => `data: ${l}`)
          .join('\n')}\n\n`,
      );
    },
    onClose(f) {
      hooks.push(f);
    },
    close() {
      if (s.closed) return;
      (s as { closed: boolean }).closed = true;
      clearInterval(heartbeat);
      open.delete(s.close);
      for (const f of hooks.splice(0)) f();
      res.end();
    },
  };
  open.add(s.close);
  res.once('close', () => s.close());
  return s;
}

/** A job page's live stream: new events, the status part (throttled), chart points, then `end`. */
function streamJob(service: JobService, id: number, after: number, ctx: PageContext, sse: Stream, log?: Logger): void {
  let last = after;
  let points = 0;
  let replaying = true;
  let finishing = false;
  let statusTimer: NodeJS.Timeout | undefined;
  const pending: JobEvent[] = [];

  const status = async (): Promise<void> => {
    statusTimer = undefined;
    const j = await service.getJob(id);
    const samples = await service.throughput(id);
    sse.send('status', jobStatus(ctx, j).text);
    if (samples.length > points) {
      sse.send('point', JSON.stringify(samples.slice(points)));
      points = samples.length;
    }
  };
  const soon = (): void => {
    statusTimer ??= setTimeout(
      () => void status().catch((err: unknown) => log?.warn({ err }, 'job stream')),
      STATUS_THROTTLE_MS,
    );
  };
  const finish = async (): Promise<void> => {
    if (finishing) return;
    finishing = true;
    clearTimeout(statusTimer);
    for (const e of await service.events(id, last)) handle(e);
    await status();
    sse.send('end', '');
    sse.close();
  };
  const handle = (e: JobEvent): void => {
    if (e.kind === 'progress') return soon();
    if (e.id <= last) return;
    last = e.id;
    sse.send('event', eventItem(e).text);
    if (e.kind === 'state' && e.state !== null && isFinal(e.state)) void finish().catch(() => sse.close());
    else soon();
  };
  const unsubscribe = service.subscribe(id, (e) => (replaying ? pending.push(e) : handle(e)));
  sse.onClose(() => {
    unsubscribe();
    clearTimeout(statusTimer);
  });
  void (async () => {
    try {
      for (const e of await service.events(id, after)) handle(e);
      replaying = false;
      for (const e of pending.splice(0).sort((a, b) => a.id - b.id)) handle(e);
      if (isFinal((await service.getJob(id)).state)) await finish();
      else soon();
    } catch (err) {
      log?.warn({ err }, 'job stream');
      sse.close();
    }
  })();
}

export interface ConsoleServer {
  readonly app: FastifyInstance;
  readonly url: string;
  close(): Promise<void>;
}

/** Serve the console (`ferry server` with `console` in its config, `ferry up`). Port 0 picks one. */
export async function startConsole(
  service: JobService,
  opts: ConsoleOptions & { host: string; port: number; token: string },
): Promise<ConsoleServer> {
  const app = buildConsole(service, opts.token, opts);
  const port = await listenOrExplain(
    app,
    opts.host,
    opts.port,
    'the web console',
    '`console` in the server config, --console or --no-console of ferry up',
  );
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
