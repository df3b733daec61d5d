import { FerryError } from '../util/errors.ts';
import { SenseDataSource, SenseKey, decodeSense, describeSense, type DecodedSense } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { RcrServiceAction } from '../xcopy/copy-manager.ts';
import {
  CopyManagerStatus,
  decodeCopyStatus,
  decodeOperatingParameters,
  type CopyStatus,
  type OperatingParameters,
} from '../xcopy/copy-results.ts';
import { ScsiCommandError, type InitiatorSession } from './session.ts';
import { buildExtendedCopy, buildReceiveCopyResults } from '../scsi/cdb/spc.ts';

/**
 * The initiator side of EXTENDED COPY (LID1): send one parameter list to a copy manager and
 * poll RECEIVE COPY RESULTS for progress (SPC-4 6.4, 6.18).
 *
 * A copy manager reports a finished copy's COPY STATUS once and then forgets it (SPC-4 6.18.2).
 * A poll that lands after the copy ended but before the EXTENDED COPY status arrives therefore
 * takes the final result: the client keeps it instead of asking again for a list that is gone.
 */

export interface CopyProgress {
  transferBytes: number;
  segmentsProcessed: number;
}

export interface CopyRunOptions {
  /** LIST IDENTIFIER of the list (tracked: LIST ID USAGE 00b or 10b). */
  listId: number;
  /** Time between COPY STATUS polls (default 200 ms). */
  pollMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  /** What the list is for, for messages ("backup of store:0"). */
  what?: string;
  /**
   * Give up when the copy manager reports no progress (nor answers a poll) for this long: the
   * copy is aborted (ABORT TASK) and ERR_COPY_STALLED thrown. Default: wait as long as it takes.
   */
  stallMs?: number;
}

export interface CopyOutcome extends CopyProgress {
  seconds: number;
  polls: number;
  /** The final COPY STATUS came from a poll that landed before the EXTENDED COPY status. */
  finalFromPoll: boolean;
}

/** An EXTENDED COPY that ended in CHECK CONDITION, decoded for people and for the job runner. */
export class CopyFailedError extends FerryError {
  readonly sense?: DecodedSense;
  /** Segment that failed (COMMAND-SPECIFIC INFORMATION of COPY ABORTED), when reported. */
  readonly segment?: number;
  /** Who failed: the copy source's or destination's own sense was forwarded, or the copy manager itself. */
  readonly culprit: 'source' | 'destination' | 'copy manager';
  readonly forwarded: Array<{ from: 'source' | 'destination'; sense: DecodedSense }>;
  constructor(what: string, status: number, sense: DecodedSense | undefined) {
    const forwarded = (sense?.forwarded ?? []).map((f) => ({
      from: f.source === SenseDataSource.COPY_SOURCE ? ('source' as const) : ('destination' as const),
      sense: decodeSense(f.sense), // the device's own sense data (SPC-5 5.17.7.4)
    }));
    // SPC-5 5.17.7.4: the segment number is in the low 16 bits of COMMAND-SPECIFIC INFORMATION
    // (fixed format keeps the forwarded-sense offsets in its upper bytes).
    const segment =
      sense?.key === SenseKey.COPY_ABORTED && sense.commandSpecific !== undefined
        ? sense.commandSpecific & 0xffff
        : undefined;
    const culprit = forwarded[0]?.from ?? 'copy manager';
    const parts = [
      `${what}: EXTENDED COPY ended with ` +
        `${status === ScsiStatus.CHECK_CONDITION ? 'CHECK CONDITION' : `status 0x${status.toString(16)}`}`,
    ];
    if (sense) parts.push(describeSense(sense));
    if (segment !== undefined) parts.push(`at segment ${segment}`);
    for (const f of forwarded) parts.push(`the copy ${f.from} reported ${describeSense(f.sense)}`);
    super('ERR_COPY_FAILED', `${parts.join(', ')}. ${hint(sense, forwarded)}`);
    this.sense = sense;
    this.segment = segment;
    this.culprit = culprit;
    this.forwarded = forwarded;
  }
}

function hint(sense: DecodedSense | undefined, forwarded: Array<{ from: string; sense: DecodedSense }>): string {
  const f = forwarded[0]?.sense;
  if (f?.key === SenseKey.DATA_PROTECT)
    return 'The cartridge or LUN is write-protected: use another one or clear the protection.';
  if (f?.key === SenseKey.VOLUME_OVERFLOW || f?.eom)
    return 'The cartridge is full: the set must continue on another cartridge.';
  if (f?.key === SenseKey.NOT_READY)
    return 'A device was not ready: check that the cartridge is loaded and the LUN exists.';
  if (sense?.key === SenseKey.COPY_ABORTED && sense.asc === 0x08)
    return 'The copy manager cannot reach a copy target: check its portals (ferry mover --portal) and the target.';
  if (sense?.key === SenseKey.ILLEGAL_REQUEST)
    return 'The copy manager refused the parameter list: this is a Ferry bug, please report it with the job log.';
  return 'See the job log for the device that failed.';
}

const TIMED_OUT = Symbol('timed out');

/** `p`, or TIMED_OUT when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms))));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class CopyClient {
  readonly session: InitiatorSession;
  readonly lun: number;

  constructor(session: InitiatorSession, lun: number) {
    this.session = session;
    this.lun = lun;
  }

  /** RECEIVE COPY RESULTS OPERATING PARAMETERS: the limits a parameter list must keep to. */
  async operatingParameters(): Promise<OperatingParameters> {
    const r = await this.session.command(
      this.lun,
      buildReceiveCopyResults(RcrServiceAction.OPERATING_PARAMETERS, 0, 4096),
      {
        inLength: 4096,
      },
    );
    return decodeOperatingParameters(r.data);
  }

  /** One COPY STATUS poll; undefined when the copy manager holds nothing for the list. */
  async copyStatus(listId: number): Promise<CopyStatus | undefined> {
    const r = await this.session.command(this.lun, buildReceiveCopyResults(RcrServiceAction.COPY_STATUS, listId, 12), {
      inLength: 12,
      allowCheckCondition: true,
    });
    if (r.status === ScsiStatus.GOOD) return decodeCopyStatus(r.data);
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === SenseKey.ILLEGAL_REQUEST) return undefined;
    throw new ScsiCommandError(r.status, r.rawSense, {
      cdb: buildReceiveCopyResults(RcrServiceAction.COPY_STATUS, listId, 12),
      lun: this.lun,
    });
  }

  /** Send `list` and wait for it to end. Throws CopyFailedError when the copy manager reports a failure. */
  async run(list: Uint8Array, opts: CopyRunOptions): Promise<CopyOutcome> {
    const what = opts.what ?? `list ${opts.listId} on LUN ${this.lun}`;
    const pollMs = opts.pollMs ?? 200;
    const t0 = performance.now();
    let ended = false;
    let itt: number | undefined;
    const copy = this.session
      .command(this.lun, buildExtendedCopy(list.length), {
        dataOut: list,
        allowCheckCondition: true,
        onIssued: (t) => (itt = t),
      })
      .finally(() => {
        ended = true;
      });
    copy.catch(() => undefined);
    let polls = 0;
    let last: CopyProgress = { transferBytes: 0, segmentsProcessed: 0 };
    let final: CopyStatus | undefined;
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let advancedAt = performance.now();
    // Stop the copy manager too: an aborted EXTENDED COPY stops its copy (SAM-5 7.3, SPC-4 6.4).
    const abort = async (): Promise<void> => {
      if (ended || itt === undefined) return;
      const gaveUp = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([this.session.abortTask(this.lun, itt).catch(() => undefined), gaveUp]);
    };
    const stalled = (): FerryError =>
      new FerryError(
        'ERR_COPY_STALLED',
        `${what}: the copy manager reported no progress for ${opts.stallMs! / 1000} s (at ${last.transferBytes} bytes)`,
      );
    try {
      while (!ended && !final) {
        await Promise.race([
          new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, pollMs);
          }),
          copy.then(
            () => undefined,
            () => undefined,
          ),
        ]);
        if (opts.signal?.aborted) {
          await abort();
          throw new FerryError('ERR_CANCELED', `${what}: canceled`);
        }
        if (ended) break;
        const poll = this.copyStatus(opts.listId);
        const st =
          opts.stallMs === undefined ? await poll : await within(poll, opts.stallMs - (performance.now() - advancedAt));
        if (st === TIMED_OUT || (opts.stallMs !== undefined && performance.now() - advancedAt > opts.stallMs)) {
          poll.catch(() => undefined);
          await abort();
          throw stalled();
        }
        polls++;
        if (!st) continue;
        if (st.transferBytes !== last.transferBytes || st.segmentsProcessed !== last.segmentsProcessed)
          advancedAt = performance.now();
        last = { transferBytes: st.transferBytes, segmentsProcessed: st.segmentsProcessed };
        opts.onProgress?.(last);
        // The copy ended between polls: this answer was its one final report.
        if (st.status !== CopyManagerStatus.IN_PROGRESS) final = st;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    const res = await copy;
    const seconds = (performance.now() - t0) / 1000;
    if (res.status !== ScsiStatus.GOOD) throw new CopyFailedError(what, res.status, res.sense);
    const finalFromPoll = final !== undefined;
    // Status GOOD: the copy manager's own count of what it wrote, unless a poll already took it.
    final ??= await this.copyStatus(opts.listId);
    if (final) last = { transferBytes: final.transferBytes, segmentsProcessed: final.segmentsProcessed };
    opts.onProgress?.(last);
    return { ...last, seconds, polls, finalFromPoll };
  }
}
