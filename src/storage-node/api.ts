import { UNAUTHORIZED, bearerTokenMatches } from '../util/bearer-token.ts';
import { listenOrExplain } from '../util/listen.ts';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { FerryError } from '../util/errors.ts';
import { parseSize } from '../util/units.ts';
import type { Extent } from '../snapshot/cbt.ts';
import { MAX_DIGEST_EXTENTS, SnapshotNotFoundError, type NodeControl } from './node-control.ts';
import { OPENAPI } from './openapi.ts';
import { registerTapeDigestRoute } from './tape-digest-api.ts';
import type { TapeDigestSource } from '../tape/digest.ts';

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
  ERR_CHANGE_ID_NOT_FOUND: 404,
  ERR_NOT_FOUND: 404,
  ERR_SNAPSHOT_IN_PROGRESS: 409,
  ERR_LUN_HAS_SNAPSHOTS: 409,
  ERR_LUN_CONFIGURED: 409,
  ERR_LUN_EXISTS: 409,
  ERR_QUIESCE_TIMEOUT: 409,
};

const lunParams = z.object({ lun: z.coerce.number().int().min(0).max(0xffff) });
const idParams = z.object({ id: z.string().min(1).max(64) });
const createLunBody = z
  .object({
    size: z.union([z.number().int().positive(), z.string().min(1)]),
    blockSize: z.number().int().positive().optional(),
  })
  .strict();
const snapshotBody = z
  .object({ quietPeriodMs: z.number().optional(), timeoutMs: z.number().optional() })
  .strict()
  .nullish();
const changedQuery = z.object({ since: z.string().min(1), until: z.string().min(1).optional() });
const extent = z.object({ lba: z.number().int().min(0), blocks: z.number().int().min(1) }).strict();
const digestBody = z.object({ extents: z.array(extent).max(MAX_DIGEST_EXTENTS) }).strict();
/** Room for MAX_DIGEST_EXTENTS extents of 16-digit numbers. */
const DIGEST_BODY_LIMIT = 64 * 1024 + MAX_DIGEST_EXTENTS * 64;
const listQuery = z.object({ lun: z.coerce.number().int().min(0).optional() });

function parse<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ');
  throw new FerryError('ERR_BAD_REQUEST', `${what}: ${msg}`);
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof FerryError) {
    return reply
      .code(STATUS[err.code] ?? 500)
      .send({ code: STATUS[err.code] ? err.code : 'ERR_INTERNAL', message: err.message });
  }
  const e = err as { statusCode?: number; message?: string };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return reply.code(e.statusCode).send({ code: 'ERR_BAD_REQUEST', message: e.message ?? 'bad request' });
  }
  reply.log.error(err);
  return reply.code(500).send({ code: 'ERR_INTERNAL', message: e.message ?? String(err) });
}

/** What the API serves: a node's controls (in practice the SnapshotService) and how errors name the node. */
export type ApiNode = NodeControl & { readonly name: string };

/**
 * The storage node's management API as a Fastify app (not listening): NodeControl over HTTP,
 * and digests of cartridge blocks when the node serves tapes (`tapes`).
 */
export function buildSnapshotApi(
  node: ApiNode,
  token: string,
  opts: { tapes?: TapeDigestSource } = {},
): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/openapi.json') return;
    if (!bearerTokenMatches(req.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send(UNAUTHORIZED);
    }
  });

  app.get('/openapi.json', async () => OPENAPI);

  app.get('/v1/luns', async () => node.listLuns());
  app.post('/v1/luns', async (req, reply) => {
    const b = parse(createLunBody, req.body, 'body');
    const sizeBytes = typeof b.size === 'number' ? b.size : parseSize(b.size, 'size');
    return reply.code(201).send(await node.createLun({ sizeBytes, blockSize: b.blockSize }));
  });
  app.delete('/v1/luns/:lun', async (req, reply) => {
    await node.deleteLun(parse(lunParams, req.params, 'path').lun);
    return reply.code(204).send();
  });
  app.post('/v1/luns/:lun/snapshots', async (req, reply) => {
    const { lun } = parse(lunParams, req.params, 'path');
    const b = parse(snapshotBody, req.body, 'body') ?? {};
    // A client that hangs up no longer waits for the snapshot: stop waiting for quiet writes.
    const gone = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) gone.abort();
    };
    reply.raw.once('close', onClose);
    try {
      return reply.code(201).send(await node.createSnapshot(lun, { ...b, signal: gone.signal }));
    } finally {
      reply.raw.off('close', onClose);
    }
  });
  app.get('/v1/luns/:lun/changed', async (req) => {
    const { lun } = parse(lunParams, req.params, 'path');
    const q = parse(changedQuery, req.query, 'query');
    const c = await node.changedSince(lun, q.since, { until: q.until });
    // On the wire, extents are [lba, blockCount] pairs (as `ferry snapshot changed --json` prints them).
    const extents: Extent[] = c.extents.map((e) => [e.lba, e.blocks]);
    return { ...c, since: q.since, until: q.until ?? null, extents };
  });
  app.post('/v1/luns/:lun/changes/mark', async (req, reply) =>
    reply.code(201).send(await node.markChanges(parse(lunParams, req.params, 'path').lun)),
  );
  app.get('/v1/luns/:lun/changes', async (req) => node.changeTracking(parse(lunParams, req.params, 'path').lun));
  app.post('/v1/luns/:lun/digest', { bodyLimit: DIGEST_BODY_LIMIT }, async (req) => {
    const { lun } = parse(lunParams, req.params, 'path');
    return node.digest(lun, parse(digestBody, req.body, 'body').extents);
  });
  app.get('/v1/luns/:lun/activity', async (req) => node.activity(parse(lunParams, req.params, 'path').lun));
  registerTapeDigestRoute(app, opts.tapes, node.name, parse);

  app.get('/v1/snapshots', async (req) => node.listSnapshots(parse(listQuery, req.query, 'query').lun));
  app.get('/v1/snapshots/:id', async (req) => {
    const { id } = parse(idParams, req.params, 'path');
    const s = await node.getSnapshot(id);
    if (!s) throw new SnapshotNotFoundError(id, `on ${node.name}`);
    return s;
  });
  app.delete('/v1/snapshots/:id', async (req, reply) => {
    await node.deleteSnapshot(parse(idParams, req.params, 'path').id);
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
export async function startSnapshotApi(
  node: ApiNode,
  opts: { host: string; port: number; token: string; tapes?: TapeDigestSource },
): Promise<SnapshotApiServer> {
  const app = buildSnapshotApi(node, opts.token, { tapes: opts.tapes });
  const port = await listenOrExplain(app, opts.host, opts.port, "the storage node's API", '--api of ferry target');
  return { app, address: { host: opts.host, port }, close: () => app.close() };
}
