import { createHash } from 'node:crypto';

/** What INQUIRY says about a LU: standard data strings, unit serial (VPD 80h) and NAA (VPD 83h). */
export interface LuIdentity {
  /** 16-byte NAA 6h IEEE Registered Extended designator. SPC-4 7.8.6.6.6 */
  readonly naa: Uint8Array;
  /** VPD 80h PRODUCT SERIAL NUMBER (ASCII). */
  readonly serial: string;
  /** T10 vendor identification, at most 8 ASCII characters. */
  readonly vendor: string;
  /** At most 16 ASCII characters. */
  readonly product: string;
  /** At most 4 ASCII characters. */
  readonly revision: string;
}

/** IEEE company_id placed in our NAA designators; 0x000000 marks a locally derived value. */
const COMPANY_ID = 0x000000;

/**
 * A stable identity derived from `seed` (for example the target IQN plus the image path), so a
 * restarted target presents the same NAA and serial and multipath initiators keep their paths.
 */
export function luIdentity(
  seed: string,
  opts: { vendor?: string; product?: string; revision?: string } = {},
): LuIdentity {
  const h = createHash('sha256').update(seed).digest();
  // NAA 6h: byte 0 = 6h<<4 | company_id[23:20]; then company_id, 36-bit vendor specific id,
  // 64-bit vendor specific identifier extension.
  const naa = new Uint8Array(16);
  naa[0] = 0x60 | ((COMPANY_ID >> 20) & 0x0f);
  naa[1] = (COMPANY_ID >> 12) & 0xff;
  naa[2] = (COMPANY_ID >> 4) & 0xff;
  naa[3] = ((COMPANY_ID & 0x0f) << 4) | (h[0] & 0x0f);
  naa.set(h.subarray(1, 13), 4);
  const serial = h.subarray(13, 25).toString('hex');
  return {
    naa,
    serial,
    vendor: opts.vendor ?? 'FERRY',
    product: opts.product ?? 'VIRTUAL-DISK',
    revision: opts.revision ?? '0001',
  };
}
