import { Cartridge } from './cartridge.ts';
import { CartridgeError } from './cartridge-format.ts';
import { ObjectKind } from './cartridge-format.ts';

/**
 * Tape drive state: the loaded cartridge, the logical position (object id) and the block
 * length (0 = variable). It applies SSC-3 sequential-access positioning semantics and returns plain
 * outcomes; the SSC LU (src/scsi/ssc.ts) turns them into status and sense.
 */

/** Why a read or space stopped early. */
export type StopReason = 'filemark' | 'eod' | 'bop' | 'ili';

export interface ReadOutcome {
  /** Bytes placed in the target. */
  bytes: number;
  stop?: StopReason;
  /**
   * SSC-3 INFORMATION: fixed mode, blocks not transferred; variable mode, requested length
   * minus the record's length (negative for an overlength record).
   */
  residue: number;
}

export interface ReadPlan extends ReadOutcome {
  /** File extents to read, and where each goes in the target buffer. */
  extents: Array<{ pos: number; bytes: number; at: number }>;
}

export interface WriteOutcome {
  /** Resolves when the written objects are in the cartridge file (acknowledge after it). */
  durable: Promise<void>;
  /** Past the early-warning point after this write (report EOM, 00/02). */
  earlyWarning: boolean;
  /** The medium filled up: `residue` blocks (fixed) or bytes (variable) were not written. */
  overflow: boolean;
  residue: number;
}

export interface SpaceOutcome {
  stop?: StopReason;
  /** Count not spaced over (SSC-3 SPACE: INFORMATION). */
  residue: number;
}

export type DriveErrorKind = 'no-medium' | 'write-protected' | 'eod' | 'bad-length';

/** A condition the caller maps to sense (not-ready, data protect, blank check…). */
export class DriveError extends CartridgeError {
  readonly kind: DriveErrorKind;
  /** A multi-record write that failed part way: bytes that did reach the tape (TapeDevice.writeRecords). */
  readonly bytesWritten?: number;
  constructor(kind: DriveErrorKind, message: string, opts: { bytesWritten?: number } = {}) {
    super(message);
    this.kind = kind;
    this.bytesWritten = opts.bytesWritten;
  }
}

export class TapeDrive {
  cartridge: Cartridge | null = null;
  /** Object id of the next object (SSC logical object identifier). */
  position = 0;
  /** Block length for fixed mode; 0 = variable (MODE SELECT block descriptor). */
  blockLength = 0;
  /** Largest record READ BLOCK LIMITS reports. */
  readonly maxRecordBytes: number;

  constructor(opts: { maxRecordBytes?: number } = {}) {
    this.maxRecordBytes = opts.maxRecordBytes ?? 8 << 20;
  }

  get loaded(): boolean {
    return this.cartridge !== null;
  }

  medium(): Cartridge {
    if (!this.cartridge) throw new DriveError('no-medium', 'no cartridge loaded');
    return this.cartridge;
  }

  /** Thread a cartridge: position at BOP and count the load in the label (MAM). */
  async load(cart: Cartridge): Promise<void> {
    this.cartridge = cart;
    this.position = 0;
    // MAM LOAD COUNT is kept even on write-protected media (it is not user data).
    await cart.updateLabel({ loadCount: cart.label.loadCount + 1 });
  }

  /** Unthread and hand the cartridge back (the caller closes or moves it). */
  async unload(): Promise<Cartridge | null> {
    const c = this.cartridge;
    if (c) await c.sync();
    this.cartridge = null;
    this.position = 0;
    return c;
  }

  get bop(): boolean {
    return this.position === 0;
  }

  /** Data-region offset of the position: how far along the medium we are. */
  dataOffsetAt(id: number): number {
    const c = this.medium();
    const k = c.runIndexOf(id);
    if (k < 0) return c.usedBytes;
    const r = c.run(k);
    return r.kind === ObjectKind.DATA ? r.dataOffset + (id - r.firstId) * r.blockLength : r.dataOffset;
  }

  /** Between early warning and end of partition (READ POSITION BPEW). */
  get beyondEarlyWarning(): boolean {
    const c = this.medium();
    return this.dataOffsetAt(this.position) > c.label.capacityBytes - c.label.earlyWarningBytes;
  }

  /**
   * Place a READ(6) fixed of up to `count` blocks: the position moves now, the returned extents
   * are read afterwards (so the next command can be placed meanwhile). SSC-3 READ(6)
   */
  placeFixed(count: number): ReadPlan {
    const c = this.medium();
    const L = this.blockLength;
    const extents: ReadPlan['extents'] = [];
    let done = 0;
    while (done < count) {
      const k = c.runIndexOf(this.position);
      if (k < 0) return { extents, bytes: done * L, stop: 'eod', residue: count - done };
      const r = c.run(k);
      if (r.kind === ObjectKind.FILEMARK) {
        this.position++;
        return { extents, bytes: done * L, stop: 'filemark', residue: count - done };
      }
      if (r.blockLength !== L) {
        // Incorrect length (ILI): the block is passed over, not transferred. SSC-3 READ(6)
        this.position++;
        return { extents, bytes: done * L, stop: 'ili', residue: count - done };
      }
      const n = Math.min(count - done, r.firstId + r.count - this.position);
      extents.push({ ...c.extentOf(k, this.position, n), at: done * L });
      this.position += n;
      done += n;
    }
    return { extents, bytes: done * L, residue: 0 };
  }

  /** Place a READ(6) variable of one record, at most `want` bytes of it. */
  placeVariable(want: number): ReadPlan & { recordLength: number } {
    const c = this.medium();
    const k = c.runIndexOf(this.position);
    if (k < 0) return { extents: [], bytes: 0, stop: 'eod', residue: want, recordLength: 0 };
    const r = c.run(k);
    if (r.kind === ObjectKind.FILEMARK) {
      this.position++;
      return { extents: [], bytes: 0, stop: 'filemark', residue: want, recordLength: 0 };
    }
    const e = c.extentOf(k, this.position, 1, want);
    this.position++;
    const residue = want - r.blockLength;
    return {
      extents: [{ ...e, at: 0 }],
      bytes: e.bytes,
      stop: residue !== 0 ? 'ili' : undefined,
      residue,
      recordLength: r.blockLength,
    };
  }

  /** READ(6) fixed: up to `count` blocks of `blockLength` into `target`. SSC-3 READ(6) */
  async readFixed(target: Uint8Array, count: number): Promise<ReadOutcome> {
    const plan = this.placeFixed(count);
    await this.medium().readExtents(plan.extents, target);
    return plan;
  }

  /** READ(6) variable: one record into `target` (its length is the requested length). */
  async readVariable(target: Uint8Array): Promise<ReadOutcome & { recordLength: number }> {
    const plan = this.placeVariable(target.length);
    await this.medium().readExtents(plan.extents, target);
    return plan;
  }

  private checkWritable(): Cartridge {
    const c = this.medium();
    if (c.label.writeProtected)
      throw new DriveError('write-protected', `cartridge ${c.label.barcode} is write-protected`);
    return c;
  }

  /**
   * WRITE(6): `data` is one record (variable) or whole blocks (fixed). Writing anywhere but
   * end of data truncates what follows. SSC-3 early warning and end of partition.
   */
  async write(data: Uint8Array, fixedLength = this.blockLength): Promise<WriteOutcome> {
    const c = this.checkWritable();
    const L = fixedLength;
    if (L > 0 && data.length % L !== 0)
      throw new DriveError('bad-length', `data is not a whole number of ${L}-byte blocks`);
    const settled = Promise.resolve();
    if (data.length === 0)
      return { durable: settled, earlyWarning: this.beyondEarlyWarning, overflow: false, residue: 0 };
    await c.truncate(this.position);
    const room = c.label.capacityBytes - c.usedBytes;
    let durable = settled;
    if (L > 0) {
      const count = data.length / L;
      const fit = Math.min(count, Math.floor(room / L));
      if (fit > 0) durable = (await c.appendPipelined(ObjectKind.DATA, fit, L, data)).done;
      this.position += fit;
      if (fit < count) return { durable, earlyWarning: true, overflow: true, residue: count - fit };
    } else {
      if (data.length > room) return { durable, earlyWarning: true, overflow: true, residue: data.length };
      durable = (await c.appendPipelined(ObjectKind.DATA, 1, data.length, data)).done;
      this.position++;
    }
    return { durable, earlyWarning: this.beyondEarlyWarning, overflow: false, residue: 0 };
  }

  /** WRITE FILEMARKS(6); count 0 only flushes. SSC-3 WRITE FILEMARKS(6) */
  async writeFilemarks(count: number): Promise<WriteOutcome> {
    const c = count > 0 ? this.checkWritable() : this.medium();
    if (count > 0) {
      await c.truncate(this.position);
      await c.append(ObjectKind.FILEMARK, count, 0);
      this.position += count;
    }
    await c.sync();
    return { durable: Promise.resolve(), earlyWarning: this.beyondEarlyWarning, overflow: false, residue: 0 };
  }

  /** SPACE(6) over blocks (logical objects other than filemarks). SSC-3 SPACE(6) */
  spaceBlocks(count: number): SpaceOutcome {
    const c = this.medium();
    let done = 0;
    if (count >= 0) {
      while (done < count) {
        const k = c.runIndexOf(this.position);
        if (k < 0) return { stop: 'eod', residue: count - done };
        const r = c.run(k);
        if (r.kind === ObjectKind.FILEMARK) {
          this.position++; // EOP side of the filemark
          return { stop: 'filemark', residue: count - done };
        }
        const n = Math.min(count - done, r.firstId + r.count - this.position);
        this.position += n;
        done += n;
      }
      return { residue: 0 };
    }
    const want = -count;
    while (done < want) {
      if (this.position === 0) return { stop: 'bop', residue: want - done };
      const r = c.run(c.runIndexOf(this.position - 1));
      if (r.kind === ObjectKind.FILEMARK) {
        this.position--; // BOP side of the filemark
        return { stop: 'filemark', residue: want - done };
      }
      const n = Math.min(want - done, this.position - r.firstId);
      this.position -= n;
      done += n;
    }
    return { residue: 0 };
  }

  /** SPACE(6) over filemarks: forward ends after the last one, backward before it. */
  spaceFilemarks(count: number): SpaceOutcome {
    const c = this.medium();
    const f = c.fileNumberAt(this.position); // filemarks before the position
    if (count >= 0) {
      if (count === 0) return { residue: 0 };
      const id = c.filemarkId(f + count - 1);
      if (id < 0) {
        const passed = c.filemarkCount - f;
        this.position = c.objectCount;
        return { stop: 'eod', residue: count - passed };
      }
      this.position = id + 1;
      return { residue: 0 };
    }
    const want = -count;
    if (f - want < 0) {
      this.position = 0;
      return { stop: 'bop', residue: want - f };
    }
    this.position = c.filemarkId(f - want);
    return { residue: 0 };
  }

  spaceToEod(): void {
    this.position = this.medium().objectCount;
  }

  /** LOCATE to a logical object id; past end of data stops at EOD. SSC-3 LOCATE(10) */
  locate(id: number): SpaceOutcome {
    const c = this.medium();
    if (id > c.objectCount) {
      this.position = c.objectCount;
      return { stop: 'eod', residue: 0 };
    }
    this.position = id;
    return { residue: 0 };
  }

  /** LOCATE(16) DEST_TYPE file: to the first object of file `n` (after filemark n−1). */
  locateFile(n: number): SpaceOutcome {
    const c = this.medium();
    if (n === 0) return this.locate(0);
    const id = c.filemarkId(n - 1);
    if (id < 0) {
      this.position = c.objectCount;
      return { stop: 'eod', residue: 0 };
    }
    this.position = id + 1;
    return { residue: 0 };
  }

  rewind(): void {
    this.medium();
    this.position = 0;
  }

  /** ERASE: end of data at the position (the rest is gone). */
  async erase(): Promise<void> {
    const c = this.checkWritable();
    await c.truncate(this.position);
    await c.sync();
  }
}
