import { NumberTable } from './columns.ts';
import { HOLE, RunCol } from './data-runs.ts';
import { AttrTypeName, decodeUtf16 } from './record.ts';
import type { SkippedRecord } from './tree.ts';
import { ReparseTag } from './values.ts';
import { SystemRecord, type Volume } from './volume.ts';
import {
  PLAN_VERSION,
  type PlanAttribute,
  type PlanFile,
  type NtfsPlan,
  type UsedPlan,
  type PlanBytes,
} from './plan-document.ts';

// Columns of the in-memory plan: one NumberTable row per file, name, attribute, attribute record
// (header) and run, instead of ~200,000 objects the garbage collector would trace.
export const F_WIDTH = 14;

export const F = {
  RECORD: 0,
  SEQ: 1,
  TYPE: 2,
  FILE_ATTRIBUTES: 3,
  HAS_SI: 4,
  CREATED: 5,
  MODIFIED: 6,
  CHANGED: 7,
  ACCESSED: 8,
  ATTR_START: 9,
  ATTR_END: 10,
  NAME_START: 11,
  NAME_END: 12,
  SECURITY_ID: 13,
} as const;

export const A_WIDTH = 12;

export const A = {
  TYPE: 0,
  RESIDENT: 1,
  SIZE: 2,
  FLAGS: 3,
  COMPRESSION_UNIT: 4,
  ALLOCATED: 5,
  INITIALIZED: 6,
  VALUE_OFFSET: 7,
  HEADER_START: 8,
  HEADER_END: 9,
  RUN_START: 10,
  RUN_END: 11,
} as const;

export const N = { PARENT: 0, NAMESPACE: 1, BUFFER: 2, OFFSET: 3, LENGTH: 4 } as const;

export const H = { BUFFER: 0, OFFSET: 1, LENGTH: 2 } as const;

const FILE_TYPES = ['file', 'dir', 'symlink', 'reparse'] as const;

const TypeCode = { file: 0, dir: 1, symlink: 2, reparse: 3 } as const;

export function typeCode(isDirectory: boolean, reparseTag: number | undefined): number {
  if (reparseTag !== undefined)
    return reparseTag === ReparseTag.SYMLINK
      ? TypeCode.symlink
      : isDirectory && reparseTag !== ReparseTag.MOUNT_POINT
        ? TypeCode.dir
        : TypeCode.reparse;
  return isDirectory ? TypeCode.dir : TypeCode.file;
}

/**
 * The file-level backup plan in columns. `file(i)` gives one file as a document object;
 * planToJson writes the whole plan without holding every file object at once.
 */
export class FilePlan {
  readonly version = PLAN_VERSION;
  readonly blockSize: number;
  readonly clusterSize: number;
  readonly sectorSize: number;
  readonly clusterCount: number;
  readonly serial: string;
  /** Every block the file-level backup reads: [lba, blockCount], sorted and merged. */
  readonly extents: [number, number][];
  readonly used: UsedPlan;
  readonly skipped: SkippedRecord[];
  private readonly t: PlanTables;
  /** File rows kept, in record order. */
  private readonly rows: number[];
  /** Paths by record, made when first asked for (directories once). */
  private readonly paths: (string | null | undefined)[];

  constructor(
    vol: Volume,
    blockSize: number,
    t: PlanTables,
    rows: number[],
    extents: [number, number][],
    used: UsedPlan,
    skipped: SkippedRecord[],
  ) {
    this.blockSize = blockSize;
    this.clusterSize = vol.geo.clusterSize;
    this.sectorSize = vol.geo.bytesPerSector;
    this.clusterCount = vol.geo.clusterCount;
    this.serial = vol.geo.serial;
    this.t = t;
    this.rows = rows;
    this.paths = new Array<string | null | undefined>(t.reach.length);
    this.paths[SystemRecord.ROOT] = '/';
    this.extents = extents;
    this.used = used;
    this.skipped = skipped;
  }

  get fileCount(): number {
    return this.rows.length;
  }

  /** Bytes of every resident attribute value. */
  residentBytes(): number {
    const { files, attrs } = this.t;
    let sum = 0;
    for (const r of this.rows) {
      for (let k = files.get(r, F.ATTR_START); k < files.get(r, F.ATTR_END); k++)
        if (attrs.get(k, A.RESIDENT)) sum += attrs.get(k, A.SIZE);
    }
    return sum;
  }

  /** File `i` (0..fileCount-1) as a document object; bytes as views of the $MFT read, or base64. */
  file(i: number, base64 = false): PlanFile {
    const { files, names, attrs } = this.t;
    const r = this.rows[i];
    const hasSi = files.get(r, F.HAS_SI) === 1;
    const out: PlanFile = {
      record: files.get(r, F.RECORD),
      seq: files.get(r, F.SEQ),
      path: this.pathOf(files.get(r, F.RECORD)),
      type: FILE_TYPES[files.get(r, F.TYPE)],
      names: [],
      fileAttributes: files.get(r, F.FILE_ATTRIBUTES),
      securityId: hasSi && files.get(r, F.SECURITY_ID) >= 0 ? files.get(r, F.SECURITY_ID) : null,
      createdMs: hasSi ? files.get(r, F.CREATED) : null,
      modifiedMs: hasSi ? files.get(r, F.MODIFIED) : null,
      changedMs: hasSi ? files.get(r, F.CHANGED) : null,
      accessedMs: hasSi ? files.get(r, F.ACCESSED) : null,
      attributes: [],
    };
    for (let k = files.get(r, F.NAME_START); k < files.get(r, F.NAME_END); k++)
      out.names.push({ parent: names.get(k, N.PARENT), name: this.t.name(k), namespace: names.get(k, N.NAMESPACE) });
    for (let k = files.get(r, F.ATTR_START); k < files.get(r, F.ATTR_END); k++)
      out.attributes.push(this.attribute(k, attrs, base64));
    return out;
  }

  /** Absolute path of record `n` through its first non-DOS names; null when its chain does not reach the root. */
  private pathOf(n: number): string | null {
    const { reach, parentRec, primaryName } = this.t;
    const paths = this.paths;
    if (reach[n] !== Reach.YES) return null;
    const known = paths[n];
    if (known !== undefined) return known;
    const chain: number[] = [];
    // ends at the root: reach checked it
    for (let cur = n; paths[cur] === undefined; cur = parentRec[cur]) chain.push(cur);
    for (let i = chain.length - 1; i >= 0; i--) {
      const c = chain[i];
      const parent = paths[parentRec[c]];
      paths[c] = `${parent === '/' ? '' : (parent as string)}/${this.t.name(primaryName[c])}`;
    }
    return paths[n] as string;
  }

  *files(base64 = false): Generator<PlanFile> {
    for (let i = 0; i < this.rows.length; i++) yield this.file(i, base64);
  }

  private header(k: number, base64: boolean): PlanBytes {
    const { headers, buffers } = this.t;
    const buf = buffers[headers.get(k, H.BUFFER)];
    const at = headers.get(k, H.OFFSET);
    const len = headers.get(k, H.LENGTH);
    return base64 ? Buffer.from(buf.buffer, buf.byteOffset + at, len).toString('base64') : buf.subarray(at, at + len);
  }

  private attribute(k: number, attrs: NumberTable, base64: boolean): PlanAttribute {
    const type = attrs.get(k, A.TYPE);
    const typeName = AttrTypeName[type] ?? `0x${type.toString(16)}`;
    const name = this.t.attrNames.get(k) ?? '';
    const size = attrs.get(k, A.SIZE);
    const h0 = attrs.get(k, A.HEADER_START);
    if (attrs.get(k, A.RESIDENT))
      return {
        type,
        typeName,
        name,
        resident: true,
        size,
        bytes: this.header(h0, base64),
        valueOffset: attrs.get(k, A.VALUE_OFFSET),
      };
    const headers: PlanBytes[] = [];
    for (let h = h0; h < attrs.get(k, A.HEADER_END); h++) headers.push(this.header(h, base64));
    const runs: [number, number, number | null][] = [];
    const bpc = this.clusterSize / this.blockSize;
    const rt = this.t.runs;
    for (let j = attrs.get(k, A.RUN_START); j < attrs.get(k, A.RUN_END); j++) {
      const lcn = rt.get(j, RunCol.LCN);
      runs.push([rt.get(j, RunCol.VCN), rt.get(j, RunCol.LENGTH), lcn === HOLE ? null : lcn * bpc]);
    }
    return {
      type,
      typeName,
      name,
      resident: false,
      size,
      flags: attrs.get(k, A.FLAGS),
      compressionUnit: attrs.get(k, A.COMPRESSION_UNIT),
      allocatedSize: attrs.get(k, A.ALLOCATED),
      initializedSize: attrs.get(k, A.INITIALIZED),
      headers,
      runs,
    };
  }

  /** The whole plan as one document object (bytes as views). */
  toDocument(): NtfsPlan {
    const { version, blockSize, clusterSize, sectorSize, clusterCount, serial, extents, used, skipped } = this;
    return {
      version,
      blockSize,
      clusterSize,
      sectorSize,
      clusterCount,
      serial,
      files: [...this.files()],
      extents,
      used,
      skipped,
    };
  }
}

/** Whether a record's parent chain reaches the root (Reach.YES: it has a path). */
export const Reach = { UNKNOWN: 0, YES: 1, NO: 2 } as const;

export class PlanTables {
  files: NumberTable;
  /** $FILE_NAMEs; the name itself stays UTF-16 in `buffers` until asked for. */
  names: NumberTable;
  attrs: NumberTable;
  headers: NumberTable;
  runs: NumberTable;
  /** Names of the named attributes, by attribute row. */
  attrNames = new Map<number, string>();
  /** $MFT batches (and extension records, and names of flattened files) the rows point into. */
  buffers: Uint8Array[] = [];
  /** Per record: parent record and name row through its first non-DOS name (-1: none), and Reach. */
  parentRec: Float64Array;
  primaryName: Int32Array;
  reach: Uint8Array;

  constructor(recordCount: number) {
    // Sized for a typical volume (about 2 names, 4 attributes and 1.5 runs per record) so the
    // tables rarely grow; capped, as records past the used ones cost nothing.
    const rows = (perRecord: number): number => Math.min(1 << 17, Math.ceil(recordCount * perRecord) + 16);
    this.files = new NumberTable(F_WIDTH, rows(1));
    this.names = new NumberTable(5, rows(2));
    this.attrs = new NumberTable(A_WIDTH, rows(4));
    this.headers = new NumberTable(3, rows(4));
    this.runs = new NumberTable(3, rows(2));
    this.parentRec = new Float64Array(recordCount).fill(-1);
    this.primaryName = new Int32Array(recordCount).fill(-1);
    this.reach = new Uint8Array(recordCount);
  }

  name(k: number): string {
    const { names } = this;
    return decodeUtf16(this.buffers[names.get(k, N.BUFFER)], names.get(k, N.OFFSET), names.get(k, N.LENGTH));
  }
}
