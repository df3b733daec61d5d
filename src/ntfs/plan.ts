import { usedClusters } from './bitmap.ts';
import { HOLE } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { AttrTypeName, isExtension } from './record.ts';
import type { SkippedRecord } from './tree.ts';
import { Namespace, ReparseTag } from './values.ts';
import { assembleFile, assembleFileSync, scanRecords, SystemRecord, type NtfsAttr, type NtfsFile, type Volume } from './volume.ts';

/** Plan format version (docs/ntfs.md). */
export const PLAN_VERSION = 1;

/** One attribute: resident → its whole attribute record; non-resident → its headers plus block runs. */
export interface PlanAttribute {
  type: number;
  typeName: string;
  name: string;
  resident: boolean;
  /** Data size in bytes (the value length when resident). */
  size: number;
  /** Resident: the whole attribute record (header + value); the value starts at `valueOffset`. */
  bytes?: PlanBytes;
  valueOffset?: number;
  /** Non-resident: attribute flags (compression, sparse), sizes, and every extent's attribute record (base64). */
  flags?: number;
  compressionUnit?: number;
  allocatedSize?: number;
  initializedSize?: number;
  headers?: PlanBytes[];
  /** Non-resident: [vcn, clusterCount, lba] with lba null for a hole; lba is in device blocks. */
  runs?: [number, number, number | null][];
}

export interface PlanName {
  parent: number;
  name: string;
  namespace: number;
}

export interface PlanFile {
  record: number;
  seq: number;
  /** Absolute path through the first non-DOS name (null when the parent chain is broken). */
  path: string | null;
  type: 'file' | 'dir' | 'symlink' | 'reparse';
  names: PlanName[];
  fileAttributes: number;
  /** $STANDARD_INFORMATION times, ms since 1970 UTC (null without one). */
  createdMs: number | null;
  modifiedMs: number | null;
  changedMs: number | null;
  accessedMs: number | null;
  attributes: PlanAttribute[];
}

export interface NtfsPlan {
  version: number;
  blockSize: number;
  clusterSize: number;
  sectorSize: number;
  clusterCount: number;
  serial: string;
  files: PlanFile[];
  /** Every block the file-level backup reads: [lba, blockCount], sorted and merged. */
  extents: [number, number][];
  /** The used-blocks plan: allocated clusters, plus the backup boot sector past the last cluster. */
  used: { ranges: [number, number][]; backupBootByteOffset: number; extents: [number, number][] };
  skipped: SkippedRecord[];
}

export interface PlanOptions {
  /** Device block size the LBAs are expressed in. */
  blockSize: number;
  /** Include NTFS system files (records below 16 except the root) and the $Extend tree. */
  system?: boolean;
  onError?(s: SkippedRecord): void;
}

/** Bytes in memory; base64 strings once the plan went through JSON (planToJson). */
export type PlanBytes = Uint8Array | string;

/** The plan as JSON: byte fields become base64 strings. */
export function planToJson(plan: NtfsPlan): string {
  return JSON.stringify(plan, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : v));
}

export function planBytes(b: PlanBytes | undefined): Uint8Array {
  return b === undefined ? new Uint8Array(0) : typeof b === 'string' ? Buffer.from(b, 'base64') : b;
}

/** Sort and merge [start, count] ranges into the fewest, largest ones. */
export function mergeExtents(list: [number, number][]): [number, number][] {
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1][0] <= list[i][0];
  if (!sorted) list.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, n] of list) {
    const last = out[out.length - 1];
    if (last && s <= last[0] + last[1]) last[1] = Math.max(last[1], s + n - last[0]);
    else out.push([s, n]);
  }
  return out;
}

function planAttribute(a: NtfsAttr, blocksPerCluster: number, extents: [number, number][]): PlanAttribute {
  const typeName = AttrTypeName[a.type] ?? `0x${a.type.toString(16)}`;
  if (a.resident) {
    const raw = a.extents[0].raw;
    const valueOffset = raw[0x14] | (raw[0x15] << 8);
    return { type: a.type, typeName, name: a.name, resident: true, size: a.dataSize, bytes: raw, valueOffset };
  }
  const runs: [number, number, number | null][] = [];
  for (const r of a.runs) {
    if (r.lcn === HOLE) {
      runs.push([r.vcn, r.length, null]);
    } else {
      runs.push([r.vcn, r.length, r.lcn * blocksPerCluster]);
      extents.push([r.lcn * blocksPerCluster, r.length * blocksPerCluster]);
    }
  }
  return {
    type: a.type, typeName, name: a.name, resident: false, size: a.dataSize, flags: a.flags, compressionUnit: a.compressionUnit,
    allocatedSize: a.allocatedSize, initializedSize: a.initializedSize, headers: a.extents.length === 1 ? [a.extents[0].raw] : a.extents.map((e) => e.raw), runs,
  };
}

function planType(f: NtfsFile): PlanFile['type'] {
  if (f.reparseTag !== undefined) return f.reparseTag === ReparseTag.SYMLINK ? 'symlink' : f.isDirectory && f.reparseTag !== ReparseTag.MOUNT_POINT ? 'dir' : 'reparse';
  return f.isDirectory ? 'dir' : 'file';
}

/**
 * The file-level backup plan: one sequential pass over the $MFT (metadata only, never file
 * data), every in-use base record flattened through its attribute list, paths from $FILE_NAME
 * parents, and the used-blocks plan from $Bitmap. Malformed records are skipped and listed.
 */
export async function buildPlan(vol: Volume, opts: PlanOptions): Promise<NtfsPlan> {
  const { clusterSize, bytesPerSector } = vol.geo;
  if (clusterSize % opts.blockSize !== 0) {
    throw new NtfsFormatError(NtfsErrorCode.BOOT, `cluster size ${clusterSize} is not a multiple of the device block size ${opts.blockSize}`, { byteOffset: 0x0d });
  }
  const bpc = clusterSize / opts.blockSize;
  const skipped: SkippedRecord[] = [];
  const skip = (s: SkippedRecord): void => {
    skipped.push(s);
    opts.onError?.(s);
  };
  const files: PlanFile[] = [];
  const fileExtents: [number, number][][] = [];
  // Parent record and name per record (arrays: a Map of 20k entries showed in the profile).
  const parentRec = new Float64Array(vol.recordCount).fill(-1);
  const parentName: string[] = new Array<string>(vol.recordCount);
  for await (const batch of scanRecords(vol, { inUseOnly: true })) for (const rec of batch) {
    if (rec instanceof NtfsFormatError) {
      skip({ record: rec.record, code: rec.code, message: rec.message });
      continue;
    }
    if (!rec.inUse || isExtension(rec)) continue;
    let f: NtfsFile;
    try {
      f = assembleFileSync(vol, rec) ?? (await assembleFile(vol, rec));
    } catch (e) {
      if (!(e instanceof NtfsFormatError)) throw e;
      skip({ record: rec.number, code: e.code, message: e.message });
      continue;
    }
    const primary = f.names.find((n) => n.namespace !== Namespace.DOS) ?? f.names[0];
    if (primary) {
      parentRec[f.record] = primary.parent.record;
      parentName[f.record] = primary.name;
    }
    if (!opts.system && f.record < SystemRecord.FIRST_USER && f.record !== SystemRecord.ROOT) continue;
    const own: [number, number][] = [];
    files.push({
      record: f.record,
      seq: f.seq,
      path: null,
      type: planType(f),
      names: f.names.map((n) => ({ parent: n.parent.record, name: n.name, namespace: n.namespace })),
      fileAttributes: f.si?.fileAttributes ?? 0,
      createdMs: f.si?.createdMs ?? null,
      modifiedMs: f.si?.modifiedMs ?? null,
      changedMs: f.si?.changedMs ?? null,
      accessedMs: f.si?.accessedMs ?? null,
      attributes: f.attrs.map((a) => planAttribute(a, bpc, own)),
    });
    fileExtents.push(own);
  }
  // Paths from parent links; a chain through a system record other than the root ($Extend) is a system file.
  const paths: (string | null | undefined)[] = new Array<string | null | undefined>(vol.recordCount);
  paths[SystemRecord.ROOT] = '/';
  const pathOf = (n: number): string | null => {
    const chain: number[] = [];
    let cur = n;
    while (paths[cur] === undefined) {
      const p = cur < parentRec.length ? parentRec[cur] : -1;
      if (p < 0 || p >= parentRec.length || chain.length > 1024 || chain.includes(cur) || (cur < SystemRecord.FIRST_USER && chain.length > 0)) {
        for (const c of chain) paths[c] = null;
        if (cur < paths.length) paths[cur] = null;
        return null;
      }
      chain.push(cur);
      cur = p;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const parent = paths[i === chain.length - 1 ? cur : chain[i + 1]] ?? null;
      const c = chain[i];
      paths[c] = parent === null ? null : parent === '/' ? `/${parentName[c]}` : `${parent}/${parentName[c]}`;
    }
    return paths[n] ?? null;
  };
  const kept: PlanFile[] = [];
  const extents: [number, number][] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    f.path = pathOf(f.record);
    if (!opts.system && f.path === null) continue;
    kept.push(f);
    for (const e of fileExtents[i]) extents.push(e);
  }
  const used = await usedClusters(vol);
  const backupBootByteOffset = vol.geo.totalSectors * bytesPerSector;
  const usedExtents = used.ranges.map(([s, n]): [number, number] => [s * bpc, n * bpc]);
  if (backupBootByteOffset + bytesPerSector <= vol.view.size) usedExtents.push([Math.floor(backupBootByteOffset / opts.blockSize), Math.max(1, bytesPerSector / opts.blockSize)]);
  return {
    version: PLAN_VERSION,
    blockSize: opts.blockSize,
    clusterSize,
    sectorSize: bytesPerSector,
    clusterCount: vol.geo.clusterCount,
    serial: vol.geo.serial,
    files: kept,
    extents: mergeExtents(extents),
    used: { ranges: used.ranges, backupBootByteOffset, extents: mergeExtents(usedExtents) },
    skipped,
  };
}
