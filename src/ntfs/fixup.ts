import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

// Multi-sector header (ntfs-3g layout.h NTFS_RECORD, mst.c):
//  0x00 magic "FILE"/"INDX"   0x04 u16 update sequence offset   0x06 u16 count (= size/512 + 1)
// The last u16 of every 512-byte stride holds the USN; the real bytes are in the array.
// The stride is 512 even on 4096-byte sectors (sleuthkit#700).
const STRIDE = 512;

/** Magic as a u32 LE. */
export const RecordMagic = {
  FILE: 0x454c4946,
  INDX: 0x58444e49,
} as const;

/**
 * Check and undo the fixups of one record in place (pass a copy). Throws NtfsFormatError
 * (FIXUP) on a bad magic, a bad array, or a torn sector. `record`/`byteOffset` name it.
 */
export function applyFixups(buf: Uint8Array, magic: number, where: { record?: number; byteOffset: number }): void {
  applyFixupsAt(buf, 0, buf.length, magic, where.record, where.byteOffset);
}

/** applyFixups for the `length`-byte record at `at` of `buf` (the $MFT scan: no view per record). */
export function applyFixupsAt(
  buf: Uint8Array,
  at: number,
  length: number,
  magic: number,
  record: number | undefined,
  byteOffset: number,
): void {
  const name = magic === RecordMagic.FILE ? 'FILE' : 'INDX';
  if (length < 48)
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `${name} record too short`, { record, byteOffset, actual: length });
  const got = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
  if (got !== magic) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `no ${name} magic`, {
      record,
      byteOffset,
      expected: `0x${magic.toString(16)}`,
      actual: `0x${got.toString(16)}`,
    });
  }
  const usaOfs = buf[at + 4] | (buf[at + 5] << 8);
  const usaCount = buf[at + 6] | (buf[at + 7] << 8);
  const want = length / STRIDE + 1;
  if (usaCount !== want || usaOfs & 1 || usaOfs + usaCount * 2 > length) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `bad update sequence array (offset ${usaOfs})`, {
      record,
      byteOffset,
      expected: want,
      actual: usaCount,
    });
  }
  const usa = at + usaOfs;
  const usn0 = buf[usa];
  const usn1 = buf[usa + 1];
  for (let i = 1; i < usaCount; i++) {
    const end = at + i * STRIDE - 2;
    if (buf[end] !== usn0 || buf[end + 1] !== usn1) {
      throw new NtfsFormatError(
        NtfsErrorCode.FIXUP,
        `torn ${name} record: sector ${i - 1} does not end in the update sequence number`,
        {
          record,
          byteOffset: byteOffset + (end - at),
          expected: `0x${(usn0 | (usn1 << 8)).toString(16)}`,
          actual: `0x${(buf[end] | (buf[end + 1] << 8)).toString(16)}`,
        },
      );
    }
    buf[end] = buf[usa + 2 * i];
    buf[end + 1] = buf[usa + 2 * i + 1];
  }
}
