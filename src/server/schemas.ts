import { z } from 'zod';
import { JOB_STATES } from '../jobs/states.ts';
import { FerryError } from '../util/errors.ts';

// Request schemas of the REST API: the routes validate with them and the OpenAPI document
// is generated from them, so the two cannot disagree.

const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*:\d+$/;
const volume = z.string().regex(VOLUME_RE, 'expected NODE:LUN, e.g. store:0').describe('NODE:LUN, e.g. store:0');
const name = z.string().min(1).max(64);
const ms = z
  .number()
  .int()
  .min(0)
  .max(24 * 3600 * 1000);
const setId = z.number().int().positive().describe('backup set id');

export const StartBackupBody = z.strictObject({
  volume,
  mode: z.enum(['image', 'used', 'files']).optional(),
  level: z.enum(['full', 'incremental']).optional(),
  pool: name.optional(),
  mover: name.optional(),
  quietPeriodMs: ms.optional().describe('write pause the snapshot waits for (default from the config, 3000)'),
  timeoutMs: ms.optional().describe('give up waiting for the pause after this long (default 80000)'),
  verify: z.boolean().optional().describe('verify the set once written'),
});

export const StartRestoreBody = z.strictObject({
  set: setId,
  to: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*:(\d+|new)$/, 'expected NODE:LUN or NODE:new')
    .describe('NODE:LUN, or NODE:new to create a LUN through the node API'),
  force: z.boolean().optional().describe('restore into a smaller LUN or a source of the chain'),
  mover: name.optional(),
});

const filePath = z.string().min(1).max(32_767).describe('absolute path in the set, e.g. /docs/a.txt');

export const StartFileRestoreBody = z.strictObject({
  set: setId,
  files: z
    .array(filePath)
    .min(1, 'name at least one file')
    .max(10_000)
    .describe('files or directories (a directory brings its subtree)'),
  out: z.string().min(1).describe("directory on the server's disk, new or empty unless force"),
  force: z.boolean().optional().describe('write into a directory that is not empty'),
  streams: z.boolean().optional().describe('named streams as PATH:STREAM files (default true)'),
});

export const StartVerifyBody = z.strictObject({ set: setId });

export const StartLabelBody = z.strictObject({
  barcode: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'a barcode of letters, digits, "-" or "_"')
    .describe('the cartridge'),
  pool: name.optional().describe("the pool (default: the config's first)"),
  mover: name.optional(),
});

export const StartRebuildBody = z.strictObject({ library: name.optional().describe('only this library') });

export const JobsQuery = z.strictObject({
  state: z.enum(JOB_STATES).optional(),
  type: z.enum(['backup', 'restore', 'verify', 'rebuild', 'label']).optional(),
  volume: volume.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

/** Longest long poll a request may ask for. */
export const MAX_WAIT_SECONDS = 120;

export const EventsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional().describe('only events with a larger id'),
  wait: z.coerce
    .number()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .optional()
    .describe('seconds to wait for the next event when there is none yet (long poll)'),
});

export const StreamQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional().describe('skip events up to this id'),
});

export const SetsQuery = z.strictObject({ volume: volume.optional() });

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');

export const VolumesQuery = z.strictObject({
  discover: flag.optional().describe("also the disk LUNs the storage nodes serve now, not only the catalog's"),
});

export const FilesQuery = z.strictObject({
  path: filePath.optional().describe('a directory, or one file (default /)'),
  recursive: flag.optional().describe('the whole subtree'),
  system: flag.optional().describe('NTFS system files too ($MFT, $Extend …)'),
});

export const FindQuery = z.strictObject({
  pattern: z
    .string()
    .min(1)
    .max(1024)
    .describe('glob (*, ?, […]) on names, or on paths when it holds /; case-insensitive'),
});

export const IdParams = z.strictObject({ id: z.coerce.number().int().positive() });

export const BarcodeParams = z.strictObject({
  barcode: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'a barcode of letters, digits, "-" or "_"'),
});

export const PruneBody = z.strictObject({
  dryRun: z.boolean().optional().describe('say what would expire, change nothing'),
});

export const ProtectBody = z.strictObject({
  protected: z.boolean().describe('true: never pruned; false: pruned by the rules again'),
});

/** Validate `value` (where = body, query or path); the error names each bad field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const msg = r.error.issues
    .map((i) => {
      const at = [where, ...i.path.map(String)].join('.');
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${at}.${k}: not a known field`).join('; ');
      if (i.code === 'invalid_type' && i.input === undefined) return `${at}: missing (${i.message})`;
      return `${at}: ${i.message}`;
    })
    .join('; ');
  throw new FerryError('ERR_BAD_REQUEST', msg);
}
