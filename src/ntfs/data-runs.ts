import { NumberTable } from './columns.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

/** One run of a non-resident attribute: `length` clusters at VCN `vcn`, on disk at `lcn` (-1 = hole). */
export interface Run {
  vcn: number;
  lcn: number;
  length: number;
}

export const HOLE = -1;

/** Run columns of NumberTable rows (vcn, lcn, length); lcn is HOLE for a hole. */
export const RunCol = { VCN: 0, LCN: 1, LENGTH: 2 } as const;

/**
 * Decode a runlist (ntfs-3g runlist.c) into `out`, one row per run; returns the VCN after the
 * last run. Each run: header byte (low nibble = length bytes, high nibble = LCN-delta bytes),
 * unsigned length, signed LCN delta. 0 ends the list. No delta bytes = a hole; a zero delta
 * with bytes is a real run at the previous LCN. Each extent starts from LCN 0 and its own lowest VCN.
 */
export function decodeRunsInto(
  buf: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  clusterCount: number,
  record: number | undefined,
  byteOffset: number,
  out: NumberTable,
): number {
  let pos = start;
  let vcn = lowestVcn;
  let lcn = 0;
  for (;;) {
    if (pos >= end) fail(record, byteOffset, 'runlist runs past its attribute', pos);
    const head = buf[pos];
    if (head === 0) break;
    const lenBytes = head & 0x0f;
    const deltaBytes = head >> 4;
    if (lenBytes === 0 || lenBytes > 8 || deltaBytes > 8)
      fail(
        record,
        byteOffset,
        'bad run header byte',
        pos,
        'length 1..8 and delta 0..8 bytes',
        `0x${head.toString(16)}`,
      );
    if (pos + 1 + lenBytes + deltaBytes > end) fail(record, byteOffset, 'run runs past its attribute', pos);
    let length = 0;
    for (let i = lenBytes - 1; i >= 0; i--) length = length * 256 + buf[pos + 1 + i];
    if (length === 0 || !Number.isSafeInteger(length) || length > clusterCount)
      fail(record, byteOffset, 'bad run length', pos, `1..${clusterCount}`, length);
    const row = out.add();
    out.set(row, RunCol.VCN, vcn);
    out.set(row, RunCol.LENGTH, length);
    if (deltaBytes === 0) {
      out.set(row, RunCol.LCN, HOLE);
    } else {
      const at = pos + 1 + lenBytes;
      let delta = 0;
      for (let i = deltaBytes - 1; i >= 0; i--) delta = delta * 256 + buf[at + i];
      if (buf[at + deltaBytes - 1] & 0x80) delta -= 2 ** (8 * deltaBytes);
      lcn += delta;
      if (!Number.isSafeInteger(lcn) || lcn < 0 || lcn + length > clusterCount)
        fail(
          record,
          byteOffset,
          'run outside the volume',
          pos,
          `clusters within 0..${clusterCount}`,
          `LCN ${lcn} + ${length}`,
        );
      out.set(row, RunCol.LCN, lcn);
    }
    vcn += length;
    pos += 1 + lenBytes + deltaBytes;
  }
  return vcn;
}

const scratch = new NumberTable(3, 64);

/** decodeRunsInto as Run objects (the browse and read paths). */
export function decodeRunlist(
  buf: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  clusterCount: number,
  where: { record?: number; byteOffset: number },
): Run[] {
  scratch.truncate(0);
  decodeRunsInto(buf, start, end, lowestVcn, clusterCount, where.record, where.byteOffset, scratch);
  const runs: Run[] = [];
  for (let i = 0; i < scratch.rows; i++)
    runs.push({
      vcn: scratch.get(i, RunCol.VCN),
      lcn: scratch.get(i, RunCol.LCN),
      length: scratch.get(i, RunCol.LENGTH),
    });
  return runs;
}

function fail(
  record: number | undefined,
  byteOffset: number,
  msg: string,
  at: number,
  expected?: string | number,
  actual?: string | number,
): never {
  throw new NtfsFormatError(NtfsErrorCode.RUNLIST, msg, { record, byteOffset: byteOffset + at, expected, actual });
}

/** Index of the run holding `vcn`, or -1 (binary search; runs sorted by VCN). */
export function findRun(runs: readonly Run[], vcn: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid];
    if (vcn < r.vcn) hi = mid - 1;
    else if (vcn >= r.vcn + r.length) lo = mid + 1;
    else return mid;
  }
  return -1;
}
