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
  const name = magic === RecordMagic.FILE ? 'FILE' : 'INDX';
  if (buf.length < 48) throw new NtfsFormatError(NtfsErrorCode.FIXUP, `${name} record too short`, { ...where, actual: buf.length });
  const got = (buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24)) >>> 0;
  if (got !== magic) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `no ${name} magic`, { ...where, expected: `0x${magic.toString(16)}`, actual: `0x${got.toString(16)}` });
  }
  const usaOfs = buf[4] | (buf[5] << 8);
  const usaCount = buf[6] | (buf[7] << 8);
  const want = buf.length / STRIDE + 1;
  if (usaCount !== want || usaOfs & 1 || usaOfs + usaCount * 2 > buf.length) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `bad update sequence array (offset ${usaOfs})`, { ...where, expected: want, actual: usaCount });
  }
  const usn0 = buf[usaOfs];
  const usn1 = buf[usaOfs + 1];
  for (let i = 1; i < usaCount; i++) {
    const at = i * STRIDE - 2;
    if (buf[at] !== usn0 || buf[at + 1] !== usn1) {
      throw new NtfsFormatError(NtfsErrorCode.FIXUP, `torn ${name} record: sector ${i - 1} does not end in the update sequence number`, {
        record: where.record,
        byteOffset: where.byteOffset + at,
        expected: `0x${(usn0 | (usn1 << 8)).toString(16)}`,
        actual: `0x${(buf[at] | (buf[at + 1] << 8)).toString(16)}`,
      });
    }
    buf[at] = buf[usaOfs + 2 * i];
    buf[at + 1] = buf[usaOfs + 2 * i + 1];
  }
}
