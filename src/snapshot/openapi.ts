import { MAX_DIGEST_EXTENTS } from './node-control.ts';
import { DEFAULT_QUIESCE_TIMEOUT_MS, DEFAULT_QUIET_PERIOD_MS, MAX_QUIESCE_TIMEOUT_MS } from './quiesce.ts';

// OpenAPI 3.1 description of the storage node's management API (served at /openapi.json).

const error = { $ref: '#/components/schemas/Error' };
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'Error', content: { 'application/json': { schema: error } } }]));
const json = (schema: unknown, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const lunParam = { name: 'lun', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Ferry storage node management API',
    version: '1',
    description:
      'LUNs, copy-on-write snapshots taken after write inactivity, changed-block tracking and digests computed on the node. ' +
      'Every call except this description needs `Authorization: Bearer <token>`. Errors are `{code, message}`.',
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string', examples: ['ERR_QUIESCE_TIMEOUT'] }, message: { type: 'string' } },
      },
      Lun: {
        type: 'object',
        required: ['lun', 'kind', 'blockSize', 'blockCount', 'sizeBytes', 'readOnly', 'designator'],
        properties: {
          lun: { type: 'integer' },
          designator: { type: 'string', description: 'NAA designator (VPD 83h), hex' },
          kind: { enum: ['disk', 'snapshot'] },
          blockSize: { type: 'integer' },
          blockCount: { type: 'integer' },
          sizeBytes: { type: 'integer' },
          readOnly: { type: 'boolean' },
          snapshotId: { type: 'string' },
          sourceLun: { type: 'integer' },
        },
      },
      Snapshot: {
        type: 'object',
        required: ['id', 'lun', 'designator', 'sourceLun', 'takenAt', 'mode', 'waitedMs'],
        properties: {
          id: { type: 'string' },
          lun: { type: 'integer', description: "the snapshot's own read-only LUN (-1: unmapped, damaged)" },
          designator: { type: ['string', 'null'], description: "that LUN's NAA designator, hex" },
          sourceLun: { type: 'integer' },
          takenAt: { type: 'string', format: 'date-time' },
          mode: { enum: ['quiesced', 'crash-consistent', 'unknown'] },
          waitedMs: { type: ['integer', 'null'] },
          quietPeriodMs: { type: ['integer', 'null'] },
          timeoutMs: { type: ['integer', 'null'] },
          preservedChunks: { type: 'integer' },
          damaged: { type: 'string' },
        },
      },
      Changed: {
        type: 'object',
        required: ['granularity', 'blockSize', 'extents', 'tracking'],
        properties: {
          granularity: { type: 'integer', description: 'bytes per tracking granule' },
          blockSize: { type: 'integer' },
          since: { type: 'string' },
          until: { type: ['string', 'null'] },
          tracking: { enum: ['exact', 'lost'], description: 'lost: extents cover the whole LUN, back it up in full' },
          reason: { type: 'string' },
          extents: { type: 'array', items: { type: 'array', prefixItems: [{ type: 'integer' }, { type: 'integer' }], description: '[lba, blockCount]' } },
        },
      },
      Extent: {
        type: 'object',
        required: ['lba', 'blocks'],
        properties: { lba: { type: 'integer', minimum: 0 }, blocks: { type: 'integer', minimum: 1 } },
        additionalProperties: false,
      },
      Digest: {
        type: 'object',
        required: ['sha256', 'bytes'],
        properties: {
          sha256: { type: 'string', description: "hex SHA-256 of the extents' bytes concatenated in order" },
          bytes: { type: 'integer' },
        },
      },
      Activity: {
        type: 'object',
        required: ['lastWriteMsAgo'],
        properties: {
          lastWriteMsAgo: {
            type: ['integer', 'null'],
            description:
              'ms since the latest write reached the LUN; 0 while one is in flight; null: none since the node started',
          },
        },
      },
    },
  },
  paths: {
    '/v1/luns': {
      get: { summary: 'List LUNs (disks and snapshot LUNs)', responses: { '200': json({ type: 'array', items: { $ref: '#/components/schemas/Lun' } }), ...errors(401) } },
      post: {
        summary: 'Create a disk LUN',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['size'],
                properties: {
                  size: { oneOf: [{ type: 'integer' }, { type: 'string', examples: ['64M'] }] },
                  blockSize: { type: 'integer', description: "must be the node's block size" },
                },
              },
            },
          },
        },
        responses: { '201': json({ $ref: '#/components/schemas/Lun' }, 'Created'), ...errors(400, 401) },
      },
    },
    '/v1/luns/{lun}': {
      delete: {
        summary: 'Delete a disk LUN (it must have no snapshots)',
        parameters: [lunParam],
        responses: { '204': { description: 'Deleted' }, ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/luns/{lun}/snapshots': {
      post: {
        summary: 'Snapshot a disk LUN once no write has reached it for the quiet period',
        description: `Waits up to timeoutMs for a quietPeriodMs pause in writes (defaults ${DEFAULT_QUIET_PERIOD_MS} and ${DEFAULT_QUIESCE_TIMEOUT_MS} ms; timeout at most ${MAX_QUIESCE_TIMEOUT_MS} ms). quietPeriodMs 0 snapshots at once (crash-consistent). No pause in time: 409 ERR_QUIESCE_TIMEOUT and no snapshot. Another request for the same LUN in progress: 409 ERR_SNAPSHOT_IN_PROGRESS.`,
        parameters: [lunParam],
        requestBody: {
          content: {
            'application/json': {
              schema: { type: 'object', properties: { quietPeriodMs: { type: 'integer', minimum: 0 }, timeoutMs: { type: 'integer', minimum: 0, maximum: MAX_QUIESCE_TIMEOUT_MS } } },
            },
          },
        },
        responses: { '201': json({ $ref: '#/components/schemas/Snapshot' }, 'Created'), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/luns/{lun}/changed': {
      get: {
        summary: 'Extents of the LUN changed after snapshot `since` and before snapshot `until` (or now)',
        parameters: [lunParam, { name: 'since', in: 'query', required: true, schema: { type: 'string' } }, { name: 'until', in: 'query', schema: { type: 'string' } }],
        responses: { '200': json({ $ref: '#/components/schemas/Changed' }), ...errors(400, 401, 404) },
      },
    },
    '/v1/luns/{lun}/digest': {
      post: {
        summary: "SHA-256 of extents of any LUN (snapshots included), computed on the node",
        description:
          "The extents' bytes are hashed in the order given, read in pieces of at most 4 MiB. " +
          `At most ${MAX_DIGEST_EXTENTS} extents. An extent past the LUN's end: 400 ERR_RANGE.`,
        parameters: [lunParam],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['extents'],
                properties: {
                  extents: {
                    type: 'array',
                    maxItems: MAX_DIGEST_EXTENTS,
                    items: { $ref: '#/components/schemas/Extent' },
                  },
                },
              },
            },
          },
        },
        responses: { '200': json({ $ref: '#/components/schemas/Digest' }), ...errors(400, 401, 404, 413) },
      },
    },
    '/v1/luns/{lun}/activity': {
      get: {
        summary: 'How long ago the latest write reached the LUN (what a job waiting for quiet writes shows)',
        parameters: [lunParam],
        responses: { '200': json({ $ref: '#/components/schemas/Activity' }), ...errors(400, 401, 404) },
      },
    },
    '/v1/snapshots': {
      get: {
        summary: 'List snapshots',
        parameters: [{ name: 'lun', in: 'query', schema: { type: 'integer' }, description: 'only of this disk LUN' }],
        responses: {
          '200': json({ type: 'array', items: { $ref: '#/components/schemas/Snapshot' } }),
          ...errors(400, 401, 404),
        },
      },
    },
    '/v1/snapshots/{id}': {
      get: { summary: 'One snapshot', parameters: [idParam], responses: { '200': json({ $ref: '#/components/schemas/Snapshot' }), ...errors(401, 404) } },
      delete: { summary: 'Unmap and delete a snapshot', parameters: [idParam], responses: { '204': { description: 'Deleted' }, ...errors(401, 404) } },
    },
  },
} as const;
