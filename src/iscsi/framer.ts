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

/**
 * Chunks in, PDUs out (RFC 7143 11.1: BHS, AHS, header digest, data, pad to 4, data digest).
 * No socket. Keeps the incoming chunks and copies only when a PDU straddles two of them.
 */
export class Framer {
  opts: FramerOptions;
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(opts: FramerOptions) {
    this.opts = { ...opts };
  }

  /**
   * Optional: where a PDU's data segment should land. Called once the header is complete; a
   * returned buffer of exactly DataSegmentLength bytes receives the data directly (no
   * intermediate copy), and the PDU's `data` is that buffer.
   */
  dataTarget?: (bhs: Uint8Array) => Uint8Array | undefined;

  /** Feed a chunk; returns the complete PDUs (and data-digest faults) it finishes. Throws FramingError. */
  push(chunk: Buffer, out: (pdu: RawPdu | DataDigestFault) => void): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const hd = this.opts.headerDigest ? 4 : 0;
      if (this.buffered < BHS_LENGTH) return;
      const bhs = this.peek(BHS_LENGTH);
      const ahsLen = totalAhsLength(bhs);
      const dsl = dataSegmentLength(bhs);
      if (dsl > this.opts.maxDataSegment) {
        throw new FramingError(`data segment of ${dsl} bytes exceeds MaxRecvDataSegmentLength ${this.opts.maxDataSegment}`);
      }
      const dd = this.opts.dataDigest && dsl > 0 ? 4 : 0;
      const padded = (dsl + 3) & ~3;
      const total = BHS_LENGTH + ahsLen + hd + padded + dd;
      if (this.buffered < total) return;
      if (dsl > 0 && !dd && this.dataTarget && this.chunks[0].length < total) {
        // A data segment spanning chunks: copy it once, straight to where it belongs.
        const sink = this.dataTarget(bhs);
        if (sink && sink.length === dsl) {
          const head = this.take(BHS_LENGTH + ahsLen + hd);
          const headerEnd = BHS_LENGTH + ahsLen;
          if (hd && crc32c(head.subarray(0, headerEnd)) !== head.readUInt32LE(headerEnd)) throw new FramingError('header digest mismatch');
          this.copyOut(sink);
          if (padded > dsl) this.take(padded - dsl);
          out({ bhs: head.subarray(0, BHS_LENGTH), ahs: head.subarray(BHS_LENGTH, headerEnd), data: sink });
          continue;
        }
      }
      const whole = this.take(total);
      const headerEnd = BHS_LENGTH + ahsLen;
      if (hd) {
        const want = whole.readUInt32LE(headerEnd);
        if (crc32c(whole.subarray(0, headerEnd)) !== want) throw new FramingError('header digest mismatch');
      }
      const dataStart = headerEnd + hd;
      const data = whole.subarray(dataStart, dataStart + dsl);
      const head = whole.subarray(0, BHS_LENGTH);
      if (dd) {
        const want = whole.readUInt32LE(dataStart + padded);
        if (crc32c(whole.subarray(dataStart, dataStart + padded)) !== want) {
          out({ bhs: head });
          continue;
        }
      }
      out({ bhs: head, ahs: whole.subarray(BHS_LENGTH, headerEnd), data });
    }
  }

  /** Consume target.length buffered bytes into target. */
  private copyOut(target: Uint8Array): void {
    let off = 0;
    while (off < target.length) {
      const c = this.chunks[0];
      const k = Math.min(c.length, target.length - off);
      target.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= target.length;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    return this.gather(n, false);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) {
      this.buffered -= n;
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    return this.gather(n, true);
  }

  private gather(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    let i = 0;
    while (off < n) {
      const c = this.chunks[i];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (consume) {
        if (k === c.length) {
          this.chunks.shift();
        } else {
          this.chunks[0] = c.subarray(k);
        }
      } else {
        i++;
      }
    }
    if (consume) this.buffered -= n;
    return out;
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
