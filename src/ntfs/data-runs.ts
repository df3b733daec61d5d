import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

/** One run of a non-resident attribute: `length` clusters at VCN `vcn`, on disk at `lcn` (-1 = hole). */
export interface Run {
  vcn: number;
  lcn: number;
  length: number;
}

export const HOLE = -1;

/**
 * Decode a runlist (ntfs-3g runlist.c). Each run: header byte (low nibble = length bytes,
 * high nibble = LCN-delta bytes), unsigned length, signed LCN delta. 0 ends the list.
 * No delta bytes = a hole; a zero delta with bytes is a real run at the previous LCN.
 * Each extent starts from LCN 0 and its own lowest VCN.
 */
export function decodeRunlist(
  buf: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  clusterCount: number,
  where: { record?: number; byteOffset: number },
): Run[] {
  const runs: Run[] = [];
  let pos = start;
  let vcn = lowestVcn;
  let lcn = 0;
  for (;;) {
    if (pos >= end) fail(where, 'runlist runs past its attribute', pos);
    const head = buf[pos];
    if (head === 0) break;
    const lenBytes = head & 0x0f;
    const deltaBytes = head >> 4;
    if (lenBytes === 0 || lenBytes > 8 || deltaBytes > 8) fail(where, 'bad run header byte', pos, 'length 1..8 and delta 0..8 bytes', `0x${head.toString(16)}`);
    if (pos + 1 + lenBytes + deltaBytes > end) fail(where, 'run runs past its attribute', pos);
    let length = 0;
    for (let i = lenBytes - 1; i >= 0; i--) length = length * 256 + buf[pos + 1 + i];
    if (length === 0 || !Number.isSafeInteger(length) || length > clusterCount) fail(where, 'bad run length', pos, `1..${clusterCount}`, length);
    let run: Run;
    if (deltaBytes === 0) {
      run = { vcn, lcn: HOLE, length };
    } else {
      const at = pos + 1 + lenBytes;
      let delta = 0;
      for (let i = deltaBytes - 1; i >= 0; i--) delta = delta * 256 + buf[at + i];
      if (buf[at + deltaBytes - 1] & 0x80) delta -= 2 ** (8 * deltaBytes);
      lcn += delta;
      if (!Number.isSafeInteger(lcn) || lcn < 0 || lcn + length > clusterCount) fail(where, 'run outside the volume', pos, `clusters within 0..${clusterCount}`, `LCN ${lcn} + ${length}`);
      run = { vcn, lcn, length };
    }
    runs.push(run);
    vcn += length;
    pos += 1 + lenBytes + deltaBytes;
  }
  return runs;
}

function fail(where: { record?: number; byteOffset: number }, msg: string, at: number, expected?: string | number, actual?: string | number): never {
  throw new NtfsFormatError(NtfsErrorCode.RUNLIST, msg, { record: where.record, byteOffset: where.byteOffset + at, expected, actual });
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
