import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';

// RFC 7143 11.17 Reject.
//  0|.|.| 0x3f      |1| reserved    | Reason        | reserved      |
// 16| 0xffffffff                                                    |
// 24| StatSN                                                        |
// 28| ExpCmdSN                                                      |
// 32| MaxCmdSN                                                      |
// 36| DataSN/R2TSN or reserved                                      |
// Data segment: the complete header of the rejected PDU.

export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OPERATION_REJECT: 0x0a,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;

export interface RejectPdu {
  reason: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  /** The rejected PDU's BHS. */
  header: Uint8Array;
}

export function decodeReject(raw: RawPdu): RejectPdu {
  const b = raw.bhs;
  return {
    reason: b[2],
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    dataSN: u32(b, 36),
    header: raw.data,
  };
}

export function encodeReject(p: RejectPdu): RawPdu {
  const header = p.header.subarray(0, 48);
  const b = newBhs(Opcode.REJECT, 0x80, header.length);
  b[2] = p.reason;
  setU32(b, 16, 0xffffffff);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  setU32(b, 36, p.dataSN);
  return { bhs: b, ahs: new Uint8Array(0), data: header };
}
