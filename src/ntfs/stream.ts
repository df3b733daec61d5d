import { findRun, HOLE, type Run } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { decompressLznt1 } from './lznt1.ts';
import { AttrFlag } from './record.ts';

/** Where cluster contents come from: the volume, or (on restore) blocks read back from a backup. */
export interface ClusterSource {
  readonly clusterSize: number;
  readClusters(lcn: number, count: number): Promise<Uint8Array>;
  /** Optional: read `target.length / clusterSize` clusters straight into `target` (saves a copy). */
  readClustersInto?(lcn: number, target: Uint8Array): Promise<void>;
}

/** What it takes to read an attribute's content: a resident value, or runs and sizes. */
export interface AttrContent {
  record?: number;
  resident: boolean;
  value?: Uint8Array;
  flags: number;
  compressionUnit: number;
  dataSize: number;
  initializedSize: number;
  runs: readonly Run[];
}

export function isCompressed(a: AttrContent): boolean {
  return !a.resident && (a.flags & AttrFlag.COMPRESSION_MASK) !== 0 && a.compressionUnit > 0;
}

const CHUNK_BYTES = 1 << 20;

/**
 * Bytes [offset, offset+length) of the content. Holes and bytes at or past the initialized size
 * read as zeros; compressed units are LZNT1-decoded (ntfs-3g compress.c rules: a unit whose first
 * cluster is a hole is zeros, a unit without holes is stored raw, anything else is compressed).
 */
export async function readContent(
  src: ClusterSource,
  a: AttrContent,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  if (offset < 0 || length < 0 || offset + length > a.dataSize) {
    throw new NtfsFormatError(
      NtfsErrorCode.ATTRIBUTE,
      `read [${offset}, ${offset + length}) outside the ${a.dataSize}-byte attribute`,
      { record: a.record },
    );
  }
  if (a.resident) return new Uint8Array((a.value ?? new Uint8Array(0)).subarray(offset, offset + length));
  const out = new Uint8Array(length);
  const stop = Math.min(offset + length, a.initializedSize);
  if (stop <= offset) return out;
  if (isCompressed(a)) await readCompressed(src, a, offset, stop, out);
  else await readPlain(src, a, offset, stop, out, offset);
  return out;
}

function missing(a: AttrContent, vcn: number): never {
  throw new NtfsFormatError(NtfsErrorCode.RUNLIST, `no run maps VCN ${vcn} below the data size ${a.dataSize}`, {
    record: a.record,
  });
}

async function readPlain(
  src: ClusterSource,
  a: AttrContent,
  from: number,
  to: number,
  out: Uint8Array,
  outBase: number,
): Promise<void> {
  const cs = src.clusterSize;
  let pos = from;
  let i = findRun(a.runs, Math.floor(pos / cs));
  while (pos < to) {
    const run = a.runs[i];
    if (!run || pos < run.vcn * cs || pos >= (run.vcn + run.length) * cs) missing(a, Math.floor(pos / cs));
    const runEnd = Math.min(to, (run.vcn + run.length) * cs);
    if (run.lcn !== HOLE && src.readClustersInto && pos % cs === 0 && (runEnd - pos) % cs === 0) {
      await src.readClustersInto(run.lcn + (pos / cs - run.vcn), out.subarray(pos - outBase, runEnd - outBase));
    } else if (run.lcn !== HOLE) {
      const firstC = Math.floor(pos / cs);
      const lastC = Math.ceil(runEnd / cs);
      const data = await src.readClusters(run.lcn + (firstC - run.vcn), lastC - firstC);
      const skip = pos - firstC * cs;
      out.set(data.subarray(skip, skip + (runEnd - pos)), pos - outBase);
    }
    pos = runEnd;
    i++;
  }
}

async function readCompressed(
  src: ClusterSource,
  a: AttrContent,
  from: number,
  to: number,
  out: Uint8Array,
): Promise<void> {
  const cs = src.clusterSize;
  const unitClusters = 2 ** a.compressionUnit;
  const unitBytes = unitClusters * cs;
  for (let u = Math.floor(from / unitBytes); u * unitBytes < to; u++) {
    const unitStart = u * unitBytes;
    const vcn0 = u * unitClusters;
    const i = findRun(a.runs, vcn0);
    if (i < 0) missing(a, vcn0);
    let real = 0;
    let firstHole = false;
    for (let v = vcn0, j = i; v < vcn0 + unitClusters && j < a.runs.length; j++) {
      const r = a.runs[j];
      const n = Math.min(r.vcn + r.length, vcn0 + unitClusters) - v;
      if (r.lcn === HOLE) {
        if (v === vcn0) firstHole = true;
      } else real += n;
      v += n;
    }
    const lo = Math.max(from, unitStart);
    const hi = Math.min(to, unitStart + unitBytes);
    if (firstHole) continue; // zeros
    if (real >= unitClusters) {
      await readPlain(src, a, lo, hi, out, from);
      continue;
    }
    const packed = new Uint8Array(real * cs);
    let got = 0;
    for (let v = vcn0, j = i; v < vcn0 + unitClusters && j < a.runs.length; j++) {
      const r = a.runs[j];
      const n = Math.min(r.vcn + r.length, vcn0 + unitClusters) - v;
      if (r.lcn !== HOLE) {
        packed.set(await src.readClusters(r.lcn + (v - r.vcn), n), got);
        got += n * cs;
      }
      v += n;
    }
    const unit = new Uint8Array(unitBytes);
    decompressLznt1(packed, unit, { record: a.record });
    out.set(unit.subarray(lo - unitStart, hi - unitStart), lo - from);
  }
}

/** Stream the whole content (or [offset, end)) as chunks of at most 1 MiB. */
export async function* streamContent(
  src: ClusterSource,
  a: AttrContent,
  offset = 0,
  end = a.dataSize,
): AsyncGenerator<Uint8Array> {
  let chunk = CHUNK_BYTES;
  if (isCompressed(a)) {
    const unitBytes = 2 ** a.compressionUnit * src.clusterSize;
    chunk = Math.max(unitBytes, Math.floor(CHUNK_BYTES / unitBytes) * unitBytes);
  }
  for (let pos = offset; pos < end;) {
    const n = Math.min(end - pos, chunk - (pos % chunk));
    yield await readContent(src, a, pos, n);
    pos += n;
  }
}
