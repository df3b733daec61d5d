import { type RawPdu, Opcode, newBhs, u32, setU32 } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';
import { DecodeError } from '../../util/errors.ts';

// RFC 7143 11.3 SCSI Command.
//  0|.|I| 0x01      |F|R|W|. .|ATTR | reserved                      |
//  4|TotalAHSLength | DataSegmentLength                             |
//  8| Logical Unit Number (LUN)                                     |
// 16| Initiator Task Tag                                            |
// 20| Expected Data Transfer Length                                 |
// 24| CmdSN                                                         |
// 28| ExpStatSN                                                     |
// 32| SCSI Command Descriptor Block (CDB), 16 bytes                 |
// AHS type 1 (11.2.2.3) carries CDB bytes beyond 16.

/** RFC 7143 11.3.1 ATTR: the SAM-5 8.6 task attribute. */
export const TaskAttr = { UNTAGGED: 0, SIMPLE: 1, ORDERED: 2, HEAD_OF_QUEUE: 3, ACA: 4 } as const;

export interface ScsiCommandPdu {
  immediate: boolean;
  final: boolean;
  read: boolean;
  write: boolean;
  attr: number;
  lun: number;
  itt: number;
  edtl: number;
  cmdSN: number;
  expStatSN: number;
  cdb: Uint8Array;
  /** Immediate data. */
  data: Uint8Array;
}

/** The W bit (RFC 7143 11.3.1), from the BHS alone. */
export function writeBitOf(bhs: Uint8Array): boolean {
  return (bhs[1] & 0x20) !== 0;
}

/** Expected Data Transfer Length (RFC 7143 11.3.4), from the BHS alone. */
export function edtlOf(bhs: Uint8Array): number {
  return u32(bhs, 20);
}

export function decodeScsiCommand(raw: RawPdu): ScsiCommandPdu {
  const b = raw.bhs;
  let cdb = b.subarray(32, 48);
  // Extended CDB AHS: length(2) type(1)=1 reserved(1) then CDB bytes 16..
  for (let p = 0; p + 4 <= raw.ahs.length;) {
    const len = (raw.ahs[p] << 8) | raw.ahs[p + 1];
    const type = raw.ahs[p + 2];
    if (p + 3 + len > raw.ahs.length) throw new DecodeError('AHS overruns its segment', 48 + p);
    if (type === 1 && len > 1) {
      const ext = new Uint8Array(16 + len - 1);
      ext.set(cdb, 0);
      ext.set(raw.ahs.subarray(p + 4, p + 3 + len), 16);
      cdb = ext;
    }
    p += (3 + len + 3) & ~3;
  }
  return {
    immediate: (b[0] & 0x40) !== 0,
    final: (b[1] & 0x80) !== 0,
    read: (b[1] & 0x40) !== 0,
    write: writeBitOf(b),
    attr: b[1] & 7,
    lun: decodeLun(b, 8),
    itt: u32(b, 16),
    edtl: edtlOf(b),
    cmdSN: u32(b, 24),
    expStatSN: u32(b, 28),
    cdb,
    data: raw.data,
  };
}

export function encodeScsiCommand(p: ScsiCommandPdu): RawPdu {
  if (p.cdb.length > 16) throw new RangeError('CDBs over 16 bytes need an AHS (not sent by Ferry)');
  const b = newBhs(
    Opcode.SCSI_COMMAND,
    (p.final ? 0x80 : 0) | (p.read ? 0x40 : 0) | (p.write ? 0x20 : 0) | (p.attr & 7),
    p.data.length,
    p.immediate,
  );
  encodeLun(p.lun, b, 8);
  setU32(b, 16, p.itt);
  setU32(b, 20, p.edtl);
  setU32(b, 24, p.cmdSN);
  setU32(b, 28, p.expStatSN);
  b.set(p.cdb, 32);
  return { bhs: b, ahs: new Uint8Array(0), data: p.data };
}
