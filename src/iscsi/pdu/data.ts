import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';

// RFC 7143 11.7 SCSI Data-Out and Data-In.
//  0|.|.| 0x05/0x25 |F|A|. . .|O|U|S| reserved      | Status (In,S) |
//  8| LUN                                                           |
// 16| Initiator Task Tag                                            |
// 20| Target Transfer Tag                                           |
// 24| reserved (Out) / StatSN (In, S=1)                             |
// 28| ExpStatSN (Out) / ExpCmdSN (In)                               |
// 32| reserved (Out) / MaxCmdSN (In)                                |
// 36| DataSN                                                        |
// 40| Buffer Offset                                                 |
// 44| reserved (Out) / Residual Count (In)                          |

export interface DataOutPdu {
  final: boolean;
  lun: number;
  itt: number;
  ttt: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
  data: Uint8Array;
}

export interface DataInPdu {
  final: boolean;
  ack: boolean;
  overflow: boolean;
  underflow: boolean;
  /** Status is present (phase collapse, 11.7.4). */
  hasStatus: boolean;
  status: number;
  lun: number;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  bufferOffset: number;
  residual: number;
  data: Uint8Array;
}

/**
 * Single fields of a Data-In or Data-Out BHS, for the framer's data placement, which must decide
 * where a PDU's data goes before the data is read (the rest decodes it whole).
 */
export function dataTttOf(bhs: Uint8Array): number {
  return u32(bhs, 20);
}
export function dataSNOf(bhs: Uint8Array): number {
  return u32(bhs, 36);
}
export function bufferOffsetOf(bhs: Uint8Array): number {
  return u32(bhs, 40);
}
/** Data-In with its command's status (the S bit, 11.7.1). */
export function dataInHasStatus(bhs: Uint8Array): boolean {
  return (bhs[1] & 0x01) !== 0;
}

export function decodeDataOut(raw: RawPdu): DataOutPdu {
  const b = raw.bhs;
  return {
    final: (b[1] & 0x80) !== 0,
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    ttt: u32(b, 20),
    expStatSN: u32(b, 28),
    dataSN: u32(b, 36),
    bufferOffset: u32(b, 40),
    data: raw.data,
  };
}

export function encodeDataOut(p: DataOutPdu): RawPdu {
  const b = newBhs(Opcode.DATA_OUT, p.final ? 0x80 : 0, p.data.length);
  encodeLun(p.lun, b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.ttt);
  setU32(b, 28, p.expStatSN);
  setU32(b, 36, p.dataSN);
  setU32(b, 40, p.bufferOffset);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}

export function decodeDataIn(raw: RawPdu): DataInPdu {
  const b = raw.bhs;
  return {
    final: (b[1] & 0x80) !== 0,
    ack: (b[1] & 0x40) !== 0,
    overflow: (b[1] & 0x04) !== 0,
    underflow: (b[1] & 0x02) !== 0,
    hasStatus: (b[1] & 0x01) !== 0,
    status: b[3],
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    ttt: u32(b, 20),
    statSN: u32(b, 24),
    expCmdSN: u32(b, 28),
    maxCmdSN: u32(b, 32),
    dataSN: u32(b, 36),
    bufferOffset: u32(b, 40),
    residual: u32(b, 44),
    data: raw.data,
  };
}

export function encodeDataIn(p: DataInPdu): RawPdu {
  const b = newBhs(
    Opcode.DATA_IN,
    (p.final ? 0x80 : 0) |
      (p.ack ? 0x40 : 0) |
      (p.overflow ? 0x04 : 0) |
      (p.underflow ? 0x02 : 0) |
      (p.hasStatus ? 0x01 : 0),
    p.data.length,
  );
  if (p.hasStatus) b[3] = p.status;
  encodeLun(p.lun, b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.ttt);
  setU32(b, 24, p.statSN);
  setU32(b, 28, p.expCmdSN);
  setU32(b, 32, p.maxCmdSN);
  setU32(b, 36, p.dataSN);
  setU32(b, 40, p.bufferOffset);
  setU32(b, 44, p.residual);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}
