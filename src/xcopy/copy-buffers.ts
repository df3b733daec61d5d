// The segment engine's buffers (engine.ts): the shared pool, the leases on its buffers, and a copy's staging.

/**
 * Fixed-size buffers, allocated on first use and reused; never more than `max` at once (util/buffer-pool.ts pools by
 * size class, unbounded in count).
 */
export class BoundedBufferPool {
  readonly size: number;
  readonly max: number;
  private free: Buffer[] = [];
  private created = 0;
  private waiters: Array<(b: Buffer) => void> = [];

  constructor(size: number, max: number) {
    this.size = size;
    this.max = max;
  }
  tryAcquire(): Buffer | undefined {
    const b = this.free.pop();
    if (b) return b;
    if (this.created < this.max) {
      this.created++;
      return Buffer.allocUnsafe(this.size);
    }
    return undefined;
  }
  acquire(): Promise<Buffer> {
    const b = this.tryAcquire();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.waiters.push(resolve));
  }
  release(b: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(b);
    else this.free.push(b);
  }
  get allocated(): number {
    return this.created;
  }
}

/** A buffer shared by the reader and the writes made from it: freed when the last one drops it. */
export class Lease {
  private refs = 1;
  private readonly onFree: () => void;
  constructor(onFree: () => void) {
    this.onFree = onFree;
  }
  retain(): void {
    this.refs++;
  }
  drop(): void {
    if (--this.refs === 0) this.onFree();
  }
}

/**
 * Two staging buffers per copy, shared by its segments: one fills while a write from the
 * other may still be in flight (`free` settles when it has).
 */
export class StagingBuffers {
  bufs: Uint8Array[] = [];
  free: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
  /** The buffer being filled. */
  cur = 0;

  /**
   * Make both at least `size` bytes: new buffers only when they grow (the old ones stay with
   * their writes). Called by a new Sink, which then stages the residual it was given.
   */
  reserve(size: number): void {
    if (this.bufs.length && this.bufs[0].length >= size) return;
    this.bufs = [new Uint8Array(size), new Uint8Array(size)];
    this.free = [Promise.resolve(), Promise.resolve()];
    this.cur = 0;
  }
}

/** A pool over buffers made for one segment (stream transfers larger than the shared pool's). */
export function fixedPool(bufs: Buffer[]): BoundedBufferPool {
  const p = new BoundedBufferPool(bufs[0].length, 0);
  for (const b of bufs) p.release(b);
  return p;
}
