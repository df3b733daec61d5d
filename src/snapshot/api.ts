import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { FerryError, UsageError } from '../util/errors.ts';
import { parseSize } from '../util/units.ts';
import { OPENAPI } from './openapi.ts';
import type { SnapshotService } from './service.ts';

/** Error code → HTTP status. Anything else is a 500 ERR_INTERNAL. */
const STATUS: Record<string, number> = {
  ERR_UNAUTHORIZED: 401,
  ERR_BAD_REQUEST: 400,
  ERR_USAGE: 400,
  ERR_BAD_PERIOD: 400,
  ERR_RANGE: 400,
  ERR_SNAPSHOT_ORDER: 400,
  ERR_NOT_A_DISK: 400,
  ERR_LUN_NOT_FOUND: 404,
  ERR_SNAPSHOT_NOT_FOUND: 404,
  ERR_NOT_FOUND: 404,
  ERR_SNAPSHOT_IN_PROGRESS: 409,
  ERR_LUN_HAS_SNAPSHOTS: 409,
  ERR_LUN_CONFIGURED: 409,
  ERR_LUN_EXISTS: 409,
  ERR_QUIESCE_TIMEOUT: 409,
};

const lunParams = z.object({ lun: z.coerce.number().int().min(0).max(0xffff) });
const idParams = z.object({ id: z.string().min(1).max(64) });
const createLunBody = z.object({ size: z.union([z.number().int().positive(), z.string().min(1)]) }).strict();
const snapshotBody = z
  .object({ quietPeriodMs: z.number().optional(), timeoutMs: z.number().optional() })
  .strict()
  .nullish();
const changedQuery = z.object({ since: z.string().min(1), until: z.string().min(1).optional() });
const digestQuery = z.object({ lba: z.coerce.number().int().min(0).default(0), blocks: z.coerce.number().int().min(0).optional() });
const listQuery = z.object({ lun: z.coerce.number().int().min(0).optional() });

function parse<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ');
  throw new FerryError('ERR_BAD_REQUEST', `${what}: ${msg}`);
}

/** Read a bearer token file: its first line, at least 16 characters. */
export async function readTokenFile(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read token file ${path}: ${e.message}`);
  });
  const token = text.split(/\r?\n/)[0].trim();
  if (token.length < 16) throw new UsageError(`token file ${path}: the token (its first line) needs at least 16 characters`);
  return token;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  // Compare digests: equal length, constant time.
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof FerryError) {
    return reply.code(STATUS[err.code] ?? 500).send({ code: STATUS[err.code] ? err.code : 'ERR_INTERNAL', message: err.message });
  }
  const e = err as { statusCode?: number; message?: string };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return reply.code(e.statusCode).send({ code: 'ERR_BAD_REQUEST', message: e.message ?? 'bad request' });
  }
  reply.log.error(err);
  return reply.code(500).send({ code: 'ERR_INTERNAL', message: e.message ?? String(err) });
}

/** The storage node's management API as a Fastify app (not listening). */
export function buildSnapshotApi(service: SnapshotService, token: string): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url}` }));
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/openapi.json') return;
    if (!tokenMatches(req.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send({ code: 'ERR_UNAUTHORIZED', message: 'missing or wrong bearer token' });
    }
  });

  app.get('/openapi.json', async () => OPENAPI);

  app.get('/v1/luns', async () => service.registry.list());
  app.post('/v1/luns', async (req, reply) => {
    const b = parse(createLunBody, req.body, 'body');
    const sizeBytes = typeof b.size === 'number' ? b.size : parseSize(b.size, 'size');
    return reply.code(201).send(await service.registry.create({ sizeBytes }));
  });
  app.delete('/v1/luns/:lun', async (req, reply) => {
    await service.deleteLun(parse(lunParams, req.params, 'path').lun);
    return reply.code(204).send();
  });
  app.post('/v1/luns/:lun/snapshots', async (req, reply) => {
    const { lun } = parse(lunParams, req.params, 'path');
    const b = parse(snapshotBody, req.body, 'body') ?? {};
    return reply.code(201).send(await service.create(lun, b));
  });
  app.get('/v1/luns/:lun/changed', async (req) => {
    const { lun } = parse(lunParams, req.params, 'path');
    const q = parse(changedQuery, req.query, 'query');
    return service.changed(lun, q.since, q.until);
  });
  app.get('/v1/luns/:lun/digest', async (req) => {
    const { lun } = parse(lunParams, req.params, 'path');
    const q = parse(digestQuery, req.query, 'query');
    return service.digest(lun, q.lba, q.blocks);
  });

  app.get('/v1/snapshots', async (req) => service.list(parse(listQuery, req.query, 'query').lun));
  app.get('/v1/snapshots/:id', async (req) => service.get(parse(idParams, req.params, 'path').id));
  app.delete('/v1/snapshots/:id', async (req, reply) => {
    await service.delete(parse(idParams, req.params, 'path').id);
    return reply.code(204).send();
  });
  return app;
}

export interface SnapshotApiServer {
  readonly app: FastifyInstance;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Serve the API on its own port (`ferry target --api HOST:PORT --api-token-file FILE`). */
export async function startSnapshotApi(service: SnapshotService, opts: { host: string; port: number; token: string }): Promise<SnapshotApiServer> {
  const app = buildSnapshotApi(service, opts.token);
  await app.listen({ host: opts.host, port: opts.port });
  const a = app.server.address();
  const port = typeof a === 'object' && a ? a.port : opts.port;
  return { app, address: { host: opts.host, port }, close: () => app.close() };
}
