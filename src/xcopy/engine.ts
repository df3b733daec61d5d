import { SenseError, SenseKey, Asc, encodeFixedSense, type AscCode } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import { copyAborted, type DataStep, type Destination, type ForwardedSense, type Source, type Step } from './plan.ts';

/**
 * The segment engine: moves bytes exactly as the plan says. Per segment, up to
 * `readsInFlight` block reads of `chunkBytes` run ahead of the writes; writes go in order,
 * one at a time per destination (tape needs order). Buffers come from a pool, so memory is
 * flat whatever the list asks for. Stream sources are read one transfer at a time, never
 * ahead of the segment (SPC-5 6.4.5.4).
 */

export interface EngineOptions {
  chunkBytes: number;
  readsInFlight: number;
  pool: BufferPool;
  /** Told about every CSCD failure (for logs), before it becomes COPY ABORTED. */
  onDeviceError?: (info: { segment: number; role: 'source' | 'destination'; error: unknown }) => void;
}

/** Live counters, read by RECEIVE COPY RESULTS COPY STATUS while the copy runs. */
export interface CopyProgress {
  segmentsProcessed: number;
  bytesWritten: number;
}

/** Fixed-size buffers, allocated on first use and reused; never more than `max` at once. */
export class BufferPool {
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

/** A CSCD failed: carries the role so the sense can forward the device's own sense. */
class DeviceFailure extends Error {
  readonly role: 'source' | 'destination';
  readonly asc: AscCode;
  readonly forwarded?: ForwardedSense;
  constructor(role: 'source' | 'destination', err: unknown, asc: AscCode = Asc.COPY_TARGET_DEVICE_NOT_REACHABLE, sense?: Uint8Array) {
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

/** Run every step in order. Throws COPY ABORTED (SenseError) naming the failing segment. */
export async function executePlan(steps: Step[], progress: CopyProgress, signal: AbortSignal, opts: EngineOptions): Promise<void> {
  const state = { srcResidual: new Uint8Array(0), dstResidual: new Uint8Array(0) };
  for (const step of steps) {
    checkAbort(signal);
    const seg = step.segment.index;
    let written = 0;
    try {
      if (step.kind === 'data') {
        await runDataStep(step, state, signal, opts, (n) => {
          written += n;
          progress.bytesWritten += n;
        });
      } else if (step.kind === 'tape') {
        await runTapeOp(step.ep.device, step.op).catch((err) => {
          throw new DeviceFailure('destination', err);
        });
      }
    } catch (err) {
      if (err instanceof DeviceFailure) {
        opts.onDeviceError?.({ segment: seg, role: err.role, error: err.cause });
        const residual = step.kind === 'data' && written > 0 ? residualUnits(step, written) : undefined;
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
    progress.segmentsProcessed++;
  }
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

interface Residuals {
  srcResidual: Uint8Array;
  dstResidual: Uint8Array;
}

async function runDataStep(
  step: DataStep,
  state: Residuals,
  signal: AbortSignal,
  opts: EngineOptions,
  onWritten: (n: number) => void,
): Promise<void> {
  const sink = new Sink(step.destination, state.dstResidual, opts, onWritten);
  // 1. Residual source data first (SPC-5 5.17.7.2).
  const fromRes = state.srcResidual.subarray(0, step.fromResidual);
  let keptResidual = state.srcResidual.subarray(step.fromResidual);
  await sink.push(fromRes);
  // 2. Reads: exactly what the plan says; the part not processed becomes residual.
  let need = step.processBytes - step.fromResidual;
  const leftovers: Uint8Array[] = [];
  try {
    for await (const chunk of readSource(step, opts, signal)) {
      const take = Math.min(need, chunk.length);
      if (take > 0) await sink.push(chunk.subarray(0, take));
      need -= take;
      if (take < chunk.length) leftovers.push(new Uint8Array(chunk.subarray(take))); // a copy (Buffer#slice would alias): less than one transfer
      checkAbort(signal);
    }
  } catch (err) {
    // The source failed: what was read is still written, so the residual in the sense is exact.
    if (err instanceof DeviceFailure && err.role === 'source') await sink.flushWhole();
    throw err;
  }
  if (step.source.kind === 'bytes') {
    await sink.push(step.source.data);
    need -= step.source.data.length;
  }
  if (need !== 0) throw new Error(`engine: segment ${step.segment.index} processed ${step.processBytes - need} of ${step.processBytes} bytes`);
  if (leftovers.length) keptResidual = concat([keptResidual, ...leftovers]);
  // 3. PAD: zeros to make a whole destination block (SPC-5 Table 116).
  if (step.padBytes) await sink.push(new Uint8Array(step.padBytes));
  const dstLeft = await sink.finish();
  state.srcResidual = step.discardSourceResidual ? new Uint8Array(0) : new Uint8Array(keptResidual);
  if (step.discardDestinationResidual) state.dstResidual = new Uint8Array(0);
  else if (step.destination.kind !== 'none') state.dstResidual = dstLeft;
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

/** The source's reads, in order, as views that stay valid until the consumer asks for the next. */
async function* readSource(step: DataStep, opts: EngineOptions, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const src: Source = step.source;
  if (src.kind === 'block' && src.blocks > 0) {
    const bs = src.ep.blockSize;
    let chunkBlocks = Math.max(1, Math.floor(opts.pool.size / bs));
    let strict = false;
    // Same device, destination after source and overlapping: a write may hit blocks not yet read.
    // Read chunk i+1 before writing chunk i, with chunks no larger than the gap (memmove order).
    const dst: Destination = step.destination;
    if (dst.kind === 'block' && dst.ep.device === src.ep.device && dst.lba > src.lba && dst.lba < src.lba + src.blocks) {
      chunkBlocks = Math.min(chunkBlocks, dst.lba - src.lba);
      strict = true;
    }
    const count = Math.ceil(src.blocks / chunkBlocks);
    yield* ordered(count, strict ? Math.max(2, opts.readsInFlight) : opts.readsInFlight, strict, opts, signal, async (i, buf) => {
      const lba = src.lba + i * chunkBlocks;
      const n = Math.min(chunkBlocks, src.blocks - i * chunkBlocks);
      const view = buf.subarray(0, n * bs);
      try {
        await src.ep.device.readInto(lba, view);
      } catch (err) {
        throw new DeviceFailure('source', err);
      }
      return view;
    });
  } else if (src.kind === 'stream' && src.reads > 0) {
    const dev = src.ep.device;
    // One transfer at a time at the device, overlapping with the writes of the previous one;
    // several in flight only when the device keeps them in order (ORDERED task attribute).
    const pipelined = !!(dev as { ordersReads?: boolean }).ordersReads;
    let chain: Promise<unknown> = Promise.resolve();
    const own = src.unit > opts.pool.size ? [Buffer.allocUnsafe(src.unit), Buffer.allocUnsafe(src.unit)] : undefined;
    yield* ordered(src.reads, own ? 2 : opts.readsInFlight, false, { ...opts, pool: own ? fixedPool(own) : opts.pool }, signal, (i, buf) => {
      const want = i === src.reads - 1 ? src.lastUnit : src.unit;
      const view = buf.subarray(0, want);
      if (pipelined) return readStream(dev, view, src.ep.fixedBlock);
      const p = chain.then(() => readStream(dev, view, src.ep.fixedBlock));
      chain = p.catch(() => undefined);
      return p;
    });
  }
}

/** A pool over buffers made for one segment (stream transfers larger than the shared pool's). */
function fixedPool(bufs: Buffer[]): BufferPool {
  const p = new BufferPool(bufs[0].length, 0);
  for (const b of bufs) p.release(b);
  return p;
}

/** One stream READ of exactly `view.length` bytes (SILI=0: a short or long record is an error). */
async function readStream(dev: TapeDevice, view: Uint8Array, fixedBlock: number): Promise<Uint8Array> {
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
    const sense = encodeFixedSense(new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { ili: true, info: residue | 0 }));
    const asc = recordLength > expected ? Asc.COPY_TARGET_DEVICE_DATA_OVERRUN : Asc.COPY_TARGET_DEVICE_DATA_UNDERRUN;
    throw new DeviceFailure('source', `record of ${recordLength} bytes, expected ${expected}`, asc, sense);
  }
  return view;
}

/**
 * Run `count` reads with up to `depth` in flight and yield their results in order. With
 * `strict`, read i+1 has completed before result i is yielded. Buffers go back to the pool
 * when the consumer resumes the generator (it is done with the previous view).
 */
async function* ordered(
  count: number,
  depth: number,
  strict: boolean,
  opts: EngineOptions,
  signal: AbortSignal,
  read: (i: number, buf: Buffer) => Promise<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const pool = opts.pool;
  const queue: Array<{ buf: Buffer; p: Promise<Uint8Array> }> = [];
  let next = 0;
  const start = async (wait: boolean) => {
    const buf = wait ? await pool.acquire() : pool.tryAcquire();
    if (!buf) return false;
    const i = next++;
    const p = read(i, buf);
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
      if (strict && next < count && queue.length < 2) await start(true);
      const head = queue[0];
      const view = await head.p;
      if (strict && queue.length > 1) await queue[1].p;
      yield view;
      queue.shift();
      pool.release(head.buf);
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
 * Destination data → whole-unit writes. Full `maxWrite` pieces are written in place; smaller
 * pieces (a tape record on its way to disk) gather in a staging buffer until a full write,
 * so a restore writes the disk 1 MiB at a time. Refuses to write past the planned units.
 */
class Sink {
  private readonly dest: Destination;
  private readonly unit: number;
  private readonly maxWrite: number;
  private readonly staging: Uint8Array;
  private staged = 0;
  private unitsLeft: number;
  private lba = 0;
  private readonly onWritten: (n: number) => void;
  /** Stream destination written several records per call (TapeDevice.writeRecords). */
  private readonly batched: boolean = false;
  /** Writes allowed in flight: disk writes go to disjoint blocks; tape only if the device keeps order. */
  private readonly depth: number;
  /** Issued writes, oldest first; progress counts only the completed prefix (SPC-5 5.17.7.4 c). */
  private readonly issued: Array<{ len: number; p: Promise<void> }> = [];

  constructor(dest: Destination, residual: Uint8Array, opts: EngineOptions, onWritten: (n: number) => void) {
    this.dest = dest;
    this.onWritten = onWritten;
    if (dest.kind === 'block') {
      this.unit = dest.ep.blockSize;
      this.maxWrite = Math.max(1, Math.floor(opts.pool.size / this.unit)) * this.unit;
      this.unitsLeft = dest.blocks;
      this.lba = dest.lba;
      this.depth = Math.max(1, opts.readsInFlight);
    } else if (dest.kind === 'stream') {
      this.unit = dest.unit;
      // Variable records to a device that takes several at once: up to a pool buffer per write.
      this.batched = dest.perWrite === 1 && dest.ep.fixedBlock === 0 && typeof dest.ep.device.writeRecords === 'function';
      this.maxWrite = dest.unit * (this.batched ? Math.max(1, Math.floor(opts.pool.size / dest.unit)) : dest.perWrite);
      this.unitsLeft = dest.units;
      this.depth = (dest.ep.device as { ordersWrites?: boolean }).ordersWrites ? Math.max(1, opts.readsInFlight) : 1;
    } else {
      this.unit = 1;
      this.maxWrite = 0;
      this.unitsLeft = 0;
      this.depth = 1;
    }
    this.staging = new Uint8Array(dest.kind === 'none' ? 0 : Math.max(this.maxWrite, residual.length));
    if (dest.kind !== 'none') {
      this.staging.set(residual);
      this.staged = residual.length;
    }
  }

  /** Returns when every byte of `data` is written or copied into staging (the caller may reuse it). */
  async push(data: Uint8Array): Promise<void> {
    if (this.dest.kind === 'none' || data.length === 0) return;
    let off = 0;
    if (this.staged > 0) {
      while (this.staged >= this.maxWrite) {
        await this.writeNow(this.staging.subarray(0, this.maxWrite));
        this.staging.copyWithin(0, this.maxWrite, this.staged);
        this.staged -= this.maxWrite;
      }
      if (this.staged > 0) {
        const n = Math.min(this.maxWrite - this.staged, data.length);
        this.staging.set(data.subarray(0, n), this.staged);
        this.staged += n;
        off = n;
        if (this.staged < this.maxWrite) return; // all of data is staged
        await this.writeNow(this.staging.subarray(0, this.maxWrite));
        this.staged = 0;
      }
    }
    while (data.length - off >= this.maxWrite) {
      await this.issue(data.subarray(off, off + this.maxWrite));
      off += this.maxWrite;
    }
    await this.drain();
    this.staging.set(data.subarray(off), 0);
    this.staged = data.length - off;
  }

  /** Write the staged whole units; keep the tail staged. */
  async flushWhole(): Promise<void> {
    if (this.dest.kind === 'none') return;
    let off = 0;
    while (this.staged - off >= this.unit) {
      const n = Math.min(this.maxWrite, Math.floor((this.staged - off) / this.unit) * this.unit);
      await this.writeNow(this.staging.subarray(off, off + n));
      off += n;
    }
    this.staging.copyWithin(0, off, this.staged);
    this.staged -= off;
  }

  /** Write the staged whole units; return what is left (residual destination data). */
  async finish(): Promise<Uint8Array> {
    if (this.dest.kind === 'none') return new Uint8Array(0);
    await this.flushWhole();
    if (this.unitsLeft !== 0) throw new Error(`engine: ${this.unitsLeft} planned destination units not written`);
    return this.staging.slice(0, this.staged);
  }

  private async writeNow(view: Uint8Array): Promise<void> {
    await this.issue(view);
    await this.drain();
  }

  /** Start one write in order; waits first while `depth` writes are in flight. */
  private async issue(view: Uint8Array): Promise<void> {
    const units = view.length / this.unit;
    if (units > this.unitsLeft) throw new Error(`engine: write of ${units} units exceeds the ${this.unitsLeft} planned`);
    while (this.issued.length >= this.depth) await this.settleOldest();
    this.unitsLeft -= units;
    let p: Promise<void>;
    if (this.dest.kind === 'block') {
      p = this.dest.ep.device.write(this.lba, view);
      this.lba += units;
    } else if (this.dest.kind === 'stream') {
      const dev = this.dest.ep.device;
      p = (this.batched && units > 1 ? dev.writeRecords!(view, this.unit) : dev.write(view)).then(() => undefined);
    } else {
      p = Promise.resolve();
    }
    p.catch(() => undefined); // observed in settleOldest
    this.issued.push({ len: view.length, p });
  }

  private async settleOldest(): Promise<void> {
    const e = this.issued[0];
    try {
      await e.p;
    } catch (err) {
      // Let the later writes settle too before reporting (their buffers are the caller's).
      await Promise.allSettled(this.issued.map((x) => x.p));
      this.issued.length = 0;
      const partial = (err as { bytesWritten?: unknown } | null)?.bytesWritten;
      if (typeof partial === 'number' && partial > 0) this.onWritten(partial); // records of a batch before the failure
      throw new DeviceFailure('destination', err);
    }
    this.issued.shift();
    this.onWritten(e.len);
  }

  private async drain(): Promise<void> {
    while (this.issued.length) await this.settleOldest();
  }
}
