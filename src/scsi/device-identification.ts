import { ByteReader } from '../util/byte-reader.ts';

/**
 * SPC-4 7.8.6 Device Identification VPD page (83h), both ways: the target encodes its
 * designation descriptors here, and initiators, the copy manager's resolver and library
 * discovery decode the page here.
 *   page: 0 PDT, 1 83h, 2–3 page length; then descriptors:
 *   descriptor: 0 b7:4 protocol id, b3:0 code set; 1 b7 PIV, b5:4 association, b3:0 designator
 *   type; 3 designator length; 4… designator.
 */

/** One designation descriptor (what an EXTENDED COPY CSCD names a LU by). */
export interface Designator {
  codeSet: number;
  association: number;
  designatorType: number;
  designator: Uint8Array;
}

/** A designation descriptor; with PIV, the protocol identifier is iSCSI (5h). */
export function encodeDesignator(
  codeSet: number,
  piv: boolean,
  association: number,
  type: number,
  id: Uint8Array,
): Uint8Array {
  const d = new Uint8Array(4 + id.length);
  d[0] = (piv ? 0x50 : 0) | codeSet;
  d[1] = (piv ? 0x80 : 0) | (association << 4) | type;
  d[3] = id.length;
  d.set(id, 4);
  return d;
}

/** SPC-4 7.8.6.11 SCSI name string: UTF-8, null-terminated, padded to a multiple of 4. */
export function scsiNameString(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array((b.length + 1 + 3) & ~3);
  out.set(b);
  return out;
}

/** The designators of a VPD 83h page, as far as it holds whole ones; [] for another page. */
export function decodeDeviceIdentificationPage(page: Uint8Array): Designator[] {
  const r = new ByteReader(page);
  if (page.length < 4 || page[1] !== 0x83) return [];
  const end = Math.min(page.length, 4 + r.u16(2));
  const out: Designator[] = [];
  for (let off = 4; off + 4 <= end;) {
    const len = page[off + 3];
    if (off + 4 + len > end) break;
    out.push({
      codeSet: page[off] & 0x0f,
      association: (page[off + 1] >> 4) & 3,
      designatorType: page[off + 1] & 0x0f,
      designator: new Uint8Array(page.subarray(off + 4, off + 4 + len)),
    });
    off += 4 + len;
  }
  return out;
}
