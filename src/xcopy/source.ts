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

/** The source's reads, in order. The consumer drops each chunk's lease when it is done with it. */
export async function* readSource(step: DataStep, opts: EngineOptions, signal: AbortSignal): AsyncGenerator<Chunk> {
  const src: Source = step.source;
  if (src.kind === 'block' && src.blocks > 0) {
    const bs = src.ep.blockSize;
    const chunkBlocks = Math.max(1, Math.floor(opts.pool.size / bs));
    const count = Math.ceil(src.blocks / chunkBlocks);
    yield* ordered(count, readDepth(opts), opts.pool, signal, async (i, buf) => {
      const n = Math.min(chunkBlocks, src.blocks - i * chunkBlocks);
      const view = buf.subarray(0, n * bs);
      await opts.rate?.take(view.length, signal);
      try {
        await src.ep.device.readInto(src.lba + i * chunkBlocks, view);
      } catch (err) {
        throw new DeviceFailure('source', err);
      }
      return { view };
    });
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
    const readOne = (view: Uint8Array): Promise<void> => {
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
