import { type RawPdu, Opcode, newBhs, u32, setU32, u16, setU16 } from './bhs.ts';

// RFC 7143 11.12 Login Request / 11.13 Login Response.
//
//  0|.|1| 0x03      |T|C|.|.|CSG|NSG| Version-max   | Version-min   |   (response: Version-active)
//  4|TotalAHSLength | DataSegmentLength                             |
//  8| ISID (6 bytes)                                | TSIH          |
// 16| Initiator Task Tag                                            |
// 20| CID (req) / reserved  | reserved                              |
// 24| CmdSN (req) / StatSN (resp)                                   |
// 28| ExpStatSN (req) / ExpCmdSN (resp)                             |
// 32| reserved / MaxCmdSN (resp)                                    |
// 36| reserved / Status-Class | Status-Detail | reserved            |

export const Stage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;

export interface LoginRequest {
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  isid: Uint8Array;
  tsih: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
  data: Uint8Array;
}

export interface LoginResponse {
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: Uint8Array;
  tsih: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  statusClass: number;
  statusDetail: number;
  data: Uint8Array;
}

/** Status-Class and Status-Detail of a Login Response (RFC 7143 11.13.5). */
export const LoginStatus = {
  SUCCESS: [0x00, 0x00],
  INITIATOR_ERROR: [0x02, 0x00],
  AUTHENTICATION_FAILURE: [0x02, 0x01],
  AUTHORIZATION_FAILURE: [0x02, 0x02],
  NOT_FOUND: [0x02, 0x03],
  UNSUPPORTED_VERSION: [0x02, 0x05],
  MISSING_PARAMETER: [0x02, 0x07],
  SESSION_DOES_NOT_EXIST: [0x02, 0x0a],
  INVALID_DURING_LOGIN: [0x02, 0x0b],
  TARGET_ERROR: [0x03, 0x00],
  OUT_OF_RESOURCES: [0x03, 0x02],
} as const;

function flags(transit: boolean, cont: boolean, csg: number, nsg: number): number {
  return (transit ? 0x80 : 0) | (cont ? 0x40 : 0) | ((csg & 3) << 2) | (nsg & 3);
}

export function decodeLoginRequest(raw: RawPdu): LoginRequest {
  const b = raw.bhs;
  return {
    transit: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    csg: (b[1] >> 2) & 3,
    nsg: b[1] & 3,
    versionMax: b[2],
    versionMin: b[3],
    isid: b.slice(8, 14),
    tsih: u16(b, 14),
    itt: u32(b, 16),
    cid: u16(b, 20),
    cmdSN: u32(b, 24),
    expStatSN: u32(b, 28),
    data: raw.data,
  };
}

export function encodeLoginRequest(p: LoginRequest): RawPdu {
  const b = newBhs(Opcode.LOGIN_REQUEST, flags(p.transit, p.cont, p.csg, p.nsg), p.data.length, true);
  b[2] = p.versionMax;
  b[3] = p.versionMin;
  b.set(p.isid, 8);
  setU16(b, 14, p.tsih);
  setU32(b, 16, p.itt);
  setU16(b, 20, p.cid);
  setU32(b, 24, p.cmdSN);
  setU32(b, 28, p.expStatSN);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}

export function decodeLoginResponse(raw: RawPdu): LoginResponse {
  const b = raw.bhs;
  return {
    transit: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    csg: (b[1] >> 2) & 3,
    nsg: b[1] & 3,
    versionMax: b[2],
    versionActive: b[3],
    isid: b.slice(8, 14),
    tsih: u16(b, 14),
    itt: u32(b, 16),
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    statusClass: b[36],
    statusDetail: b[37],
    data: raw.data,
  };
}

export function encodeLoginResponse(p: LoginResponse): RawPdu {
  const b = newBhs(Opcode.LOGIN_RESPONSE, flags(p.transit, p.cont, p.csg, p.nsg), p.data.length);
  b[2] = p.versionMax;
  b[3] = p.versionActive;
  b.set(p.isid, 8);
  setU16(b, 14, p.tsih);
  setU32(b, 16, p.itt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  b[36] = p.statusClass;
  b[37] = p.statusDetail;
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}
