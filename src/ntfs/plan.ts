import { usedClusters } from './bitmap.ts';
import { decodeRunsInto, HOLE, RunCol } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { applyFixupsAt, RecordMagic } from './fixup.ts';
import {
  attrLengthAt,
  AttrType,
  checkRunsEnd,
  decodeFileRecord,
  decodeUtf16,
  isExtension,
  newAttrHeader,
  newRecordHeader,
  readAttrHeader,
  readRecordHeader,
  RecordFlag,
} from './record.ts';
import type { SkippedRecord } from './tree.ts';
import {
  FILE_NAME_NAME_OFFSET,
  Namespace,
  readFileName,
  readStandardInfo,
  reparseTagAt,
  type FileNameHeader,
  type StandardInfo,
} from './values.ts';
import {
  assembleFile,
  attrOf,
  checkAttrSizes,
  mftBatches,
  recordByteOffset,
  SystemRecord,
  type NtfsFile,
  type Volume,
} from './volume.ts';
import { F_WIDTH, F, A_WIDTH, A, N, H, typeCode, FilePlan, PlanTables, Reach } from './plan-tables.ts';

export interface PlanOptions {
  /** Device block size the LBAs are expressed in. */
  blockSize: number;
  /** Include NTFS system files (records below 16 except the root and $Secure) and the $Extend tree. */
  system?: boolean;
  onError?(s: SkippedRecord): void;
}

/** Sort and merge [start, count] ranges into the fewest, largest ones. */
export function mergeExtents(list: [number, number][]): [number, number][] {
  const starts = new Float64Array(list.length);
  const ends = new Float64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    starts[i] = list[i][0];
    ends[i] = list[i][0] + list[i][1];
  }
  return mergeRanges(starts, ends);
}

/**
 * Union of the ranges [starts[i], ends[i]) (each non-empty), touching ones joined. Starts and
 * ends are sorted separately (numeric typed-array sorts, no comparator, no tuple per range),
 * then swept: a range closes where as many ends as starts have been passed.
 */
export function mergeRanges(starts: Float64Array, ends: Float64Array): [number, number][] {
  starts.sort();
  ends.sort();
  const out: [number, number][] = [];
  const n = starts.length;
  let open = 0;
  let depth = 0;
  let j = 0;
  for (let i = 0; i < n;) {
    if (starts[i] <= ends[j]) {
      if (depth++ === 0) open = starts[i];
      i++;
    } else {
      if (--depth === 0) out.push([open, ends[j] - open]);
      j++;
    }
  }
  if (n) out.push([open, ends[n - 1] - open]);
  return out;
}

/** Fills the tables record by record; a record that fails is rolled back whole. */
class PlanBuilder {
  readonly t: PlanTables;
  private readonly vol: Volume;
  private readonly system: boolean;
  private readonly rh = newRecordHeader();
  private readonly ah = newAttrHeader();
  private readonly si: StandardInfo = {
    createdMs: 0,
    modifiedMs: 0,
    changedMs: 0,
    accessedMs: 0,
    fileAttributes: 0,
    securityId: undefined,
  };
  private readonly fn: FileNameHeader = { parent: { record: 0, seq: 0 }, flags: 0, namespace: 0, nameLength: 0 };

  constructor(vol: Volume, system: boolean) {
    this.vol = vol;
    this.system = system;
    this.t = new PlanTables(vol.recordCount);
  }

  /** Row counts (files, attrs, names, headers, runs) before the record being added. */
  private readonly marks = new Float64Array(5);

  private mark(): void {
    const { t, marks } = this;
    marks[0] = t.files.rows;
    marks[1] = t.attrs.rows;
    marks[2] = t.names.rows;
    marks[3] = t.headers.rows;
    marks[4] = t.runs.rows;
  }

  private rollback(): void {
    const { t, marks } = this;
    t.files.truncate(marks[0]);
    t.attrs.truncate(marks[1]);
    for (const k of t.attrNames.keys()) if (k >= marks[1]) t.attrNames.delete(k);
    t.names.truncate(marks[2]);
    t.headers.truncate(marks[3]);
    t.runs.truncate(marks[4]);
  }

  private kept(n: number): boolean {
    return this.system || n >= SystemRecord.FIRST_USER || n === SystemRecord.ROOT || n === SystemRecord.SECURE;
  }

  /** Link a kept record to its parent through its first non-DOS name (or its only name). */
  private linkParent(n: number, nameStart: number, nameEnd: number): void {
    const { names } = this.t;
    let k = nameStart;
    while (k < nameEnd && names.get(k, N.NAMESPACE) === Namespace.DOS) k++;
    if (k === nameEnd) k = nameStart;
    if (k < nameEnd) {
      this.t.parentRec[n] = names.get(k, N.PARENT);
      this.t.primaryName[n] = k;
    }
  }

  /**
   * Add the fixed-up, in-use record at `off` of $MFT batch `bufIndex` straight from its bytes.
   * Returns false, adding nothing, for a record with an attribute list (see addFile).
   */
  addRecord(buf: Uint8Array, bufIndex: number, off: number, n: number, byteOffset: number): boolean {
    const { rh, ah, t } = this;
    readRecordHeader(buf, off, this.vol.geo.recordSize, n, byteOffset, rh);
    if (isExtension(rh)) return true;
    const { files, attrs, names, headers, attrNames } = t;
    this.mark();
    let reparseTag: number | undefined;
    let hasSi = false;
    try {
      for (let p = rh.firstAttr, len; (len = attrLengthAt(buf, off, p, rh.used, n, byteOffset)) !== 0; p += len) {
        const at = off + p; // the attribute in buf
        readAttrHeader(buf, at, len, n, byteOffset + p, ah);
        if (ah.type === AttrType.ATTRIBUTE_LIST) {
          this.rollback();
          return false;
        }
        const k = attrs.add();
        if (ah.nameLength) attrNames.set(k, decodeUtf16(buf, at + ah.nameOffset, ah.nameLength));
        const h = headers.add();
        const hd = headers.data;
        hd[h * 3 + H.BUFFER] = bufIndex;
        hd[h * 3 + H.OFFSET] = at;
        hd[h * 3 + H.LENGTH] = len;
        const ad = attrs.data;
        const ak = k * A_WIDTH;
        ad[ak + A.TYPE] = ah.type;
        ad[ak + A.SIZE] = ah.dataSize;
        ad[ak + A.HEADER_START] = h;
        ad[ak + A.HEADER_END] = h + 1;
        if (ah.resident) {
          ad[ak + A.RESIDENT] = 1;
          ad[ak + A.VALUE_OFFSET] = ah.valueOffset;
          if (ah.type === AttrType.STANDARD_INFORMATION) {
            readStandardInfo(buf, at + ah.valueOffset, ah.valueLength, n, this.si);
            hasSi = true;
          } else if (ah.type === AttrType.FILE_NAME) {
            this.addName(buf, bufIndex, at + ah.valueOffset, ah.valueLength, n);
          } else if (ah.type === AttrType.REPARSE_POINT) {
            reparseTag = reparseTagAt(buf, at + ah.valueOffset, ah.valueLength, n);
          }
          continue;
        }
        this.addRuns(buf, k, at, len, n, byteOffset + p);
      }
    } catch (e) {
      this.rollback();
      throw e;
    }
    if (!this.kept(n)) {
      this.rollback();
      return true;
    }
    this.linkParent(n, this.marks[2], names.rows);
    const r = files.add();
    const fd = files.data;
    const fr = r * F_WIDTH;
    fd[fr + F.RECORD] = n;
    fd[fr + F.SEQ] = rh.seq;
    fd[fr + F.TYPE] = typeCode((rh.flags & RecordFlag.DIRECTORY) !== 0, reparseTag);
    fd[fr + F.ATTR_START] = this.marks[1];
    fd[fr + F.ATTR_END] = attrs.rows;
    fd[fr + F.NAME_START] = this.marks[2];
    fd[fr + F.NAME_END] = names.rows;
    this.setSi(r, hasSi ? this.si : undefined);
    return true;
  }

  /** The $FILE_NAME value at `v` of buffer `bufIndex`: a name row (the name stays in the buffer). */
  private addName(buf: Uint8Array, bufIndex: number, v: number, len: number, n: number): void {
    const { names } = this.t;
    readFileName(buf, v, len, n, this.fn);
    const m = names.add() * 5;
    const nd = names.data;
    nd[m + N.PARENT] = this.fn.parent.record;
    nd[m + N.NAMESPACE] = this.fn.namespace;
    nd[m + N.BUFFER] = bufIndex;
    nd[m + N.OFFSET] = v + FILE_NAME_NAME_OFFSET;
    nd[m + N.LENGTH] = this.fn.nameLength;
  }

  /**
   * Sizes and runs of attribute row `k`, the non-resident attribute at `at` (header in this.ah; `byteOffset` is its
   * volume position).
   */
  private addRuns(buf: Uint8Array, k: number, at: number, len: number, n: number, byteOffset: number): void {
    const { ah } = this;
    const { attrs, runs } = this.t;
    // Without an attribute list every non-resident attribute is whole in this record (flatten).
    if (ah.lowestVcn !== 0)
      throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE_LIST, 'attribute extent does not continue the one before it', {
        record: n,
        byteOffset: byteOffset + 0x10,
        expected: 0,
        actual: ah.lowestVcn,
      });
    const ak = k * A_WIDTH;
    const ad = attrs.data;
    ad[ak + A.FLAGS] = ah.flags;
    ad[ak + A.COMPRESSION_UNIT] = ah.compressionUnit;
    ad[ak + A.ALLOCATED] = ah.allocatedSize;
    ad[ak + A.INITIALIZED] = ah.initializedSize;
    ad[ak + A.RUN_START] = runs.rows;
    const end = decodeRunsInto(
      buf,
      at + ah.runOffset,
      at + len,
      0,
      this.vol.geo.clusterCount,
      n,
      byteOffset - at,
      runs,
    );
    attrs.data[ak + A.RUN_END] = runs.rows;
    checkRunsEnd(ah, end, n, byteOffset);
    checkAttrSizes(
      n,
      ah.type,
      this.t.attrNames.get(k) ?? '',
      ah.dataSize,
      ah.initializedSize,
      end,
      this.vol.geo.clusterSize,
    );
  }

  private setSi(r: number, si: StandardInfo | undefined): void {
    if (!si) return; // HAS_SI stays 0
    const fd = this.t.files.data;
    const fr = r * F_WIDTH;
    fd[fr + F.HAS_SI] = 1;
    fd[fr + F.FILE_ATTRIBUTES] = si.fileAttributes;
    fd[fr + F.SECURITY_ID] = si.securityId ?? -1;
    fd[fr + F.CREATED] = si.createdMs;
    fd[fr + F.MODIFIED] = si.modifiedMs;
    fd[fr + F.CHANGED] = si.changedMs;
    fd[fr + F.ACCESSED] = si.accessedMs;
  }

  /** Add a file flattened through its attribute list (assembleFile). */
  addFile(f: NtfsFile): void {
    const { files, attrs, names, headers, runs, attrNames, buffers } = this.t;
    if (!this.kept(f.record)) return;
    const nameStart = names.rows;
    for (const nm of f.names) {
      const m = names.add();
      names.set(m, N.PARENT, nm.parent.record);
      names.set(m, N.NAMESPACE, nm.namespace);
      names.set(m, N.BUFFER, buffers.push(Buffer.from(nm.name, 'utf16le')) - 1);
      names.set(m, N.LENGTH, nm.name.length);
    }
    this.linkParent(f.record, nameStart, names.rows);
    const attrStart = attrs.rows;
    for (const a of f.attrs) {
      const k = attrs.add();
      if (a.name) attrNames.set(k, a.name);
      attrs.set(k, A.TYPE, a.type);
      attrs.set(k, A.RESIDENT, a.resident ? 1 : 0);
      attrs.set(k, A.SIZE, a.dataSize);
      attrs.set(k, A.HEADER_START, headers.rows);
      for (const e of a.extents) {
        const h = headers.add();
        headers.set(h, H.BUFFER, buffers.push(e.raw) - 1);
        headers.set(h, H.LENGTH, e.raw.length);
      }
      attrs.set(k, A.HEADER_END, headers.rows);
      if (a.resident) {
        attrs.set(k, A.VALUE_OFFSET, a.extents[0].raw[0x14] | (a.extents[0].raw[0x15] << 8));
        continue;
      }
      attrs.set(k, A.FLAGS, a.flags);
      attrs.set(k, A.COMPRESSION_UNIT, a.compressionUnit);
      attrs.set(k, A.ALLOCATED, a.allocatedSize);
      attrs.set(k, A.INITIALIZED, a.initializedSize);
      attrs.set(k, A.RUN_START, runs.rows);
      for (const run of a.runs) {
        const j = runs.add();
        runs.set(j, RunCol.VCN, run.vcn);
        runs.set(j, RunCol.LCN, run.lcn);
        runs.set(j, RunCol.LENGTH, run.length);
      }
      attrs.set(k, A.RUN_END, runs.rows);
    }
    const r = files.add();
    files.set(r, F.RECORD, f.record);
    files.set(r, F.SEQ, f.seq);
    files.set(r, F.TYPE, typeCode(f.isDirectory, f.reparseTag));
    this.setSi(r, f.si);
    files.set(r, F.ATTR_START, attrStart);
    files.set(r, F.ATTR_END, attrs.rows);
    files.set(r, F.NAME_START, nameStart);
    files.set(r, F.NAME_END, names.rows);
  }

  /**
   * Add the records of one $MFT batch (fixups in place). Returns the in-use base records with an
   * attribute list, for addFile; malformed records go to `skip`. A plain loop (not async) so V8
   * optimizes it while it runs.
   */
  addBatch(
    buf: Uint8Array,
    bufIndex: number,
    first: number,
    count: number,
    skip: (s: SkippedRecord) => void,
  ): number[] {
    const rs = this.vol.geo.recordSize;
    const withList: number[] = [];
    for (let i = 0; i < count; i++) {
      const n = first + i;
      const off = i * rs;
      if (buf[off] === 0 && buf[off + 1] === 0 && buf[off + 2] === 0 && buf[off + 3] === 0) continue; // never used
      const at = recordByteOffset(this.vol, n);
      try {
        applyFixupsAt(buf, off, rs, RecordMagic.FILE, n, at);
        if ((buf[off + 0x16] & RecordFlag.IN_USE) !== 0 && !this.addRecord(buf, bufIndex, off, n, at)) withList.push(n);
      } catch (e) {
        if (!(e instanceof NtfsFormatError)) throw e;
        skip({ record: n, code: e.code, message: e.message });
      }
    }
    return withList;
  }

  /**
   * Whether record `n`'s parent chain reaches the root, memoised in `reach`. A chain that
   * leaves the table, loops, runs past 1024 levels, or passes through a system record other than
   * the root ($Extend) does not: such a file has no path.
   */
  reachesRoot(n: number, chain: number[]): boolean {
    const { parentRec, reach } = this.t;
    chain.length = 0;
    let cur = n;
    while (reach[cur] === Reach.UNKNOWN) {
      const p = parentRec[cur];
      if (
        p < 0 ||
        p >= parentRec.length ||
        chain.length > 1024 ||
        (cur < SystemRecord.FIRST_USER && chain.length > 0) ||
        chain.includes(cur)
      ) {
        reach[cur] = Reach.NO;
        break;
      }
      chain.push(cur);
      cur = p;
    }
    const r = reach[cur];
    for (const c of chain) reach[c] = r;
    return reach[n] === Reach.YES;
  }
}

/**
 * The file-level backup plan: one sequential pass over the $MFT (metadata only, never file
 * data), each in-use base record decoded straight into columns (records with an attribute list
 * through assembleFile), paths from $FILE_NAME parents, and the used-blocks plan from $Bitmap.
 * Malformed records are skipped and listed.
 */
export async function buildPlan(vol: Volume, opts: PlanOptions): Promise<FilePlan> {
  const { clusterSize, bytesPerSector, recordSize: rs, clusterCount } = vol.geo;
  if (clusterSize % opts.blockSize !== 0) {
    throw new NtfsFormatError(
      NtfsErrorCode.BOOT,
      `cluster size ${clusterSize} is not a multiple of the device block size ${opts.blockSize}`,
      { byteOffset: 0x0d },
    );
  }
  const bpc = clusterSize / opts.blockSize;
  const skipped: SkippedRecord[] = [];
  const skip = (s: SkippedRecord): void => {
    skipped.push(s);
    opts.onError?.(s);
  };
  const b = new PlanBuilder(vol, opts.system ?? false);
  const { buffers } = b.t;
  let flattened = false; // files added out of record order
  for await (const { first, count, buf } of mftBatches(vol)) {
    const bufIndex = buffers.push(buf) - 1;
    for (const n of b.addBatch(buf, bufIndex, first, count, skip)) {
      const off = (n - first) * rs;
      const at = recordByteOffset(vol, n);
      try {
        const base = decodeFileRecord(buf.subarray(off, off + rs), n, at, clusterCount);
        const f = await assembleFile(vol, base);
        // The list itself is an attribute too: a whole restore needs its clusters when it is non-resident.
        const list = base.attrs.find((a) => a.type === AttrType.ATTRIBUTE_LIST);
        // The base record's $ATTRIBUTE_LIST as a flattened attribute (assembleFile leaves it out).
        if (list) f.attrs.unshift(attrOf(n, list));
        b.addFile(f);
        flattened = true;
      } catch (e) {
        if (!(e instanceof NtfsFormatError)) throw e;
        skip({ record: n, code: e.code, message: e.message });
      }
    }
  }
  const { files, attrs, runs } = b.t;
  if (flattened) skipped.sort((x, y) => (x.record ?? 0) - (y.record ?? 0));
  b.t.reach[SystemRecord.ROOT] = Reach.YES;
  const rows: number[] = [];
  const chain: number[] = [];
  let dropped: Uint8Array | undefined; // runs of files left out (no path)
  const { reach, parentRec } = b.t;
  for (let r = 0; r < files.rows; r++) {
    const n = files.get(r, F.RECORD);
    const p = parentRec[n];
    // most records: the parent is decided already (reachesRoot would stop there too)
    if (reach[n] === Reach.UNKNOWN && p >= 0 && p < reach.length && reach[p] !== Reach.UNKNOWN) reach[n] = reach[p];
    if (reach[n] === Reach.YES || (reach[n] === Reach.UNKNOWN && b.reachesRoot(n, chain)) || opts.system) {
      rows.push(r);
      continue;
    }
    dropped ??= new Uint8Array(runs.rows);
    for (let k = files.get(r, F.ATTR_START); k < files.get(r, F.ATTR_END); k++)
      dropped.fill(1, attrs.get(k, A.RUN_START), attrs.get(k, A.RUN_END));
  }
  // Every non-hole run of a kept file, as block ranges.
  if (flattened) rows.sort((x, y) => files.get(x, F.RECORD) - files.get(y, F.RECORD));
  const rd = runs.data;
  const starts = new Float64Array(runs.rows);
  const ends = new Float64Array(runs.rows);
  let e = 0;
  for (let j = 0; j < runs.rows; j++) {
    const lcn = rd[j * 3 + RunCol.LCN];
    if (lcn === HOLE || dropped?.[j]) continue;
    starts[e] = lcn * bpc;
    ends[e++] = (lcn + rd[j * 3 + RunCol.LENGTH]) * bpc;
  }
  const used = await usedClusters(vol);
  const backupBootByteOffset = vol.geo.totalSectors * bytesPerSector;
  const usedExtents = used.ranges.map(([s, n]): [number, number] => [s * bpc, n * bpc]);
  if (backupBootByteOffset + bytesPerSector <= vol.view.size)
    usedExtents.push([Math.floor(backupBootByteOffset / opts.blockSize), Math.max(1, bytesPerSector / opts.blockSize)]);
  return new FilePlan(
    vol,
    opts.blockSize,
    b.t,
    rows,
    mergeRanges(starts.subarray(0, e), ends.subarray(0, e)),
    { ranges: used.ranges, backupBootByteOffset, extents: mergeExtents(usedExtents) },
    skipped,
  );
}
