// SAM-5 4.7: the 8-byte LUN field. Peripheral device addressing (00b) below 256, flat space
// addressing (01b) up to 16383; single level only.

/** Decode the LUN field at `at`; -1 for addressing methods or levels Ferry does not map. */
export function decodeLun(b: Uint8Array, at = 0): number {
  const method = b[at] >> 6;
  for (let i = 2; i < 8; i++) if (b[at + i] !== 0) return -1;
  if (method === 0) return b[at] === 0 ? b[at + 1] : -1;
  if (method === 1) return ((b[at] & 0x3f) << 8) | b[at + 1];
  return -1;
}

/** Encode `lun` into `into` at `at` (a new 8-byte array by default). */
export function encodeLun(lun: number, into: Uint8Array = new Uint8Array(8), at = 0): Uint8Array {
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) throw new RangeError(`LUN ${lun} out of range`);
  into.fill(0, at, at + 8);
  if (lun < 256) into[at + 1] = lun;
  else {
    into[at] = 0x40 | (lun >> 8);
    into[at + 1] = lun & 0xff;
  }
  return into;
}

/** SPC-4 6.33 REPORT LUNS parameter data: LUN LIST LENGTH (bytes 0–3), reserved, then 8-byte LUNs in order. */
export function encodeLunList(luns: Iterable<number>): Uint8Array {
  const list = [...luns].sort((a, b) => a - b);
  const out = new Uint8Array(8 + 8 * list.length);
  new DataView(out.buffer).setUint32(0, 8 * list.length);
  list.forEach((l, i) => encodeLun(l, out, 8 + 8 * i));
  return out;
}

/** The LUNs of REPORT LUNS parameter data, as far as `d` holds them; LUNs Ferry cannot address are left out. */
export function decodeLunList(d: Uint8Array): number[] {
  if (d.length < 8) return [];
  const end = Math.min(d.length, 8 + new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0));
  const out: number[] = [];
  for (let at = 8; at + 8 <= end; at += 8) {
    const lun = decodeLun(d, at);
    if (lun >= 0) out.push(lun);
  }
  return out;
}
