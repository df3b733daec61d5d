import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';

// RFC 7143 11.18 NOP-Out / 11.19 NOP-In.
//  0|.|I| 0x00/0x20 |1| reserved                                    |
//  8| LUN                                                           |
// 16| Initiator Task Tag (0xffffffff: not a ping / unsolicited)     |
// 20| Target Transfer Tag                                           |
// 24| CmdSN (Out) / StatSN (In)                                     |
// 28| ExpStatSN (Out) / ExpCmdSN (In)                               |
// 32| reserved / MaxCmdSN (In)                                      |
// Data segment: ping data.

export interface NopPdu {
  immediate: boolean;
  lun: number;
  itt: number;
  ttt: number;
  /** CmdSN (Out) or StatSN (In). */
  sn: number;
  /** ExpStatSN (Out) or ExpCmdSN (In). */
  expSN: number;
  maxCmdSN: number;
  data: Uint8Array;
}

export function decodeNop(raw: RawPdu): NopPdu {
  const b = raw.bhs;
  return {
    immediate: (b[0] & 0x40) !== 0,
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    ttt: u32(b, 20),
    sn: u32(b, 24),
    expSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    data: raw.data,
  };
}

export function encodeNop(opcode: typeof Opcode.NOP_OUT | typeof Opcode.NOP_IN, p: NopPdu): RawPdu {
  const b = newBhs(opcode, 0x80, p.data.length, p.immediate && opcode === Opcode.NOP_OUT);
  encodeLun(Math.max(0, p.lun), b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.ttt);
  setU32(b, 24, p.sn);
  setU32(b, 28, p.expSN);
  if (opcode === Opcode.NOP_IN) setU32(b, 32, p.maxCmdSN);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}
