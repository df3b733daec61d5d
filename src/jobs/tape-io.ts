import { CopyClient, CopyFailedError } from '../initiator/copy-client.ts';
import { IscsiError } from '../initiator/session.ts';
import { SenseKey, describeSense } from '../scsi/sense.ts';
import { FerryError } from '../util/errors.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { PREFIX_BYTES, decodeRecord, recordLength } from '../tapeformat/codec.ts';
import { readRecord } from '../tapeformat/read-record.ts';
import type { TapeRecord } from '../tapeformat/records.ts';
import { PDT, type CscdInput } from '../xcopy/descriptors.ts';
import { buildStreamLists, type StreamExtent, type StreamList, type StreamListsInput } from '../xcopy/list-builder.ts';
import type { OperatingParameters } from '../xcopy/copy-results.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import type { CopyManagerRef, MountedDrive } from './site.ts';
import type { JobContext } from './context.ts';
import { DEFAULT_MOVER_STALL_MS } from '../server/config.ts';
import { buildRead6 } from '../scsi/cdb/ssc.ts';

/**
 * What backup and restore share: CSCDs for a disk LU and a tape drive, and sending lists to a
 * copy manager with progress. The server composes lists; the copy manager moves the data.
 */

/** Tape blocks per WRITE or READ the copy manager issues (several blocks per command where the drive allows). */
export const BLOCKS_PER_TRANSFER = 4;
/**
 * Data bytes per EXTENDED COPY when the drive does not report its remaining capacity: how often early warning is
 * checked.
 */
export const LIST_BYTES = 64 << 20;

export function diskCscd(designatorHex: string, blockSize: number): CscdInput {
  return {
    codeSet: 1,
    association: 0,
    designatorType: 3,
    designator: Buffer.from(designatorHex, 'hex'),
    peripheralDeviceType: PDT.DISK,
    pad: false,
    fixed: false,
    blockLength: blockSize,
  };
}

export function tapeCscd(d: Designator, tapeBlockBytes: number): CscdInput {
  return { ...d, peripheralDeviceType: PDT.TAPE, pad: true, fixed: true, blockLength: tapeBlockBytes };
}

/** A device of a job as the server reaches it: asked whether it answers when a copy fails. */
export interface JobDevice {
  /** "tape library vtl (127.0.0.1:3261)", "storage node store (LUN 2)". */
  name: string;
  answers: () => Promise<void>;
}

/**
 * Why a copy failed on the copy manager itself, or undefined when the failure was a device's
 * (forwarded sense) or the list's (ILLEGAL REQUEST): its session was lost, it stalled, or it
 * aborted the copy on its own.
 */
export function moverFault(e: unknown): string | undefined {
  if (e instanceof IscsiError) return `its session was lost (${e.message})`;
  if (e instanceof FerryError && e.code === 'ERR_COPY_STALLED') return e.message;
  if (e instanceof CopyFailedError && e.culprit === 'copy manager' && e.sense?.key === SenseKey.COPY_ABORTED)
    return `it aborted the copy (${describeSense(e.sense)})`;
  return undefined;
}

export class Copier {
  cm!: CopyManagerRef;
  client!: CopyClient;
  limits!: OperatingParameters;
  /** Bytes the copy manager reported writing, all lists of this job. */
  movedBytes = 0;
  private readonly ctx: JobContext;
  private readonly mover: string | undefined;
  /** Movers that failed in this job: not used by it again. */
  private readonly failed = new Set<string>();
  private readonly announce: boolean;

  private constructor(ctx: JobContext, mover: string | undefined, announce: boolean) {
    this.ctx = ctx;
    this.mover = mover;
    this.announce = announce;
  }

  /**
   * The copy manager for a job: `mover`, else the least loaded one below its maxJobs (waiting
   * while every one is at it), else the drive's LU; held until the job ends. `announce`: record
   * it as the job's mover (a verify inside a backup does not).
   */
  static async forJob(
    ctx: JobContext,
    mover: string | undefined,
    drive: MountedDrive,
    o: { announce?: boolean } = {},
  ): Promise<Copier> {
    // One per job: a second ask (a backup's verify) would otherwise wait on the job's own mover slot.
    if (ctx.copier) return ctx.copier;
    const c = new Copier(ctx, mover, o.announce ?? true);
    await c.take(drive);
    ctx.copier = c;
    return c;
  }

  private async take(drive: MountedDrive): Promise<void> {
    // Before its first list the job waits in waiting-drive (its drive is mounted), else where it is.
    const state = this.ctx.state;
    for (let waited = false; ; waited = true) {
      const cm = await this.ctx.site.copyManager(this.mover, drive, this.failed);
      if (cm !== 'busy') {
        if (cm.release) this.ctx.onEnd(cm.release);
        this.cm = cm;
        this.client = new CopyClient(cm.session, cm.lun);
        this.limits = await this.client.operatingParameters();
        if (waited && state === 'mounting') await this.ctx.to('mounting', `data mover ${cm.name} is free`);
        else if (waited) this.ctx.update({ waitingFor: null });
        if (this.announce) await this.ctx.setMover(cm.name);
        return;
      }
      if (!waited) {
        const why = 'a data mover: every one runs as many jobs as its maxJobs allows';
        if (state === 'mounting') await this.ctx.to('waiting-drive', `waiting for ${why}`, { waitingFor: why });
        else {
          this.ctx.update({ waitingFor: why });
          await this.ctx.log(`waiting for ${why}`);
        }
      }
      await new Promise((r) => setTimeout(r, 500));
      this.ctx.checkCanceled();
    }
  }

  listId(): number {
    return this.cm.listId();
  }

  /** Run one list; `onBytes(n)` gets the bytes the copy manager has written so far in this list. */
  async run(l: StreamList, what: string, onBytes: (n: number) => void): Promise<number> {
    const out = await this.client.run(l.list, {
      listId: l.listId,
      signal: this.ctx.signal,
      what,
      pollMs: 250,
      stallMs: this.ctx.site.config.defaults.moverStallMs ?? DEFAULT_MOVER_STALL_MS,
      onProgress: (p) => onBytes(p.transferBytes),
    });
    this.movedBytes += out.transferBytes;
    return out.transferBytes;
  }

  /**
   * After `e` from a list: when the copy manager itself failed and every device of the job still
   * answers the server, go on with another configured mover (the failed one is not used again
   * by this job). Otherwise throw: `e`, or an error naming the device that does not answer.
   * The caller then positions the tape and sends what is left.
   */
  async failover(e: unknown, drive: MountedDrive, devices: readonly JobDevice[]): Promise<void> {
    const why = moverFault(e);
    if (!why) throw e;
    for (const d of devices) {
      const lost = await d.answers().then(
        () => undefined,
        (x: Error) => x,
      );
      if (lost)
        throw new FerryError(
          'ERR_DEVICE_LOST',
          `${d.name} does not answer (${lost.message}): the copy failed there, not on data mover ${this.cm.name}. ` +
            `${(e as Error).message}`,
          { cause: e },
        );
    }
    const failed = this.cm.name;
    if (!this.ctx.site.config.movers.length) throw e;
    this.failed.add(failed);
    this.cm.release?.();
    // A stalled mover may wake up: its session goes, so it aborts the copy (SAM-5 6.3.4) instead of writing on.
    if ((e as FerryError).code === 'ERR_COPY_STALLED') this.cm.session.close();
    try {
      await this.take(drive);
    } catch (x) {
      if ((x as FerryError).code !== 'ERR_NO_MOVER') throw x;
      throw new FerryError(
        'ERR_MOVER_FAILED',
        `data mover ${failed} failed (${why}) and no other can take over: ${(x as Error).message}. Nothing was ` +
          `recorded: run the job again once a mover is up`,
        { cause: e },
      );
    }
    await this.ctx.log(`data mover ${failed} failed: ${why}; going on with ${this.cm.name}`, {
      failedMover: failed,
      mover: this.cm.name,
      reason: why,
    });
  }

  /**
   * Write the records `build` makes (label, header, trailer) from tape block `at` on. When the
   * mover fails, all of them again from `at` on the next one (rebuilt for its limits).
   */
  async writeRecords(
    build: () => StreamList[],
    drive: MountedDrive,
    at: number,
    what: string,
    devices: readonly JobDevice[],
  ): Promise<number> {
    for (;;) {
      let blocks = 0;
      try {
        for (const l of build()) {
          await this.run(l, what, () => undefined);
          blocks += l.tapeBlocks;
        }
        return blocks;
      } catch (e) {
        await this.failover(e, drive, devices);
        await settledPosition(drive);
        await drive.drive.locate(at);
        await this.ctx.log(`writing the ${what} again from tape block ${at} on ${this.cm.name}`, {
          mover: this.cm.name,
          tapeBlock: at,
        });
      }
    }
  }

  /**
   * Read a piece's stream [streamStart, streamEnd) off tape to `disk` (restore, verify); the
   * drive is at `dataBlock`, the piece's first data block. A list a failed mover left is sent
   * again whole on the next one, from its own first tape block (writing the disk twice is harmless).
   */
  async readPiece(o: {
    drive: MountedDrive;
    disk: CscdInput;
    tapeBlockBytes: number;
    diskBlockBytes: number;
    extents: readonly StreamExtent[];
    streamStart: number;
    streamEnd: number;
    dataBlock: number;
    what: string;
    devices: readonly JobDevice[];
    /** The stream byte reached so far. */
    onStream: (at: number) => void;
  }): Promise<void> {
    const B = o.tapeBlockBytes;
    const build = (from: number): StreamList[] =>
      this.lists({
        direction: 'restore',
        disk: o.disk,
        drive: o.drive,
        tapeBlockBytes: B,
        diskBlockBytes: o.diskBlockBytes,
        extents: o.extents as StreamExtent[],
        streamStart: from,
        streamEnd: o.streamEnd,
      });
    let lists = build(o.streamStart);
    for (let i = 0; i < lists.length; i++) {
      const l = lists[i];
      try {
        await this.run(l, o.what, (n) => o.onStream(l.streamStart + Math.min(n, l.streamEnd - l.streamStart)));
        o.onStream(l.streamEnd);
      } catch (e) {
        await this.failover(e, o.drive, o.devices);
        // Lists start on tape block boundaries of the piece (list-builder); a failed mover's last READ must not move
        // the tape after this.
        const block = o.dataBlock + (l.streamStart - o.streamStart) / B;
        await settledPosition(o.drive);
        await o.drive.drive.locate(block);
        await this.ctx.log(
          `resuming the ${o.what} at stream byte ${l.streamStart} (tape block ${block}) on ${this.cm.name}`,
          { streamByte: l.streamStart, tapeBlock: block, mover: this.cm.name },
        );
        lists = build(l.streamStart);
        i = -1;
      }
    }
  }

  lists(
    o: Omit<StreamListsInput, 'tape' | 'limits' | 'blocksPerTransfer' | 'listId'> & { drive: MountedDrive },
  ): StreamList[] {
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

/** The drive of a job as a device that answers (TEST UNIT READY on the server's own session). */
export function driveDevice(ctx: JobContext, drive: MountedDrive): JobDevice {
  const ep = drive.endpoint;
  return {
    name: `${drive.changer ? 'tape library' : 'tape drive'} ${ep.name} (${ep.portal.host}:${ep.portal.port})`,
    answers: () => ctx.site.answers(ep, drive.changer ? 'library' : 'drive', drive.drive.lun),
  };
}

/** A disk LUN of a storage node as a device that answers. */
export function diskDevice(ctx: JobContext, node: string, lun: number): JobDevice {
  const ep = ctx.site.node(node);
  return {
    name: `storage node ${node} (${ep.portal.host}:${ep.portal.port}, LUN ${lun})`,
    answers: () => ctx.site.answers(ep, 'node', lun),
  };
}

/**
 * The drive's position once it stops moving: a failed mover's last READ or WRITE may still land
 * just after its session drops. Two equal READ POSITIONs 300 ms apart; a drive still moving
 * after 6 s fails the job (something else is using it). A drive that cannot tell its position
 * gets a second's pause and undefined.
 */
export async function settledPosition(drive: MountedDrive): Promise<number | undefined> {
  const at = () =>
    drive.drive.position().then(
      (p) => p.blockId,
      (e: FerryError) => {
        if (e.code === 'ERR_POSITION_UNKNOWN') return undefined;
        throw e;
      },
    );
  let last = await at();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, last === undefined ? 1000 : 300));
    if (last === undefined) return undefined;
    const now = await at();
    if (now === last) return now;
    last = now;
  }
  throw new FerryError(
    'ERR_DRIVE_BUSY',
    `drive ${drive.name} kept moving for 6 s after its data mover failed: another initiator is using it; the job ` +
      `stops here (nothing is recorded)`,
  );
}

/**
 * Read the record at the drive's position without moving its padding over the wire: READ(6) of
 * one fixed block with an expected transfer length of `headBytes` (the target sends that much and
 * reports the rest as residual overflow, RFC 7143 11.4.5.2; the drive still passes the whole
 * block). A record longer than that is read again whole. Drives not known to handle a short
 * transfer (DriveClient.partialBlockReads) are sent whole blocks.
 */
export async function readRecordCheaply(
  drive: MountedDrive,
  blockId: number,
  tapeBlockBytes: number,
  headBytes = 16 * 1024,
): Promise<TapeRecord | { kind: 'filemark' } | { kind: 'eod' }> {
  await drive.drive.locate(blockId);
  // Only a drive known to pass a whole block on a short transfer gets one (tgtd overruns its buffer).
  const want = drive.drive.partialBlockReads ? Math.min(headBytes, tapeBlockBytes) : tapeBlockBytes;
  const r = await drive.drive.session.command(drive.drive.lun, buildRead6(1, { fixed: true }), {
    inLength: want,
    allowCheckCondition: true,
  });
  if (r.status === ScsiStatus.GOOD && r.data.length >= PREFIX_BYTES) {
    const len = recordLength(r.data).totalBytes;
    if (len <= r.data.length) return decodeRecord(r.data);
  }
  await drive.drive.locate(blockId);
  return readRecord(drive.drive.device, tapeBlockBytes);
}
