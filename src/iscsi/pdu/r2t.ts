import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';

// RFC 7143 11.8 Ready To Transfer (R2T).
//  0|.|.| 0x31      |1| reserved                                    |
//  8| LUN                                                           |
// 16| Initiator Task Tag                                            |
// 20| Target Transfer Tag                                           |
// 24| StatSN                                                        |
// 28| ExpCmdSN                                                      |
// 32| MaxCmdSN                                                      |
// 36| R2TSN                                                         |
// 40| Buffer Offset                                                 |
// 44| Desired Data Transfer Length                                  |

export interface R2tPdu {
  lun: number;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  r2tSN: number;
  bufferOffset: number;
  desiredLength: number;
}

export function decodeR2t(raw: RawPdu): R2tPdu {
  const b = raw.bhs;
  return {
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    ttt: u32(b, 20),
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    r2tSN: u32(b, 36),
    bufferOffset: u32(b, 40),
    desiredLength: u32(b, 44),
  };
}

export function encodeR2t(p: R2tPdu): RawPdu {
  const b = newBhs(Opcode.R2T, 0x80, 0);
  encodeLun(p.lun, b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.ttt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  setU32(b, 36, p.r2tSN);
  setU32(b, 40, p.bufferOffset);
  setU32(b, 44, p.desiredLength);
  return { bhs: b, ahs: new Uint8Array(0), data: new Uint8Array(0) };
}
