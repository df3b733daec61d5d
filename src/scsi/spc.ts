import { SenseError, SenseKey, Asc, encodeSense, type SenseFormat } from './sense.ts';
import { ScsiStatus, type Nexus, type ResetKind, type ScsiResult, type ScsiTask } from './task.ts';
import { checkCondition, type CommandEntry } from './command-table.ts';
import {
  MaintenanceIn,
  decodeInquiryCdb,
  decodeModeSelect10Cdb,
  decodeModeSelect6Cdb,
  decodeModeSense10Cdb,
  decodeModeSense6Cdb,
  decodePrInCdb,
  decodePrOutCdb,
  decodeReportLunsCdb,
  decodeReportOpcodesCdb,
  decodeReportTmfsCdb,
  decodeRequestSenseCdb,
  decodeReserve6Cdb,
  trimToAllocation,
  type ModeSelectCdb,
  type ModeSenseCdb,
} from './cdb/spc.ts';
import { UnitAttentions } from './unit-attention.ts';
import {
  PersistentReservations,
  decodePrOutParams,
  decodePrMoveParams,
  PrOutAction,
} from './persistent-reservation.ts';
import { ModePages, controlPage, senseFormatOf, softwareWriteProtectOf } from './mode-pages.ts';
import { decodeModeParameterHeader, encodeModeParameters } from './mode-parameters.ts';
import type { LuIdentity } from './identity.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { encodeLunList } from './lun.ts';
import { encodeDesignator, scsiNameString } from './device-identification.ts';
import { ScsiOpcode } from './opcodes.ts';

/** SPC-4 7.8.x VPD page codes Ferry answers. */
export const VpdPage = {
  SUPPORTED_PAGES: 0x00,
  UNIT_SERIAL_NUMBER: 0x80,
  DEVICE_IDENTIFICATION: 0x83,
  THIRD_PARTY_COPY: 0x8f,
  BLOCK_LIMITS: 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS: 0xb1,
  LOGICAL_BLOCK_PROVISIONING: 0xb2,
} as const;

/** SPC-4 6.6.2 Table 139 version descriptors. */
export const VersionDescriptor = {
  SAM_5: 0x00a0,
  ISCSI: 0x0960,
  SPC_4: 0x0460,
  SBC_3: 0x04c0,
  SSC_3: 0x0400,
  SMC_3: 0x0480,
} as const; // SPC-4 Table 30

/** The page body (after the 4-byte VPD header) for one request. */
export type VpdBuilder = (task: ScsiTask) => Uint8Array;

/** What REPORT SUPPORTED OPERATION CODES needs to know of a command table (no handler types). */
export interface CommandInfo {
  readonly name: string;
  readonly cdbLength: number;
  readonly usage?: Uint8Array;
  readonly serviceActions?: ReadonlyMap<number, CommandInfo>;
}

export interface SpcOptions {
  identity: LuIdentity;
  deviceType: number;
  /** Standard INQUIRY byte 5 b3: the LU is a copy manager (EXTENDED COPY). */
  threePC?: boolean;
  /** Standard INQUIRY byte 1 b7 RMB. */
  removable?: boolean;
  /** Device-type version descriptors appended to SAM-5, iSCSI, SPC-4. */
  versionDescriptors?: number[];
}

/** Mode parameter header fields a device type supplies (SPC-4 7.5.5, SBC-3 6.4.2). */
export interface ModeHeaderInfo {
  /** DEVICE-SPECIFIC PARAMETER (SBC: WP b7, DPOFUA b4). */
  deviceSpecific: number;
  /** Short/long LBA block descriptor, if the device type has one. */
  blockDescriptor?: { blockCount: number; blockSize: number };
}

/**
 * The SPC state every device type shares: identity, unit attentions, reservations, VPD and
 * mode pages. A LU holds one as `spc`; the SPC command entries reach it through `lu.spc`.
 */
export class SpcState {
  readonly identity: LuIdentity;
  readonly deviceType: number;
  threePC: boolean;
  readonly removable: boolean;
  readonly versionDescriptors: number[];
  readonly ua = new UnitAttentions();
  readonly pr: PersistentReservations;
  readonly modePages = new ModePages();
  /** Extra VPD pages by code (B0h–B2h from SBC, 8Fh from the copy manager). */
  readonly vpd = new Map<number, VpdBuilder>();
  /** RESERVE(6) holder (SPC-2 7.21): an I_T nexus key. */
  reserve6: string | undefined;
  /** The LU's full command table, for REPORT SUPPORTED OPERATION CODES. */
  table: ReadonlyMap<number, CommandInfo> = new Map();
  modeHeader: () => ModeHeaderInfo = () => ({ deviceSpecific: 0 });

  constructor(opts: SpcOptions) {
    this.identity = opts.identity;
    this.deviceType = opts.deviceType;
    this.threePC = opts.threePC ?? false;
    this.removable = opts.removable ?? false;
    this.versionDescriptors = opts.versionDescriptors ?? [];
    this.pr = new PersistentReservations(this.ua);
    this.modePages.add(controlPage());
  }

  /** LOGICAL UNIT RESET / TARGET RESET (SAM-5 6.3): RESERVE(6) goes, every nexus gets 29h/0xh. */
  reset(kind: ResetKind): void {
    this.reserve6 = undefined;
    this.ua.resetAll(kind === 'target-cold' ? Asc.POWER_ON_OCCURRED : Asc.BUS_DEVICE_RESET_FUNCTION_OCCURRED);
    if (kind === 'target-cold') this.modePages.resetToDefaults();
  }

  nexusLost(nexus: Nexus): void {
    if (this.reserve6 === nexus.key) this.reserve6 = undefined;
    this.ua.forget(nexus.key);
  }

  /** D_SENSE in the control mode page (SPC-4 7.5.8): the format of CHECK CONDITION sense. */
  get senseFormat(): SenseFormat {
    return senseFormatOf(this.modePages);
  }

  /** SWP in the control mode page (SPC-4 7.5.8): the medium is write protected. */
  get softwareWriteProtect(): boolean {
    return softwareWriteProtectOf(this.modePages);
  }
}

export interface SpcLu {
  readonly spc: SpcState;
}

const invalidCdb = (field: number, bit?: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, { fieldPointer: { cd: true, field, bit } });

// ---- INQUIRY (SPC-4 6.6) ------------------------------------------------------------------

function ascii(w: ByteWriter, at: number, s: string, len: number): void {
  for (let i = 0; i < len; i++) w.setU8(at + i, i < s.length ? s.charCodeAt(i) & 0x7f : 0x20);
}

/** Standard INQUIRY data, 96 bytes. SPC-4 6.6.2 */
export function standardInquiry(spc: SpcState, pdtByte = spc.deviceType): Uint8Array {
  const w = new ByteWriter(96);
  w.setU8(0, pdtByte);
  w.setU8(1, spc.removable ? 0x80 : 0);
  w.setU8(2, 0x06); // VERSION: SPC-4
  w.setU8(3, 0x10 | 0x02); // HISUP, RESPONSE DATA FORMAT 2
  w.setU8(4, 96 - 5);
  w.setU8(5, spc.threePC ? 0x08 : 0);
  w.setU8(7, 0x02); // CMDQUE
  ascii(w, 8, spc.identity.vendor, 8);
  ascii(w, 16, spc.identity.product, 16);
  ascii(w, 32, spc.identity.revision, 4);
  const versions = [
    VersionDescriptor.SAM_5,
    VersionDescriptor.ISCSI,
    VersionDescriptor.SPC_4,
    ...spc.versionDescriptors,
  ].slice(0, 8);
  versions.forEach((v, i) => w.setU16(58 + 2 * i, v));
  return w.buf;
}

function vpdPage(pdt: number, code: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = pdt;
  out[1] = code;
  out[2] = body.length >> 8;
  out[3] = body.length & 0xff;
  out.set(body, 4);
  return out;
}

/** One designation descriptor. SPC-4 7.8.6.1 */
/**
 * VPD 83h (SPC-4 7.8.6). libiscsi takes the last designator of the highest type ≤ 3 whatever
 * its association, so the one NAA (type 3, LU) comes after the T10 vendor ID (type 1).
 */
export function deviceIdentification(spc: SpcState, task: ScsiTask): Uint8Array {
  const id = spc.identity;
  const t10 = new TextEncoder().encode(`${id.vendor.padEnd(8, ' ').slice(0, 8)}${id.serial}`);
  const relPort = new Uint8Array(4);
  relPort[2] = task.target.relativePortId >> 8;
  relPort[3] = task.target.relativePortId & 0xff;
  const tpgt = task.nexus.tpgt.toString(16).padStart(4, '0');
  const parts = [
    encodeDesignator(2, false, 0, 1, t10),
    encodeDesignator(1, false, 0, 3, id.naa),
    encodeDesignator(1, true, 1, 4, relPort),
    encodeDesignator(3, true, 1, 8, scsiNameString(`${task.target.targetName},t,0x${tpgt}`)),
    encodeDesignator(3, true, 2, 8, scsiNameString(task.target.targetName)),
  ];
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return body;
}

export function inquiry(task: ScsiTask, lu: SpcLu): Uint8Array {
  const spc = lu.spc;
  const c = decodeInquiryCdb(task.cdb);
  if (c.cmddt) throw invalidCdb(1, 1);
  if (!c.evpd) {
    if (c.pageCode !== 0) throw invalidCdb(2);
    return trimToAllocation(standardInquiry(spc), c.allocationLength);
  }
  return trimToAllocation(vpdPage(spc.deviceType, c.pageCode, vpdBody(spc, c.pageCode, task)), c.allocationLength);
}

function vpdBody(spc: SpcState, code: number, task: ScsiTask): Uint8Array {
  switch (code) {
    case VpdPage.SUPPORTED_PAGES:
      return Uint8Array.from(new Set([0x00, 0x80, 0x83, ...spc.vpd.keys()].sort((a, b) => a - b)));
    case VpdPage.UNIT_SERIAL_NUMBER:
      return new TextEncoder().encode(spc.identity.serial);
    case VpdPage.DEVICE_IDENTIFICATION:
      return deviceIdentification(spc, task);
    default: {
      const b = spc.vpd.get(code);
      if (!b) throw invalidCdb(2);
      return b(task);
    }
  }
}

// ---- REQUEST SENSE, TEST UNIT READY (SPC-4 6.29, 6.37) ------------------------------------

/**
 * REQUEST SENSE: a pending unit attention (cleared), else `notReady`, else NO SENSE, in the
 * format the DESC bit asks for whatever D_SENSE says (SPC-4 6.39).
 */
export function requestSense(task: ScsiTask, lu: SpcLu, notReady?: () => SenseError | undefined): Uint8Array {
  const c = decodeRequestSenseCdb(task.cdb);
  const ua = lu.spc.ua.take(task.nexus.key);
  const err = ua
    ? new SenseError(SenseKey.UNIT_ATTENTION, ua)
    : (notReady?.() ?? new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE));
  return trimToAllocation(encodeSense(err, c.desc ? 'descriptor' : 'fixed'), c.allocationLength);
}

// ---- REPORT LUNS (SPC-4 6.33, SAM-5 4.7) --------------------------------------------------

export function reportLuns(task: ScsiTask): Uint8Array {
  const c = decodeReportLunsCdb(task.cdb);
  // SPC-4 6.33: allocation length below 16 is an error; SELECT REPORT 00h–02h are defined.
  if (c.allocationLength < 16) throw invalidCdb(6);
  if (c.selectReport > 2) throw invalidCdb(2);
  const luns = c.selectReport === 1 ? [] : task.target.luns().keys();
  return trimToAllocation(encodeLunList(luns), c.allocationLength);
}

/** A command addressed to a LUN no LU answers (SPC-4 6.6.2, SAM-5 5.8.2). */
export function unmappedLun(task: ScsiTask): ScsiResult {
  const op = task.cdb[0];
  if (op === ScsiOpcode.INQUIRY) {
    try {
      const c = decodeInquiryCdb(task.cdb);
      if (!c.evpd) {
        const d = new Uint8Array(36);
        d[0] = 0x7f; // PERIPHERAL QUALIFIER 011b, DEVICE TYPE 1Fh
        d[2] = 0x06;
        d[3] = 0x02;
        d[4] = 31;
        return { status: ScsiStatus.GOOD, dataIn: trimToAllocation(d, c.allocationLength) };
      }
    } catch {
      // fall through to the sense below
    }
  }
  if (op === ScsiOpcode.REPORT_LUNS) {
    try {
      return { status: ScsiStatus.GOOD, dataIn: reportLuns(task) };
    } catch (e) {
      if (e instanceof SenseError) return checkCondition(e);
    }
  }
  if (op === ScsiOpcode.REQUEST_SENSE) {
    const err = new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LOGICAL_UNIT_NOT_SUPPORTED);
    const desc = !!((task.cdb[1] ?? 0) & 0x01); // SPC-4 6.39: DESC
    return {
      status: ScsiStatus.GOOD,
      dataIn: trimToAllocation(encodeSense(err, desc ? 'descriptor' : 'fixed'), task.cdb[4] ?? 0),
    };
  }
  return checkCondition(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LOGICAL_UNIT_NOT_SUPPORTED));
}

// ---- REPORT SUPPORTED OPERATION CODES / TMFs (SPC-4 6.35, 6.36) ---------------------------

function usageOf(op: number, sa: number | undefined, info: CommandInfo): Uint8Array {
  if (info.usage) return info.usage;
  const u = new Uint8Array(info.cdbLength).fill(0xff);
  u[0] = op;
  if (sa !== undefined) u[1] = sa & 0x1f;
  u[info.cdbLength - 1] = 0x07; // CONTROL: NACA/LINK bits only
  return u;
}

/** SPC-4 6.35.4: command timeouts descriptor, length 0Ah, no timeouts given. */
const timeoutsDescriptor = (): Uint8Array => Uint8Array.of(0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

export function reportSupportedOpcodes(task: ScsiTask, lu: SpcLu): Uint8Array {
  const c = decodeReportOpcodesCdb(task.cdb);
  const table = lu.spc.table;
  if (c.option === 0) {
    const descs: Uint8Array[] = [];
    const one = (op: number, sa: number | undefined, info: CommandInfo): void => {
      const d = new ByteWriter(8 + (c.rctd ? 12 : 0));
      d.setU8(0, op);
      d.setU16(2, sa ?? 0);
      d.setU8(5, (c.rctd ? 0x02 : 0) | (sa !== undefined ? 0x01 : 0));
      d.setU16(6, info.cdbLength);
      if (c.rctd) d.buf.set(timeoutsDescriptor(), 8);
      descs.push(d.buf);
    };
    for (const op of [...table.keys()].sort((a, b) => a - b)) {
      const info = table.get(op)!;
      if (info.serviceActions)
        for (const sa of [...info.serviceActions.keys()].sort((a, b) => a - b))
          one(op, sa, info.serviceActions.get(sa)!);
      else one(op, undefined, info);
    }
    const size = descs.reduce((n, d) => n + d.length, 0);
    const w = new ByteWriter(4 + size).u32(size);
    for (const d of descs) w.bytes(d);
    return trimToAllocation(w.buf, c.allocationLength);
  }
  if (c.option !== 1 && c.option !== 2 && c.option !== 3) throw invalidCdb(2, 2);
  const top = table.get(c.opcode);
  let info: CommandInfo | undefined;
  let sa: number | undefined;
  if (c.option === 1 || (c.option === 3 && !top?.serviceActions)) {
    if (top?.serviceActions) throw invalidCdb(3);
    info = top;
  } else {
    if (top && !top.serviceActions) throw invalidCdb(4);
    sa = c.serviceAction;
    info = top?.serviceActions?.get(sa);
  }
  if (!info) {
    const w = new ByteWriter(4);
    w.setU8(1, 0x01); // SUPPORT 001b: not supported
    return trimToAllocation(w.buf, c.allocationLength);
  }
  const usage = usageOf(c.opcode, sa, info);
  const w = new ByteWriter(4 + usage.length + (c.rctd ? 12 : 0));
  w.setU8(1, (c.rctd ? 0x80 : 0) | 0x03); // CTDP, SUPPORT 011b
  w.setU16(2, usage.length);
  w.pos = 4;
  w.bytes(usage);
  if (c.rctd) w.bytes(timeoutsDescriptor());
  return trimToAllocation(w.buf, c.allocationLength);
}

/** ABORT TASK, ABORT TASK SET, LU RESET, TARGET RESET (no CLEAR TASK SET / CLEAR ACA / QUERY). */
export function reportSupportedTmfs(task: ScsiTask): Uint8Array {
  const c = decodeReportTmfsCdb(task.cdb);
  if (c.allocationLength < 4) throw invalidCdb(6);
  const d = new Uint8Array(c.repd ? 16 : 4);
  d[0] = 0x80 | 0x40 | 0x08 | 0x02; // ATS, ATSS, LURS, TRS
  if (c.repd) d[3] = 0x0c; // ADDITIONAL DATA LENGTH
  return trimToAllocation(d, c.allocationLength);
}

// ---- MODE SENSE / MODE SELECT (SPC-4 6.9–6.12) --------------------------------------------

export function modeSense(c: ModeSenseCdb, spc: SpcState): Uint8Array {
  const pages = spc.modePages.sense(c.pageControl, c.pageCode, c.subpageCode);
  const hdr = spc.modeHeader();
  const bd = !c.dbd && hdr.blockDescriptor ? hdr.blockDescriptor : undefined;
  const descriptor = bd && { blockCount: bd.blockCount, blockLength: bd.blockSize };
  const data = encodeModeParameters({
    size: c.size,
    deviceSpecific: hdr.deviceSpecific,
    descriptor,
    longLba: c.llbaa,
    pages,
  });
  return trimToAllocation(data, c.allocationLength);
}

export function modeSelect(c: ModeSelectCdb, task: ScsiTask, spc: SpcState): void {
  if (c.parameterListLength === 0) return;
  if (!c.pf) throw invalidCdb(1, 4);
  if (c.sp)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.SAVING_PARAMETERS_NOT_SUPPORTED, {
      fieldPointer: { cd: true, field: 1, bit: 0 },
    });
  const data = task.dataOut.subarray(0, c.parameterListLength);
  const h = decodeModeParameterHeader(data, c.size);
  if (data.length < c.parameterListLength || !h)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  const hlen = h.headerLength;
  const bdLen = h.blockDescriptorLength;
  if (hlen + bdLen > data.length) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  // Block descriptors are accepted when they restate the current geometry (checked by length only).
  const changed = spc.modePages.select(data.subarray(hlen + bdLen), hlen + bdLen);
  if (changed) spc.ua.addAll(Asc.MODE_PARAMETERS_CHANGED, task.nexus.key);
}

// ---- PERSISTENT RESERVE IN/OUT, RESERVE(6)/RELEASE(6) -------------------------------------

export function persistentReserveIn(task: ScsiTask, lu: SpcLu): Uint8Array {
  const c = decodePrInCdb(task.cdb);
  return trimToAllocation(lu.spc.pr.in(c.serviceAction, task.target.relativePortId), c.allocationLength);
}

export function persistentReserveOut(task: ScsiTask, lu: SpcLu): ScsiResult | undefined {
  const c = decodePrOutCdb(task.cdb);
  if (c.serviceAction > PrOutAction.REGISTER_AND_MOVE) throw invalidCdb(1, 4);
  const spc = lu.spc;
  // SPC-3 5.6.3: while a RESERVE(6) reservation is held, PERSISTENT RESERVE OUT conflicts.
  if (spc.reserve6 !== undefined && spc.reserve6 !== task.nexus.key) return { status: ScsiStatus.RESERVATION_CONFLICT };
  if (c.serviceAction === PrOutAction.REGISTER_AND_MOVE) {
    if (c.parameterListLength < 24 || task.dataOut.length < c.parameterListLength)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
    const p = decodePrMoveParams(task.dataOut.subarray(0, c.parameterListLength));
    if (c.scope !== 0) throw invalidCdb(2, 7);
    return spc.pr.move(task.nexus, p);
  }
  if (c.parameterListLength !== 24) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  if (task.dataOut.length < 24) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
  return spc.pr.out(task.nexus, c.serviceAction, c.scope, c.type, decodePrOutParams(task.dataOut));
}

/** RESERVE(6) 16h (SPC-2 7.21): the whole LU, for one I_T nexus. */
export function reserve6(task: ScsiTask, lu: SpcLu): ScsiResult | undefined {
  const spc = lu.spc;
  if (spc.pr.hasRegistrations) return { status: ScsiStatus.RESERVATION_CONFLICT };
  if (spc.reserve6 !== undefined && spc.reserve6 !== task.nexus.key) return { status: ScsiStatus.RESERVATION_CONFLICT };
  const c = decodeReserve6Cdb(task.cdb);
  if (c.thirdParty) throw invalidCdb(1, 4); // third-party reservations: unsupported
  if (c.extent) throw invalidCdb(1, 0); // extent reservations: obsolete, unsupported
  spc.reserve6 = task.nexus.key;
  return undefined;
}

/** RELEASE(6) 17h: releasing what you do not hold is GOOD and changes nothing. SPC-2 7.19 */
export function release6(task: ScsiTask, lu: SpcLu): undefined {
  if (lu.spc.reserve6 === task.nexus.key) lu.spc.reserve6 = undefined;
  return undefined;
}

/** Commands a RESERVE(6) reservation held by another nexus lets through. SPC-2 Table 31 */
const RESERVE6_ALLOWED = new Set<number>([
  ScsiOpcode.INQUIRY,
  ScsiOpcode.REPORT_LUNS,
  ScsiOpcode.REQUEST_SENSE,
  ScsiOpcode.RELEASE_6,
  ScsiOpcode.MAINTENANCE_IN,
]);
/** Commands that never report a unit attention. SAM-5 5.14 */
const UA_EXEMPT = new Set<number>([ScsiOpcode.INQUIRY, ScsiOpcode.REPORT_LUNS, ScsiOpcode.REQUEST_SENSE]);

/**
 * The SPC checks before any handler runs (use as runCommand's `gate`): a new nexus gets its
 * power-on unit attention, pending unit attentions are reported, then reservations. SAM-5 5.14,
 * SPC-4 5.13.1, SPC-2 5.5.1.
 */
export function spcGate<L extends SpcLu>(
  lu: L,
  entry: CommandEntry<L> | undefined,
  task: ScsiTask,
): ScsiResult | undefined {
  const spc = lu.spc;
  const key = task.nexus.key;
  spc.ua.seen(key, Asc.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED);
  const op = task.cdb[0];
  if (!UA_EXEMPT.has(op)) {
    const ua = spc.ua.take(key);
    if (ua) throw new SenseError(SenseKey.UNIT_ATTENTION, ua);
  } else if (op === ScsiOpcode.REPORT_LUNS) {
    spc.ua.clear(key, Asc.REPORTED_LUNS_DATA_HAS_CHANGED);
  }
  if (!entry) return undefined;
  if (spc.reserve6 !== undefined && spc.reserve6 !== key && !RESERVE6_ALLOWED.has(op))
    return { status: ScsiStatus.RESERVATION_CONFLICT };
  const access = entry.pr ?? 'write';
  if (access !== 'allowed' && spc.pr.conflicts(key, access)) return { status: ScsiStatus.RESERVATION_CONFLICT };
  return undefined;
}

// ---- the SPC command entries --------------------------------------------------------------

function maintenanceIn<L extends SpcLu>(): CommandEntry<L> {
  return {
    name: 'MAINTENANCE IN',
    cdbLength: 12,
    serviceActions: new Map<number, CommandEntry<L>>([
      [
        MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES,
        {
          name: 'REPORT SUPPORTED OPERATION CODES',
          cdbLength: 12,
          pr: 'allowed',
          handler: (t, lu) => reportSupportedOpcodes(t, lu),
        },
      ],
      [
        MaintenanceIn.REPORT_SUPPORTED_TMFS,
        {
          name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS',
          cdbLength: 12,
          pr: 'allowed',
          handler: (t) => reportSupportedTmfs(t),
        },
      ],
    ]),
    handler: () => undefined,
  };
}

/**
 * SPC entries for a device type's table. `notReady` lets TEST UNIT READY and REQUEST SENSE
 * report a stopped unit or a missing medium.
 */
export function spcCommands<L extends SpcLu>(
  notReady?: (lu: L) => SenseError | undefined,
): Array<[number, CommandEntry<L>]> {
  return [
    [
      ScsiOpcode.TEST_UNIT_READY,
      {
        name: 'TEST UNIT READY',
        cdbLength: 6,
        pr: 'allowed',
        handler: (_t, lu) => {
          const e = notReady?.(lu);
          if (e) throw e;
        },
      },
    ],
    [
      ScsiOpcode.REQUEST_SENSE,
      {
        name: 'REQUEST SENSE',
        cdbLength: 6,
        pr: 'allowed',
        handler: (t, lu) => requestSense(t, lu, () => notReady?.(lu)),
      },
    ],
    [ScsiOpcode.INQUIRY, { name: 'INQUIRY', cdbLength: 6, pr: 'allowed', handler: (t, lu) => inquiry(t, lu) }],
    [
      ScsiOpcode.MODE_SELECT_6,
      { name: 'MODE SELECT(6)', cdbLength: 6, handler: (t, lu) => modeSelect(decodeModeSelect6Cdb(t.cdb), t, lu.spc) },
    ],
    [
      ScsiOpcode.MODE_SELECT_10,
      {
        name: 'MODE SELECT(10)',
        cdbLength: 10,
        handler: (t, lu) => modeSelect(decodeModeSelect10Cdb(t.cdb), t, lu.spc),
      },
    ],
    [
      ScsiOpcode.MODE_SENSE_6,
      {
        name: 'MODE SENSE(6)',
        cdbLength: 6,
        pr: 'read',
        handler: (t, lu) => modeSense(decodeModeSense6Cdb(t.cdb), lu.spc),
      },
    ],
    [
      ScsiOpcode.MODE_SENSE_10,
      {
        name: 'MODE SENSE(10)',
        cdbLength: 10,
        pr: 'read',
        handler: (t, lu) => modeSense(decodeModeSense10Cdb(t.cdb), lu.spc),
      },
    ],
    [ScsiOpcode.RESERVE_6, { name: 'RESERVE(6)', cdbLength: 6, pr: 'allowed', handler: (t, lu) => reserve6(t, lu) }],
    [ScsiOpcode.RELEASE_6, { name: 'RELEASE(6)', cdbLength: 6, pr: 'allowed', handler: (t, lu) => release6(t, lu) }],
    [
      ScsiOpcode.PERSISTENT_RESERVE_IN,
      {
        name: 'PERSISTENT RESERVE IN',
        cdbLength: 10,
        pr: 'allowed',
        handler: (t, lu) => persistentReserveIn(t, lu),
        serviceActions: new Map(
          [0, 1, 2, 3].map((sa) => [
            sa,
            {
              name: 'PERSISTENT RESERVE IN',
              cdbLength: 10,
              pr: 'allowed' as const,
              handler: (t: ScsiTask, lu: L) => persistentReserveIn(t, lu),
            },
          ]),
        ),
      },
    ],
    [
      ScsiOpcode.PERSISTENT_RESERVE_OUT,
      {
        name: 'PERSISTENT RESERVE OUT',
        cdbLength: 10,
        pr: 'allowed',
        handler: (t, lu) => persistentReserveOut(t, lu),
        serviceActions: new Map(
          [0, 1, 2, 3, 4, 5, 6, 7].map((sa) => [
            sa,
            {
              name: 'PERSISTENT RESERVE OUT',
              cdbLength: 10,
              pr: 'allowed' as const,
              handler: (t: ScsiTask, lu: L) => persistentReserveOut(t, lu),
            },
          ]),
        ),
      },
    ],
    [ScsiOpcode.REPORT_LUNS, { name: 'REPORT LUNS', cdbLength: 12, pr: 'allowed', handler: (t) => reportLuns(t) }],
    [ScsiOpcode.MAINTENANCE_IN, maintenanceIn<L>()],
  ];
}
