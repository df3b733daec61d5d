import { CopyClient } from '../initiator/copy-client.ts';
import { buildRead6 } from '../scsi/tape-cdb.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { PREFIX_BYTES, decodeRecord, recordLength } from '../tapeformat/codec.ts';
import { readRecord } from '../tapeformat/read-record.ts';
import type { TapeRecord } from '../tapeformat/records.ts';
import { PDT, type CscdInput } from '../xcopy/descriptors.ts';
import { buildStreamLists, type StreamList, type StreamListsInput } from '../xcopy/list-builder.ts';
import type { OperatingParameters } from '../xcopy/copy-results.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import type { CopyManagerRef, MountedDrive } from './site.ts';
import type { JobContext } from './context.ts';

/**
 * What backup and restore share: CSCDs for a disk LU and a tape drive, and sending lists to a
 * copy manager with progress. The server composes lists; the copy manager moves the data.
 */

/** Tape blocks per WRITE or READ the copy manager issues (several blocks per command where the drive allows). */
export const BLOCKS_PER_TRANSFER = 4;
/** Data bytes per EXTENDED COPY when the drive does not report its remaining capacity: how often early warning is checked. */
export const LIST_BYTES = 64 << 20;

export function diskCscd(designatorHex: string, blockSize: number): CscdInput {
  return { codeSet: 1, association: 0, designatorType: 3, designator: Buffer.from(designatorHex, 'hex'), peripheralDeviceType: PDT.DISK, pad: false, fixed: false, blockLength: blockSize };
}

export function tapeCscd(d: Designator, tapeBlockBytes: number): CscdInput {
  return { ...d, peripheralDeviceType: PDT.TAPE, pad: true, fixed: true, blockLength: tapeBlockBytes };
}

export class Copier {
  readonly cm: CopyManagerRef;
  readonly client: CopyClient;
  limits!: OperatingParameters;
  /** Bytes the copy manager reported writing, all lists of this job. */
  movedBytes = 0;

  private constructor(cm: CopyManagerRef) {
    this.cm = cm;
    this.client = new CopyClient(cm.session, cm.lun);
  }

  /** The copy manager for a job: `mover`, else the least loaded one, else the drive's LU; held until the job ends. */
  static async forJob(ctx: JobContext, mover: string | undefined, drive: MountedDrive): Promise<Copier> {
    const cm = await ctx.site.copyManager(mover, drive);
    if (cm.release) ctx.onEnd(cm.release);
    return Copier.open(cm);
  }

  static async open(cm: CopyManagerRef): Promise<Copier> {
    const c = new Copier(cm);
    c.limits = await c.client.operatingParameters();
    return c;
  }

  listId(): number {
    return this.cm.listId();
  }


  /** Run one list; `onBytes(n)` gets the bytes the copy manager has written so far in this list. */
  async run(ctx: JobContext, l: StreamList, what: string, onBytes: (n: number) => void): Promise<number> {
    const out = await this.client.run(l.list, { listId: l.listId, signal: ctx.signal, what, pollMs: 250, onProgress: (p) => onBytes(p.transferBytes) });
    this.movedBytes += out.transferBytes;
    return out.transferBytes;
  }

  lists(o: Omit<StreamListsInput, 'tape' | 'limits' | 'blocksPerTransfer' | 'listId'> & { drive: MountedDrive }): StreamList[] {
    return buildStreamLists({
      ...o,
      tape: tapeCscd(o.drive.designator, o.tapeBlockBytes),
      limits: this.limits,
      blocksPerTransfer: BLOCKS_PER_TRANSFER,
      maxListBytes: o.maxListBytes ?? LIST_BYTES,
      listId: () => this.listId(),
    });
  }
}

/**
 * Read the record at the drive's position without moving its padding over the wire: READ(6) of
 * one fixed block with an expected transfer length of `headBytes` (the target sends that much and
 * reports the rest as residual overflow, RFC 7143 11.4.5.2; the drive still passes the whole
 * block). A record longer than that is read again whole. Drives not known to handle a short
 * transfer (DriveClient.partialBlockReads) are sent whole blocks.
 */
export async function readRecordCheaply(drive: MountedDrive, blockId: number, tapeBlockBytes: number, headBytes = 16 * 1024): Promise<TapeRecord | { kind: 'filemark' } | { kind: 'eod' }> {
  await drive.drive.locate(blockId);
  // Only a drive known to pass a whole block on a short transfer gets one (tgtd overruns its buffer).
  const want = drive.drive.partialBlockReads ? Math.min(headBytes, tapeBlockBytes) : tapeBlockBytes;
  const r = await drive.drive.session.command(drive.drive.lun, buildRead6(1, { fixed: true }), { inLength: want, allowCheckCondition: true });
  if (r.status === ScsiStatus.GOOD && r.data.length >= PREFIX_BYTES) {
    const len = recordLength(r.data).totalBytes;
    if (len <= r.data.length) return decodeRecord(r.data);
  }
  await drive.drive.locate(blockId);
  return readRecord(drive.drive.device, tapeBlockBytes);
}
