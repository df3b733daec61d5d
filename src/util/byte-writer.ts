/**
 * A fixed-size, zero-filled big-endian writer with absolute setters for back-patching.
 * Writes past the end throw RangeError: a writer is sized for its structure up front.
 */
export class ByteWriter {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(sizeOrBuffer: number | Uint8Array) {
    this.buf = typeof sizeOrBuffer === 'number' ? new Uint8Array(sizeOrBuffer) : sizeOrBuffer;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  u8(v: number): this {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }
  u24(v: number): this {
    this.setU24(this.pos, v);
    this.pos += 3;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }
  u64(v: number | bigint): this {
    this.view.setBigUint64(this.pos, BigInt(v));
    this.pos += 8;
    return this;
  }
  bytes(src: Uint8Array): this {
    if (this.pos + src.length > this.buf.length) throw new RangeError('ByteWriter overflow');
    this.buf.set(src, this.pos);
    this.pos += src.length;
    return this;
  }
  skip(n: number): this {
    this.pos += n;
    return this;
  }

  setU8(at: number, v: number): this {
    this.view.setUint8(at, v);
    return this;
  }
  setU16(at: number, v: number): this {
    this.view.setUint16(at, v);
    return this;
  }
  setU24(at: number, v: number): this {
    if (at + 3 > this.buf.length) throw new RangeError('ByteWriter overflow');
    this.buf[at] = (v >>> 16) & 0xff;
    this.buf[at + 1] = (v >>> 8) & 0xff;
    this.buf[at + 2] = v & 0xff;
    return this;
  }
  setU32(at: number, v: number): this {
    this.view.setUint32(at, v >>> 0);
    return this;
  }
  setU64(at: number, v: number | bigint): this {
    this.view.setBigUint64(at, BigInt(v));
    return this;
  }
}
