import { decodeBlockDescriptor, decodeModeParameterHeader } from '../scsi/mode-parameters.ts';
import { decodeShortPosition } from '../scsi/read-position.ts';
import type { TapeDevice, TapePosition, TapeReadResult } from '../tape/tape-device.ts';
import { ScsiCommandError, type InitiatorSession } from './session.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { TaskAttr } from '../iscsi/pdu/scsi-command.ts';
import { SenseKey } from '../scsi/sense.ts';
import { buildInquiry, buildModeSense6 } from '../scsi/cdb/spc.ts';
import {
  ReadPositionForm,
  SpaceCode,
  buildLocate10,
  buildRead6,
  buildReadPosition,
  buildRewind,
  buildSpace6,
  buildWrite6,
  buildWriteFilemarks6,
} from '../scsi/cdb/ssc.ts';

/**
 * A tape drive on any iSCSI target (ours or tgtd's) as a TapeDevice: the stream seam of
 * DESIGN.md reached through the initiator. SSC-3 READ(6)/WRITE(6) with SILI=0, so a record
 * of the wrong length is reported (ILI) rather than silently truncated or padded.
 */
export class RemoteTapeDevice implements TapeDevice {
  readonly session: InitiatorSession;
  readonly lun: number;
  readonly blockLength: number;
  /**
   * WRITEs carry the ORDERED task attribute (SAM-5 8.6), so the copy engine may keep several
   * in flight and the target still applies them in order. Only on Ferry's own LUs (INQUIRY
   * vendor FERRY, whose connection starts tasks in CmdSN order per SAM-5 8.6): tgtd, and other targets that queue a
   * WRITE only once its R2T data is in,
   * apply ORDERED in the order the data completes, so a short WRITE sent whole as immediate data
   * overtakes a longer one before it and the blocks land out of order on tape.
   */
  readonly ordersWrites: boolean;
  /** READs are ORDERED too. After a failed read the position is undefined, as SPC-5 5.17.7.2 allows. */
  readonly ordersReads = true;

  private constructor(session: InitiatorSession, lun: number, blockLength: number, ordersWrites: boolean) {
    this.session = session;
    this.lun = lun;
    this.blockLength = blockLength;
    this.ordersWrites = ordersWrites;
  }

  /** Open: the block length comes from the MODE SENSE(6) block descriptor (0 = variable). */
  static async open(session: InitiatorSession, lun: number): Promise<RemoteTapeDevice> {
    const r = await session.command(lun, buildModeSense6(0x3f, { allocationLength: 255 }), { inLength: 255 });
    const h = decodeModeParameterHeader(r.data, 6);
    const blockLength = (h && decodeBlockDescriptor(r.data, h)?.blockLength) ?? 0;
    const std = (await session.command(lun, buildInquiry(36), { inLength: 36 })).data;
    const vendor = std.length >= 16 ? Buffer.from(std.subarray(8, 16)).toString('latin1').trim() : '';
    return new RemoteTapeDevice(session, lun, blockLength, vendor === 'FERRY');
  }

  async read(target: Uint8Array): Promise<TapeReadResult> {
    const fixed = this.blockLength !== 0;
    const count = fixed ? target.length / this.blockLength : target.length;
    const cdb = buildRead6(count, { fixed });
    const r = await this.session.command(this.lun, cdb, {
      into: target,
      allowCheckCondition: true,
      attr: TaskAttr.ORDERED,
    });
    const where = { cdb, lun: this.lun };
    if (r.status === ScsiStatus.GOOD)
      return { kind: 'data', bytes: r.data.length, recordLength: fixed ? this.blockLength : r.data.length };
    const s = r.sense;
    if (r.status !== ScsiStatus.CHECK_CONDITION || !s) throw new ScsiCommandError(r.status, r.rawSense, where);
    if (s.filemark) {
      // Fixed mode: blocks before the filemark were transferred; INFORMATION = blocks not read.
      const blocks = fixed ? count - (s.info ?? count) : 0;
      return blocks > 0
        ? { kind: 'data', bytes: blocks * this.blockLength, recordLength: this.blockLength }
        : { kind: 'filemark' };
    }
    if (s.key === SenseKey.BLANK_CHECK || (s.key === SenseKey.NO_SENSE && s.eom && !s.ili)) {
      // Fixed mode: blocks before end of data were transferred; INFORMATION = blocks not read (SSC-3 READ(6)).
      const blocks = fixed && s.info !== undefined ? count - s.info : 0;
      return blocks > 0
        ? { kind: 'data', bytes: blocks * this.blockLength, recordLength: this.blockLength }
        : { kind: 'eod' };
    }
    if (s.key === SenseKey.NO_SENSE && s.ili) {
      // INFORMATION = requested − actual (negative: the record was longer). SSC-3 4.2.8.
      const residue = s.info !== undefined ? s.info | 0 : 0;
      if (fixed)
        return { kind: 'data', bytes: target.length - residue * this.blockLength, recordLength: this.blockLength };
      const recordLength = target.length - residue;
      return { kind: 'data', bytes: Math.min(recordLength, target.length), recordLength };
    }
    throw new ScsiCommandError(r.status, r.rawSense, where);
  }

  async write(record: Uint8Array): Promise<{ earlyWarning: boolean }> {
    const fixed = this.blockLength !== 0;
    const cdb = buildWrite6(fixed ? record.length / this.blockLength : record.length, { fixed });
    const r = await this.session.command(this.lun, cdb, {
      dataOut: record,
      allowCheckCondition: true,
      attr: TaskAttr.ORDERED,
    });
    if (r.status === ScsiStatus.GOOD) return { earlyWarning: false };
    // SSC-3 4.2.5: early warning is NO SENSE with EOM; the data was written.
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === SenseKey.NO_SENSE && r.sense.eom)
      return { earlyWarning: true };
    throw new ScsiCommandError(r.status, r.rawSense, { cdb, lun: this.lun });
  }

  async writeFilemarks(count: number): Promise<void> {
    const cdb = buildWriteFilemarks6(count);
    const r = await this.session.command(this.lun, cdb, { allowCheckCondition: true });
    if (r.status === ScsiStatus.GOOD) return;
    // SSC-3 4.2.5: past early warning the filemarks are written and NO SENSE with EOM says so.
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === SenseKey.NO_SENSE && r.sense.eom) return;
    throw new ScsiCommandError(r.status, r.rawSense, { cdb, lun: this.lun });
  }

  async space(unit: 'blocks' | 'filemarks' | 'eod', count: number): Promise<void> {
    const code =
      unit === 'blocks' ? SpaceCode.BLOCKS : unit === 'filemarks' ? SpaceCode.FILEMARKS : SpaceCode.END_OF_DATA;
    await this.session.command(this.lun, buildSpace6(code, count));
  }

  async locate(blockId: number): Promise<void> {
    await this.session.command(this.lun, buildLocate10(blockId));
  }

  async rewind(): Promise<void> {
    await this.session.command(this.lun, buildRewind());
  }

  /** SSC-3 READ POSITION, short form (read-position.ts). */
  async position(): Promise<TapePosition> {
    const r = await this.session.command(this.lun, buildReadPosition(ReadPositionForm.SHORT, 20), { inLength: 20 });
    const p = decodeShortPosition(r.data);
    return { blockId: p.blockId, fileNumber: 0, bop: p.bop, eow: p.bpew };
  }

  async flush(): Promise<void> {
    await this.session.command(this.lun, buildWriteFilemarks6(0));
  }

  async close(): Promise<void> {}
}
