import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';

// RFC 7143 11.5 Task Management Function Request / 11.6 Response.
//  0|.|I| 0x02      |1| Function    | reserved (resp: Response)     |
//  8| LUN                                                           |
// 16| Initiator Task Tag                                            |
// 20| Referenced Task Tag                                           |
// 24| CmdSN (req) / StatSN (resp)                                   |
// 28| ExpStatSN (req) / ExpCmdSN (resp)                             |
// 32| RefCmdSN (req) / MaxCmdSN (resp)                              |
// 36| ExpDataSN (req)                                               |

export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;

export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  REASSIGNMENT_NOT_SUPPORTED: 4,
  NOT_SUPPORTED: 5,
  AUTHORIZATION_FAILED: 6,
  REJECTED: 255,
} as const;

export interface TmfRequest {
  immediate: boolean;
  func: number;
  lun: number;
  itt: number;
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}

export interface TmfResponsePdu {
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

export function decodeTmfRequest(raw: RawPdu): TmfRequest {
  const b = raw.bhs;
  return {
    immediate: (b[0] & 0x40) !== 0,
    func: b[1] & 0x7f,
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    referencedTaskTag: u32(b, 20),
    cmdSN: u32(b, 24),
    expStatSN: u32(b, 28),
    refCmdSN: u32(b, 32),
    expDataSN: u32(b, 36),
  };
}

export function encodeTmfRequest(p: TmfRequest): RawPdu {
  const b = newBhs(Opcode.TASK_MGMT_REQUEST, 0x80 | (p.func & 0x7f), 0, p.immediate);
  encodeLun(p.lun, b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.referencedTaskTag);
  setU32(b, 24, p.cmdSN);
  setU32(b, 28, p.expStatSN);
  setU32(b, 32, p.refCmdSN);
  setU32(b, 36, p.expDataSN);
  return { bhs: b, ahs: new Uint8Array(0), data: new Uint8Array(0) };
}

export function decodeTmfResponse(raw: RawPdu): TmfResponsePdu {
  const b = raw.bhs;
  return { response: b[2], itt: u32(b, 16), statSN: u32(b, 24), expCmdSN: u32(b, 28), maxCmdSN: u32(b, 32) };
}

export function encodeTmfResponse(p: TmfResponsePdu): RawPdu {
  const b = newBhs(Opcode.TASK_MGMT_RESPONSE, 0x80, 0);
  b[2] = p.response;
  setU32(b, 16, p.itt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  return { bhs: b, ahs: new Uint8Array(0), data: new Uint8Array(0) };
}
