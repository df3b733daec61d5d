import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';

// RFC 7143 11.10 Text Request / 11.11 Text Response.
//  0|.|I| 0x04/0x24 |F|C| reserved                                  |
//  8| LUN                                                           |
// 16| Initiator Task Tag                                            |
// 20| Target Transfer Tag                                           |
// 24| CmdSN (req) / StatSN (resp)                                   |
// 28| ExpStatSN (req) / ExpCmdSN (resp)                             |
// 32| reserved / MaxCmdSN (resp)                                    |

export interface TextPdu {
  final: boolean;
  cont: boolean;
  immediate: boolean;
  itt: number;
  ttt: number;
  /** CmdSN in a request, StatSN in a response. */
  sn: number;
  /** ExpStatSN in a request, ExpCmdSN in a response. */
  expSN: number;
  /** MaxCmdSN (response only). */
  maxCmdSN: number;
  data: Uint8Array;
}

export function decodeText(raw: RawPdu): TextPdu {
  const b = raw.bhs;
  return {
    final: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    immediate: (b[0] & 0x40) !== 0,
    itt: u32(b, 16),
    ttt: u32(b, 20),
    sn: u32(b, 24),
    expSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    data: raw.data,
  };
}

export function encodeText(opcode: typeof Opcode.TEXT_REQUEST | typeof Opcode.TEXT_RESPONSE, p: TextPdu): RawPdu {
  const b = newBhs(
    opcode,
    (p.final ? 0x80 : 0) | (p.cont ? 0x40 : 0),
    p.data.length,
    p.immediate && opcode === Opcode.TEXT_REQUEST,
  );
  setU32(b, 16, p.itt);
  setU32(b, 20, p.ttt);
  setU32(b, 24, p.sn);
  setU32(b, 28, p.expSN);
  if (opcode === Opcode.TEXT_RESPONSE) setU32(b, 32, p.maxCmdSN);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}
