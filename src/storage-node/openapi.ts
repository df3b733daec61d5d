import { MAX_DIGEST_EXTENTS } from './node-control.ts';
import { MAX_TAPE_DIGEST_PIECES } from '../tape/digest.ts';
import { DEFAULT_QUIESCE_TIMEOUT_MS, DEFAULT_QUIET_PERIOD_MS, MAX_QUIESCE_TIMEOUT_MS } from '../snapshot/quiesce.ts';

// OpenAPI 3.1 description of the storage node's management API (served at /openapi.json).

const error = { $ref: '#/components/schemas/Error' };
const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: 'Error', content: { 'application/json': { schema: error } } }]),
  );
const json = (schema: unknown, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const lunParam = { name: 'lun', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Ferry storage node management API',
    version: '1',
    description:
      'LUNs, redirect-on-write snapshots taken after write inactivity, changed-block tracking and digests ' +
      'computed on the ' +
      'node; ' +
      'on a node that serves tapes, digests of cartridge blocks read on the node. ' +
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
        required: ['id', 'lun', 'designator', 'sourceLun', 'takenAt', 'mode', 'waitedMs', 'changeId'],
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
          changeId: {
            type: 'string',
            description: 'the change id of its instant: `changed?since=` takes it, also after the snapshot is deleted',
          },
          damaged: { type: 'string' },
        },
      },
      ChangeMark: {
        type: 'object',
        required: ['changeId', 'lun', 'startedAt'],
        properties: {
          changeId: { type: 'string' },
          lun: { type: 'integer' },
          startedAt: { type: 'string', format: 'date-time' },
        },
      },
      ChangeTracking: {
        type: 'object',
        required: ['lun', 'granularity', 'maxEpochs', 'bytes', 'epochs'],
        properties: {
          lun: { type: 'integer' },
          granularity: { type: 'integer', description: 'bytes per tracking granule' },
          maxEpochs: { type: 'integer', description: 'epochs kept before the two oldest are merged' },
          bytes: { type: 'integer', description: 'bytes of change bitmaps on the node for this LUN' },
          epochs: {
            type: 'array',
            description: 'oldest first; the last one is open',
            items: {
              type: 'object',
              required: ['changeId', 'startedAt', 'snapshotId', 'merged', 'lost'],
              properties: {
                changeId: { type: 'string' },
                startedAt: { type: 'string', format: 'date-time' },
                snapshotId: {
                  type: ['string', 'null'],
                  description: 'the snapshot whose creation started it (its id names this change id)',
                },
                merged: {
                  type: 'array',
                  items: { type: 'string' },
                  description: 'ids of younger epochs folded into this one',
                },
                lost: { type: ['string', 'null'], description: 'why changes through this epoch are lost' },
              },
            },
          },
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
          extents: {
            type: 'array',
            items: {
              type: 'array',
              prefixItems: [{ type: 'integer' }, { type: 'integer' }],
              description: '[lba, blockCount]',
            },
          },
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
      TapeDigestPiece: {
        type: 'object',
        required: ['fromBlock', 'blocks', 'bytes'],
        description: 'A range of one cartridge: name it by exactly one of barcode and lun.',
        properties: {
          barcode: {
            type: 'string',
            description: "a library cartridge's barcode (in a slot or a drive), or a stand-alone drive's cartridge",
          },
          lun: { type: 'integer', minimum: 0, description: 'or: the cartridge in the tape drive at this LUN' },
          fromBlock: {
            type: 'integer',
            minimum: 0,
            description: 'logical block id (SSC logical object identifier) of the first data block',
          },
          blocks: { type: 'integer', minimum: 0, description: 'data blocks in the range; none may be a filemark' },
          bytes: {
            type: 'integer',
            minimum: 0,
            description: 'bytes of the range that count, from its first byte (at most what the blocks hold)',
          },
        },
        additionalProperties: false,
      },
      TapeDigest: {
        type: 'object',
        required: ['sha256', 'bytes', 'pieces'],
        properties: {
          sha256: {
            type: 'string',
            description: "hex SHA-256 of every piece's bytes, concatenated in the order given",
          },
          bytes: { type: 'integer' },
          pieces: {
            type: 'array',
            items: {
              type: 'object',
              required: ['barcode', 'bytes'],
              properties: { barcode: { type: 'string' }, bytes: { type: 'integer' } },
            },
          },
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
      get: {
        summary: 'List LUNs (disks and snapshot LUNs)',
        responses: { '200': json({ type: 'array', items: { $ref: '#/components/schemas/Lun' } }), ...errors(401) },
      },
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
        description:
          `Waits up to timeoutMs for a quietPeriodMs pause in writes (defaults ${DEFAULT_QUIET_PERIOD_MS} ` +
          `and ${DEFAULT_QUIESCE_TIMEOUT_MS} ms; timeout at most ${MAX_QUIESCE_TIMEOUT_MS} ms). quietPeriodMs 0 ` +
          `snapshots at once (crash-consistent). No pause in time: 409 ERR_QUIESCE_TIMEOUT and no snapshot. Another ` +
          `request for the same LUN in progress: 409 ERR_SNAPSHOT_IN_PROGRESS.`,
        parameters: [lunParam],
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  quietPeriodMs: { type: 'integer', minimum: 0 },
                  timeoutMs: { type: 'integer', minimum: 0, maximum: MAX_QUIESCE_TIMEOUT_MS },
                },
              },
            },
          },
        },
        responses: { '201': json({ $ref: '#/components/schemas/Snapshot' }, 'Created'), ...errors(400, 401, 404, 409) },
      },
    },
    '/v1/luns/{lun}/changed': {
      get: {
        summary: 'Extents of the LUN changed after change id `since` and before change id `until` (or now)',
        description:
          'A snapshot id names the change id its creation started, also once the snapshot is deleted. An unknown id: ' +
          '404 ERR_CHANGE_ID_NOT_FOUND.',
        parameters: [
          lunParam,
          { name: 'since', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'until', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json({ $ref: '#/components/schemas/Changed' }), ...errors(400, 401, 404) },
      },
    },
    '/v1/luns/{lun}/changes/mark': {
      post: {
        summary: 'Start a change-tracking epoch on a disk LUN without a snapshot',
        description:
          'Writes in flight finish before it; writes arriving later wait until it has started. Returns its change id.',
        parameters: [lunParam],
        responses: { '201': json({ $ref: '#/components/schemas/ChangeMark' }, 'Created'), ...errors(400, 401, 404) },
      },
    },
    '/v1/luns/{lun}/changes': {
      get: {
        summary: "A disk LUN's change-tracking epochs and the space their bitmaps take",
        parameters: [lunParam],
        responses: { '200': json({ $ref: '#/components/schemas/ChangeTracking' }), ...errors(400, 401, 404) },
      },
    },
    '/v1/luns/{lun}/digest': {
      post: {
        summary: 'SHA-256 of extents of any LUN (snapshots included), computed on the node',
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
    '/v1/tapes/digest': {
      post: {
        summary:
          'SHA-256 of cartridge data blocks, read on the node that serves the tapes (verify where the data lives)',
        description:
          'For each piece in order: the first `bytes` bytes of the `blocks` data blocks from logical block id ' +
          '`fromBlock` of its cartridge; ' +
          'one SHA-256 over all of them, so a backup set that spans cartridges is one digest of its whole data ' +
          'stream ' +
          '(docs/on-tape-format.md "Verify"). Each cartridge is read from its file on its own read-only handle, ' +
          'whether it sits in a slot or in a drive: ' +
          'a drive that holds it is not disturbed. The caller keeps writers off the cartridges while it asks. ' +
          `At most ${MAX_TAPE_DIGEST_PIECES} pieces. A range past the end of data, over a filemark, of blocks other ` +
          `than blockBytes long, or holding fewer than bytes: 400 ERR_RANGE. ` +
          'An unknown cartridge, or a node that serves no tapes: 404 ERR_NOT_FOUND.',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['pieces'],
                properties: {
                  pieces: {
                    type: 'array',
                    minItems: 1,
                    maxItems: MAX_TAPE_DIGEST_PIECES,
                    items: { $ref: '#/components/schemas/TapeDigestPiece' },
                  },
                  blockBytes: {
                    type: 'integer',
                    minimum: 1,
                    description: 'every block read must be this long (the tape block size)',
                  },
                },
                additionalProperties: false,
              },
            },
          },
        },
        responses: { '200': json({ $ref: '#/components/schemas/TapeDigest' }), ...errors(400, 401, 404, 413) },
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
      get: {
        summary: 'One snapshot',
        parameters: [idParam],
        responses: { '200': json({ $ref: '#/components/schemas/Snapshot' }), ...errors(401, 404) },
      },
      delete: {
        summary: 'Unmap and delete a snapshot',
        parameters: [idParam],
        responses: { '204': { description: 'Deleted' }, ...errors(401, 404) },
      },
    },
  },
} as const;
