import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { FORMAT_VERSION, type RecordKind } from './magic.ts';
import { isValidTapeBlockBytes } from './geometry.ts';
import { TapeFormatError } from './errors.ts';
import type { PlanFile } from '../ntfs/plan-document.ts';

// The JSON bodies of the three record kinds (docs/on-tape-format.md "Record bodies").
// Each interface has a zod schema beside it; encode and decode both go through the schema,
// so Ferry never writes a record it would refuse to read.

export type Mode = 'image' | 'used' | 'files';
export type Level = 'full' | 'incremental';

/** First file of a cartridge (docs "Volume label"). */
export interface VolumeLabel {
  kind: 'label';
  cartridgeUuid: string;
  barcode: string;
  pool: string;
  formatVersion: number;
  /** ISO 8601 */
  createdAt: string;
  tapeBlockBytes: number;
}

/** A run of disk blocks in the set's data stream (docs "Set header"). */
export interface Extent {
  lba: number;
  blocks: number;
  /** Byte offset of this extent in the set's data stream. */
  streamOffset: number;
}

/** Opens each piece of a set on a cartridge (docs "Set header", "Spanning"). */
export interface SetHeader {
  kind: 'header';
  setId: number;
  setUuid: string;
  jobId: number;
  /** 1 = first piece; > 1 = continuation on another cartridge. */
  sequence: number;
  volume: { name: string; /** NAA designator, hex */ designator: string };
  snapshot: { id: string; takenAt: string };
  mode: Mode;
  level: Level;
  baseSetId: number | null;
  baseSetUuid: string | null;
  diskBlockBytes: number;
  volumeBlocks: number;
  tapeBlockBytes: number;
  /** The whole set's extents, in stream order, on every piece. */
  extents: Extent[];
  /** This piece: stream byte `streamStart` is the first byte of tape block `dataBlockId`. */
  piece: { streamStart: number; dataBlockId: number };
  startedAt: string;
  reason?: string;
}

/** Closes each piece of a set (docs "Set trailer"). */
export interface SetTrailer {
  kind: 'trailer';
  setId: number;
  setUuid: string;
  sequence: number;
  /** Stream bytes [streamStart, streamEnd) are in this piece's `dataBlocks` blocks. */
  piece: { streamStart: number; streamEnd: number; dataBlocks: number };
  /** The whole set's stream length. */
  streamBytes: number;
  /** True only on the last piece. */
  complete: boolean;
  endedAt: string;
  digests: { sha256: string | null };
  /**
   * Files sets, last piece only: the file index, gzip of its JSON in base64 (docs "File index"; fileIndexText /
   * decodeFileIndex).
   */
  fileIndex?: string;
}

/**
 * One stream ($DATA attribute) of an indexed file: resident with its whole attribute record, or non-resident with runs.
 */
export interface IndexAttribute {
  type: number;
  name: string;
  resident: boolean;
  /** Bytes of data (the value's length when resident). */
  size: number;
  /** Resident: the attribute record (header and value), base64; the value starts at `valueOffset`. */
  bytes?: string;
  valueOffset?: number;
  flags?: number;
  compressionUnit?: number;
  allocatedSize?: number;
  initializedSize?: number;
  /** Non-resident: [vcn, clusters, lba] (lba null for a sparse run), lba in disk blocks. */
  runs?: [number, number, number | null][];
  /** Non-resident: where each run's first byte lies on tape, [sequence, blockId, offset]; null for a sparse run. */
  tape?: ([number, number, number] | null)[];
}

/**
 * One file (MFT base record) of a files set: its plan entry (`ferry ntfs plan`, docs/ntfs.md) with its streams only.
 */
export interface IndexFile extends Omit<PlanFile, 'attributes'> {
  attributes: IndexAttribute[];
  /** Incremental sets: the earlier set of the chain that holds this unchanged file's blocks. */
  dataSet?: number;
  /** Owner and group SIDs (S-1-…) of the file's descriptor in $Secure, when it resolves. */
  owner?: string;
  group?: string;
}

/** The file index a files set carries in its last trailer (docs "File index"). */
export interface FileIndex {
  clusterSize: number;
  sectorSize: number;
  clusterCount: number;
  serial: string;
  /** Records the backup could not read, each with why. */
  skipped: { record?: number; path?: string; code: string; message: string }[];
  files: IndexFile[];
  /** Incremental sets: paths in the base set that are gone. */
  deleted?: string[];
}

export type TapeRecord = VolumeLabel | SetHeader | SetTrailer;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** NAA designator: 8 bytes (types 2, 3, 5) or 16 bytes (type 6), SPC-4 7.8.6.6. */
const NAA = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/i;
const MAX_DISK_BLOCK_BYTES = 1024 * 1024;

const uint = z.int().nonnegative();
const uuid = z.string().regex(UUID, 'not a UUID');
const isoTime = z.iso.datetime({ offset: true });
const tapeBlockBytes = z.int().refine(isValidTapeBlockBytes, 'not a multiple of 512 from 512 to 16 MiB');
const text = z.string().min(1);

export const volumeLabelSchema = z.object({
  kind: z.literal('label'),
  cartridgeUuid: uuid,
  barcode: z.string().regex(/^[\x20-\x7e]{1,32}$/, '1 to 32 printable ASCII characters'),
  pool: text,
  formatVersion: z.literal(FORMAT_VERSION),
  createdAt: isoTime,
  tapeBlockBytes,
}) satisfies z.ZodType<VolumeLabel>;

const extentSchema = z.object({ lba: uint, blocks: z.int().positive(), streamOffset: uint });

export const setHeaderSchema = z
  .object({
    kind: z.literal('header'),
    setId: uint,
    setUuid: uuid,
    jobId: uint,
    sequence: z.int().positive(),
    volume: z.object({ name: text, designator: z.string().regex(NAA, 'not an NAA designator in hex') }),
    snapshot: z.object({ id: text, takenAt: isoTime }),
    mode: z.enum(['image', 'used', 'files']),
    level: z.enum(['full', 'incremental']),
    baseSetId: uint.nullable(),
    baseSetUuid: uuid.nullable(),
    diskBlockBytes: z
      .int()
      .refine((n) => n >= 512 && n <= MAX_DISK_BLOCK_BYTES && n % 512 === 0, 'not a multiple of 512 up to 1 MiB'),
    volumeBlocks: uint,
    tapeBlockBytes,
    extents: z.array(extentSchema),
    piece: z.object({ streamStart: uint, dataBlockId: uint }),
    startedAt: isoTime,
    reason: z.string().optional(),
  })
  .superRefine((h, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (h.level === 'full' && (h.baseSetId !== null || h.baseSetUuid !== null)) {
      issue(['baseSetId'], 'a full set has no base set');
    }
    if (h.level === 'incremental' && (h.baseSetId === null || h.baseSetUuid === null)) {
      issue(['baseSetId'], 'an incremental set names its base set (baseSetId and baseSetUuid)');
    }
    // Extents are packed contiguously from stream offset 0 (docs "Data blocks").
    let streamEnd = 0;
    h.extents.forEach((e, i) => {
      if (e.lba + e.blocks > h.volumeBlocks) {
        issue(['extents', i, 'blocks'], `extent ends past volumeBlocks ${h.volumeBlocks}`);
      }
      if (e.streamOffset !== streamEnd) {
        issue(['extents', i, 'streamOffset'], `expected ${streamEnd} (extents are contiguous)`);
      }
      streamEnd = e.streamOffset + e.blocks * h.diskBlockBytes;
      if (!Number.isSafeInteger(streamEnd)) issue(['extents', i, 'blocks'], 'stream offset exceeds 2^53');
    });
    const start = h.piece.streamStart;
    if (h.sequence === 1 && start !== 0) issue(['piece', 'streamStart'], 'the first piece (sequence 1) starts at 0');
    if (start > streamEnd) issue(['piece', 'streamStart'], `past the end of the stream (${streamEnd})`);
    if (start % h.diskBlockBytes !== 0) issue(['piece', 'streamStart'], 'not on a disk block boundary');
  }) satisfies z.ZodType<SetHeader>;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');
const msOrNull = z.number().nullable();

const indexAttributeSchema = z.object({
  type: uint,
  name: z.string(),
  resident: z.boolean(),
  size: uint,
  bytes: base64.optional(),
  valueOffset: uint.optional(),
  flags: uint.optional(),
  compressionUnit: uint.optional(),
  allocatedSize: uint.optional(),
  initializedSize: uint.optional(),
  runs: z.array(z.tuple([uint, z.int().positive(), uint.nullable()])).optional(),
  tape: z.array(z.tuple([z.int().positive(), uint, uint]).nullable()).optional(),
}) satisfies z.ZodType<IndexAttribute>;

const indexFileSchema = z.object({
  record: uint,
  seq: uint,
  path: z.string().nullable(),
  type: z.enum(['file', 'dir', 'symlink', 'reparse']),
  names: z.array(z.object({ parent: uint, name: z.string(), namespace: uint })),
  fileAttributes: uint,
  securityId: uint.nullable(),
  createdMs: msOrNull,
  modifiedMs: msOrNull,
  changedMs: msOrNull,
  accessedMs: msOrNull,
  attributes: z.array(indexAttributeSchema),
  dataSet: uint.optional(),
  owner: z
    .string()
    .regex(/^S-1-[\d-]+$/, 'not a SID')
    .optional(),
  group: z
    .string()
    .regex(/^S-1-[\d-]+$/, 'not a SID')
    .optional(),
}) satisfies z.ZodType<IndexFile>;

export const fileIndexSchema = z.object({
  clusterSize: z.int().positive(),
  sectorSize: z.int().positive(),
  clusterCount: uint,
  serial: z.string(),
  skipped: z.array(
    z.object({ record: uint.optional(), path: z.string().optional(), code: z.string(), message: z.string() }),
  ),
  files: z.array(indexFileSchema),
  deleted: z.array(z.string()).optional(),
}) satisfies z.ZodType<FileIndex>;

export const setTrailerSchema = z
  .object({
    kind: z.literal('trailer'),
    setId: uint,
    setUuid: uuid,
    sequence: z.int().positive(),
    piece: z.object({ streamStart: uint, streamEnd: uint, dataBlocks: uint }),
    streamBytes: uint,
    complete: z.boolean(),
    endedAt: isoTime,
    digests: z.object({
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'not 64 lower-case hex digits')
        .nullable(),
    }),
    fileIndex: base64.optional(),
  })
  .superRefine((t, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const p = t.piece;
    if (t.sequence === 1 && p.streamStart !== 0) {
      issue(['piece', 'streamStart'], 'the first piece (sequence 1) starts at 0');
    }
    if (p.streamEnd < p.streamStart) issue(['piece', 'streamEnd'], 'before piece.streamStart');
    if (p.streamEnd > t.streamBytes) issue(['piece', 'streamEnd'], 'past streamBytes');
    if (t.complete && p.streamEnd !== t.streamBytes) issue(['complete'], 'a complete set ends at streamBytes');
    if (p.dataBlocks > 0 !== p.streamEnd > p.streamStart) {
      issue(['piece', 'dataBlocks'], 'zero exactly when the piece holds no data');
    }
    if (t.fileIndex !== undefined && !t.complete)
      issue(['fileIndex'], 'only the last piece (complete) carries the file index');
  }) satisfies z.ZodType<SetTrailer>;

/** Largest file index JSON a reader inflates (the same bound as a record's JSON). */
const MAX_INDEX_JSON_BYTES = 256 * 1024 * 1024;

/** A file index as a trailer carries it: validated, JSON, gzip (RFC 1952), base64. */
export function fileIndexText(index: FileIndex): string {
  const r = fileIndexSchema.safeParse(index);
  if (!r.success)
    throw new TapeFormatError(
      'bad-field',
      `file index: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`,
      { field: 'fileIndex' },
    );
  const json = Buffer.from(JSON.stringify(r.data));
  if (json.length > MAX_INDEX_JSON_BYTES)
    throw new TapeFormatError('bad-prefix', `file index JSON is ${json.length} bytes, over ${MAX_INDEX_JSON_BYTES}`);
  return gzipSync(json).toString('base64');
}

/** The file index of a trailer's `fileIndex`; throws TapeFormatError naming what is wrong. */
export function decodeFileIndex(text: string): FileIndex {
  let json: Buffer;
  try {
    json = gunzipSync(Buffer.from(text, 'base64'), { maxOutputLength: MAX_INDEX_JSON_BYTES });
  } catch (e) {
    throw new TapeFormatError(
      'bad-field',
      `set trailer fileIndex: not gzip of at most ${MAX_INDEX_JSON_BYTES} bytes (${(e as Error).message})`,
      { field: 'fileIndex' },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch (e) {
    throw new TapeFormatError('bad-json', `set trailer fileIndex: not JSON (${(e as Error).message})`, {
      field: 'fileIndex',
    });
  }
  const r = fileIndexSchema.safeParse(value);
  if (!r.success)
    throw new TapeFormatError(
      'bad-field',
      `set trailer fileIndex: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`,
      { field: 'fileIndex' },
    );
  return r.data;
}

const SCHEMAS = { label: volumeLabelSchema, header: setHeaderSchema, trailer: setTrailerSchema } as const;

export const KIND_NAMES: Readonly<Record<RecordKind, string>> = {
  label: 'volume label',
  header: 'set header',
  trailer: 'set trailer',
};

/** Check `value` against the schema of `kind`; throws TapeFormatError('bad-field') naming the field. */
export function validateRecord(kind: RecordKind, value: unknown): TapeRecord {
  const r = SCHEMAS[kind].safeParse(value);
  if (r.success) return r.data as TapeRecord;
  const issues = r.error.issues;
  const field = issues[0].path.join('.') || '(root)';
  const msg = issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  throw new TapeFormatError('bad-field', `${KIND_NAMES[kind]}: ${msg}${more}`, { field });
}
