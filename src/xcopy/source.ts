import { SenseError, SenseKey, Asc, encodeFixedSense } from '../scsi/sense.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import type { DataStep, Source } from './plan.ts';
import type { EngineOptions } from './engine.ts';
import { BoundedBufferPool, Lease, fixedPool } from './copy-buffers.ts';
import { DeviceFailure } from './device-failure.ts';

// The segment engine's reads (engine.ts): a segment's source as an ordered stream of pool buffers.

export function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason ?? new Error('aborted');
}

/**
 * Commands one copy keeps in flight to one device at the most: enough to stream 256 KiB
 * records, few enough that a failure or an abort leaves little behind it.
 */
export const MAX_COMMANDS_IN_FLIGHT = 32;

/** Pool buffers read ahead (at least one). */
export function readDepth(opts: EngineOptions): number {
  return Math.max(1, Math.floor(opts.readsInFlight));
}

/** Data read from the source, in order. `error`: the source failed after `view`. */
interface Chunk {
  view: Uint8Array;
  lease: Lease;
  error?: DeviceFailure;
}

/**
 * The source's reads, in order. The consumer drops each chunk's lease when it is done with it.
 * Block sources are read through `blocks`, which may already hold this segment's first reads.
 */
export async function* readSource(
  step: DataStep,
  opts: EngineOptions,
  signal: AbortSignal,
  blocks: BlockReads,
): AsyncGenerator<Chunk> {
  const src: Source = step.source;
  if (src.kind === 'block' && src.blocks > 0) {
    yield* blocks.chunks(step);
  } else if (src.kind === 'stream' && src.reads > 0) {
    const dev = src.ep.device;
    // Several transfers at once only when the device keeps them in order (ORDERED task attribute).
    const pipelined = !!(dev as { ordersReads?: boolean }).ordersReads;
    let chain: Promise<unknown> = Promise.resolve();
    const rate = opts.rate;
    const read = (view: Uint8Array): Promise<void> =>
      rate
        ? rate.take(view.length, signal).then(() => readStream(dev, view, src.ep.fixedBlock))
        : readStream(dev, view, src.ep.fixedBlock);
    // A stream has no addresses: the n-th READ issued gets the n-th transfer, whichever buffer it was meant for.
    // The rate's waits may end out of call order (rate-limit.ts), so a pipelined read waits for its turn only once
    // the read before it has been issued.
    let issued: Promise<unknown> = Promise.resolve();
    const readOne = (view: Uint8Array): Promise<void> => {
      if (pipelined && rate) {
        const turn = issued.then(() => rate.take(view.length, signal));
        issued = turn;
        return turn.then(() => readStream(dev, view, src.ep.fixedBlock));
      }
      if (pipelined) return read(view);
      const p = chain.then(() => read(view)); // after a failure, no further reads
      chain = p;
      return p;
    };
    // As many transfers per buffer as fit, read into consecutive parts of it.
    const own = src.unit > opts.pool.size ? [Buffer.allocUnsafe(src.unit), Buffer.allocUnsafe(src.unit)] : undefined;
    const pool = own ? fixedPool(own) : opts.pool;
    const perChunk = Math.min(MAX_COMMANDS_IN_FLIGHT, Math.max(1, Math.floor(pool.size / src.unit)));
    const count = Math.ceil(src.reads / perChunk);
    const depth = own ? 2 : Math.max(1, Math.min(readDepth(opts), Math.floor(MAX_COMMANDS_IN_FLIGHT / perChunk)));
    yield* ordered(count, depth, pool, signal, async (c, buf) => {
      const first = c * perChunk;
      const parts: Array<{ len: number; p: Promise<void> }> = [];
      let end = 0;
      for (let r = first; r < Math.min(src.reads, first + perChunk); r++) {
        const len = r === src.reads - 1 ? src.lastUnit : src.unit;
        const p = readOne(buf.subarray(end, end + len));
        p.catch(() => undefined); // observed below, in order
        parts.push({ len, p });
        end += len;
      }
      let good = 0;
      for (const part of parts) {
        try {
          await part.p;
        } catch (err) {
          await Promise.allSettled(parts.map((x) => x.p));
          return {
            view: buf.subarray(0, good),
            error: err instanceof DeviceFailure ? err : new DeviceFailure('source', err),
          };
        }
        good += part.len;
      }
      return { view: buf.subarray(0, end) };
    });
  }
}

type BlockStep = DataStep & { source: Extract<Source, { kind: 'block' }> };

/**
 * The block-source reads of consecutive data segments as one ordered stream of pool buffers,
 * at most `readDepth` in flight or read and not yet taken. A segment added while an earlier one
 * is still being read gets its first reads as soon as the earlier one's are all issued, so the
 * source stays busy across segment boundaries (a segment is at most 65,535 blocks, SPC-4 6.4.6.2).
 * The engine adds only segments that may start now (engine.ts `independentOf`). A failed read is
 * reported when its segment takes that chunk, in order, as if it had been read then.
 */
export class BlockReads {
  private readonly opts: EngineOptions;
  private readonly signal: AbortSignal;
  /** Segments added, with how many of their reads have been issued. */
  private readonly segments: Array<{ step: BlockStep; issued: number; count: number; chunkBlocks: number }> = [];
  private readonly queue: Array<{ step: DataStep; buf: Buffer; p: Promise<Uint8Array> }> = [];

  constructor(opts: EngineOptions, signal: AbortSignal) {
    this.opts = opts;
    this.signal = signal;
  }

  /** Queue `step`'s reads after those of the segments added before it (once per segment). */
  add(step: DataStep): void {
    const src = step.source;
    if (src.kind !== 'block' || src.blocks === 0 || this.has(step)) return;
    const chunkBlocks = Math.max(1, Math.floor(this.opts.pool.size / src.ep.blockSize));
    this.segments.push({ step: step as BlockStep, issued: 0, count: Math.ceil(src.blocks / chunkBlocks), chunkBlocks });
    this.fill();
  }

  private has(step: DataStep): boolean {
    return this.segments.some((s) => s.step === step);
  }

  /** `step`'s chunks in order (it must have been added, or is added now, after every segment before it). */
  async *chunks(step: DataStep): AsyncGenerator<Chunk> {
    this.add(step);
    const seg = this.segments[0];
    if (seg?.step !== step) throw new Error('engine: block reads taken out of segment order');
    for (let i = 0; i < seg.count; i++) {
      checkAbort(this.signal);
      if (!this.queue.length) {
        // Nothing in flight: wait for a buffer (the writes hold them all).
        const buf = await this.opts.pool.acquire();
        if (!this.queue.length) this.issue(seg, buf);
        else this.opts.pool.release(buf);
      }
      const head = this.queue[0];
      if (head.step !== step) throw new Error('engine: block reads taken out of segment order');
      let view: Uint8Array;
      try {
        view = await head.p;
      } catch (err) {
        this.queue.shift();
        this.opts.pool.release(head.buf); // the read has settled
        throw err;
      }
      this.queue.shift();
      if (i === seg.count - 1) this.segments.shift();
      this.fill();
      yield { view, lease: new Lease(() => this.release(head.buf)) };
    }
  }

  /** Let every read in flight settle and return its buffer (the copy has ended or failed). */
  async close(): Promise<void> {
    this.segments.length = 0;
    for (const q of this.queue.splice(0)) {
      await q.p.catch(() => undefined);
      this.opts.pool.release(q.buf);
    }
  }

  private release(buf: Buffer): void {
    this.opts.pool.release(buf);
    this.fill();
  }

  /** Issue reads in segment order while fewer than readDepth are queued and the pool has a buffer. */
  private fill(): void {
    while (this.queue.length < readDepth(this.opts)) {
      const seg = this.segments.find((s) => s.issued < s.count);
      if (!seg) return;
      const buf = this.opts.pool.tryAcquire();
      if (!buf) return;
      this.issue(seg, buf);
    }
  }

  private issue(seg: { step: BlockStep; issued: number; count: number; chunkBlocks: number }, buf: Buffer): void {
    const p = this.read(seg.step, seg.issued++ * seg.chunkBlocks, seg.chunkBlocks, buf);
    p.catch(() => undefined); // observed when its segment takes it
    this.queue.push({ step: seg.step, buf, p });
  }

  private async read(step: BlockStep, first: number, chunkBlocks: number, buf: Buffer): Promise<Uint8Array> {
    const src = step.source;
    const bs = src.ep.blockSize;
    const view = buf.subarray(0, Math.min(chunkBlocks, src.blocks - first) * bs);
    await this.opts.rate?.take(view.length, this.signal);
    try {
      await src.ep.device.readInto(src.lba + first, view);
    } catch (err) {
      throw new DeviceFailure('source', err);
    }
    return view;
  }
}

/** One stream READ of exactly `view.length` bytes (SILI=0: a short or long record is an error). */
async function readStream(dev: TapeDevice, view: Uint8Array, fixedBlock: number): Promise<void> {
  let r;
  try {
    r = await dev.read(view);
  } catch (err) {
    throw new DeviceFailure('source', err);
  }
  if (r.kind === 'filemark') {
    const sense = encodeFixedSense(new SenseError(SenseKey.NO_SENSE, Asc.FILEMARK_DETECTED, { filemark: true }));
    throw new DeviceFailure('source', 'filemark', Asc.COPY_TARGET_DEVICE_DATA_UNDERRUN, sense);
  }
  if (r.kind === 'eod') {
    const sense = encodeFixedSense(new SenseError(SenseKey.BLANK_CHECK, Asc.END_OF_DATA_DETECTED));
    throw new DeviceFailure('source', 'end of data', Asc.COPY_TARGET_DEVICE_DATA_UNDERRUN, sense);
  }
  const expected = view.length;
  const recordLength = fixedBlock ? r.bytes : r.recordLength;
  if (r.bytes < expected || recordLength !== expected) {
    const residue = fixedBlock ? (expected - r.bytes) / fixedBlock : expected - recordLength;
    const sense = encodeFixedSense(
      new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { ili: true, info: residue | 0 }),
    );
    const asc = recordLength > expected ? Asc.COPY_TARGET_DEVICE_DATA_OVERRUN : Asc.COPY_TARGET_DEVICE_DATA_UNDERRUN;
    throw new DeviceFailure('source', `record of ${recordLength} bytes, expected ${expected}`, asc, sense);
  }
}

/**
 * Run `count` reads into pool buffers, up to `depth` in flight, and yield them in order. A
 * yielded chunk's buffer belongs to the consumer (its lease); reads not yet yielded when the
 * consumer stops are awaited and their buffers returned here.
 */
async function* ordered(
  count: number,
  depth: number,
  pool: BoundedBufferPool,
  signal: AbortSignal,
  read: (i: number, buf: Buffer) => Promise<{ view: Uint8Array; error?: DeviceFailure }>,
): AsyncGenerator<Chunk> {
  const queue: Array<{ buf: Buffer; p: Promise<{ view: Uint8Array; error?: DeviceFailure }> }> = [];
  let next = 0;
  const start = async (wait: boolean) => {
    const buf = wait ? await pool.acquire() : pool.tryAcquire();
    if (!buf) return false;
    const p = read(next++, buf);
    p.catch(() => undefined); // observed when its turn comes
    queue.push({ buf, p });
    return true;
  };
  try {
    for (let i = 0; i < count; i++) {
      checkAbort(signal);
      while (next < count && queue.length < depth) {
        if (!(await start(queue.length === 0))) break;
      }
      const r = await queue[0].p;
      const { buf } = queue.shift()!;
      yield { view: r.view, error: r.error, lease: new Lease(() => pool.release(buf)) };
      if (r.error) return;
    }
  } finally {
    // Aborted or failed: let in-flight reads settle before their buffers are reused.
    for (const q of queue.splice(0)) {
      await q.p.catch(() => undefined);
      pool.release(q.buf);
    }
  }
}
