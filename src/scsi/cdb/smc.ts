import { ByteReader } from '../../util/byte-reader.ts';
import { ScsiOpcode } from '../opcodes.ts';
import { newCdb } from './new-cdb.ts';

/**
 * SMC-3 CDBs, both ways: `build<Command>` makes the bytes (the changer client, tests),
 * `decode<Command>Cdb` reads the fields (the changer LU). Each layout is written and read here only.
 */

/** SMC-3 element type codes. */
export const ElementType = { ALL: 0, MEDIUM_TRANSPORT: 1, STORAGE: 2, IMPORT_EXPORT: 3, DATA_TRANSFER: 4 } as const;

// ---- builders ------------------------------------------------------------------------------

/** SMC-3 MOVE MEDIUM: transport 2–3, source 4–5, destination 6–7, INVERT byte 10 b0. */
export function buildMoveMedium(transport: number, source: number, destination: number, invert = false): Uint8Array {
  const c = newCdb(12, ScsiOpcode.MOVE_MEDIUM);
  c.writeUInt16BE(transport, 2);
  c.writeUInt16BE(source, 4);
  c.writeUInt16BE(destination, 6);
  c[10] = invert ? 1 : 0;
  return c;
}

/** SMC-3 READ ELEMENT STATUS. */
export function buildReadElementStatus(
  opts: {
    type?: number;
    start?: number;
    count?: number;
    voltag?: boolean;
    dvcid?: boolean;
    allocationLength?: number;
  } = {},
): Uint8Array {
  const c = newCdb(12, ScsiOpcode.READ_ELEMENT_STATUS);
  c[1] = (opts.voltag ? 0x10 : 0) | ((opts.type ?? ElementType.ALL) & 0x0f);
  c.writeUInt16BE(opts.start ?? 0, 2);
  c.writeUInt16BE(opts.count ?? 0xffff, 4);
  c[6] = opts.dvcid ? 1 : 0;
  c.writeUIntBE(opts.allocationLength ?? 0xffffff, 7, 3);
  return c;
}

/** SMC-3 INITIALIZE ELEMENT STATUS. */
export function buildInitializeElementStatus(): Uint8Array {
  return newCdb(6, ScsiOpcode.INITIALIZE_ELEMENT_STATUS);
}

// ---- decoders ------------------------------------------------------------------------------

export function decodeMoveMediumCdb(c: Uint8Array): {
  transport: number;
  source: number;
  destination: number;
  invert: boolean;
} {
  const r = new ByteReader(c);
  return { transport: r.u16(2), source: r.u16(4), destination: r.u16(6), invert: !!(r.u8(10) & 1) };
}

export function decodeReadElementStatusCdb(c: Uint8Array): {
  voltag: boolean;
  type: number;
  start: number;
  count: number;
  curdata: boolean;
  dvcid: boolean;
  allocationLength: number;
} {
  const r = new ByteReader(c);
  const b1 = r.u8(1);
  const b6 = r.u8(6);
  return {
    voltag: !!(b1 & 0x10),
    type: b1 & 0x0f,
    start: r.u16(2),
    count: r.u16(4),
    curdata: !!(b6 & 2),
    dvcid: !!(b6 & 1),
    allocationLength: r.u24(7),
  };
}

export function decodePositionToElementCdb(c: Uint8Array): { transport: number; destination: number; invert: boolean } {
  const r = new ByteReader(c);
  return { transport: r.u16(2), destination: r.u16(4), invert: !!(r.u8(8) & 1) };
}

export function decodeInitElementStatusRangeCdb(c: Uint8Array): { range: boolean; start: number; count: number } {
  const r = new ByteReader(c);
  return { range: !!(r.u8(1) & 1), start: r.u16(2), count: r.u16(6) };
}
