import { DecodeError } from './errors.ts';

/**
 * A bounds-checked big-endian cursor over exactly one structure (a BHS, a CDB, a descriptor).
 * Every read past the end throws DecodeError naming the offset and the bytes needed.
 * Little-endian readers (`u16le`…) exist for NTFS.
 */
export class ByteReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;

  constructor(buf: Uint8Array, pos = 0) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
  }

  get length(): number {
    return this.buf.length;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(at: number, n: number): void {
    if (at < 0 || at + n > this.buf.length) {
      throw new DecodeError(`need ${n} byte(s) at offset ${at}, have ${Math.max(0, this.buf.length - at)}`, at);
    }
  }

  u8(at = this.advance(1)): number {
    this.need(at, 1);
    return this.buf[at];
  }
  u16(at = this.advance(2)): number {
    this.need(at, 2);
    return this.view.getUint16(at);
  }
  u24(at = this.advance(3)): number {
    this.need(at, 3);
    return (this.buf[at] << 16) | (this.buf[at + 1] << 8) | this.buf[at + 2];
  }
  u32(at = this.advance(4)): number {
    this.need(at, 4);
    return this.view.getUint32(at);
  }
  /** 64-bit big-endian; throws above 2^53 (use `u64big` for opaque fields). */
  u64(at = this.advance(8)): number {
    this.need(at, 8);
    const v = this.view.getBigUint64(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new DecodeError(`64-bit value ${v} at offset ${at} exceeds 2^53`, at);
    return Number(v);
  }
  u64big(at = this.advance(8)): bigint {
    this.need(at, 8);
    return this.view.getBigUint64(at);
  }
  u16le(at = this.advance(2)): number {
    this.need(at, 2);
    return this.view.getUint16(at, true);
  }
  u32le(at = this.advance(4)): number {
    this.need(at, 4);
    return this.view.getUint32(at, true);
  }
  i32le(at = this.advance(4)): number {
    this.need(at, 4);
    return this.view.getInt32(at, true);
  }
  u64le(at = this.advance(8)): number {
    this.need(at, 8);
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new DecodeError(`64-bit value ${v} at offset ${at} exceeds 2^53`, at);
    return Number(v);
  }
  i64le(at = this.advance(8)): number {
    this.need(at, 8);
    const v = this.view.getBigInt64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError(`64-bit value ${v} at offset ${at} is outside ±2^53`, at);
    }
    return Number(v);
  }
  /** A view (no copy) of n bytes. */
  bytes(n: number, at = this.advance(n)): Uint8Array {
    this.need(at, n);
    return this.buf.subarray(at, at + n);
  }
  skip(n: number): this {
    this.advance(n);
    return this;
  }

  private advance(n: number): number {
    const at = this.pos;
    this.need(at, n);
    this.pos += n;
    return at;
  }
}
