import type { Destination } from './plan.ts';
import type { EngineOptions, CopyProgress, Tally } from './engine.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import { Lease, StagingBuffers } from './copy-buffers.ts';
import { DeviceFailure } from './device-failure.ts';
import { MAX_COMMANDS_IN_FLIGHT, readDepth } from './source.ts';

// The segment engine's writes (engine.ts): a segment's destination, fed in order, writes kept in flight.

/** A tape whose WRITEs carry the ORDERED task attribute (RemoteTapeDevice), so several may be in flight. */
export function keepsWriteOrder(dev: TapeDevice): boolean {
  return !!(dev as { ordersWrites?: boolean }).ordersWrites;
}

/** Writes allowed in flight: about the bytes the reads keep in flight, 1 to MAX_COMMANDS_IN_FLIGHT. */
function writeDepth(opts: EngineOptions, writeBytes: number): number {
  const n = Math.floor((readDepth(opts) * opts.pool.size) / Math.max(1, writeBytes));
  return Math.min(MAX_COMMANDS_IN_FLIGHT, Math.max(1, n));
}

/**
 * The copy's writes in flight, oldest first, across segments. Progress counts only the
 * completed prefix (SPC-5 5.17.7.4 c); a failure lets every later write settle before it is
 * reported (their buffers are shared), and names the segment the failed write belongs to.
 */
export class WritesInFlight {
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
 * Destination data → whole-unit writes. Full `maxWrite` pieces are written in place from the
 * caller's buffer (held by its lease until the write completes); smaller pieces (a record
 * boundary, residual, inline data) gather in one of the two staging buffers, and a full one is
 * written while the other fills. Refuses to write past the planned units.
 */
export class Sink {
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

/** Start a device write; a synchronous throw becomes a rejection (a device failure, not a crash). */
export function startWrite(write: () => Promise<unknown>): Promise<unknown> {
  try {
    return write();
  } catch (err) {
    return Promise.reject(err);
  }
}
