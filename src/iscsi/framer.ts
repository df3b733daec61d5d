import { BHS_LENGTH, type RawPdu, totalAhsLength, dataSegmentLength } from './pdu/bhs.ts';
import { crc32c } from '../util/crc32c.ts';
import { FerryError } from '../util/errors.ts';

/** A framing-level fault: the byte stream can no longer be trusted; drop the connection. */
export class FramingError extends FerryError {
  constructor(message: string) {
    super('ERR_ISCSI_FRAMING', message);
  }
}

/** A PDU whose data digest failed (RFC 7143 7.8): reject it, the stream stays in sync. */
export interface DataDigestFault {
  readonly bhs: Uint8Array;
}

export interface FramerOptions {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest data segment accepted (our MaxRecvDataSegmentLength, or 8192 during login). */
  maxDataSegment: number;
}

const EMPTY = Buffer.alloc(0);
const Phase = { HEADER: 0, DATA: 1, TAIL: 2 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Chunks in, PDUs out (RFC 7143 11.1: BHS, AHS, header digest, data, pad to 4, data digest).
 * No socket. Every byte is copied exactly once, into the PDU's own header buffer or straight
 * into its data destination, so the caller may reuse a chunk as soon as `push` returns (a
 * socket reading into one fixed buffer).
 */
export class Framer {
  opts: FramerOptions;
  private phase: Phase = Phase.HEADER;
  /** The current PDU's header (BHS, then grown for AHS and header digest). */
  private hdr = Buffer.allocUnsafe(BHS_LENGTH);
  private hdrFill = 0;
  private ahsLen = 0;
  private data: Uint8Array = EMPTY;
  private dataFill = 0;
  /** Pad and data digest after the data segment. */
  private tail = Buffer.alloc(8);
  private tailLen = 0;
  private tailFill = 0;

  constructor(opts: FramerOptions) {
    this.opts = { ...opts };
  }

  /**
   * Optional: where a PDU's data segment should land. Called once the header is complete; a
   * returned buffer of exactly DataSegmentLength bytes receives the data directly, and the
   * PDU's `data` is that buffer. Not used when data digests are on (the data is checked first).
   */
  dataTarget?: (bhs: Uint8Array) => Uint8Array | undefined;

  /** Feed a chunk; returns the complete PDUs (and data-digest faults) it finishes. Throws FramingError. */
  push(chunk: Uint8Array, out: (pdu: RawPdu | DataDigestFault) => void): void {
    const n = chunk.length;
    let off = 0;
    for (;;) {
      if (this.phase === Phase.HEADER) {
        const k = Math.min(this.hdr.length - this.hdrFill, n - off);
        this.hdr.set(chunk.subarray(off, off + k), this.hdrFill);
        this.hdrFill += k;
        off += k;
        if (this.hdrFill < this.hdr.length) return;
        if (this.hdr.length === BHS_LENGTH) {
          this.ahsLen = totalAhsLength(this.hdr);
          const full = BHS_LENGTH + this.ahsLen + (this.opts.headerDigest ? 4 : 0);
          if (full > BHS_LENGTH) {
            const grown = Buffer.allocUnsafe(full);
            grown.set(this.hdr, 0);
            this.hdr = grown;
            continue;
          }
        }
        this.headerDone();
      }
      if (this.phase === Phase.DATA) {
        const k = Math.min(this.data.length - this.dataFill, n - off);
        this.data.set(chunk.subarray(off, off + k), this.dataFill);
        this.dataFill += k;
        off += k;
        if (this.dataFill < this.data.length) return;
        this.phase = Phase.TAIL;
      }
      if (this.phase === Phase.TAIL) {
        const k = Math.min(this.tailLen - this.tailFill, n - off);
        this.tail.set(chunk.subarray(off, off + k), this.tailFill);
        this.tailFill += k;
        off += k;
        if (this.tailFill < this.tailLen) return;
        this.emit(out);
      }
    }
  }

  /**
   * The rest of the data segment being received, when the next bytes can be read straight into
   * it (no data digest pending on them); the caller reports them with `pushedDirect`.
   */
  directTarget(): Uint8Array | undefined {
    if (this.phase !== Phase.DATA || this.dataFill >= this.data.length) return undefined;
    return this.data.subarray(this.dataFill);
  }

  /** `n` bytes were read straight into `directTarget()`. */
  pushedDirect(n: number, out: (pdu: RawPdu | DataDigestFault) => void): void {
    if (this.phase !== Phase.DATA || n > this.data.length - this.dataFill)
      throw new FramingError('direct read outside the data segment');
    this.dataFill += n;
    if (this.dataFill < this.data.length) return;
    this.phase = Phase.TAIL;
    if (this.tailLen === 0) this.emit(out);
  }

  /** Header complete: check its digest and the segment length, pick the data destination. */
  private headerDone(): void {
    const headerEnd = BHS_LENGTH + this.ahsLen;
    if (this.opts.headerDigest && crc32c(this.hdr.subarray(0, headerEnd)) !== this.hdr.readUInt32LE(headerEnd)) {
      throw new FramingError('header digest mismatch');
    }
    const dsl = dataSegmentLength(this.hdr);
    if (dsl > this.opts.maxDataSegment) {
      throw new FramingError(
        `data segment of ${dsl} bytes exceeds MaxRecvDataSegmentLength ${this.opts.maxDataSegment}`,
      );
    }
    const dd = this.opts.dataDigest && dsl > 0 ? 4 : 0;
    this.tailLen = ((dsl + 3) & ~3) - dsl + dd;
    this.tailFill = 0;
    this.dataFill = 0;
    let dest: Uint8Array | undefined;
    if (dsl > 0 && !dd && this.dataTarget) {
      const sink = this.dataTarget(this.hdr.subarray(0, BHS_LENGTH));
      if (sink && sink.length === dsl) dest = sink;
    }
    this.data = dest ?? (dsl > 0 ? Buffer.allocUnsafe(dsl) : EMPTY);
    this.phase = Phase.DATA;
  }

  private emit(out: (pdu: RawPdu | DataDigestFault) => void): void {
    const hdr = this.hdr;
    const data = this.data;
    const bhs = hdr.subarray(0, BHS_LENGTH);
    const ahs = hdr.subarray(BHS_LENGTH, BHS_LENGTH + this.ahsLen);
    let digestOk = true;
    if (this.opts.dataDigest && data.length > 0) {
      const pad = this.tailLen - 4;
      let c = crc32c(data);
      if (pad) c = crc32c(this.tail.subarray(0, pad), c);
      digestOk = c === this.tail.readUInt32LE(pad);
    }
    this.hdr = Buffer.allocUnsafe(BHS_LENGTH);
    this.hdrFill = 0;
    this.ahsLen = 0;
    this.data = EMPTY;
    this.phase = Phase.HEADER;
    out(digestOk ? { bhs, ahs, data } : { bhs });
  }
}

const PAD = Buffer.alloc(4);

/**
 * The wire pieces of a PDU, for one corked writev: header (+digest), data, pad (+digest).
 * No concatenation of the data segment.
 */
export function pduPieces(pdu: RawPdu, headerDigest: boolean, dataDigest: boolean): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  const header = pdu.ahs.length ? Buffer.concat([pdu.bhs, pdu.ahs]) : pdu.bhs;
  // AHS length and DSL are encoded by the codecs; TotalAHSLength in words.
  if (headerDigest) {
    const hd = Buffer.allocUnsafe(header.length + 4);
    hd.set(header, 0);
    hd.writeUInt32LE(crc32c(header), header.length);
    pieces.push(hd);
  } else {
    pieces.push(header);
  }
  const dsl = pdu.data.length;
  if (dsl > 0) {
    pieces.push(pdu.data);
    const pad = (4 - (dsl & 3)) & 3;
    if (dataDigest) {
      let c = crc32c(pdu.data);
      if (pad) c = crc32c(PAD.subarray(0, pad), c);
      const tail = Buffer.alloc(pad + 4);
      tail.writeUInt32LE(c, pad);
      pieces.push(tail);
    } else if (pad) {
      pieces.push(PAD.subarray(0, pad));
    }
  }
  return pieces;
}
