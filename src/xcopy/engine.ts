import type { RateLimit } from '../util/rate-limit.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import { copyAborted, type DataStep, type Destination, type Source, type Step } from './plan.ts';
import { BoundedBufferPool, StagingBuffers } from './copy-buffers.ts';
import { DeviceFailure } from './device-failure.ts';
import { BlockReads, checkAbort, readSource } from './source.ts';
import { WritesInFlight, Sink, keepsWriteOrder, startWrite } from './sink.ts';

/**
 * The segment engine: moves bytes exactly as the plan says, as a pipeline.
 * - Reads run up to `readsInFlight` pool buffers ahead of the writes, and on into the next
 *   segment when it may start now (source.ts BlockReads), so the pipeline does not drain at
 *   each segment's end.
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

/** One segment's share of the copy: what it wrote, and the sequence number of its last write. */
export interface Tally {
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
    blocks: new BlockReads(opts, signal),
  };
  let current: Tally | undefined;
  try {
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      checkAbort(signal);
      if (step.kind !== 'data' || !independentOf(step, pending)) await writes.drain();
      current = { step, written: 0, lastWrite: Infinity };
      pending.push(current);
      if (step.kind === 'data') {
        if (!isBackwardMove(step, run)) run.blocks.add(step);
        // The next segment's reads follow this one's when it could start now (it will not wait then either).
        const next = steps[i + 1];
        if (next?.kind === 'data' && readsAhead(next) && independentOf(next, pending)) run.blocks.add(next);
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
  } finally {
    await run.blocks.close(); // reads of a segment that never started, or of a failed one
  }
}

/** A segment whose block reads may be issued before it starts: not a move within one device. */
function readsAhead(step: DataStep): boolean {
  const { source: s, destination: d } = step;
  return s.kind === 'block' && s.blocks > 0 && !(d.kind === 'block' && d.ep.device === s.ep.device);
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
  /** Block-source reads, across segments. */
  blocks: BlockReads;
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
      for await (const chunk of readSource(step, opts, signal, state.blocks)) {
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
