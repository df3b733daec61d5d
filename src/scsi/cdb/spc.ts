import { ByteReader } from '../../util/byte-reader.ts';
import { ScsiOpcode } from '../opcodes.ts';
import { newCdb } from './new-cdb.ts';

/**
 * SPC-4 CDBs, both ways: `build<Command>` makes the bytes (initiator, tests, benches),
 * `decode<Command>Cdb` reads the fields (the LUs). Each layout is written and read here only.
 * A CDB shorter than its layout throws DecodeError (→ 05/24/00 in runCommand).
 */

/** SPC-4 6.x service actions of MAINTENANCE IN A3h. */
export const MaintenanceIn = { REPORT_SUPPORTED_OPERATION_CODES: 0x0c, REPORT_SUPPORTED_TMFS: 0x0d } as const;

// ---- builders ------------------------------------------------------------------------------

/** SPC-4 TEST UNIT READY. */
export function buildTestUnitReady(): Uint8Array {
  return newCdb(6, ScsiOpcode.TEST_UNIT_READY);
}

/** SPC-4 6.6 INQUIRY; `page` selects a VPD page (EVPD=1). */
export function buildInquiry(allocationLength: number, page?: number): Uint8Array {
  const c = newCdb(6, ScsiOpcode.INQUIRY);
  if (page !== undefined) {
    c[1] = 0x01;
    c.writeUInt8(page, 2);
  }
  c.writeUInt16BE(allocationLength, 3);
  return c;
}

/** SPC-4 6.29 REQUEST SENSE; `desc` asks for descriptor format sense data. */
export function buildRequestSense(allocationLength: number, opts: { desc?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.REQUEST_SENSE);
  c[1] = opts.desc ? 0x01 : 0;
  c.writeUInt8(allocationLength, 4);
  return c;
}

/** SPC-4 6.33 REPORT LUNS, SELECT REPORT 00h. */
export function buildReportLuns(allocationLength = 4096): Uint8Array {
  const c = newCdb(12, ScsiOpcode.REPORT_LUNS);
  c.writeUInt32BE(allocationLength, 6);
  return c;
}

/** SPC-4 6.11 MODE SENSE(6). */
export function buildModeSense6(
  page: number,
  opts: { dbd?: boolean; allocationLength?: number; pageControl?: number; subpage?: number } = {},
): Uint8Array {
  const c = newCdb(6, ScsiOpcode.MODE_SENSE_6);
  c[1] = opts.dbd ? 0x08 : 0;
  c[2] = ((opts.pageControl ?? 0) << 6) | (page & 0x3f);
  c.writeUInt8(opts.subpage ?? 0, 3);
  c.writeUInt8(opts.allocationLength ?? 0xff, 4);
  return c;
}

/** SPC-4 6.12 MODE SENSE(10). */
export function buildModeSense10(
  page: number,
  opts: { dbd?: boolean; llbaa?: boolean; allocationLength?: number; pageControl?: number; subpage?: number } = {},
): Uint8Array {
  const c = newCdb(10, ScsiOpcode.MODE_SENSE_10);
  c[1] = (opts.llbaa ? 0x10 : 0) | (opts.dbd ? 0x08 : 0);
  c[2] = ((opts.pageControl ?? 0) << 6) | (page & 0x3f);
  c.writeUInt8(opts.subpage ?? 0, 3);
  c.writeUInt16BE(opts.allocationLength ?? 0xffff, 7);
  return c;
}

/** SPC-4 6.9 MODE SELECT(6), PF=1 unless `pf: false`. */
export function buildModeSelect6(parameterListLength: number, opts: { pf?: boolean; sp?: boolean } = {}): Uint8Array {
  const c = newCdb(6, ScsiOpcode.MODE_SELECT_6);
  c[1] = (opts.pf === false ? 0 : 0x10) | (opts.sp ? 0x01 : 0);
  c.writeUInt8(parameterListLength, 4);
  return c;
}

/** SPC-4 6.10 MODE SELECT(10), PF=1 unless `pf: false`. */
export function buildModeSelect10(parameterListLength: number, opts: { pf?: boolean; sp?: boolean } = {}): Uint8Array {
  const c = newCdb(10, ScsiOpcode.MODE_SELECT_10);
  c[1] = (opts.pf === false ? 0 : 0x10) | (opts.sp ? 0x01 : 0);
  c.writeUInt16BE(parameterListLength, 7);
  return c;
}

/** SPC-4 LOG SENSE; PC defaults to 01b (current cumulative values). */
export function buildLogSense(
  page: number,
  opts: { pageControl?: number; allocationLength?: number; subpage?: number } = {},
): Uint8Array {
  const c = newCdb(10, ScsiOpcode.LOG_SENSE);
  c[2] = ((opts.pageControl ?? 1) << 6) | (page & 0x3f);
  c.writeUInt8(opts.subpage ?? 0, 3);
  c.writeUInt16BE(opts.allocationLength ?? 0xffff, 7);
  return c;
}

/** SPC-4 READ ATTRIBUTE. */
export function buildReadAttribute(serviceAction: number, firstAttribute = 0, allocationLength = 0x10000): Uint8Array {
  const c = newCdb(16, ScsiOpcode.READ_ATTRIBUTE);
  c[1] = serviceAction & 0x1f;
  c.writeUInt16BE(firstAttribute, 8);
  c.writeUInt32BE(allocationLength, 10);
  return c;
}

/** PREVENT ALLOW MEDIUM REMOVAL: PREVENT byte 4 (SBC-3 5.13, SSC-3; one layout). */
export function buildPreventAllow(prevent: boolean): Uint8Array {
  const c = newCdb(6, ScsiOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL);
  c[4] = prevent ? 1 : 0;
  return c;
}

/** SPC-2 7.21 RESERVE(6) (third-party and extent bits clear). */
export function buildReserve6(): Uint8Array {
  return newCdb(6, ScsiOpcode.RESERVE_6);
}

/** SPC-2 RELEASE(6). */
export function buildRelease6(): Uint8Array {
  return newCdb(6, ScsiOpcode.RELEASE_6);
}

/** SPC-4 6.15 PERSISTENT RESERVE IN: SERVICE ACTION 4:0, ALLOCATION LENGTH 7–8. */
export function buildPersistentReserveIn(serviceAction: number, allocationLength: number): Uint8Array {
  const c = newCdb(10, ScsiOpcode.PERSISTENT_RESERVE_IN);
  c[1] = serviceAction & 0x1f;
  c.writeUInt16BE(allocationLength, 7);
  return c;
}

/** SPC-4 6.16 PERSISTENT RESERVE OUT: SA 4:0; SCOPE 7:4, TYPE 3:0 in byte 2; PARAMETER LIST LENGTH 5–8. */
export function buildPersistentReserveOut(
  serviceAction: number,
  parameterListLength: number,
  opts: { scope?: number; type?: number } = {},
): Uint8Array {
  const c = newCdb(10, ScsiOpcode.PERSISTENT_RESERVE_OUT);
  c[1] = serviceAction & 0x1f;
  c[2] = ((opts.scope ?? 0) << 4) | ((opts.type ?? 0) & 0x0f);
  c.writeUInt32BE(parameterListLength, 5);
  return c;
}

/** SPC-4 6.35 REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN A3h/0Ch). */
export function buildReportSupportedOpcodes(
  allocationLength: number,
  opts: { rctd?: boolean; option?: number; opcode?: number; serviceAction?: number } = {},
): Uint8Array {
  const c = newCdb(12, ScsiOpcode.MAINTENANCE_IN);
  c[1] = MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES;
  c[2] = (opts.rctd ? 0x80 : 0) | ((opts.option ?? 0) & 7);
  c.writeUInt8(opts.opcode ?? 0, 3);
  c.writeUInt16BE(opts.serviceAction ?? 0, 4);
  c.writeUInt32BE(allocationLength, 6);
  return c;
}

/** SPC-4 6.36 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (MAINTENANCE IN A3h/0Dh). */
export function buildReportSupportedTmfs(allocationLength: number, opts: { repd?: boolean } = {}): Uint8Array {
  const c = newCdb(12, ScsiOpcode.MAINTENANCE_IN);
  c[1] = MaintenanceIn.REPORT_SUPPORTED_TMFS;
  c[2] = opts.repd ? 0x80 : 0;
  c.writeUInt32BE(allocationLength, 6);
  return c;
}

/** SPC-4 6.4 EXTENDED COPY(LID1), service action 00h. */
export function buildExtendedCopy(parameterListLength: number): Uint8Array {
  const c = newCdb(16, ScsiOpcode.EXTENDED_COPY);
  c.writeUInt32BE(parameterListLength, 10);
  return c;
}

/** SPC-4 6.18 RECEIVE COPY RESULTS. */
export function buildReceiveCopyResults(serviceAction: number, listId: number, allocationLength: number): Uint8Array {
  const c = newCdb(16, ScsiOpcode.RECEIVE_COPY_RESULTS);
  c[1] = serviceAction & 0x1f;
  c.writeUInt8(listId, 2);
  c.writeUInt32BE(allocationLength, 10);
  return c;
}

// ---- decoders ------------------------------------------------------------------------------

/** INQUIRY 12h: EVPD byte 1 b0, CMDDT b1 (obsolete), PAGE CODE 2, ALLOCATION LENGTH 3–4. SPC-4 6.6 */
export function decodeInquiryCdb(cdb: Uint8Array): {
  evpd: boolean;
  cmddt: boolean;
  pageCode: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { evpd: !!(b1 & 1), cmddt: !!(b1 & 2), pageCode: r.u8(2), allocationLength: r.u16(3) };
}

export interface ModeSenseCdb {
  dbd: boolean;
  llbaa: boolean;
  /** PC: 0 current, 1 changeable, 2 default, 3 saved. */
  pageControl: number;
  pageCode: number;
  subpageCode: number;
  allocationLength: number;
  /** 6 or 10: which header layout to answer with. */
  size: 6 | 10;
}
/** MODE SENSE(6) 1Ah. SPC-4 6.11 */
export function decodeModeSense6Cdb(cdb: Uint8Array): ModeSenseCdb {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return {
    dbd: !!(r.u8(1) & 8),
    llbaa: false,
    pageControl: b2 >> 6,
    pageCode: b2 & 0x3f,
    subpageCode: r.u8(3),
    allocationLength: r.u8(4),
    size: 6,
  };
}
/** MODE SENSE(10) 5Ah. SPC-4 6.12 */
export function decodeModeSense10Cdb(cdb: Uint8Array): ModeSenseCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  const b2 = r.u8(2);
  return {
    dbd: !!(b1 & 8),
    llbaa: !!(b1 & 0x10),
    pageControl: b2 >> 6,
    pageCode: b2 & 0x3f,
    subpageCode: r.u8(3),
    allocationLength: r.u16(7),
    size: 10,
  };
}

export interface ModeSelectCdb {
  pf: boolean;
  sp: boolean;
  parameterListLength: number;
  size: 6 | 10;
}
/** MODE SELECT(6) 15h: PF b4, SP b0, PARAMETER LIST LENGTH 4. SPC-4 6.9 */
export function decodeModeSelect6Cdb(cdb: Uint8Array): ModeSelectCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { pf: !!(b1 & 0x10), sp: !!(b1 & 1), parameterListLength: r.u8(4), size: 6 };
}
/** MODE SELECT(10) 55h: PARAMETER LIST LENGTH 7–8. SPC-4 6.10 */
export function decodeModeSelect10Cdb(cdb: Uint8Array): ModeSelectCdb {
  const r = new ByteReader(cdb);
  const b1 = r.u8(1);
  return { pf: !!(b1 & 0x10), sp: !!(b1 & 1), parameterListLength: r.u16(7), size: 10 };
}

/** REQUEST SENSE 03h: DESC byte 1 b0, ALLOCATION LENGTH 4. SPC-4 6.29 */
export function decodeRequestSenseCdb(cdb: Uint8Array): { desc: boolean; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { desc: !!(r.u8(1) & 1), allocationLength: r.u8(4) };
}

/** REPORT LUNS A0h: SELECT REPORT 2, ALLOCATION LENGTH 6–9. SPC-4 6.33 */
export function decodeReportLunsCdb(cdb: Uint8Array): { selectReport: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { selectReport: r.u8(2), allocationLength: r.u32(6) };
}

/** REPORT SUPPORTED OPERATION CODES A3h/0Ch. SPC-4 6.35 */
export function decodeReportOpcodesCdb(cdb: Uint8Array): {
  rctd: boolean;
  option: number;
  opcode: number;
  serviceAction: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return { rctd: !!(b2 & 0x80), option: b2 & 7, opcode: r.u8(3), serviceAction: r.u16(4), allocationLength: r.u32(6) };
}

/** REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS A3h/0Dh: REPD byte 2 b7, ALLOCATION LENGTH 6–9. SPC-4 6.36 */
export function decodeReportTmfsCdb(cdb: Uint8Array): { repd: boolean; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { repd: !!(r.u8(2) & 0x80), allocationLength: r.u32(6) };
}

/** PERSISTENT RESERVE IN 5Eh: SERVICE ACTION 4:0, ALLOCATION LENGTH 7–8. SPC-4 6.15 */
export function decodePrInCdb(cdb: Uint8Array): { serviceAction: number; allocationLength: number } {
  const r = new ByteReader(cdb);
  return { serviceAction: r.u8(1) & 0x1f, allocationLength: r.u16(7) };
}

/** PERSISTENT RESERVE OUT 5Fh: SA 4:0; SCOPE 7:4 and TYPE 3:0 in byte 2; PARAMETER LIST LENGTH 5–8. SPC-4 6.16 */
export function decodePrOutCdb(cdb: Uint8Array): {
  serviceAction: number;
  scope: number;
  type: number;
  parameterListLength: number;
} {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return { serviceAction: r.u8(1) & 0x1f, scope: b2 >> 4, type: b2 & 0x0f, parameterListLength: r.u32(5) };
}

/** RESERVE(6) 16h: 3RDPTY byte 1 b4, LONGID b1, obsolete extent bit b0. SPC-2 7.21 */
export function decodeReserve6Cdb(cdb: Uint8Array): { thirdParty: boolean; extent: boolean } {
  const b1 = new ByteReader(cdb).u8(1);
  return { thirdParty: !!(b1 & 0x10), extent: !!(b1 & 0x01) };
}

/** LOG SENSE: PPC b1, SP b0; PC byte 2 b7:6, page b5:0; subpage 3; pointer 5–6; allocation 7–8. SPC-4 LOG SENSE */
export function decodeLogSenseCdb(cdb: Uint8Array): {
  sp: boolean;
  pageControl: number;
  page: number;
  subpage: number;
  parameterPointer: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  const b2 = r.u8(2);
  return {
    sp: !!(r.u8(1) & 1),
    pageControl: b2 >> 6,
    page: b2 & 0x3f,
    subpage: r.u8(3),
    parameterPointer: r.u16(5),
    allocationLength: r.u16(7),
  };
}

/** READ ATTRIBUTE: SA byte 1 b4:0; volume 5; partition 7; first attribute 8–9; allocation 10–13. SPC-4 */
export function decodeReadAttributeCdb(cdb: Uint8Array): {
  serviceAction: number;
  volume: number;
  partition: number;
  firstAttribute: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  return {
    serviceAction: r.u8(1) & 0x1f,
    volume: r.u8(5),
    partition: r.u8(7),
    firstAttribute: r.u16(8),
    allocationLength: r.u32(10),
  };
}

/** PREVENT ALLOW MEDIUM REMOVAL 1Eh: PREVENT byte 4 bits 1:0. SBC-3 5.13, SSC-3 */
export function decodePreventAllowCdb(cdb: Uint8Array): { prevent: number } {
  return { prevent: new ByteReader(cdb).u8(4) & 3 };
}

/** EXTENDED COPY 83h: SERVICE ACTION byte 1 b4:0, PARAMETER LIST LENGTH 10–13. SPC-4 6.4 */
export function decodeExtendedCopyCdb(cdb: Uint8Array): { serviceAction: number; parameterListLength: number } {
  const r = new ByteReader(cdb);
  return { serviceAction: r.u8(1) & 0x1f, parameterListLength: r.u32(10) };
}

/** RECEIVE COPY RESULTS 84h: SERVICE ACTION byte 1 b4:0, LIST IDENTIFIER 2, ALLOCATION LENGTH 10–13. SPC-4 6.18 */
export function decodeReceiveCopyResultsCdb(cdb: Uint8Array): {
  serviceAction: number;
  listId: number;
  allocationLength: number;
} {
  const r = new ByteReader(cdb);
  return { serviceAction: r.u8(1) & 0x1f, listId: r.u8(2), allocationLength: r.u32(10) };
}

/** Data-In cut to the CDB's ALLOCATION LENGTH (SPC-4 4.2.5.6). */
export function trimToAllocation(data: Uint8Array, allocationLength: number): Uint8Array {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}
