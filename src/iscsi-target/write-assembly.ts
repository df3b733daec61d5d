import type { SessionParams } from '../iscsi/negotiation.ts';

/** Target Transfer Tag of unsolicited Data-Out (RFC 7143 11.7.4). */
export const UNSOLICITED_TTT = 0xffffffff;

/** An R2T to send: solicit `length` bytes at `offset` (RFC 7143 11.8). */
export interface R2tGrant {
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  readonly r2tSN: number;
}

/** The Data-Out fields the sequence rules look at (RFC 7143 11.7). */
export interface DataOutHeader {
  readonly ttt: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly final: boolean;
}

/**
 * The Data-Out of one WRITE task, assembled into its buffer (ERL 0, DataPDUInOrder and
 * DataSequenceInOrder = Yes, MaxOutstandingR2T = 1): immediate data, then unsolicited Data-Out
 * up to FirstBurstLength, then one R2T sequence of at most MaxBurstLength at a time
 * (RFC 7143 3.2.4.2, 11.7, 11.8). No socket: it says where data lands, checks each PDU against
 * the sequence, and hands out the R2Ts to send.
 */
export class WriteAssembly {
  readonly buf: Buffer;
  /** Bytes received so far. */
  received: number;
  /** Bytes from offset 0 that may come without R2T (immediate + unsolicited). */
  private readonly unsolicitedEnd: number;
  private unsolicitedNextOffset: number;
  private unsolicitedNextDataSN = 0;
  /** The outstanding R2T, if any. */
  private r2t?: { ttt: number; offset: number; end: number; nextOffset: number; nextDataSN: number };
  private nextR2tOffset: number;
  private stopped = false;
  /** R2Ts sent: the ExpDataSN of a WRITE's SCSI Response (RFC 7143 11.4.8). */
  r2tsSent = 0;

  /**
   * `buf` is the whole write (EDTL bytes); its first `immediate` bytes already hold the immediate
   * data. `final` is the command's F bit: no unsolicited Data-Out follows (RFC 7143 11.3.1).
   */
  constructor(buf: Buffer, immediate: number, final: boolean, params: SessionParams) {
    this.buf = buf;
    this.received = immediate;
    const unsolicited = final || params.initialR2T ? immediate : Math.min(params.firstBurstLength, buf.length);
    this.unsolicitedEnd = Math.max(unsolicited, immediate);
    this.unsolicitedNextOffset = immediate;
    this.nextR2tOffset = this.unsolicitedEnd;
  }

  get complete(): boolean {
    return this.received >= this.buf.length;
  }

  /** The next R2T, when none is outstanding and bytes are left to solicit. `ttt` names it. */
  nextR2t(maxBurstLength: number, ttt: () => number): R2tGrant | undefined {
    if (this.r2t || this.stopped || this.nextR2tOffset >= this.buf.length) return undefined;
    const offset = this.nextR2tOffset;
    const length = Math.min(maxBurstLength, this.buf.length - offset);
    const grant = { ttt: ttt(), offset, length, r2tSN: this.r2tsSent++ };
    this.r2t = { ttt: grant.ttt, offset, end: offset + length, nextOffset: offset, nextDataSN: 0 };
    this.nextR2tOffset += length;
    return grant;
  }

  /** Where the data of a Data-Out with these fields may land: its slice of the buffer, if it is next in sequence. */
  landing(ttt: number, bufferOffset: number, length: number): Uint8Array | undefined {
    if (this.stopped) return undefined;
    const r = this.r2t;
    const unsolicited = ttt === UNSOLICITED_TTT;
    if (!unsolicited && r?.ttt !== ttt) return undefined;
    const next = unsolicited ? this.unsolicitedNextOffset : r!.nextOffset;
    const end = unsolicited ? this.unsolicitedEnd : r!.end;
    if (bufferOffset !== next || bufferOffset + length > end) return undefined;
    return this.buf.subarray(bufferOffset, bufferOffset + length);
  }

  /**
   * Take one Data-Out whose data is `data` (already in place when it landed in `landing()`'s
   * slice). Returns what breaks the sequence, or undefined when it was taken (RFC 7143 11.7.5,
   * 11.7.6: DataSN from 0 per sequence, offsets in order, F on the last PDU of an R2T sequence).
   */
  accept(h: DataOutHeader, data: Uint8Array): string | undefined {
    const at = h.bufferOffset;
    if (h.ttt === UNSOLICITED_TTT) {
      if (h.dataSN !== this.unsolicitedNextDataSN)
        return `unsolicited DataSN ${h.dataSN}, expected ${this.unsolicitedNextDataSN}`;
      if (at !== this.unsolicitedNextOffset || at + data.length > this.unsolicitedEnd)
        return (
          `unsolicited data at offset ${at}+${data.length} outside ` +
          `[${this.unsolicitedNextOffset}, ${this.unsolicitedEnd})`
        );
      this.unsolicitedNextDataSN++;
      this.unsolicitedNextOffset += data.length;
    } else {
      const r = this.r2t;
      if (!r || r.ttt !== h.ttt) return `data-out with unknown target transfer tag ${h.ttt}`;
      if (h.dataSN !== r.nextDataSN) return `DataSN ${h.dataSN}, expected ${r.nextDataSN}`;
      if (at !== r.nextOffset || at + data.length > r.end)
        return `data at offset ${at}+${data.length} outside the R2T [${r.nextOffset}, ${r.end})`;
      if (at + data.length === r.end && !h.final) return 'R2T sequence complete without the F bit';
      if (at + data.length < r.end && h.final) return 'F bit before the R2T sequence was complete';
      r.nextDataSN++;
      r.nextOffset += data.length;
      if (r.nextOffset === r.end) this.r2t = undefined;
    }
    const inPlace = data.buffer === this.buf.buffer && data.byteOffset === this.buf.byteOffset + at;
    if (!inPlace) this.buf.set(data, at);
    this.received += data.length;
    return undefined;
  }

  /** The task failed or was aborted: no more R2Ts, and no Data-Out lands. */
  stop(): void {
    this.stopped = true;
    this.r2t = undefined;
  }
}
