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
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 48) throw new NtfsFormatError(NtfsErrorCode.FIXUP, `${name} record too short`, { ...where, actual: buf.length });
  const got = view.getUint32(0, true);
  if (got !== magic) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `no ${name} magic`, { ...where, expected: `0x${magic.toString(16)}`, actual: `0x${got.toString(16)}` });
  }
  const usaOfs = view.getUint16(4, true);
  const usaCount = view.getUint16(6, true);
  const want = buf.length / STRIDE + 1;
  if (usaCount !== want || usaOfs & 1 || usaOfs + usaCount * 2 > buf.length) {
    throw new NtfsFormatError(NtfsErrorCode.FIXUP, `bad update sequence array (offset ${usaOfs})`, { ...where, expected: want, actual: usaCount });
  }
  const usn = view.getUint16(usaOfs, true);
  for (let i = 1; i < usaCount; i++) {
    const at = i * STRIDE - 2;
    const v = view.getUint16(at, true);
    if (v !== usn) {
      throw new NtfsFormatError(NtfsErrorCode.FIXUP, `torn ${name} record: sector ${i - 1} does not end in the update sequence number`, {
        record: where.record,
        byteOffset: where.byteOffset + at,
        expected: `0x${usn.toString(16)}`,
        actual: `0x${v.toString(16)}`,
      });
    }
    view.setUint16(at, view.getUint16(usaOfs + 2 * i, true), true);
  }
}
