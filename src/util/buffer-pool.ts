/**
 * Reusable byte buffers in power-of-two size classes, so hot paths (a Data-Out buffer per
 * WRITE) do not allocate and garbage-collect megabytes per command. Bounded: at most
 * `maxPooledBytes` are kept idle; anything beyond is left to the GC.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;
  readonly maxPooledBytes: number;
  readonly minClass: number;

  constructor(maxPooledBytes = 64 << 20, minClass = 64 << 10) {
    this.maxPooledBytes = maxPooledBytes;
    this.minClass = minClass;
  }

  private classOf(n: number): number {
    let c = this.minClass;
    while (c < n) c *= 2;
    return c;
  }

  /** A buffer of exactly `n` bytes (a view of a pooled block). Contents are undefined. */
  take(n: number): Buffer {
    const c = this.classOf(n);
    const list = this.free.get(c);
    const block = list?.pop();
    if (block) {
      this.pooledBytes -= c;
      return block.subarray(0, n);
    }
    return Buffer.allocUnsafeSlow(c).subarray(0, n);
  }

  /** Give back a buffer from `take`; it must not be used afterwards. */
  give(buf: Buffer): void {
    const c = buf.buffer.byteLength;
    if (buf.byteOffset !== 0 || c < this.minClass || (c & (c - 1)) !== 0) return; // not ours
    if (this.pooledBytes + c > this.maxPooledBytes) return;
    const whole = Buffer.from(buf.buffer, 0, c);
    const list = this.free.get(c);
    if (list) list.push(whole);
    else this.free.set(c, [whole]);
    this.pooledBytes += c;
  }
}
