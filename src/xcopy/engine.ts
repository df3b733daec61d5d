import type { RateLimit } from '../util/rate-limit.ts';
import { SenseError, SenseKey, Asc, encodeFixedSense, type AscCode } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import { copyAborted, type DataStep, type Destination, type ForwardedSense, type Source, type Step } from './plan.ts';

/**
 * The segment engine: moves bytes exactly as the plan says, as a pipeline.
 * - Reads run up to `readsInFlight` pool buffers ahead of the writes.
 * - Writes are issued in order and stay in flight across buffers and segments (bounded, and
 *   one at a time to a tape that does not keep order). A buffer goes back to the pool when the
 *   last write made from it completes, so nothing waits for a write unless the bound is reached.
 * - Stream sources read several records into one pool buffer, so a restore writes whole
 *   buffers in place; they are never read ahead of the segment (SPC-5 6.4.5.4).
 * - A move within one device to higher, overlapping addresses runs from the end (memmove order).
 * Memory is flat whatever the list asks for: the pool, plus two staging buffers per copy (and
 * two more for the duration of such a move).
 */

export interface EngineOptions {
  readsInFlight: number;
  pool: BoundedBufferPool;
  /** The mover's bandwidth cap: every source read takes its bytes from it first. */
  rate?: RateLimit;
  /** Told about every CSCD failure (for logs), before it becomes COPY ABORTED. */
  onDeviceError?: (info: { segment: number; role: 'source' | 'destination'; error: unknown }) => void;
}

/** Live counters, read by RECEIVE COPY RESULTS COPY STATUS while the copy runs. */
export interface CopyProgress {
  segmentsProcessed: number;
  bytesWritten: number;
}

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
class Lease {
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

/** A CSCD failed: carries the role so the sense can forward the device's own sense. */
class DeviceFailure extends Error {
  readonly role: 'source' | 'destination';
  readonly asc: AscCode;
  readonly forwarded?: ForwardedSense;
  /** The segment of a failed write (writes of one segment may still be in flight during the next). */
  tally?: Tally;
  constructor(
    role: 'source' | 'destination',
    err: unknown,
    asc: AscCode = Asc.COPY_TARGET_DEVICE_NOT_REACHABLE,
    sense?: Uint8Array,
  ) {
    super(err instanceof Error ? err.message : String(err), { cause: err });
    this.role = role;
    this.asc = asc;
    const s = sense ?? senseOf(err);
    if (s) this.forwarded = { from: role, status: ScsiStatus.CHECK_CONDITION, sense: s };
  }
}

/** The sense a device error carries: a SenseError (local LU) or raw bytes (initiator's ScsiCommandError). */
function senseOf(err: unknown): Uint8Array | undefined {
  if (err instanceof SenseError) return encodeFixedSense(err);
  const e = err as { rawSense?: unknown; sense?: unknown } | null;
  if (e?.rawSense instanceof Uint8Array && e.rawSense.length) return e.rawSense;
  return e?.sense instanceof Uint8Array ? e.sense : undefined;
}

function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason ?? new Error('aborted');
}

/** One segment's share of the copy: what it wrote, and the sequence number of its last write. */
interface Tally {
  step: Step;
  written: number;
  /** Set when the segment has issued all its writes; it is processed once they have all completed. */
  lastWrite: number;
}

/**
 * Run every step in order. Throws COPY ABORTED (SenseError) naming the failing segment. A data
 * segment starts while the writes of earlier ones are still in flight unless it reads or
 * writes what they write (tape order is kept by the device, or by waiting).
 */
export async function executePlan(
  steps: Step[],
  progress: CopyProgress,
  signal: AbortSignal,
  opts: EngineOptions,
): Promise<void> {
  const pending: Tally[] = [];
  const writes = new WritesInFlight(progress, () => {
    while (pending.length && pending[0].lastWrite <= writes.settledCount) {
      pending.shift();
      progress.segmentsProcessed++;
    }
  });
  const run: CopyRun = {
    srcResidual: new Uint8Array(0),
    dstResidual: new Uint8Array(0),
    staging: new StagingBuffers(),
    writes,
  };
  let current: Tally | undefined;
  try {
    for (const step of steps) {
      checkAbort(signal);
      if (step.kind !== 'data' || !independentOf(step, pending)) await writes.drain();
      current = { step, written: 0, lastWrite: Infinity };
      pending.push(current);
      if (step.kind === 'data') {
        await runDataStep(step, run, current, signal, opts);
      } else if (step.kind === 'tape') {
        await runTapeOp(step.ep.device, step.op).catch((err) => {
          throw new DeviceFailure('destination', err);
        });
      }
      current.lastWrite = writes.issuedCount;
      writes.onSettled();
    }
    await writes.drain();
  } catch (err) {
    await writes.abandon();
    if (err instanceof DeviceFailure && current) {
      const t = err.tally ?? current;
      const step = t.step;
      const seg = step.segment.index;
      opts.onDeviceError?.({ segment: seg, role: err.role, error: err.cause });
      const residual = step.kind === 'data' && t.written > 0 ? residualUnits(step, t.written) : undefined;
      const cscdOffset = failingCscdOffset(step, err.role);
      throw copyAborted({
        asc: err.asc,
        segment: seg,
        field: cscdOffset === undefined ? undefined : { sd: false, offset: cscdOffset },
        forwarded: err.forwarded,
        residual,
      });
    }
    throw err;
  }
}

/** Whether a data segment may start while the segments in `pending` still have writes in flight. */
function independentOf(step: DataStep, pending: Tally[]): boolean {
  for (const t of pending) {
    if (t.step.kind !== 'data') continue;
    const d = t.step.destination;
    const src = step.source;
    const dst = step.destination;
    // Reading what is being written, or writing it again: wait (block ranges may be disjoint).
    if (src.kind === 'block' && d.kind === 'block' && src.ep.device === d.ep.device && overlaps(src, d)) return false;
    if (src.kind === 'stream' && d.kind === 'stream' && src.ep.device === d.ep.device) return false;
    if (dst.kind === 'block' && d.kind === 'block' && dst.ep.device === d.ep.device && overlaps(dst, d)) return false;
    // A second segment to the same tape: only when the device applies writes in order.
    if (
      dst.kind === 'stream' &&
      d.kind === 'stream' &&
      dst.ep.device === d.ep.device &&
      !keepsWriteOrder(dst.ep.device)
    )
      return false;
  }
  return true;
}

function overlaps(a: { lba: number; blocks: number }, b: { lba: number; blocks: number }): boolean {
  return a.lba < b.lba + b.blocks && b.lba < a.lba + a.blocks;
}

/** A tape whose WRITEs carry the ORDERED task attribute (RemoteTapeDevice), so several may be in flight. */
function keepsWriteOrder(dev: TapeDevice): boolean {
  return !!(dev as { ordersWrites?: boolean }).ordersWrites;
}

function failingCscdOffset(step: Step, role: 'source' | 'destination'): number | undefined {
  if (step.kind === 'tape') return step.ep.cscdOffset;
  if (step.kind !== 'data') return undefined;
  const end = role === 'source' ? step.source : step.destination;
  return 'ep' in end ? end.ep.cscdOffset : undefined;
}

/** SPC-5 5.17.7.4 c: residual in destination blocks, or bytes for a variable-length stream. */
function residualUnits(step: DataStep, written: number): number {
  const d = step.destination;
  const left = step.writeBytes - written;
  if (d.kind === 'stream' && d.ep.fixedBlock === 0) return left;
  if (d.kind === 'stream') return left / d.ep.fixedBlock;
  if (d.kind === 'block') return left / d.ep.blockSize;
  return left;
}

async function runTapeOp(dev: TapeDevice, op: Extract<Step, { kind: 'tape' }>['op']): Promise<void> {
  if (op.kind === 'filemarks') await dev.writeFilemarks(op.count);
  else if (op.kind === 'space') await dev.space(op.unit, op.count);
  else await dev.locate(op.blockId);
}

/** What one copy carries from segment to segment: residuals (SPC-5 5.17.7.2), staging, writes in flight. */
interface CopyRun {
  srcResidual: Uint8Array;
  dstResidual: Uint8Array;
  staging: StagingBuffers;
  writes: WritesInFlight;
}

/** Read and hand over a segment's data; its last writes may still be in flight when this returns. */
async function runDataStep(
  step: DataStep,
  state: CopyRun,
  tally: Tally,
  signal: AbortSignal,
  opts: EngineOptions,
): Promise<void> {
  if (isBackwardMove(step, state)) return moveBackward(step, state, tally, opts, signal);
  const sink = new Sink(step.destination, state.dstResidual, state.staging, state.writes, tally, opts);
  {
    // 1. Residual source data first (SPC-5 5.17.7.2).
    await sink.push(state.srcResidual.subarray(0, step.fromResidual));
    let keptResidual = state.srcResidual.subarray(step.fromResidual);
    // 2. Reads: exactly what the plan says; the part not processed becomes residual.
    let need = step.processBytes - step.fromResidual;
    const leftovers: Uint8Array[] = [];
    try {
      for await (const chunk of readSource(step, opts, signal)) {
        try {
          const take = Math.min(need, chunk.view.length);
          // a copy: less than one transfer
          if (take < chunk.view.length) leftovers.push(new Uint8Array(chunk.view.subarray(take)));
          if (take > 0) await sink.push(chunk.view.subarray(0, take), chunk.lease);
          need -= take;
        } finally {
          chunk.lease.drop();
        }
        if (chunk.error) throw chunk.error;
        checkAbort(signal);
      }
    } catch (err) {
      // The source failed: what was read is still written, so the residual in the sense is exact.
      if (err instanceof DeviceFailure && err.role === 'source')
        await sink.flushWhole().then(() => state.writes.drain());
      throw err;
    }
    if (step.source.kind === 'bytes') {
      await sink.push(step.source.data);
      need -= step.source.data.length;
    }
    if (need !== 0)
      throw new Error(
        `engine: segment ${step.segment.index} processed ${step.processBytes - need} of ${step.processBytes} bytes`,
      );
    if (leftovers.length) keptResidual = concat([keptResidual, ...leftovers]);
    // 3. PAD: zeros to make a whole destination block (SPC-5 Table 116).
    if (step.padBytes) await sink.push(new Uint8Array(step.padBytes));
    const dstLeft = await sink.finish();
    state.srcResidual = step.discardSourceResidual ? new Uint8Array(0) : new Uint8Array(keptResidual);
    if (step.discardDestinationResidual) state.dstResidual = new Uint8Array(0);
    else if (step.destination.kind !== 'none') state.dstResidual = dstLeft;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Data read from the source, in order. `error`: the source failed after `view`. */
interface Chunk {
  view: Uint8Array;
  lease: Lease;
  error?: DeviceFailure;
}

/** The source's reads, in order. The consumer drops each chunk's lease when it is done with it. */
async function* readSource(step: DataStep, opts: EngineOptions, signal: AbortSignal): AsyncGenerator<Chunk> {
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

/** A pool over buffers made for one segment (stream transfers larger than the shared pool's). */
function fixedPool(bufs: Buffer[]): BoundedBufferPool {
  const p = new BoundedBufferPool(bufs[0].length, 0);
  for (const b of bufs) p.release(b);
  return p;
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

/**
 * The copy's writes in flight, oldest first, across segments. Progress counts only the
 * completed prefix (SPC-5 5.17.7.4 c); a failure lets every later write settle before it is
 * reported (their buffers are shared), and names the segment the failed write belongs to.
 */
class WritesInFlight {
  private readonly issued: Array<{ len: number; p: Promise<void>; tally: Tally }> = [];
  private readonly progress: CopyProgress;
  /** Called after each completed write (the copy counts finished segments). */
  readonly onSettled: () => void;
  issuedCount = 0;
  settledCount = 0;

  constructor(progress: CopyProgress, onSettled: () => void) {
    this.progress = progress;
    this.onSettled = onSettled;
  }

  /** Wait until fewer than `max` writes are in flight. */
  async room(max: number): Promise<void> {
    while (this.issued.length >= max) await this.settleOldest();
  }

  /**
   * Track a started write of `len` bytes for `tally`'s segment, holding `lease` until it settles. Returns when it has
   * settled (never rejects).
   */
  add(len: number, write: Promise<unknown>, tally: Tally, lease?: Lease): Promise<void> {
    lease?.retain();
    const p = write.then(
      () => lease?.drop(),
      (err: unknown) => {
        lease?.drop();
        throw err;
      },
    );
    const settled = p.catch(() => undefined); // observed in settleOldest
    this.issued.push({ len, p, tally });
    this.issuedCount++;
    return settled;
  }

  async drain(): Promise<void> {
    while (this.issued.length) await this.settleOldest();
  }

  /** Let every write settle, reporting nothing (the copy already failed). */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.issued.splice(0).map((x) => x.p));
  }

  private async settleOldest(): Promise<void> {
    const e = this.issued[0];
    try {
      await e.p;
    } catch (err) {
      await this.abandon();
      const partial = (err as { bytesWritten?: unknown } | null)?.bytesWritten;
      // records of a batch before the failure
      if (typeof partial === 'number' && partial > 0) this.count(e.tally, partial);
      const failure = new DeviceFailure('destination', err);
      failure.tally = e.tally;
      throw failure;
    }
    this.issued.shift();
    this.count(e.tally, e.len);
    this.settledCount++;
    this.onSettled();
  }

  private count(t: Tally, n: number): void {
    t.written += n;
    this.progress.bytesWritten += n;
  }
}

/**
 * Commands one copy keeps in flight to one device at the most: enough to stream 256 KiB
 * records, few enough that a failure or an abort leaves little behind it.
 */
const MAX_COMMANDS_IN_FLIGHT = 32;

/** Writes allowed in flight: about the bytes the reads keep in flight, 1 to MAX_COMMANDS_IN_FLIGHT. */
function writeDepth(opts: EngineOptions, writeBytes: number): number {
  const n = Math.floor((readDepth(opts) * opts.pool.size) / Math.max(1, writeBytes));
  return Math.min(MAX_COMMANDS_IN_FLIGHT, Math.max(1, n));
}

/** Pool buffers read ahead (at least one). */
function readDepth(opts: EngineOptions): number {
  return Math.max(1, Math.floor(opts.readsInFlight));
}

/**
 * Two staging buffers per copy, shared by its segments: one fills while a write from the
 * other may still be in flight (`free` settles when it has).
 */
class StagingBuffers {
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

/**
 * Destination data → whole-unit writes. Full `maxWrite` pieces are written in place from the
 * caller's buffer (held by its lease until the write completes); smaller pieces (a record
 * boundary, residual, inline data) gather in one of the two staging buffers, and a full one is
 * written while the other fills. Refuses to write past the planned units.
 */
class Sink {
  private readonly dest: Destination;
  private readonly unit: number;
  private readonly maxWrite: number;
  private unitsLeft: number;
  private lba = 0;
  /** Stream destination written several records per call (TapeDevice.writeRecords). */
  private readonly batched: boolean = false;
  private readonly maxInFlight: number = 1;
  private readonly writes: WritesInFlight;
  private readonly tally: Tally;
  private readonly st: StagingBuffers;
  private staged = 0;

  constructor(
    dest: Destination,
    residual: Uint8Array,
    staging: StagingBuffers,
    writes: WritesInFlight,
    tally: Tally,
    opts: EngineOptions,
  ) {
    this.dest = dest;
    this.writes = writes;
    this.tally = tally;
    this.st = staging;
    if (dest.kind === 'block') {
      this.unit = dest.ep.blockSize;
      this.maxWrite = Math.max(1, Math.floor(opts.pool.size / this.unit)) * this.unit;
      this.unitsLeft = dest.blocks;
      this.lba = dest.lba;
      this.maxInFlight = writeDepth(opts, this.maxWrite); // disjoint blocks
    } else if (dest.kind === 'stream') {
      this.unit = dest.unit;
      // Variable records to a device that takes several at once: up to a pool buffer per write.
      this.batched =
        dest.perWrite === 1 && dest.ep.fixedBlock === 0 && typeof dest.ep.device.writeRecords === 'function';
      this.maxWrite = dest.unit * (this.batched ? Math.max(1, Math.floor(opts.pool.size / dest.unit)) : dest.perWrite);
      this.unitsLeft = dest.units;
      if (keepsWriteOrder(dest.ep.device)) this.maxInFlight = writeDepth(opts, this.maxWrite);
    } else {
      this.unit = 1;
      this.maxWrite = 0;
      this.unitsLeft = 0;
    }
    if (dest.kind !== 'none') {
      // The residual is what the previous segment left in the buffer being filled (or a copy of it).
      staging.reserve(Math.max(this.maxWrite, residual.length));
      this.st.bufs[this.st.cur].set(residual);
      this.staged = residual.length;
    }
  }

  /** Returns when every byte of `data` is being written or is staged; a write from `data` holds `lease`. */
  async push(data: Uint8Array, lease?: Lease): Promise<void> {
    if (this.dest.kind === 'none' || data.length === 0) return;
    let off = 0;
    if (this.staged > 0) {
      await this.writeStagedOver(this.maxWrite - 1);
      off = Math.min(this.maxWrite - this.staged, data.length);
      this.st.bufs[this.st.cur].set(data.subarray(0, off), this.staged);
      this.staged += off;
      if (this.staged < this.maxWrite) return; // all of data is staged
      await this.writeStaged(this.maxWrite);
    }
    while (data.length - off >= this.maxWrite) {
      await this.write(data.subarray(off, off + this.maxWrite), lease);
      off += this.maxWrite;
    }
    if (off < data.length) {
      await this.st.free[this.st.cur];
      this.st.bufs[this.st.cur].set(data.subarray(off), this.staged);
      this.staged += data.length - off;
    }
  }

  /** Write the staged whole units; keep the tail staged. */
  async flushWhole(): Promise<void> {
    if (this.dest.kind === 'none') return;
    await this.writeStagedOver(this.unit - 1);
  }

  /** Write the staged whole units; return what is left (residual destination data). Writes may still be in flight. */
  async finish(): Promise<Uint8Array> {
    if (this.dest.kind === 'none') return new Uint8Array(0);
    await this.flushWhole();
    if (this.unitsLeft !== 0) throw new Error(`engine: ${this.unitsLeft} planned destination units not written`);
    return this.st.bufs[this.st.cur].slice(0, this.staged);
  }

  /** While more than `keep` bytes are staged, write whole units from the staging buffer (at most maxWrite each). */
  private async writeStagedOver(keep: number): Promise<void> {
    while (this.staged > keep && this.staged >= this.unit) {
      await this.writeStaged(Math.min(this.maxWrite, Math.floor(this.staged / this.unit) * this.unit));
    }
  }

  /** Write the first `n` staged bytes; what follows moves to the other staging buffer. */
  private async writeStaged(n: number): Promise<void> {
    const st = this.st;
    const from = st.cur;
    const full = st.bufs[from];
    const rest = this.staged - n;
    st.free[from] = (await this.write(full.subarray(0, n))).settled;
    st.cur ^= 1;
    this.staged = 0;
    await st.free[st.cur];
    if (rest > 0) st.bufs[st.cur].set(full.subarray(n, n + rest));
    this.staged = rest;
  }

  /** Start one write in order (waiting while the bound is reached); `settled` is when it has. */
  private async write(view: Uint8Array, lease?: Lease): Promise<{ settled: Promise<void> }> {
    const units = view.length / this.unit;
    if (units > this.unitsLeft)
      throw new Error(`engine: write of ${units} units exceeds the ${this.unitsLeft} planned`);
    await this.writes.room(this.maxInFlight);
    this.unitsLeft -= units;
    let p: Promise<unknown>;
    const dest = this.dest;
    if (dest.kind === 'block') {
      const lba = this.lba;
      p = startWrite(() => dest.ep.device.write(lba, view));
      this.lba += units;
    } else if (dest.kind === 'stream') {
      const dev = dest.ep.device;
      p = startWrite(() => (this.batched && units > 1 ? dev.writeRecords!(view, this.unit) : dev.write(view)));
    } else {
      p = Promise.resolve();
    }
    return { settled: this.writes.add(view.length, p, this.tally, lease) };
  }
}

/**
 * A block → block segment within one device whose data moves to higher addresses over blocks it
 * still has to read: byte y of the segment's stream (destination residual, source residual,
 * the blocks read, PAD) comes from source address S·bs + y − p and goes to D·bs + y, so with
 * G = (D − S)·bs + p > 0 a forward pass would overwrite source bytes before reading them.
 */
function isBackwardMove(step: DataStep, state: CopyRun): boolean {
  const { source: s, destination: d } = step;
  if (s.kind !== 'block' || d.kind !== 'block' || d.ep.device !== s.ep.device || s.blocks === 0 || d.blocks === 0)
    return false;
  const bs = s.ep.blockSize;
  const p = state.dstResidual.length + step.fromResidual;
  return (d.lba - s.lba) * bs + p > 0 && d.lba < s.lba + s.blocks && s.lba < d.lba + d.blocks;
}

/**
 * Such a segment, copied from the end (memmove order), one buffer at a time: each pass reads
 * the source blocks that one destination buffer needs, then writes it. Everything it writes
 * lies above everything still to be read (G > 0), and the stream's tail (the next destination
 * residual) and the unused source bytes (the next source residual) are read before any write.
 * Serial and unpipelined: a rare case. On a write failure the residual counts the blocks not
 * written, which here are the lowest ones.
 */
async function moveBackward(
  step: DataStep,
  state: CopyRun,
  tally: Tally,
  opts: EngineOptions,
  signal: AbortSignal,
): Promise<void> {
  const src = step.source as Extract<Source, { kind: 'block' }>;
  const dst = step.destination as Extract<Destination, { kind: 'block' }>;
  const dev = src.ep.device;
  const bs = src.ep.blockSize;
  const prefix = concat([state.dstResidual, state.srcResidual.subarray(0, step.fromResidual)]);
  const p = prefix.length;
  const need = step.processBytes - step.fromResidual; // source bytes the stream takes
  const end = p + need + step.padBytes; // stream length
  const written = dst.blocks * bs; // stream bytes [0, written) are written; [written, end) stay residual
  const chunkBytes = Math.max(1, Math.floor(opts.pool.size / bs)) * bs;
  const out = Buffer.allocUnsafe(chunkBytes);
  const scratch = Buffer.allocUnsafe(chunkBytes + 2 * bs);
  const readSource = async (from: number, to: number, into: Uint8Array, at: number): Promise<void> => {
    // Source bytes [from, to) of the segment, whole blocks read into `scratch`.
    if (to <= from) return;
    const first = Math.floor(from / bs);
    const blocks = Math.ceil(to / bs) - first;
    const view = scratch.subarray(0, blocks * bs);
    await opts.rate?.take(view.length, signal);
    try {
      await dev.readInto(src.lba + first, view);
    } catch (err) {
      throw new DeviceFailure('source', err);
    }
    into.set(view.subarray(from - first * bs, to - first * bs), at);
  };
  // The stream's [lo, hi) into `into` at 0: prefix, then source bytes, then PAD zeros.
  const fill = async (lo: number, hi: number, into: Uint8Array): Promise<void> => {
    if (lo < p) into.set(prefix.subarray(lo, Math.min(hi, p)), 0);
    await readSource(Math.max(lo, p) - p, Math.min(hi, p + need) - p, into, Math.max(lo, p) - lo);
    if (hi > p + need) into.fill(0, Math.max(lo, p + need) - lo, hi - lo);
  };
  // 1. Before any write: the residuals of the next segment (SPC-5 5.17.7.2).
  const tail = new Uint8Array(end - written);
  const unused = new Uint8Array(src.blocks * bs - need);
  for (let lo = written; lo < end; lo += chunkBytes) {
    const hi = Math.min(end, lo + chunkBytes);
    await fill(lo, hi, out);
    tail.set(out.subarray(0, hi - lo), lo - written);
  }
  for (let lo = need; lo < src.blocks * bs; lo += chunkBytes)
    await readSource(lo, Math.min(src.blocks * bs, lo + chunkBytes), unused, lo - need);
  // 2. The written part, last buffer first.
  try {
    for (let hi = written; hi > 0; hi -= chunkBytes) {
      checkAbort(signal);
      await state.writes.room(1); // the previous write from `out` has completed
      const lo = Math.max(0, hi - chunkBytes);
      await fill(lo, hi, out);
      state.writes.add(
        hi - lo,
        startWrite(() => dev.write(dst.lba + lo / bs, out.subarray(0, hi - lo))),
        tally,
      );
    }
  } catch (err) {
    // report earlier segments' writes first
    if (err instanceof DeviceFailure && err.role === 'source') await state.writes.drain();
    throw err;
  }
  const kept = state.srcResidual.subarray(step.fromResidual);
  state.srcResidual = step.discardSourceResidual ? new Uint8Array(0) : concat([kept, unused]);
  state.dstResidual = step.discardDestinationResidual ? new Uint8Array(0) : tail;
}

/** Start a device write; a synchronous throw becomes a rejection (a device failure, not a crash). */
function startWrite(write: () => Promise<unknown>): Promise<unknown> {
  try {
    return write();
  } catch (err) {
    return Promise.reject(err);
  }
}
