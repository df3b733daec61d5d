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

export interface SenseOptions {
  /** INFORMATION field (VALID=1): an LBA, a residue, a segment number. */
  info?: number;
  /** COMMAND-SPECIFIC INFORMATION (fixed bytes 8–11). */
  commandSpecific?: number;
  /** SPC-4 4.5.2.4.2 field pointer: byte `field` of the CDB (cd=true) or parameter list, optional bit. */
  fieldPointer?: { cd: boolean; field: number; bit?: number };
  /** Sense-key specific bytes (3) verbatim, SKSV set; overrides fieldPointer. */
  senseKeySpecific?: Uint8Array;
  /** Stream-command bits in fixed byte 2 (SSC): FILEMARK, EOM, ILI. */
  filemark?: boolean;
  eom?: boolean;
  ili?: boolean;
  /** Extra bytes after byte 17 of fixed sense (e.g. a forwarded sense, SPC-4 6.3 EXTENDED COPY). */
  additional?: Uint8Array;
}

/**
 * A SCSI command failed with this sense. Thrown from any depth; only `runCommand`
 * turns it into CHECK CONDITION.
 */
export class SenseError extends FerryError {
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

/** SPC-4 4.5.3: fixed-format sense data (response code 70h). */
export function encodeFixedSense(e: Pick<SenseError, 'key' | 'asc' | 'ascq' | 'opts'>): Uint8Array {
  const o = e.opts;
  const extra = o.additional ?? new Uint8Array(0);
  const buf = new Uint8Array(18 + extra.length);
  const dv = new DataView(buf.buffer);
  buf[0] = 0x70 | (o.info !== undefined ? 0x80 : 0);
  buf[2] = (e.key & 0x0f) | (o.filemark ? 0x80 : 0) | (o.eom ? 0x40 : 0) | (o.ili ? 0x20 : 0);
  if (o.info !== undefined) dv.setUint32(3, o.info >>> 0);
  buf[7] = 10 + extra.length; // ADDITIONAL SENSE LENGTH
  if (o.commandSpecific !== undefined) dv.setUint32(8, o.commandSpecific >>> 0);
  buf[12] = e.asc;
  buf[13] = e.ascq;
  if (o.senseKeySpecific) {
    buf.set(o.senseKeySpecific.subarray(0, 3), 15);
    buf[15] |= 0x80;
  } else if (o.fieldPointer) {
    const fp = o.fieldPointer;
    buf[15] = 0x80 | (fp.cd ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0);
    dv.setUint16(16, fp.field);
  }
  buf.set(extra, 18);
  return buf;
}

/** Parsed sense (fixed or descriptor format), for initiators and tests. SPC-4 4.5 */
export interface DecodedSense {
  responseCode: number;
  key: number;
  asc: number;
  ascq: number;
  filemark: boolean;
  eom: boolean;
  ili: boolean;
  info?: number;
  commandSpecific?: number;
  senseKeySpecific?: Uint8Array;
}

export function decodeSense(sense: Uint8Array): DecodedSense {
  const rc = sense[0] & 0x7f;
  const dv = new DataView(sense.buffer, sense.byteOffset, sense.byteLength);
  if (rc === 0x72 || rc === 0x73) {
    const out: DecodedSense = { responseCode: rc, key: sense[1] & 0x0f, asc: sense[2] ?? 0, ascq: sense[3] ?? 0, filemark: false, eom: false, ili: false };
    const end = Math.min(sense.length, 8 + (sense[7] ?? 0));
    for (let p = 8; p + 2 <= end; p += 2 + sense[p + 1]) {
      const type = sense[p];
      if (type === 0x00 && p + 12 <= end) out.info = Number(dv.getBigUint64(p + 4) & 0xffffffffffffn);
      if (type === 0x01 && p + 12 <= end) out.commandSpecific = Number(dv.getBigUint64(p + 4) & 0xffffffffn);
      if (type === 0x02 && p + 8 <= end) out.senseKeySpecific = sense.slice(p + 4, p + 7);
      if (type === 0x04 && p + 4 <= end) {
        out.filemark = !!(sense[p + 3] & 0x80);
        out.eom = !!(sense[p + 3] & 0x40);
        out.ili = !!(sense[p + 3] & 0x20);
      }
    }
    return out;
  }
  const out: DecodedSense = {
    responseCode: rc,
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
  return out;
}
