import { type RawPdu, Opcode, newBhs, u32, setU32, u16, setU16 } from './bhs.ts';

// RFC 7143 11.14 Logout Request / 11.15 Logout Response.
//  0|.|I| 0x06      |1| Reason Code | reserved                      |
// 16| Initiator Task Tag                                            |
// 20| CID (req)     | reserved                                      |
// 24| CmdSN (req) / StatSN (resp)                                   |
// 28| ExpStatSN (req) / ExpCmdSN (resp)                             |
// 32| reserved / MaxCmdSN (resp)                                    |
// resp: byte 2 Response; 40 Time2Wait (2); 42 Time2Retain (2)

export interface LogoutRequest {
  immediate: boolean;
  reason: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

export interface LogoutResponse {
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  time2Wait: number;
  time2Retain: number;
}

export function decodeLogoutRequest(raw: RawPdu): LogoutRequest {
  const b = raw.bhs;
  return {
    immediate: (b[0] & 0x40) !== 0,
    reason: b[1] & 0x7f,
    itt: u32(b, 16),
    cid: u16(b, 20),
    cmdSN: u32(b, 24),
    expStatSN: u32(b, 28),
  };
}

export function encodeLogoutRequest(p: LogoutRequest): RawPdu {
  const b = newBhs(Opcode.LOGOUT_REQUEST, 0x80 | (p.reason & 0x7f), 0, p.immediate);
  setU32(b, 16, p.itt);
  setU16(b, 20, p.cid);
  setU32(b, 24, p.cmdSN);
  setU32(b, 28, p.expStatSN);
  return { bhs: b, ahs: new Uint8Array(0), data: new Uint8Array(0) };
}

export function decodeLogoutResponse(raw: RawPdu): LogoutResponse {
  const b = raw.bhs;
  return {
    response: b[2],
    itt: u32(b, 16),
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    time2Wait: u16(b, 40),
    time2Retain: u16(b, 42),
  };
}

export function encodeLogoutResponse(p: LogoutResponse): RawPdu {
  const b = newBhs(Opcode.LOGOUT_RESPONSE, 0x80, 0);
  b[2] = p.response;
  setU32(b, 16, p.itt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  setU16(b, 40, p.time2Wait);
  setU16(b, 42, p.time2Retain);
  return { bhs: b, ahs: new Uint8Array(0), data: new Uint8Array(0) };
}
