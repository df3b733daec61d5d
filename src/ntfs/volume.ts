import type { BlockDevice } from '../block/block-device.ts';
import { decodeBootSector, type Geometry } from './boot-sector.ts';
import { ByteView } from './byte-view.ts';
import { findRun, type Run } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { applyFixups, RecordMagic } from './fixup.ts';
import { AttrType, decodeFileRecord, isExtension, RecordFlag, type AttrRecord, type FileRecord } from './record.ts';
import { readContent, streamContent, type AttrContent, type ClusterSource } from './stream.ts';
import {
  decodeAttributeList,
  decodeFileName,
  decodeReparseTag,
  decodeStandardInfo,
  Namespace,
  type FileName,
  type StandardInfo,
} from './values.ts';

/** Well-known MFT record numbers (layout.h NTFS_SYSTEM_FILES). */
export const SystemRecord = {
  MFT: 0,
  MFT_MIRR: 1,
  LOG_FILE: 2,
  VOLUME: 3,
  ATTR_DEF: 4,
  ROOT: 5,
  BITMAP: 6,
  BOOT: 7,
  BAD_CLUS: 8,
  SECURE: 9,
  UPCASE: 10,
  EXTEND: 11,
  FIRST_USER: 16,
} as const;

/** A flattened attribute: all extents of one (type, name) joined, sizes from the VCN 0 extent. */
export interface NtfsAttr extends AttrContent {
  type: number;
  name: string;
  id: number;
  allocatedSize: number;
  compressedSize: number;
  /** The attribute records it came from, in VCN order (one for resident attributes). */
  extents: AttrRecord[];
}

export interface NtfsFile {
  record: number;
  seq: number;
  /** Link count from the record header (ntfs-3g counts a Win32 + DOS pair as 2). */
  headerLinks: number;
  isDirectory: boolean;
  attrs: NtfsAttr[];
  si?: StandardInfo;
  names: FileName[];
  reparseTag?: number;
}

export interface Volume extends ClusterSource {
  readonly dev: BlockDevice;
  readonly view: ByteView;
  readonly geo: Geometry;
  /** $MFT's unnamed $DATA after the bootstrap. */
  readonly mft: NtfsAttr;
  readonly recordCount: number;
  readonly recordCache: Map<number, FileRecord>;
  /** Problems the bootstrap worked around (record 0 read from $MFTMirr). */
  readonly warnings: NtfsFormatError[];
}

const RECORD_CACHE = 4096;
const MAX_EXTENSIONS = 65536;
/** Metadata values (attribute lists, index bitmaps) are read whole; refuse absurd sizes. */
const MAX_METADATA_VALUE = 256 * 1024 * 1024;

function clusterSource(view: ByteView, clusterSize: number): ClusterSource {
  return {
    clusterSize,
    readClusters: (lcn, count) => view.readDirect(lcn * clusterSize, count * clusterSize),
    readClustersInto: (lcn, target) => view.readInto(lcn * clusterSize, target),
  };
}

/** One attribute record of record `n` as an NtfsAttr of one extent (more are joined to it). */
export function attrOf(n: number, a: AttrRecord): NtfsAttr {
  // a literal in one shape (an object spread here cost ~30 us per file in V8)
  return {
    record: n,
    type: a.type,
    name: a.name,
    id: a.id,
    resident: a.resident,
    value: a.value,
    flags: a.flags,
    compressionUnit: a.compressionUnit,
    dataSize: a.dataSize,
    initializedSize: a.initializedSize,
    allocatedSize: a.allocatedSize,
    compressedSize: a.compressedSize,
    runs: a.runs,
    extents: [a],
  };
}

/** Open the volume: boot sector, then the $MFT bootstrap (record 0, its attribute list and extension records). */
export async function openVolume(dev: BlockDevice): Promise<Volume> {
  const view = new ByteView(dev);
  if (view.size < 512)
    throw new NtfsFormatError(NtfsErrorCode.TRUNCATED, 'device smaller than a boot sector', {
      byteOffset: 0,
      expected: 512,
      actual: view.size,
    });
  const geo = decodeBootSector(new Uint8Array(await view.read(0, 512)));
  if (geo.totalSectors * geo.bytesPerSector > view.size) {
    throw new NtfsFormatError(NtfsErrorCode.TRUNCATED, 'device shorter than the volume the boot sector describes', {
      byteOffset: 0x28,
      expected: geo.totalSectors * geo.bytesPerSector,
      actual: view.size,
    });
  }
  const src = clusterSource(view, geo.clusterSize);
  const at0 = geo.mftLcn * geo.clusterSize;
  const warnings: NtfsFormatError[] = [];
  let rec0: FileRecord;
  try {
    rec0 = fixRecord(await view.read(at0, geo.recordSize), 0, at0, geo);
  } catch (e) {
    // A torn record 0 is read from $MFTMirr, as ntfs-3g does (ntfs_mft_load).
    if (!(e instanceof NtfsFormatError) || e.code === NtfsErrorCode.TRUNCATED) throw e;
    warnings.push(e);
    const mirr = geo.mftMirrLcn * geo.clusterSize;
    rec0 = fixRecord(await view.read(mirr, geo.recordSize), 0, mirr, geo);
  }
  const data0 = rec0.attrs.find((a) => a.type === AttrType.DATA && a.name === '' && !a.resident && a.lowestVcn === 0);
  if (!data0)
    throw new NtfsFormatError(NtfsErrorCode.RECORD, '$MFT has no non-resident unnamed $DATA', {
      record: 0,
      byteOffset: at0,
    });
  const runs: Run[] = [...data0.runs];
  const mft: NtfsAttr = {
    record: 0,
    type: AttrType.DATA,
    name: '',
    id: data0.id,
    resident: false,
    flags: data0.flags,
    compressionUnit: 0,
    dataSize: data0.dataSize,
    initializedSize: data0.initializedSize,
    allocatedSize: data0.allocatedSize,
    compressedSize: 0,
    runs,
    extents: [data0],
  };
  const partial = (): Volume => ({
    ...src,
    dev,
    view,
    geo,
    mft,
    recordCount: Math.floor(Math.min(mft.initializedSize, (lastVcn(runs) + 1) * geo.clusterSize) / geo.recordSize),
    recordCache: new Map(),
    warnings,
  });
  const listAttr = rec0.attrs.find((a) => a.type === AttrType.ATTRIBUTE_LIST);
  if (listAttr) {
    // Bootstrap (libfsntfs, ntfs-3g): the $DATA extents beyond record 0 live in extension records
    // that the runs known so far must already map.
    const list = decodeAttributeList(await wholeValue(src, toContent(listAttr)), 0);
    const seen = new Set<number>();
    for (const e of list) {
      if (e.type !== AttrType.DATA || e.name !== '' || e.ref.record === 0) continue;
      if (seen.has(e.ref.record)) continue;
      seen.add(e.ref.record);
      const vol = partial();
      if (e.ref.record >= vol.recordCount) {
        throw new NtfsFormatError(
          NtfsErrorCode.ATTRIBUTE_LIST,
          `$MFT extension record ${e.ref.record} is not mapped by the runs before it`,
          { record: 0, expected: `< ${vol.recordCount}`, actual: e.ref.record },
        );
      }
      const ext = await readRecord(vol, e.ref.record);
      if (ext.base.record !== 0 || !isExtension(ext))
        throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE_LIST, 'extension record does not belong to $MFT', {
          record: ext.number,
          expected: 0,
          actual: ext.base.record,
        });
      for (const a of ext.attrs) {
        if (a.type !== AttrType.DATA || a.name !== '' || a.resident) continue;
        if (a.lowestVcn !== lastVcn(runs) + 1) {
          throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE_LIST, '$MFT extent does not continue the runs before it', {
            record: ext.number,
            byteOffset: a.offset + 0x10,
            expected: lastVcn(runs) + 1,
            actual: a.lowestVcn,
          });
        }
        runs.push(...a.runs);
        mft.extents.push(a);
      }
    }
  }
  if (lastVcn(runs) + 1 < Math.ceil(mft.dataSize / geo.clusterSize)) {
    throw new NtfsFormatError(NtfsErrorCode.RUNLIST, '$MFT runs stop short of its data size', {
      record: 0,
      expected: Math.ceil(mft.dataSize / geo.clusterSize),
      actual: lastVcn(runs) + 1,
    });
  }
  return partial();
}

function lastVcn(runs: readonly Run[]): number {
  const r = runs[runs.length - 1];
  return r ? r.vcn + r.length - 1 : -1;
}

function fixRecord(bytes: Uint8Array, n: number, byteOffset: number, geo: Geometry): FileRecord {
  const copy = new Uint8Array(bytes); // a copy (Buffer.slice would be a view)
  applyFixups(copy, RecordMagic.FILE, { record: n, byteOffset });
  return decodeFileRecord(copy, n, byteOffset, geo.clusterCount);
}

/** Volume byte offset of a byte of the $MFT (for error messages and direct reads). */
function mftByteOffset(vol: Volume, pos: number): number {
  const cs = vol.geo.clusterSize;
  const vcn = Math.floor(pos / cs);
  const r = vol.mft.runs[findRun(vol.mft.runs, vcn)];
  return r && r.lcn >= 0 ? (r.lcn + vcn - r.vcn) * cs + (pos % cs) : -1;
}

/** One FILE record, fixed up and decoded (cached). Throws NtfsFormatError naming the record. */
export async function readRecord(vol: Volume, n: number): Promise<FileRecord> {
  const hit = vol.recordCache.get(n);
  if (hit) return hit;
  if (!Number.isSafeInteger(n) || n < 0 || n >= vol.recordCount) {
    throw new NtfsFormatError(NtfsErrorCode.NOT_FOUND, 'no such MFT record', {
      record: n,
      expected: `< ${vol.recordCount}`,
    });
  }
  const rs = vol.geo.recordSize;
  const at = mftByteOffset(vol, n * rs);
  // A record inside one cluster run is read straight; one straddling runs (512 B clusters) goes through the runs.
  const bytes =
    at >= 0 && mftByteOffset(vol, n * rs + rs - 1) === at + rs - 1
      ? await vol.view.read(at, rs)
      : await readContent(vol, { ...vol.mft, initializedSize: vol.mft.dataSize }, n * rs, rs);
  const rec = fixRecord(bytes, n, at, vol.geo);
  if (vol.recordCache.size >= RECORD_CACHE) vol.recordCache.delete(vol.recordCache.keys().next().value as number);
  vol.recordCache.set(n, rec);
  return rec;
}

/** Volume byte offset of MFT record `n` (-1 when unmapped): errors name it. */
export function recordByteOffset(vol: Volume, n: number): number {
  return mftByteOffset(vol, n * vol.geo.recordSize);
}

/** The $MFT in order, in 4 MiB sequential batches of raw records (fresh buffers: fix up in place). */
export async function* mftBatches(vol: Volume): AsyncGenerator<{ first: number; count: number; buf: Uint8Array }> {
  const rs = vol.geo.recordSize;
  const per = Math.max(1, Math.floor((4 << 20) / rs));
  const content: AttrContent = { ...vol.mft, initializedSize: vol.mft.dataSize };
  const read = (n: number): Promise<Uint8Array> =>
    readContent(vol, content, n * rs, Math.min(per, vol.recordCount - n) * rs);
  let next = vol.recordCount > 0 ? read(0) : undefined;
  for (let n = 0; next; n += per) {
    const buf = await next;
    // the next batch is read while this one is decoded
    next = n + per < vol.recordCount ? read(n + per) : undefined;
    next?.catch(() => undefined); // awaited (and thrown) on the next step; not unhandled if the caller stops early
    yield { first: n, count: Math.min(per, vol.recordCount - n), buf };
  }
}

/**
 * Every record of the $MFT in order, decoded a 4 MiB batch at a time (the fuzz test).
 * Bad records come back as errors in the batch, never thrown.
 */
export async function* scanRecords(
  vol: Volume,
  opts: { inUseOnly?: boolean } = {},
): AsyncGenerator<(FileRecord | NtfsFormatError)[]> {
  const rs = vol.geo.recordSize;
  for await (const { first, count, buf } of mftBatches(vol)) {
    const batch: (FileRecord | NtfsFormatError)[] = [];
    for (let i = 0; i < count; i++) {
      const num = first + i;
      const bytes = buf.subarray(i * rs, (i + 1) * rs);
      if (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0 && bytes[3] === 0) continue; // never used
      const at = mftByteOffset(vol, num * rs);
      try {
        applyFixups(bytes, RecordMagic.FILE, { record: num, byteOffset: at });
        if (opts.inUseOnly && (bytes[0x16] & RecordFlag.IN_USE) === 0) continue;
        batch.push(decodeFileRecord(bytes, num, at, vol.geo.clusterCount));
      } catch (e) {
        if (e instanceof NtfsFormatError) batch.push(e);
        else throw e;
      }
    }
    yield batch;
  }
}

export function toContent(a: AttrRecord): AttrContent {
  return {
    record: a.record,
    resident: a.resident,
    value: a.value,
    flags: a.flags,
    compressionUnit: a.compressionUnit,
    dataSize: a.dataSize,
    initializedSize: a.initializedSize,
    runs: a.runs,
  };
}

async function wholeValue(src: ClusterSource, a: AttrContent): Promise<Uint8Array> {
  if (a.resident) return a.value ?? new Uint8Array(0);
  if (a.dataSize > MAX_METADATA_VALUE)
    throw new NtfsFormatError(NtfsErrorCode.LIMIT, `metadata attribute of ${a.dataSize} bytes is too large`, {
      record: a.record,
      expected: `<= ${MAX_METADATA_VALUE}`,
      actual: a.dataSize,
    });
  return readContent(src, a, 0, a.dataSize);
}

/** The whole value of a (small, metadata) attribute. */
export function attrValue(vol: Volume, a: NtfsAttr): Promise<Uint8Array> {
  return wholeValue(vol, a);
}

/** Stream an attribute's content in chunks (never the whole attribute at once). */
export function streamAttr(vol: Volume, a: NtfsAttr): AsyncGenerator<Uint8Array> {
  return streamContent(vol, a);
}

/**
 * A base record with every attribute flattened: the attribute list is followed into extension
 * records (checked to belong to this base), and extents of one (type, name) are joined in list order.
 */
export async function loadFile(vol: Volume, n: number): Promise<NtfsFile> {
  return assembleFile(vol, await readRecord(vol, n));
}

/** Flatten a base record already read (see loadFile). */
export async function assembleFile(vol: Volume, base: FileRecord): Promise<NtfsFile> {
  const n = base.number;
  checkBase(base);
  let recs: AttrRecord[] = base.attrs;
  const listAttr = base.attrs.find((a) => a.type === AttrType.ATTRIBUTE_LIST);
  if (listAttr) {
    const entries = decodeAttributeList(await wholeValue(vol, toContent(listAttr)), n);
    const records = new Map<number, FileRecord>([[n, base]]);
    const used = new Set<AttrRecord>();
    recs = [];
    for (const e of entries) {
      let r = records.get(e.ref.record);
      if (!r) {
        if (records.size > MAX_EXTENSIONS)
          throw new NtfsFormatError(NtfsErrorCode.LIMIT, 'too many extension records', { record: n });
        r = await readRecord(vol, e.ref.record);
        if (!r.inUse || r.base.record !== n || r.base.seq !== base.seq) {
          throw new NtfsFormatError(
            NtfsErrorCode.ATTRIBUTE_LIST,
            `attribute list names record ${e.ref.record}, which is not an extension of this record`,
            {
              record: n,
              expected: `base ${n} seq ${base.seq}`,
              actual: `base ${r.base.record} seq ${r.base.seq}${r.inUse ? '' : ', not in use'}`,
            },
          );
        }
        records.set(e.ref.record, r);
      }
      const a = r.attrs.find((x) => x.type === e.type && x.id === e.id && x.name === e.name);
      if (!a) {
        throw new NtfsFormatError(
          NtfsErrorCode.ATTRIBUTE_LIST,
          `attribute list entry (type 0x${e.type.toString(16)}, id ${e.id}) not found in record ${e.ref.record}`,
          { record: n },
        );
      }
      if (used.has(a))
        throw new NtfsFormatError(
          NtfsErrorCode.ATTRIBUTE_LIST,
          `attribute list names the same attribute twice (cycle) in record ${e.ref.record}`,
          { record: n, byteOffset: a.offset },
        );
      used.add(a);
      recs.push(a);
    }
  }
  return flatten(vol, base, recs);
}

function checkBase(base: FileRecord): void {
  if (!base.inUse) throw new NtfsFormatError(NtfsErrorCode.RECORD, 'record not in use', { record: base.number });
  if (isExtension(base))
    throw new NtfsFormatError(NtfsErrorCode.RECORD, 'record is an extension record, not a base record', {
      record: base.number,
      expected: 0,
      actual: base.base.record,
    });
}

/** assembleFile without I/O, for a base record that has no attribute list (undefined if it has one). */
export function assembleFileSync(vol: Volume, base: FileRecord): NtfsFile | undefined {
  checkBase(base);
  if (base.attrs.some((a) => a.type === AttrType.ATTRIBUTE_LIST)) return undefined;
  return flatten(vol, base, base.attrs);
}

function flatten(vol: Volume, base: FileRecord, recs: AttrRecord[]): NtfsFile {
  const n = base.number;
  const file: NtfsFile = {
    record: n,
    seq: base.seq,
    headerLinks: base.links,
    isDirectory: base.isDirectory,
    attrs: [],
    names: [],
  };
  let open: Map<string, NtfsAttr> | undefined; // non-resident attributes by type:name, for their later extents
  for (const a of recs) {
    if (a.type === AttrType.ATTRIBUTE_LIST) continue;
    if (!a.resident && a.lowestVcn > 0) {
      const head = open?.get(`${a.type}:${a.name}`);
      const last = head?.runs[head.runs.length - 1];
      const next = last ? last.vcn + last.length : 0;
      if (!head || a.lowestVcn !== next) {
        throw new NtfsFormatError(
          NtfsErrorCode.ATTRIBUTE_LIST,
          'attribute extent does not continue the one before it',
          { record: a.record, byteOffset: a.offset + 0x10, expected: next, actual: a.lowestVcn },
        );
      }
      head.runs = head.runs.concat(a.runs); // a new array: the first extent's stays as decoded
      head.extents.push(a);
      continue;
    }
    const attr = attrOf(n, a);
    if (!a.resident && recs !== base.attrs) (open ??= new Map()).set(`${a.type}:${a.name}`, attr);
    file.attrs.push(attr);
    if (a.type === AttrType.STANDARD_INFORMATION && a.value) file.si = decodeStandardInfo(a.value, n);
    else if (a.type === AttrType.FILE_NAME && a.value) file.names.push(decodeFileName(a.value, n));
    else if (a.type === AttrType.REPARSE_POINT && a.value) file.reparseTag = decodeReparseTag(a.value, n);
  }
  for (const a of file.attrs) {
    if (!a.resident)
      checkAttrSizes(
        n,
        a.type,
        a.name,
        a.dataSize,
        a.initializedSize,
        a.runs.length ? a.runs[a.runs.length - 1].vcn + a.runs[a.runs.length - 1].length : 0,
        vol.geo.clusterSize,
      );
  }
  return file;
}

/** A flattened non-resident attribute's sizes must fit its runs (`endVcn` = the VCN after the last run). */
export function checkAttrSizes(
  record: number,
  type: number,
  name: string,
  dataSize: number,
  initializedSize: number,
  endVcn: number,
  clusterSize: number,
): void {
  if (dataSize > endVcn * clusterSize || initializedSize > dataSize) {
    throw new NtfsFormatError(
      NtfsErrorCode.RUNLIST,
      `attribute 0x${type.toString(16)}${name ? `:${name}` : ''} sizes exceed its runs`,
      { record, expected: `data size <= ${endVcn * clusterSize}`, actual: dataSize },
    );
  }
}

export function findAttr(file: NtfsFile, type: number, name = ''): NtfsAttr | undefined {
  return file.attrs.find((a) => a.type === type && a.name === name);
}

/** Names that are links (every $FILE_NAME except DOS-only aliases). */
export function linkNames(file: NtfsFile): FileName[] {
  return file.names.filter((f) => f.namespace !== Namespace.DOS);
}
