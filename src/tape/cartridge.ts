import { open, type FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { GroupCommit } from '../util/group-commit.ts';
import { BackgroundWriteback } from '../io/background-writeback.ts';
import {
  CartridgeLayout,
  ObjectKind,
  type RunKind,
  type CartridgeLabel,
  encodeLabel,
  decodeLabel,
  type IndexEntry,
  encodeEntry,
  decodeEntry,
  CartridgeError,
} from './cartridge-format.ts';

export interface Run {
  kind: RunKind;
  firstId: number;
  count: number;
  /** Bytes per object for DATA runs, 0 for filemarks. */
  blockLength: number;
  /** Offset of the run's first byte within the data region. */
  dataOffset: number;
  gen: number;
  /** Filemarks before this run (its objects' file number). */
  fmBefore: number;
}

/** Records up to this size are written inline (page cache); larger ones on the thread pool. */
const INLINE_WRITE_MAX = 1 << 20;

/** Background write-back interval (bytes appended). */
const WRITEBACK_BYTES = 32 << 20;

export interface CreateCartridgeOptions {
  barcode: string;
  capacityBytes: number;
  /** Default: 1/64 of the capacity, at least 64 KiB and at most 64 MiB. */
  earlyWarningBytes?: number;
  mediumSerial?: string;
  writeProtected?: boolean;
  densityCode?: number;
}

/** LTO-8's density code, which our INQUIRY/REPORT DENSITY SUPPORT also names. */
export const DEFAULT_DENSITY_CODE = 0x5e;

/**
 * An open cartridge image: the label and the run table. Knows nothing of SCSI; the drive
 * (drive.ts) keeps the position and applies SSC semantics.
 */
export class Cartridge {
  readonly path: string;
  label: CartridgeLabel;
  private fh: FileHandle;
  private labelSeq: number;
  private runs: Run[] = [];
  /** Highest generation in the chain (entries behind the end of data have lower ones). */
  private gen = 1;
  /** Index slots present in the file (valid or not). */
  private physicalSlots: number;
  /** Slot at the chain end may hold an entry of the current generation: bump before appending. */
  private dirtyTail: boolean;
  /** Resolves when every entry appended so far is written (appends overlap; see appendPipelined). */
  private pending: Promise<void> = Promise.resolve();
  /** Resolves when every entry appended so far is queued for its index write, in order. */
  private queued: Promise<void> = Promise.resolve();
  /** Index entries whose data is written, batched into one write at a time (consecutive slots). */
  private readonly entries = new GroupCommit<{ slot: number; entry: IndexEntry }>((b) =>
    this.stopAfterFailure(() => this.flushEntries(b)),
  );
  /** Record data for the thread pool, batched into one writev at a time (contiguous). */
  private readonly dataWrites = new GroupCommit<{ data: Uint8Array; end: number }>((b) =>
    this.stopAfterFailure(() => this.flushData(b)),
  );
  /** Appends whose data or entry is still being written on the thread pool. */
  private inFlight = 0;
  /** Background fdatasync every WRITEBACK_BYTES appended; every fsync runs through it. A failure fails the medium. */
  private readonly writeback: BackgroundWriteback;
  /** Reads in flight (a truncation waits for them). */
  private readonly reads = new Set<Promise<void>>();
  /** A background write or an fsync failed: the medium is unusable until reopened. */
  private failure?: Error;
  private readonly readOnly: boolean;

  private constructor(
    path: string,
    fh: FileHandle,
    label: CartridgeLabel,
    seq: number,
    physicalSlots: number,
    readOnly: boolean,
  ) {
    this.path = path;
    this.fh = fh;
    this.label = label;
    this.labelSeq = seq;
    this.physicalSlots = physicalSlots;
    this.dirtyTail = false;
    this.readOnly = readOnly;
    // Linux reports a write-back error to one fsync only: keep it, background or explicit, or
    // the filemark's sync would answer GOOD over lost pages.
    this.writeback = new BackgroundWriteback(fh, WRITEBACK_BYTES, (e) => {
      this.failure ??= e;
    });
  }

  static async create(path: string, opts: CreateCartridgeOptions): Promise<Cartridge> {
    if (!(opts.capacityBytes > 0)) throw new CartridgeError('cartridge capacity must be positive');
    const ew = opts.earlyWarningBytes ?? Math.min(64 << 20, Math.max(64 << 10, Math.floor(opts.capacityBytes / 64)));
    const label: CartridgeLabel = {
      barcode: opts.barcode,
      mediumSerial: opts.mediumSerial ?? `FERRY${opts.barcode}`,
      capacityBytes: opts.capacityBytes,
      earlyWarningBytes: Math.min(ew, opts.capacityBytes),
      writeProtected: opts.writeProtected ?? false,
      loadCount: 0,
      createdMs: Date.now(),
      densityCode: opts.densityCode ?? DEFAULT_DENSITY_CODE,
    };
    const fh = await open(path, 'wx');
    try {
      const head = new Uint8Array(CartridgeLayout.DATA_BASE);
      head.set(encodeLabel(label, 1), 0);
      head.set(encodeLabel(label, 0), CartridgeLayout.LABEL_COPY_BYTES);
      await fh.write(head, 0, head.length, 0);
      await fh.truncate(CartridgeLayout.DATA_BASE + label.capacityBytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return Cartridge.open(path);
  }

  static async open(path: string, opts: { readOnly?: boolean } = {}): Promise<Cartridge> {
    const readOnly = opts.readOnly ?? false;
    const fh = await open(path, readOnly ? 'r' : 'r+');
    try {
      const head = new Uint8Array(CartridgeLayout.DATA_BASE);
      await fh.read(head, 0, head.length, 0);
      const a = decodeLabel(head.subarray(0, CartridgeLayout.LABEL_COPY_BYTES));
      const b = decodeLabel(head.subarray(CartridgeLayout.LABEL_COPY_BYTES));
      const best = a && b ? (a.seq >= b.seq ? a : b) : (a ?? b);
      if (!best) throw new CartridgeError(`${path} is not a Ferry cartridge (no valid label)`);
      const indexBase = CartridgeLayout.DATA_BASE + best.label.capacityBytes;
      const size = (await fh.stat()).size;
      const physicalSlots = Math.max(0, Math.floor((size - indexBase) / CartridgeLayout.ENTRY_BYTES));
      const cart = new Cartridge(path, fh, best.label, best.seq, physicalSlots, readOnly);
      await cart.loadIndex(indexBase);
      return cart;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private get indexBase(): number {
    return CartridgeLayout.DATA_BASE + this.label.capacityBytes;
  }

  /** Walk the index region and keep the longest valid chain (docs/tape-format.md "Recovery"). */
  private async loadIndex(indexBase: number): Promise<void> {
    const E = CartridgeLayout.ENTRY_BYTES;
    const chunkSlots = 16384;
    const buf = new Uint8Array(chunkSlots * E);
    let nextId = 0;
    let nextOffset = 0;
    let fm = 0;
    let gen = 1;
    let slot = 0;
    outer: while (slot < this.physicalSlots) {
      const n = Math.min(chunkSlots, this.physicalSlots - slot);
      const { bytesRead } = await this.fh.read(buf, 0, n * E, indexBase + slot * E);
      const got = Math.floor(bytesRead / E);
      for (let i = 0; i < got; i++, slot++) {
        const e = decodeEntry(buf.subarray(i * E, (i + 1) * E));
        if (
          !e ||
          e.kind === ObjectKind.EOD ||
          e.gen < gen ||
          e.firstId !== nextId ||
          e.dataOffset !== nextOffset ||
          e.count === 0
        )
          break outer;
        if (
          e.kind === ObjectKind.DATA &&
          (e.blockLength === 0 || e.dataOffset + e.count * e.blockLength > this.label.capacityBytes)
        )
          break outer;
        this.runs.push({
          kind: e.kind as RunKind,
          firstId: e.firstId,
          count: e.count,
          blockLength: e.kind === ObjectKind.DATA ? e.blockLength : 0,
          dataOffset: e.dataOffset,
          gen: e.gen,
          fmBefore: fm,
        });
        gen = e.gen;
        nextId += e.count;
        if (e.kind === ObjectKind.DATA) nextOffset += e.count * e.blockLength;
        else fm += e.count;
      }
      if (got < n) break;
    }
    this.gen = gen;
    this.dirtyTail = this.physicalSlots > this.runs.length;
    if (this.dirtyTail) {
      // The entry right after the chain may be our own EOD marker: adopt its generation.
      const m = new Uint8Array(E);
      await this.fh.read(m, 0, E, indexBase + this.runs.length * E);
      const e = decodeEntry(m);
      if (e && e.kind === ObjectKind.EOD && e.gen >= gen) this.gen = e.gen;
    }
  }

  /** Number of logical objects (the id of end of data). */
  get objectCount(): number {
    const last = this.runs.at(-1);
    return last ? last.firstId + last.count : 0;
  }

  get runCount(): number {
    return this.runs.length;
  }

  /** Data bytes written before end of data. */
  get usedBytes(): number {
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const r = this.runs[i];
      if (r.kind === ObjectKind.DATA) return r.dataOffset + r.count * r.blockLength;
    }
    return 0;
  }

  get filemarkCount(): number {
    const last = this.runs.at(-1);
    return last ? last.fmBefore + (last.kind === ObjectKind.FILEMARK ? last.count : 0) : 0;
  }

  /** Index of the run holding object `id` (O(log n)); -1 at or past end of data. */
  runIndexOf(id: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.runs[mid];
      if (id < r.firstId) hi = mid - 1;
      else if (id >= r.firstId + r.count) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  run(index: number): Readonly<Run> {
    return this.runs[index];
  }

  /** Filemarks before object `id` (its file number); `id` may be end of data. */
  fileNumberAt(id: number): number {
    if (id >= this.objectCount) return this.filemarkCount;
    const r = this.runs[this.runIndexOf(id)];
    return r.fmBefore + (r.kind === ObjectKind.FILEMARK ? id - r.firstId : 0);
  }

  /**
   * Object id of the filemark with ordinal `n` (0-based), or -1 when there are not that many.
   * Binary search on the runs' filemark counts.
   */
  filemarkId(n: number): number {
    if (n < 0 || n >= this.filemarkCount) return -1;
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid].fmBefore <= n) lo = mid;
      else hi = mid - 1;
    }
    // runs[lo] is the last run with fmBefore ≤ n; the filemark lies in it or a later FM run.
    for (let i = lo; i < this.runs.length; i++) {
      const r = this.runs[i];
      if (r.kind === ObjectKind.FILEMARK && n < r.fmBefore + r.count) return r.firstId + (n - r.fmBefore);
    }
    return -1;
  }

  /** Where `count` blocks from object `id` of run `runIndex` are in the file (at most `maxBytes`). */
  extentOf(runIndex: number, id: number, count: number, maxBytes = Infinity): { pos: number; bytes: number } {
    const r = this.runs[runIndex];
    return {
      pos: CartridgeLayout.DATA_BASE + r.dataOffset + (id - r.firstId) * r.blockLength,
      bytes: Math.min(count * r.blockLength, maxBytes),
    };
  }

  /** Read `count` whole blocks starting at object `id`, all in run `runIndex`, into `target` at `at`. */
  async readBlocks(
    runIndex: number,
    id: number,
    count: number,
    target: Uint8Array,
    at = 0,
    maxBytes = Infinity,
  ): Promise<number> {
    const e = this.extentOf(runIndex, id, count, maxBytes);
    await this.readExtents([{ ...e, at }], target);
    return e.bytes;
  }

  /**
   * Read file extents (taken with `extentOf` when the read was placed) into `target`. Waits for
   * the writes already in flight; a truncation waits for reads in flight before it cuts.
   */
  readExtents(extents: ReadonlyArray<{ pos: number; bytes: number; at: number }>, target: Uint8Array): Promise<void> {
    const io = (async () => {
      await this.settled();
      for (const e of extents) {
        let done = 0;
        while (done < e.bytes) {
          const { bytesRead } = await this.fh.read(target, e.at + done, e.bytes - done, e.pos + done);
          if (bytesRead === 0) {
            target.fill(0, e.at + done, e.at + e.bytes); // sparse tail: zeros
            break;
          }
          done += bytesRead;
        }
      }
    })();
    const tracked = io.finally(() => this.reads.delete(tracked));
    this.reads.add(tracked);
    return tracked;
  }

  /**
   * Cut the medium at object `id` (everything from `id` on is gone). Persisted at once with
   * a new generation so the old tail cannot come back after a crash.
   */
  async truncate(id: number): Promise<void> {
    this.assertWritable();
    if (id >= this.objectCount) return;
    await Promise.allSettled([...this.reads]);
    await this.settled();
    const gen = this.gen + 1;
    let k = this.runIndexOf(id);
    const r = this.runs[k];
    if (id > r.firstId) {
      // Split: the run keeps its first (id − firstId) objects.
      r.count = id - r.firstId;
      r.gen = gen;
      await this.writeSlot(k, { ...r, gen });
      k++;
    }
    this.runs.length = k;
    this.gen = gen;
    await this.writeMarker(k);
  }

  /** Append `count` objects at end of data and wait until they are in the file. */
  async append(kind: RunKind, count: number, blockLength: number, data?: Uint8Array): Promise<void> {
    await (
      await this.appendPipelined(kind, count, blockLength, data)
    ).done;
  }

  /**
   * Append `count` objects at end of data. DATA: `data` holds count × blockLength bytes and must
   * stay unchanged until `done`. The outer promise resolves as soon as the run is part of the
   * in-memory table (positions, EOD and capacity already count it), so the next command can
   * start; `done` resolves when this run's entry, and every earlier one, is in the file.
   * Ordering per run: data, then its entry; an entry is written only after all earlier entries.
   */
  async appendPipelined(
    kind: RunKind,
    count: number,
    blockLength: number,
    data?: Uint8Array,
  ): Promise<{ done: Promise<void> }> {
    this.assertWritable();
    if (count <= 0) return { done: this.pending };
    const k = this.runs.length;
    if (this.dirtyTail) {
      await this.settled();
      this.gen++;
      await this.writeMarker(k);
    }
    const run: Run = {
      kind,
      firstId: this.objectCount,
      count,
      blockLength: kind === ObjectKind.DATA ? blockLength : 0,
      dataOffset: this.usedBytes,
      gen: this.gen,
      fmBefore: this.filemarkCount,
    };
    const len = kind === ObjectKind.DATA ? count * blockLength : 0;
    if (kind === ObjectKind.DATA) {
      if (!data || data.length < len) throw new CartridgeError('append: data shorter than count × block length');
      if (run.dataOffset + len > this.label.capacityBytes)
        throw new CartridgeError('append: past the end of the medium');
    }
    if (len <= INLINE_WRITE_MAX && this.inFlight === 0) {
      // Nothing queued: a small record goes into the page cache inline, data then entry. A
      // thread-pool round trip costs more main-thread time than the copy itself here.
      try {
        if (len > 0) this.writeAllSync(data!, len, CartridgeLayout.DATA_BASE + run.dataOffset);
        this.runs.push(run);
        this.writeSlot(k, run);
      } catch (e) {
        this.failure ??= e as Error;
        throw e;
      }
      this.wroteBytes(len);
      return { done: this.pending };
    }
    const dataWritten =
      len > 0
        ? this.dataWrites.add({ data: data!.subarray(0, len), end: CartridgeLayout.DATA_BASE + run.dataOffset + len })
        : Promise.resolve();
    this.runs.push(run);
    this.inFlight++;
    this.wroteBytes(len);
    // Data first, then its entry: the record exists only once both are written. Entries are
    // queued in run order and written in batches (group commit: one write for all that are ready).
    // Wrapped so that `queued` resolves when the entry is queued, not when it is written.
    const queued = Promise.all([dataWritten, this.queued]).then(() => ({
      written: this.entries.add({ slot: k, entry: run }),
    }));
    this.queued = queued.then(
      () => undefined,
      () => undefined,
    );
    // The failure is recorded before inFlight drops, so an inline append can never slip in
    // behind an entry that was not written.
    const done = queued
      .then((q) => q.written)
      .then(
        () => {
          this.inFlight--;
        },
        (e: Error) => {
          this.failure ??= e;
          this.inFlight--;
          throw e;
        },
      );
    this.pending = done.catch((e: Error) => {
      this.failure ??= e;
    });
    return { done };
  }

  /** As a drive streams its buffer to the medium: the sync at a filemark has little left to do. */
  private wroteBytes(n: number): void {
    this.writeback.wrote(n);
  }

  /**
   * Record data for the thread pool. Runs are appended back to back, so everything that queues
   * while a write is in flight goes out as one writev at the next free moment.
   */
  private async flushData(batch: { data: Uint8Array; end: number }[]): Promise<void> {
    let pos = batch[0].end - batch[0].data.length;
    for (let i = 1; i < batch.length; i++) {
      if (batch[i].end - batch[i].data.length !== batch[i - 1].end)
        throw new CartridgeError('data batch is not contiguous');
    }
    let bufs = batch.map((b) => b.data);
    while (bufs.length) {
      let n = (await this.fh.writev(bufs, pos)).bytesWritten;
      pos += n;
      while (bufs.length && n >= bufs[0].length) n -= bufs.shift()!.length;
      if (n > 0) bufs = [bufs[0].subarray(n), ...bufs.slice(1)];
    }
  }

  /**
   * Run a batched write unless one has failed, and record its failure before the next batch
   * can start: no entry reaches the file after an earlier one was lost.
   */
  private async stopAfterFailure(write: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      await write();
    } catch (e) {
      this.failure ??= e as Error;
      throw e;
    }
  }

  private writeAllSync(data: Uint8Array, len: number, pos: number): void {
    let done = 0;
    while (done < len) done += writeSync(this.fh.fd, data, done, len - done, pos + done);
  }

  private async flushEntries(batch: { slot: number; entry: IndexEntry }[]): Promise<void> {
    const E = CartridgeLayout.ENTRY_BYTES;
    const buf = new Uint8Array(batch.length * E);
    for (let i = 0; i < batch.length; i++) {
      if (batch[i].slot !== batch[0].slot + i) throw new CartridgeError('index batch is not contiguous');
      buf.set(encodeEntry(batch[i].entry), i * E);
    }
    let done = 0;
    const pos = this.indexBase + batch[0].slot * E;
    while (done < buf.length) done += (await this.fh.write(buf, done, buf.length - done, pos + done)).bytesWritten;
    const end = batch[batch.length - 1].slot + 1;
    if (end > this.physicalSlots) this.physicalSlots = end;
  }

  /** Wait for overlapping appends; throw if one failed. */
  private async settled(): Promise<void> {
    await this.pending;
    if (this.failure)
      throw new CartridgeError(`${this.path}: an earlier write failed (${this.failure.message}); reload the cartridge`);
  }

  private async writeMarker(slot: number): Promise<void> {
    await this.writeSlot(slot, {
      kind: ObjectKind.EOD,
      gen: this.gen,
      firstId: this.objectCount,
      dataOffset: this.usedBytes,
      count: 0,
      blockLength: 0,
    });
    this.dirtyTail = false;
  }

  private async writeSlot(slot: number, e: IndexEntry): Promise<void> {
    const buf = encodeEntry(e);
    // 48 bytes into the page cache: a direct pwrite is far cheaper than a thread-pool round trip.
    writeSync(this.fh.fd, buf, 0, buf.length, this.indexBase + slot * CartridgeLayout.ENTRY_BYTES);
    if (slot >= this.physicalSlots) this.physicalSlots = slot + 1;
  }

  /** Rewrite the label (both copies alternate; the newer valid one wins). */
  async updateLabel(change: Partial<Pick<CartridgeLabel, 'writeProtected' | 'loadCount' | 'barcode'>>): Promise<void> {
    if (this.readOnly) throw new CartridgeError(`${this.path} is open read-only`);
    this.label = { ...this.label, ...change };
    this.labelSeq++;
    // Odd sequence numbers live in copy A, even ones in copy B: a write never touches the newest copy.
    const buf = encodeLabel(this.label, this.labelSeq);
    await this.fh.write(buf, 0, buf.length, this.labelSeq % 2 === 1 ? 0 : CartridgeLayout.LABEL_COPY_BYTES);
    // This fsync may take a write-back error of the data, so its failure is kept like sync()'s.
    await this.writeback.syncWith(
      () => this.fh.sync(),
      () => undefined,
    );
  }

  /** Make everything written so far durable (fsync). */
  async sync(): Promise<void> {
    // A failed fsync or background write-back becomes `failure`, which settled() reports.
    await this.writeback.syncWith(
      () => (this.readOnly ? Promise.resolve() : this.fh.sync()),
      () => this.settled(),
    );
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.reads]);
    await this.pending;
    await this.writeback.settled(); // never close the fd under a running fdatasync
    await this.fh.close();
  }

  private assertWritable(): void {
    if (this.readOnly) throw new CartridgeError(`${this.path} is open read-only`);
    if (this.failure)
      throw new CartridgeError(`${this.path}: an earlier write failed (${this.failure.message}); reload the cartridge`);
  }
}
