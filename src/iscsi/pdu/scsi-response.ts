import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';

// RFC 7143 11.4 SCSI Response.
//  0|.|.| 0x21      |1|. .|o|u|O|U|.| Response      | Status        |
// 16| Initiator Task Tag                                            |
// 20| SNACK Tag                                                     |
// 24| StatSN                                                        |
// 28| ExpCmdSN                                                      |
// 32| MaxCmdSN                                                      |
// 36| ExpDataSN                                                     |
// 40| Bidirectional Read Residual Count                             |
// 44| Residual Count                                                |
// Data segment: SenseLength (2) + Sense Data (11.4.7).

export interface ScsiResponsePdu {
  overflow: boolean;
  underflow: boolean;
  response: number;
  status: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  expDataSN: number;
  residual: number;
  sense: Uint8Array;
}

export function decodeScsiResponse(raw: RawPdu): ScsiResponsePdu {
  const b = raw.bhs;
  let sense: Uint8Array = new Uint8Array(0);
  if (raw.data.length >= 2) {
    const len = (raw.data[0] << 8) | raw.data[1];
    sense = raw.data.subarray(2, 2 + Math.min(len, raw.data.length - 2));
  }
  return {
    overflow: (b[1] & 0x04) !== 0,
    underflow: (b[1] & 0x02) !== 0,
    response: b[2],
    status: b[3],
    itt: u32(b, 16),
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    expDataSN: u32(b, 36),
    residual: u32(b, 44),
    sense,
  };
}

export function encodeScsiResponse(p: ScsiResponsePdu): RawPdu {
  let data: Uint8Array = new Uint8Array(0);
  if (p.sense.length > 0) {
    data = Buffer.alloc(2 + p.sense.length);
    data[0] = p.sense.length >> 8;
    data[1] = p.sense.length & 0xff;
    data.set(p.sense, 2);
  }
  const b = newBhs(Opcode.SCSI_RESPONSE, 0x80 | (p.overflow ? 0x04 : 0) | (p.underflow ? 0x02 : 0), data.length);
  b[2] = p.response;
  b[3] = p.status;
  setU32(b, 16, p.itt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  setU32(b, 36, p.expDataSN);
  setU32(b, 44, p.residual);
  return { bhs: b, ahs: new Uint8Array(0), data };
}
