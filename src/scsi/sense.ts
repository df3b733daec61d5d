import { FerryError } from '../util/errors.ts';

// SPC-4 4.5: sense keys and the additional sense codes Ferry returns.

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
} as const;

/** [ASC, ASCQ] pairs, SPC-4 Annex D. Add codes here, never as literals in handlers. */
export const Asc = {
  NO_ADDITIONAL_SENSE: [0x00, 0x00],
  FILEMARK_DETECTED: [0x00, 0x01],
  END_OF_PARTITION_MEDIUM_DETECTED: [0x00, 0x02],
  BEGINNING_OF_PARTITION_MEDIUM_DETECTED: [0x00, 0x04],
  END_OF_DATA_DETECTED: [0x00, 0x05],
  OPERATION_IN_PROGRESS: [0x00, 0x16],
  LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE: [0x04, 0x00],
  LOGICAL_UNIT_NOT_READY_BECOMING_READY: [0x04, 0x01],
  LOGICAL_UNIT_NOT_READY_INIT_REQUIRED: [0x04, 0x02],
  LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION: [0x04, 0x03],
  LOGICAL_UNIT_NOT_READY_FORMAT_IN_PROGRESS: [0x04, 0x04],
  LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS: [0x04, 0x1b],
  THIRD_PARTY_DEVICE_FAILURE: [0x0d, 0x01],
  COPY_TARGET_DEVICE_NOT_REACHABLE: [0x0d, 0x02],
  INCORRECT_COPY_TARGET_DEVICE_TYPE: [0x0d, 0x03],
  COPY_TARGET_DEVICE_DATA_UNDERRUN: [0x0d, 0x04],
  COPY_TARGET_DEVICE_DATA_OVERRUN: [0x0d, 0x05],
  LOGICAL_UNIT_COMMUNICATION_FAILURE: [0x08, 0x00],
  UNREACHABLE_COPY_TARGET: [0x08, 0x04],
  WRITE_ERROR: [0x0c, 0x00],
  UNRECOVERED_READ_ERROR: [0x11, 0x00],
  MISCOMPARE_DURING_VERIFY_OPERATION: [0x1d, 0x00],
  INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT: [0x0e, 0x03],
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: [0x26, 0x04],
  SAVING_PARAMETERS_NOT_SUPPORTED: [0x39, 0x00],
  MEDIUM_NOT_PRESENT_TRAY_CLOSED: [0x3a, 0x01],
  MEDIUM_NOT_PRESENT_TRAY_OPEN: [0x3a, 0x02],
  INQUIRY_DATA_HAS_CHANGED: [0x3f, 0x03],
  MEDIUM_FORMAT_CORRUPTED: [0x31, 0x00],
  SANITIZE_COMMAND_FAILED: [0x31, 0x03],
  LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED: [0x04, 0x02],
  PARAMETER_LIST_LENGTH_ERROR: [0x1a, 0x00],
  INVALID_COMMAND_OPERATION_CODE: [0x20, 0x00],
  ACCESS_DENIED_INVALID_LU_IDENTIFIER: [0x20, 0x09],
  LBA_OUT_OF_RANGE: [0x21, 0x00],
  INVALID_ELEMENT_ADDRESS: [0x21, 0x01],
  INVALID_FIELD_IN_CDB: [0x24, 0x00],
  LOGICAL_UNIT_NOT_SUPPORTED: [0x25, 0x00],
  INVALID_FIELD_IN_PARAMETER_LIST: [0x26, 0x00],
  PARAMETER_NOT_SUPPORTED: [0x26, 0x01],
  PARAMETER_VALUE_INVALID: [0x26, 0x02],
  TOO_MANY_TARGET_DESCRIPTORS: [0x26, 0x06],
  UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: [0x26, 0x07],
  TOO_MANY_SEGMENT_DESCRIPTORS: [0x26, 0x08],
  UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: [0x26, 0x09],
  UNEXPECTED_INEXACT_SEGMENT: [0x26, 0x0a],
  INLINE_DATA_LENGTH_EXCEEDED: [0x26, 0x0b],
  INVALID_OPERATION_FOR_COPY_SOURCE_OR_DESTINATION: [0x26, 0x0c],
  COPY_SEGMENT_GRANULARITY_VIOLATION: [0x26, 0x0d],
  WRITE_PROTECTED: [0x27, 0x00],
  NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED: [0x28, 0x00],
  IMPORT_OR_EXPORT_ELEMENT_ACCESSED: [0x28, 0x01],
  POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: [0x29, 0x00],
  POWER_ON_OCCURRED: [0x29, 0x01],
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: [0x29, 0x03],
  I_T_NEXUS_LOSS_OCCURRED: [0x29, 0x07],
  PARAMETERS_CHANGED: [0x2a, 0x00],
  MODE_PARAMETERS_CHANGED: [0x2a, 0x01],
  RESERVATIONS_PREEMPTED: [0x2a, 0x03],
  RESERVATIONS_RELEASED: [0x2a, 0x04],
  REGISTRATIONS_PREEMPTED: [0x2a, 0x05],
  CAPACITY_DATA_HAS_CHANGED: [0x2a, 0x09],
  COMMAND_SEQUENCE_ERROR: [0x2c, 0x00],
  MEDIUM_NOT_PRESENT: [0x3a, 0x00],
  MEDIUM_DESTINATION_ELEMENT_FULL: [0x3b, 0x0d],
  MEDIUM_SOURCE_ELEMENT_EMPTY: [0x3b, 0x0e],
  REPORTED_LUNS_DATA_HAS_CHANGED: [0x3f, 0x0e],
  INTERNAL_TARGET_FAILURE: [0x44, 0x00],
  INVALID_MESSAGE_ERROR: [0x49, 0x00],
  COMMAND_PHASE_ERROR: [0x4a, 0x00],
  DATA_PHASE_ERROR: [0x4b, 0x00],
  OVERLAPPED_COMMANDS_ATTEMPTED: [0x4e, 0x00],
  MEDIUM_REMOVAL_PREVENTED: [0x53, 0x02],
  INSUFFICIENT_REGISTRATION_RESOURCES: [0x55, 0x04],
  SEQUENTIAL_POSITIONING_ERROR: [0x3b, 0x00],
  LOCATE_OPERATION_FAILURE: [0x44, 0x00],
} as const satisfies Record<string, readonly [number, number]>;

export type AscCode = readonly [number, number];

/**
 * Which sense data format a response uses (SPC-4 4.5.1): D_SENSE in the control mode page, or REQUEST SENSE's DESC bit.
 */
export type SenseFormat = 'fixed' | 'descriptor';

/** SPC-4 4.5.2.9 Table 38: SENSE DATA SOURCE of a forwarded sense data descriptor. */
export const SenseDataSource = {
  UNKNOWN: 0x0,
  COPY_SOURCE: 0x1,
  COPY_DESTINATION: 0x2,
} as const;

/** Another device's status and sense, carried inside ours (EXTENDED COPY). */
export interface ForwardedSenseData {
  /** SenseDataSource: 1 = the copy source, 2 = the copy destination. */
  source: number;
  /** SCSI status byte that device returned. */
  status: number;
  /** Its sense bytes, in whatever format it used. */
  sense: Uint8Array;
}

export interface SenseOptions {
  /** INFORMATION field (VALID=1): an LBA, a residue, a segment number. */
  info?: number;
  /** COMMAND-SPECIFIC INFORMATION (fixed bytes 8–11, descriptor 01h). */
  commandSpecific?: number;
  /** SPC-4 4.5.2.4.2 field pointer: byte `field` of the CDB (cd=true) or parameter list, optional bit. */
  fieldPointer?: { cd: boolean; field: number; bit?: number };
  /** Sense-key specific bytes (3) verbatim, SKSV set; overrides fieldPointer. */
  senseKeySpecific?: Uint8Array;
  /** Stream-command bits (SSC-3 4.2.24): fixed byte 2, or descriptor 04h. FILEMARK, EOM, ILI. */
  filemark?: boolean;
  eom?: boolean;
  ili?: boolean;
  /**
   * The failing copy source or destination's sense (EXTENDED COPY, SPC-5 5.17.7.4). Fixed format:
   * status + sense after byte 17, its offset in COMMAND-SPECIFIC INFORMATION byte 0 (source) or 1
   * (destination). Descriptor format: a forwarded sense data descriptor (0Ch).
   */
  forwarded?: ForwardedSenseData;
  /** Deferred error: response code 71h / 73h instead of 70h / 72h. */
  deferred?: boolean;
}

/** The value both encoders take: a SenseError, or anything shaped like one. */
export interface SenseValue {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly opts: SenseOptions;
}

/**
 * A SCSI command failed with this sense. Thrown from any depth; only `runCommand`
 * turns it into CHECK CONDITION.
 */
export class SenseError extends FerryError implements SenseValue {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly opts: SenseOptions;
  constructor(key: number, asc: AscCode, opts: SenseOptions = {}) {
    super('ERR_SCSI_SENSE', `sense ${key.toString(16)}/${hex2(asc[0])}/${hex2(asc[1])}`);
    this.key = key;
    this.asc = asc[0];
    this.ascq = asc[1];
    this.opts = opts;
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** SPC-4 4.5.1: sense data is at most 252 bytes (both formats). */
export const MAX_SENSE_LENGTH = 252;
/** Forwarded sense kept in fixed format (after the status byte at 18). */
const FIXED_FORWARDED_MAX = 200;

/** One encoder, two formats (SPC-4 4.5.2 descriptor, 4.5.3 fixed). */
export function encodeSense(e: SenseValue, format: SenseFormat): Uint8Array {
  return format === 'descriptor' ? encodeDescriptorSense(e) : encodeFixedSense(e);
}

/** SPC-4 4.5.2.4.1: the 3 SENSE KEY SPECIFIC bytes with SKSV set, or undefined. */
function senseKeySpecificBytes(o: SenseOptions): Uint8Array | undefined {
  if (o.senseKeySpecific) {
    const b = o.senseKeySpecific.slice(0, 3);
    b[0] |= 0x80;
    return b;
  }
  if (!o.fieldPointer) return undefined;
  const fp = o.fieldPointer;
  // 4.5.2.4.2: SKSV, C/D b6, BPV b3, BIT POINTER b2:0, FIELD POINTER bytes 1–2.
  return Uint8Array.of(
    0x80 | (fp.cd ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0),
    (fp.field >> 8) & 0xff,
    fp.field & 0xff,
  );
}

/**
 * SPC-4 4.5.3 fixed format (70h/71h):
 *   0 VALID b7, RESPONSE CODE | 2 FILEMARK EOM ILI, SENSE KEY | 3–6 INFORMATION
 *   7 ADDITIONAL SENSE LENGTH | 8–11 COMMAND-SPECIFIC INFORMATION | 12 ASC | 13 ASCQ
 *   15–17 SENSE KEY SPECIFIC | 18… additional (forwarded status + sense)
 */
export function encodeFixedSense(e: SenseValue): Uint8Array {
  const o = e.opts;
  let extra = new Uint8Array(0);
  let csi = o.commandSpecific;
  if (o.forwarded) {
    const fwd = o.forwarded.sense.subarray(0, FIXED_FORWARDED_MAX);
    extra = new Uint8Array(1 + fwd.length);
    extra[0] = o.forwarded.status;
    extra.set(fwd, 1);
    // SPC-5 5.17.7.4: byte 0 SOURCE / byte 1 DESTINATION SENSE DATA OFFSET, bytes 2–3 segment number.
    csi = ((csi ?? 0) | (o.forwarded.source === SenseDataSource.COPY_SOURCE ? 18 << 24 : 18 << 16)) >>> 0;
  }
  const buf = new Uint8Array(18 + extra.length);
  const dv = new DataView(buf.buffer);
  buf[0] = (o.deferred ? 0x71 : 0x70) | (o.info !== undefined ? 0x80 : 0);
  buf[2] = (e.key & 0x0f) | (o.filemark ? 0x80 : 0) | (o.eom ? 0x40 : 0) | (o.ili ? 0x20 : 0);
  if (o.info !== undefined) dv.setUint32(3, o.info >>> 0);
  buf[7] = 10 + extra.length; // ADDITIONAL SENSE LENGTH
  if (csi !== undefined) dv.setUint32(8, csi >>> 0);
  buf[12] = e.asc;
  buf[13] = e.ascq;
  const sks = senseKeySpecificBytes(o);
  if (sks) buf.set(sks, 15);
  buf.set(extra, 18);
  return buf;
}

/** SPC-4 4.5.2.1 Table 27: sense data descriptor types Ferry writes. */
export const SenseDescriptorType = {
  INFORMATION: 0x00,
  COMMAND_SPECIFIC_INFORMATION: 0x01,
  SENSE_KEY_SPECIFIC: 0x02,
  STREAM_COMMANDS: 0x04,
  FORWARDED_SENSE_DATA: 0x0c,
} as const;

/** A 64-bit field from a JS number (two's complement for a negative residue). */
function u64(v: number): bigint {
  return BigInt.asUintN(64, BigInt(Math.trunc(v)));
}

/**
 * SPC-4 4.5.2 descriptor format (72h/73h):
 *   0 RESPONSE CODE | 1 SENSE KEY | 2 ASC | 3 ASCQ | 7 ADDITIONAL SENSE LENGTH | 8… descriptors
 * Descriptors, each `type, additional length, …`:
 *   00h (4.5.2.2)  2 VALID b7 | 4–11 INFORMATION
 *   01h (4.5.2.3)  4–11 COMMAND-SPECIFIC INFORMATION
 *   02h (4.5.2.4)  4–6 SENSE KEY SPECIFIC
 *   04h (SSC-3 4.2.24.2)  3 FILEMARK b7, EOM b6, ILI b5
 *   0Ch (4.5.2.9)  2 FSDT b7, SENSE DATA SOURCE b3:0 | 3 FORWARDED STATUS | 4… forwarded sense
 */
export function encodeDescriptorSense(e: SenseValue): Uint8Array {
  const o = e.opts;
  const parts: Uint8Array[] = [];
  const field64 = (type: number, flags: number, v: number): Uint8Array => {
    const d = new Uint8Array(12);
    d[0] = type;
    d[1] = 0x0a;
    d[2] = flags;
    new DataView(d.buffer).setBigUint64(4, u64(v));
    return d;
  };
  if (o.info !== undefined) parts.push(field64(SenseDescriptorType.INFORMATION, 0x80, o.info));
  if (o.commandSpecific !== undefined)
    parts.push(field64(SenseDescriptorType.COMMAND_SPECIFIC_INFORMATION, 0, o.commandSpecific));
  const sks = senseKeySpecificBytes(o);
  if (sks) parts.push(Uint8Array.of(SenseDescriptorType.SENSE_KEY_SPECIFIC, 0x06, 0, 0, sks[0], sks[1], sks[2], 0));
  if (o.filemark || o.eom || o.ili) {
    parts.push(
      Uint8Array.of(
        SenseDescriptorType.STREAM_COMMANDS,
        0x02,
        0,
        (o.filemark ? 0x80 : 0) | (o.eom ? 0x40 : 0) | (o.ili ? 0x20 : 0),
      ),
    );
  }
  let used = 8 + parts.reduce((n, p) => n + p.length, 0);
  if (o.forwarded) {
    // The forwarded bytes fit in what is left of the 252, and in one descriptor (length ≤ 255).
    const room = Math.max(0, Math.min(MAX_SENSE_LENGTH - used - 4, 255 - 2));
    const fwd = o.forwarded.sense.subarray(0, room);
    const d = new Uint8Array(4 + fwd.length);
    d[0] = SenseDescriptorType.FORWARDED_SENSE_DATA;
    d[1] = 2 + fwd.length;
    d[2] = (fwd.length < o.forwarded.sense.length ? 0x80 : 0) | (o.forwarded.source & 0x0f); // FSDT: truncated
    d[3] = o.forwarded.status;
    d.set(fwd, 4);
    parts.push(d);
    used += d.length;
  }
  const buf = new Uint8Array(used);
  buf[0] = o.deferred ? 0x73 : 0x72;
  buf[1] = e.key & 0x0f;
  buf[2] = e.asc;
  buf[3] = e.ascq;
  buf[7] = used - 8; // ADDITIONAL SENSE LENGTH
  let at = 8;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return buf;
}

/** A forwarded sense data descriptor (0Ch), or the fixed-format source/destination sense, decoded. */
export interface DecodedForwardedSense extends ForwardedSenseData {
  /** FSDT: the copy manager cut the forwarded sense short. */
  truncated: boolean;
}

/** Parsed sense (fixed or descriptor format), for initiators and tests. SPC-4 4.5 */
export interface DecodedSense {
  responseCode: number;
  /** Descriptor format (72h/73h). */
  descriptor: boolean;
  /** Deferred error (71h/73h). */
  deferred: boolean;
  key: number;
  asc: number;
  ascq: number;
  filemark: boolean;
  eom: boolean;
  ili: boolean;
  info?: number;
  commandSpecific?: number;
  senseKeySpecific?: Uint8Array;
  /** COPY ABORTED: the copy source's and/or destination's own sense (SPC-5 5.17.7.4). */
  forwarded?: DecodedForwardedSense[];
}

const KEY_NAMES = new Map<number, string>(
  Object.entries(SenseKey).map(([name, key]) => [key, name.replaceAll('_', ' ')]),
);
const ASC_NAMES = new Map<number, string>();
for (const [name, [asc, ascq]] of Object.entries(Asc))
  if (!ASC_NAMES.has((asc << 8) | ascq)) ASC_NAMES.set((asc << 8) | ascq, name.replaceAll('_', ' '));

/** Sense in words, for messages: `ILLEGAL REQUEST: INVALID FIELD IN CDB (5/24/00)`. */
export function describeSense(s: { key: number; asc: number; ascq: number }): string {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  const key = KEY_NAMES.get(s.key) ?? `SENSE KEY ${s.key.toString(16)}h`;
  const asc = ASC_NAMES.get((s.asc << 8) | s.ascq) ?? `ASC/ASCQ ${hex(s.asc)}h/${hex(s.ascq)}h`;
  return `${key}: ${asc} (${s.key.toString(16)}/${hex(s.asc)}/${hex(s.ascq)})`;
}

/** The one sense decoder (fixed or descriptor); bytes past the buffer read as absent, never throw. */
export function decodeSense(sense: Uint8Array): DecodedSense {
  const rc = (sense[0] ?? 0) & 0x7f;
  const dv = new DataView(sense.buffer, sense.byteOffset, sense.byteLength);
  const flags = { descriptor: rc === 0x72 || rc === 0x73, deferred: rc === 0x71 || rc === 0x73 };
  if (flags.descriptor) {
    const out: DecodedSense = {
      responseCode: rc,
      ...flags,
      key: (sense[1] ?? 0) & 0x0f,
      asc: sense[2] ?? 0,
      ascq: sense[3] ?? 0,
      filemark: false,
      eom: false,
      ili: false,
    };
    const end = Math.min(sense.length, 8 + (sense[7] ?? 0));
    for (let p = 8; p + 2 <= end; p += 2 + sense[p + 1]) {
      const type = sense[p];
      const dEnd = Math.min(end, p + 2 + sense[p + 1]);
      if (type === SenseDescriptorType.INFORMATION && p + 12 <= dEnd && sense[p + 2] & 0x80) {
        // A sign-extended 32-bit value (a negative tape residue) decodes as fixed format's bytes 3–6 do.
        const v = dv.getBigUint64(p + 4);
        out.info = Number(v >> 32n === 0xffffffffn ? v & 0xffffffffn : v & 0xffffffffffffn);
      }
      if (type === SenseDescriptorType.COMMAND_SPECIFIC_INFORMATION && p + 12 <= dEnd)
        out.commandSpecific = Number(dv.getBigUint64(p + 4) & 0xffffffffn);
      if (type === SenseDescriptorType.SENSE_KEY_SPECIFIC && p + 7 <= dEnd && sense[p + 4] & 0x80)
        out.senseKeySpecific = sense.slice(p + 4, p + 7);
      if (type === SenseDescriptorType.STREAM_COMMANDS && p + 4 <= dEnd) {
        out.filemark = !!(sense[p + 3] & 0x80);
        out.eom = !!(sense[p + 3] & 0x40);
        out.ili = !!(sense[p + 3] & 0x20);
      }
      if (type === SenseDescriptorType.FORWARDED_SENSE_DATA && p + 4 <= dEnd) {
        (out.forwarded ??= []).push({
          source: sense[p + 2] & 0x0f,
          truncated: !!(sense[p + 2] & 0x80),
          status: sense[p + 3],
          sense: sense.slice(p + 4, dEnd),
        });
      }
    }
    return out;
  }
  const out: DecodedSense = {
    responseCode: rc,
    ...flags,
    key: (sense[2] ?? 0) & 0x0f,
    asc: sense[12] ?? 0,
    ascq: sense[13] ?? 0,
    filemark: !!((sense[2] ?? 0) & 0x80),
    eom: !!((sense[2] ?? 0) & 0x40),
    ili: !!((sense[2] ?? 0) & 0x20),
  };
  if (sense[0] & 0x80 && sense.length >= 7) out.info = dv.getUint32(3);
  if (sense.length >= 12) out.commandSpecific = dv.getUint32(8);
  if (sense.length >= 18 && sense[15] & 0x80) out.senseKeySpecific = sense.slice(15, 18);
  if (out.key === SenseKey.COPY_ABORTED && sense.length >= 12) {
    // SPC-5 5.17.7.4: CSI byte 0 / 1 = offset of the source / destination status byte, then its sense.
    const end = Math.min(sense.length, 8 + (sense[7] ?? 0));
    for (const [source, off] of [
      [SenseDataSource.COPY_SOURCE, sense[8]],
      [SenseDataSource.COPY_DESTINATION, sense[9]],
    ] as const) {
      if (off < 18 || off + 1 > end) continue;
      const declaredEnd = off + 1 + 8 + (sense[off + 8] ?? 0);
      const fwdEnd = Math.min(end, declaredEnd);
      (out.forwarded ??= []).push({
        source,
        truncated: fwdEnd < declaredEnd,
        status: sense[off],
        sense: sense.slice(off + 1, fwdEnd),
      });
    }
  }
  return out;
}
