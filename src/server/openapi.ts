import { z } from 'zod';
import { JOB_STATES } from '../jobs/states.ts';
import {
  EventsQuery,
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
  StreamQuery,
  VolumesQuery,
} from './schemas.ts';

// OpenAPI 3.1 description of the backup server's REST API (served at /openapi.json). Request
// bodies and query parameters come from the zod schemas the routes validate with; the
// response schemas mirror src/jobs/types.ts.

type Json = Record<string, unknown>;

function schemaOf(s: z.ZodType): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

/** Query parameters from a zod object schema. */
function queryParams(s: z.ZodType): Json[] {
  const j = schemaOf(s) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(j.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return { name, in: 'query', required: (j.required ?? []).includes(name), schema: rest, description };
  });
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const errors = (...codes: number[]): Json =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: 'Error', content: { 'application/json': { schema: ref('Error') } } }]),
  );
const json = (schema: Json, description = 'OK'): Json => ({ description, content: { 'application/json': { schema } } });
const body = (s: z.ZodType): Json => ({ required: true, content: { 'application/json': { schema: schemaOf(s) } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
const barcodeParam = {
  name: 'barcode',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' },
};
const str = { type: 'string' };
const strOrNull = { type: ['string', 'null'] };
const int = { type: 'integer' };
const intOrNull = { type: ['integer', 'null'] };
const time = { type: 'string', format: 'date-time' };
const timeOrNull = { type: ['string', 'null'], format: 'date-time' };
const state = { enum: [...JOB_STATES] };
const obj = (properties: Json): Json => ({ type: 'object', required: Object.keys(properties), properties });
/** `o` with `keys` no longer required. */
const optional = (o: Json, keys: string[]): Json => ({
  ...o,
  required: (o.required as string[]).filter((k) => !keys.includes(k)),
});

const startJob = (summary: string, s: z.ZodType): Json => ({
  post: {
    summary,
    requestBody: body(s),
    responses: { '201': json(ref('Job'), 'Job created'), ...errors(400, 401, 404, 409) },
  },
});

export const SERVER_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Ferry backup server API',
    version: '1',
    description:
      'Backup, restore, verify and catalog rebuild jobs; backup sets, cartridges and volumes. ' +
      'Every call except this description needs `Authorization: Bearer <token>`. Errors are `{code, message}`.',
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: obj({ code: { type: 'string', examples: ['ERR_NOT_FOUND'] }, message: str }),
      Progress: obj({
        phase: state,
        waitingFor: { ...strOrNull, description: 'what the job waits for, in words' },
        bytesDone: int,
        bytesTotal: int,
        mbPerSecond: { type: 'number' },
        etaSeconds: { type: ['number', 'null'] },
        cartridge: strOrNull,
        lastWriteMsAgo: {
          ...intOrNull,
          description: "while waiting for quiet writes: ms since the volume's last write",
        },
      }),
      Job: obj({
        id: int,
        type: { enum: ['backup', 'restore', 'verify', 'rebuild', 'label'] },
        volume: strOrNull,
        state,
        createdAt: time,
        startedAt: timeOrNull,
        endedAt: timeOrNull,
        bytes: { ...int, description: 'bytes moved by the data mover' },
        set: intOrNull,
        mover: strOrNull,
        cartridge: strOrNull,
        error: { oneOf: [{ type: 'null' }, ref('Error')] },
        progress: ref('Progress'),
        result: { type: ['object', 'null'], description: 'e.g. {ok} for verify, {lun} for a restore to NODE:new' },
      }),
      Event: obj({
        id: int,
        job: int,
        at: time,
        kind: { enum: ['state', 'progress', 'log'] },
        state: { oneOf: [{ type: 'null' }, state] },
        message: str,
        data: { type: ['object', 'null'] },
      }),
      Set: obj({
        id: int,
        volume: str,
        mode: { enum: ['image', 'used', 'files'] },
        level: { enum: ['full', 'incremental'] },
        base: intOrNull,
        startedAt: time,
        endedAt: time,
        bytes: int,
        cartridges: { type: 'array', items: str, description: 'barcodes in piece order' },
        snapshot: str,
        reason: { ...strOrNull, description: 'why a requested incremental ran as a full' },
        protected: { type: 'boolean', description: 'never pruned' },
      }),
      Prune: obj({
        dryRun: { type: 'boolean' },
        expired: {
          type: 'array',
          items: obj({
            set: int,
            volume: str,
            mode: { enum: ['image', 'used', 'files'] },
            level: { enum: ['full', 'incremental'] },
            snapshotAt: time,
            pool: str,
            cartridges: { type: 'array', items: str },
          }),
        },
        kept: {
          type: 'array',
          items: obj({
            set: int,
            why: { ...str, description: 'the rule that keeps it, "base of set N" or "protected"' },
          }),
        },
        scratch: { type: 'array', items: str, description: 'cartridges that return to scratch' },
        unmanaged: { type: 'array', items: str, description: 'pools without retention rules (all kept)' },
      }),
      File: optional(
        obj({
          path: str,
          type: { enum: ['file', 'dir', 'symlink', 'reparse'] },
          size: int,
          record: int,
          links: int,
          streams: { type: 'array', items: obj({ name: str, size: int }) },
          resident: { type: 'boolean' },
          created: strOrNull,
          modified: strOrNull,
          changed: strOrNull,
          accessed: strOrNull,
          securityId: int,
          owner: { ...str, description: 'owner SID, when the descriptor resolves' },
          group: { ...str, description: 'group SID, when the descriptor resolves' },
          fileAttributes: int,
          set: { ...int, description: 'the set that holds the data' },
        }),
        ['securityId', 'owner', 'group'],
      ),
      Cartridge: obj({
        barcode: str,
        pool: strOrNull,
        library: strOrNull,
        state: { enum: ['blank', 'append', 'full', 'error'] },
        bytesUsed: int,
        sets: int,
        lastWrittenAt: timeOrNull,
        where: {
          ...strOrNull,
          description: '"slot 1025", "drive 256", "import/export element 768", "exported", or null when not known',
        },
        loadCount: { ...intOrNull, description: 'MAM LOAD COUNT at its last mount' },
        recycled: { type: 'boolean', description: 'its sets all expired: relabeled before its next set' },
      }),
      Drive: obj({
        name: { ...str, description: 'library/element, or the stand-alone drive' },
        library: strOrNull,
        element: intOrNull,
        cartridge: strOrNull,
        job: { ...intOrNull, description: 'the job that holds it' },
        pools: { type: 'array', items: str },
      }),
      Volume: obj({
        id: { ...str, description: 'NODE:LUN' },
        node: str,
        lun: int,
        sizeBytes: int,
        lastSet: intOrNull,
      }),
    },
  },
  paths: {
    '/v1/jobs/backup': startJob(
      'Back up a volume (snapshot after quiet writes, then EXTENDED COPY to tape)',
      StartBackupBody,
    ),
    '/v1/jobs/restore': startJob('Restore a set (and its chain) to a volume through a data mover', StartRestoreBody),
    '/v1/jobs/restore-files': startJob(
      "Restore files of a files set to a directory on the server's disk (the server reads those files' tape blocks, " +
        'in one pass)',
      StartFileRestoreBody,
    ),
    '/v1/jobs/verify': startJob('Verify a set: digests computed where the data lives, compared', StartVerifyBody),
    '/v1/jobs/rebuild': startJob('Rebuild the catalog from labels, headers and trailers on tape', StartRebuildBody),
    '/v1/jobs/label': startJob("Write a cartridge's label for a pool now", StartLabelBody),
    '/v1/jobs': {
      get: {
        summary: 'List jobs, newest first',
        parameters: queryParams(JobsQuery),
        responses: { '200': json({ type: 'array', items: ref('Job') }), ...errors(400, 401) },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        summary: 'One job',
        parameters: [idParam],
        responses: { '200': json(ref('Job')), ...errors(400, 401, 404) },
      },
    },
    '/v1/jobs/{id}/cancel': {
      post: {
        summary: 'Cancel a job that has not ended',
        parameters: [idParam],
        responses: { '200': json(ref('Job')), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/jobs/{id}/retry': {
      post: {
        summary: 'Start a failed or canceled job again, as a new job with the same request',
        parameters: [idParam],
        responses: { '201': json(ref('Job')), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/jobs/{id}/throughput': {
      get: {
        summary: "A job's MB/s over time: `[seconds since it started, MB/s]`, a point a second at most",
        parameters: [idParam],
        responses: {
          '200': json({
            type: 'array',
            items: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        summary: "A job's events after `after`; with `wait`, a long poll for the next one",
        parameters: [idParam, ...queryParams(EventsQuery)],
        responses: { '200': json({ type: 'array', items: ref('Event') }), ...errors(400, 401, 404) },
      },
    },
    '/v1/jobs/{id}/stream': {
      get: {
        summary: "A job's events as server-sent events; the stream ends after the job's final state",
        description:
          'Each event is `id: N` and `data: <Event JSON>`. Lines starting with `:` keep the connection alive.',
        parameters: [idParam, ...queryParams(StreamQuery)],
        responses: {
          '200': { description: 'Event stream', content: { 'text/event-stream': { schema: str } } },
          ...errors(400, 401, 404),
        },
      },
    },
    '/v1/sets': {
      get: {
        summary: 'Complete backup sets',
        parameters: queryParams(SetsQuery),
        responses: { '200': json({ type: 'array', items: ref('Set') }), ...errors(400, 401) },
      },
    },
    '/v1/sets/{id}': {
      get: {
        summary: 'One backup set',
        parameters: [idParam],
        responses: { '200': json(ref('Set')), ...errors(400, 401, 404) },
      },
    },
    '/v1/sets/{id}/files': {
      get: {
        summary: 'A directory of a files set (or one file), from the catalog alone',
        parameters: [idParam, ...queryParams(FilesQuery)],
        responses: { '200': json({ type: 'array', items: ref('File') }), ...errors(400, 401, 404) },
      },
    },
    '/v1/sets/{id}/find': {
      get: {
        summary: 'Entries of a files set whose name (or path) matches a glob',
        parameters: [idParam, ...queryParams(FindQuery)],
        responses: { '200': json({ type: 'array', items: ref('File') }), ...errors(400, 401, 404) },
      },
    },
    '/v1/sets/{id}/protect': {
      post: {
        summary: 'Exempt a set from pruning, or lift that',
        parameters: [idParam],
        requestBody: { required: true, content: { 'application/json': { schema: schemaOf(ProtectBody) } } },
        responses: { '200': json(ref('Set')), ...errors(400, 401, 404) },
      },
    },
    '/v1/prune': {
      post: {
        summary: "Expire the sets the pools' retention rules no longer keep (dryRun: only say which)",
        requestBody: { content: { 'application/json': { schema: schemaOf(PruneBody) } } },
        responses: { '200': json(ref('Prune')), ...errors(400, 401, 409) },
      },
    },
    '/v1/cartridges': {
      get: {
        summary: 'Cartridges',
        responses: { '200': json({ type: 'array', items: ref('Cartridge') }), ...errors(401) },
      },
    },
    '/v1/cartridges/{barcode}/export': {
      post: {
        summary: 'Move a cartridge to a free import/export element; no job uses it until it is imported',
        parameters: [barcodeParam],
        responses: { '200': json(ref('Cartridge')), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/cartridges/{barcode}/import': {
      post: {
        summary: 'Move a cartridge from an import/export element into a storage slot',
        parameters: [barcodeParam],
        responses: { '200': json(ref('Cartridge')), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/drives': {
      get: {
        summary: 'Drives: what each holds and which job has it',
        responses: { '200': json({ type: 'array', items: ref('Drive') }), ...errors(401, 409) },
      },
    },
    '/v1/volumes': {
      get: {
        summary: 'Volumes (NODE:LUN)',
        parameters: queryParams(VolumesQuery),
        responses: { '200': json({ type: 'array', items: ref('Volume') }), ...errors(401) },
      },
    },
    '/metrics': {
      get: {
        summary:
          'Prometheus metrics in the text format: jobs, durations, last success per volume, bytes moved, cartridges, ' +
          'drives; with every role in this process (ferry up), the iSCSI, LUN, EXTENDED COPY and quiesce ones too',
        responses: { '200': { description: 'text/plain; version=0.0.4' }, ...errors(401) },
      },
    },
    '/v1/schedules': {
      get: {
        summary:
          "The config's backup schedules: volume, mode, level, cron, fullEveryMs, pool, nextRun (ISO 8601) and what " +
          'the last run did',
        responses: { '200': json({ type: 'array', items: { type: 'object' } }), ...errors(401) },
      },
    },
  },
} as const;
