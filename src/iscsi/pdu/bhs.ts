// RFC 7143 11.2.1: Basic Header Segment, 48 bytes.
//
//   Byte/     0       |       1       |       2       |       3       |
//      0|.|I| Opcode  |F|  Opcode-specific fields                     |
//      4|TotalAHSLength | DataSegmentLength                           |
//      8| LUN or Opcode-specific fields                               |
//     16| Initiator Task Tag                                          |
//     20| Opcode-specific fields (28 bytes)                           |

export const BHS_LENGTH = 48;

export const Opcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;

/** A framed PDU: its BHS (48 bytes), additional header segments and data segment (no padding). */
export interface RawPdu {
  readonly bhs: Uint8Array;
  readonly ahs: Uint8Array;
  readonly data: Uint8Array;
}

export function opcodeOf(bhs: Uint8Array): number {
  return bhs[0] & 0x3f;
}
export function immediateOf(bhs: Uint8Array): boolean {
  return (bhs[0] & 0x40) !== 0;
}
export function finalOf(bhs: Uint8Array): boolean {
  return (bhs[1] & 0x80) !== 0;
}
export function totalAhsLength(bhs: Uint8Array): number {
  return bhs[4] * 4;
}
export function dataSegmentLength(bhs: Uint8Array): number {
  return (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
}
export function ittOf(bhs: Uint8Array): number {
  return u32(bhs, 16);
}

// Every PDU a target sends carries StatSN, ExpCmdSN and MaxCmdSN at the same offsets
// (RFC 7143 11.4.3, 11.7.4, 11.8, 11.17; StatSN only where the PDU has status).
export function statSNOf(bhs: Uint8Array): number {
  return u32(bhs, 24);
}
export function expCmdSNOf(bhs: Uint8Array): number {
  return u32(bhs, 28);
}
export function maxCmdSNOf(bhs: Uint8Array): number {
  return u32(bhs, 32);
}

export function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
export function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
export function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
export function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** A fresh BHS with opcode, flags byte 1 and the data segment length filled in. */
export function newBhs(opcode: number, byte1: number, dataLength: number, immediate = false): Uint8Array {
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = (immediate ? 0x40 : 0) | opcode;
  b[1] = byte1;
  b[5] = (dataLength >>> 16) & 0xff;
  b[6] = (dataLength >>> 8) & 0xff;
  b[7] = dataLength & 0xff;
  return b;
}
