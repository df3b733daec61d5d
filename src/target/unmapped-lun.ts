import { SenseError, SenseKey, Asc, encodeFixedSense } from '../scsi/sense.ts';
import { checkCondition } from '../scsi/command-table.ts';
import { ScsiStatus, type ScsiResult } from '../scsi/task.ts';
import { encodeLun } from '../iscsi/pdu/bhs.ts';

// Commands addressed to a LUN with no logical unit behind it (SPC-4 4.6.4 / SAM-5 5.9.4).

/** SPC-4 6.33 REPORT LUNS parameter data for the given LUNs. */
export function reportLunsData(luns: Iterable<number>): Uint8Array {
  const list = [...luns].sort((a, b) => a - b);
  const out = Buffer.alloc(8 + 8 * list.length);
  out.writeUInt32BE(8 * list.length, 0);
  list.forEach((lun, i) => encodeLun(lun, out, 8 + 8 * i));
  return out;
}

/** Answer a command for an unmapped LUN: INQUIRY says "not connected", the rest get 05/25/00. */
export function answerUnmappedLun(cdb: Uint8Array, mapped: Iterable<number>): ScsiResult {
  switch (cdb[0]) {
    case 0x12: {
      // INQUIRY: PERIPHERAL QUALIFIER 011b, DEVICE TYPE 1Fh (SPC-4 6.6.2)
      if (cdb[1] & 0x01) return checkCondition(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LOGICAL_UNIT_NOT_SUPPORTED));
      const data = Buffer.alloc(36);
      data[0] = 0x7f;
      data[2] = 0x06;
      data[3] = 0x02;
      data[4] = 31;
      return { status: ScsiStatus.GOOD, dataIn: data, transferLength: Math.min(36, (cdb[3] << 8) | cdb[4]) };
    }
    case 0xa0: {
      // REPORT LUNS works at any LUN (SPC-4 6.33).
      const alloc = cdb.length >= 10 ? ((cdb[6] << 24) | (cdb[7] << 16) | (cdb[8] << 8) | cdb[9]) >>> 0 : 0;
      const data = reportLunsData(mapped);
      return { status: ScsiStatus.GOOD, dataIn: data.subarray(0, Math.min(alloc, data.length)), transferLength: Math.min(alloc, data.length) };
    }
    case 0x03: {
      // REQUEST SENSE: report the condition as sense data with GOOD status (SPC-4 6.39).
      const sense = encodeFixedSense(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LOGICAL_UNIT_NOT_SUPPORTED));
      return { status: ScsiStatus.GOOD, dataIn: sense.subarray(0, Math.min(cdb[4], sense.length)) };
    }
    default:
      return checkCondition(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LOGICAL_UNIT_NOT_SUPPORTED));
  }
}
