import { encodeExtendedPosition, encodeLongPosition, encodeShortPosition } from './read-position.ts';
import { SenseError, SenseKey, Asc, type SenseOptions } from './sense.ts';
import {
  ScsiStatus,
  readBuffers,
  type LogicalUnit,
  type Nexus,
  type ResetKind,
  type ScsiResult,
  type ScsiTask,
} from './task.ts';
import { runCommand, checkCondition, type CommandEntry, type CommandTable } from './command-table.ts';
import { SpcState, spcCommands, spcGate, modeSense, modeSelect, VersionDescriptor, type SpcLu } from './spc.ts';
import { makePage } from './mode-pages.ts';
import { luIdentity } from './identity.ts';
import {
  decodeModeSelect6Cdb,
  decodeModeSelect10Cdb,
  decodeModeSense6Cdb,
  decodeModeSense10Cdb,
  trimToAllocation,
  type ModeSelectCdb,
  decodeLogSenseCdb,
  decodePreventAllowCdb,
  decodeReadAttributeCdb,
} from './cdb/spc.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { TapeDrive, DriveError, type ReadOutcome, type SpaceOutcome, type WriteOutcome } from '../tape/drive.ts';
import { Cartridge, DEFAULT_DENSITY_CODE } from '../tape/cartridge.ts';
import { CartridgeTapeDevice } from '../tape/cartridge-tape-device.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import type { LuExtension } from './disk-lu.ts';
import type { SenseFormat } from './sense.ts';
import { decodeBlockDescriptor, decodeModeParameterHeader } from './mode-parameters.ts';
import { ScsiOpcode } from './opcodes.ts';
import {
  LocateDest,
  ReadPositionForm,
  SpaceCode,
  decodeErase6Cdb,
  decodeLoadUnloadCdb,
  decodeLocate10Cdb,
  decodeLocate16Cdb,
  decodeReadBlockLimitsCdb,
  decodeReadPositionCdb,
  decodeReadWrite6Cdb,
  decodeReportDensitySupportCdb,
  decodeSpace16Cdb,
  decodeSpace6Cdb,
  decodeWriteFilemarks6Cdb,
} from './cdb/ssc.ts';

/**
 * SSC-3 sequential-access (tape drive) logical unit over a TapeDrive. Commands run strictly
 * one after another (a tape has one position). SPC commands come from spc.ts.
 */

/** Largest READ/WRITE(6) transfer we accept in one command. */
const MAX_TRANSFER_BYTES = 64 << 20;
const invalidCdb = (field: number, bit?: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, { fieldPointer: { cd: true, field, bit } });

export interface TapeDriveLuOptions {
  /** Seed for the LU's NAA designator and serial (stable across restarts). */
  identitySeed: string;
  /** Serial reported in READ ELEMENT STATUS DVCID and VPD 80h (default: derived). */
  product?: string;
}

/** Called when a cartridge must leave the drive (the changer takes it back). */
export type EjectHook = (cart: Cartridge) => Promise<void> | void;

export class TapeDriveLu implements LogicalUnit, SpcLu {
  readonly deviceType = 0x01;
  readonly spc: SpcState;
  get senseFormat(): SenseFormat {
    return this.spc.senseFormat;
  }
  readonly drive = new TapeDrive();
  /** A cartridge in the drive, threaded (drive.cartridge set) or ejected by UNLOAD. */
  present: Cartridge | null = null;
  /** I_T nexus keys that issued PREVENT MEDIUM REMOVAL. */
  readonly preventers = new Set<string>();
  readonly stats = { bytesWritten: 0, bytesRead: 0, writeCommands: 0, readCommands: 0 };
  /**
   * Commands take effect in arrival order (one tape position). A WRITE releases the order as
   * soon as its records are placed (position and end of data updated) and then waits for the
   * file writes, so consecutive WRITEs overlap their I/O; GOOD still means "in the file".
   */
  private order: Promise<void> = Promise.resolve();
  private extTable?: CommandTable<TapeDriveLu>;
  private readonly extensions: LuExtension<TapeDriveLu>[] = [];
  private releaseCurrent: (() => void) | null = null;

  constructor(opts: TapeDriveLuOptions) {
    this.spc = new SpcState({
      identity: luIdentity(opts.identitySeed, { product: opts.product ?? 'VIRTUAL-TAPE' }),
      deviceType: 0x01,
      removable: true,
      versionDescriptors: [VersionDescriptor.SSC_3],
    });
    this.spc.table = SSC_TABLE;
    this.spc.modeHeader = () => this.modeHeader();
    for (const p of tapeModePages()) this.spc.modePages.add(p);
  }

  /** Serial number (VPD 80h), also the DVCID the changer reports. */
  get serial(): string {
    return this.spc.identity.serial;
  }

  execute(task: ScsiTask): Promise<ScsiResult> {
    // Extension commands (EXTENDED COPY, RECEIVE COPY RESULTS) do not move the tape through
    // this LU's command order: a copy runs for minutes and reaches the drive as a TapeDevice.
    if (this.extTable?.has(task.cdb[0]))
      return runCommand(this.extTable, this, task, {
        gate: (e, t) => spcGate(this, e, t),
        senseFormat: () => this.spc.senseFormat,
      });
    return this.inOrder(() =>
      runCommand(SSC_TABLE, this, task, {
        gate: (e, t) => spcGate(this, e, t),
        senseFormat: () => this.spc.senseFormat,
      }),
    );
  }

  /** Medium commands take effect in arrival order (`inOrder`); extension commands (copies) do not. */
  appliesInCallOrder(cdb: Uint8Array): boolean {
    return !this.extTable?.has(cdb[0]);
  }

  /** The copy manager's view of this drive (src/xcopy CopyCapableLu): none without a cartridge. */
  get tapeDevice(): TapeDevice | undefined {
    // unloaded (ejected) media cannot be read
    return this.drive.loaded ? new CartridgeTapeDevice(this.drive) : undefined;
  }

  /** Serve more commands and VPD pages (how src/xcopy makes this drive a copy manager). */
  extend(ext: LuExtension<TapeDriveLu>): void {
    this.extTable = new Map([...(this.extTable ?? []), ...ext.commands]);
    this.spc.table = new Map([...SSC_TABLE, ...this.extTable]);
    for (const [code, b] of ext.vpd ?? []) this.spc.vpd.set(code, b);
    if (ext.threePC) this.spc.threePC = true;
    this.extensions.push(ext);
  }

  reset(kind: ResetKind, from: Nexus): void {
    this.spc.reset(kind);
    this.preventers.clear();
    for (const x of this.extensions) x.reset?.(kind, from);
  }

  nexusLost(nexus: Nexus): void {
    this.spc.nexusLost(nexus);
    this.preventers.delete(nexus.key);
    for (const x of this.extensions) x.nexusLost?.(nexus);
  }

  async close(): Promise<void> {
    await this.inOrder(async () => undefined);
    await this.drive.unload();
    await this.present?.close();
    this.present = null;
  }

  get mediumRemovalPrevented(): boolean {
    return this.preventers.size > 0;
  }

  /** Insert and thread a cartridge (changer MOVE MEDIUM or stand-alone start). */
  async insert(cart: Cartridge, opts: { fromNexus?: string } = {}): Promise<void> {
    await this.inOrder(async () => {
      if (this.present) throw new Error('drive already holds a cartridge');
      this.present = cart;
      await this.drive.load(cart);
      // SPC-4 unit attention 28h/00h: a medium change is a unit attention for every other nexus.
      this.spc.ua.addAll(Asc.NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED, opts.fromNexus);
    });
  }

  /** Take the cartridge out (changer MOVE MEDIUM from this drive). */
  async remove(): Promise<Cartridge | null> {
    return this.inOrder(async () => {
      await this.drive.unload();
      const c = this.present;
      this.present = null;
      return c;
    });
  }

  private inOrder<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.order;
    let release!: () => void;
    this.order = new Promise<void>((r) => (release = r));
    return prev.then(async () => {
      this.releaseCurrent = release;
      try {
        return await fn();
      } finally {
        if (this.releaseCurrent === release) this.releaseCurrent = null;
        release();
      }
    });
  }

  /** Let the next command start while this one waits for its I/O (WRITE only). */
  releaseOrder(): void {
    const r = this.releaseCurrent;
    this.releaseCurrent = null;
    r?.();
  }

  /** NOT READY reasons (TEST UNIT READY, REQUEST SENSE, media-access commands). */
  notReady(): SenseError | undefined {
    if (!this.drive.loaded) return new SenseError(SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT);
    return undefined;
  }

  ready(): TapeDrive {
    const e = this.notReady();
    if (e) throw e;
    return this.drive;
  }

  private modeHeader(): { deviceSpecific: number; blockDescriptor: { blockCount: number; blockSize: number } } {
    const c = this.drive.cartridge;
    const wp = c?.label.writeProtected ? 0x80 : 0;
    // SSC-3 mode parameter header and block descriptor: device-specific byte WP b7, BUFFERED MODE b6:4 = 1; block
    // descriptor
    // byte 0 DENSITY CODE (carried in the top byte of the 4-byte "block count"), 5–7 BLOCK LENGTH.
    const density = c ? c.label.densityCode : 0;
    return {
      deviceSpecific: wp | 0x10,
      blockDescriptor: { blockCount: density * 0x1000000, blockSize: this.drive.blockLength },
    };
  }
}

// ---- sense helpers --------------------------------------------------------------------------

function withData(err: SenseError, dataIn: Uint8Array | undefined, transferLength: number): ScsiResult {
  return { ...checkCondition(err), dataIn, transferLength };
}

function mapDriveError(e: unknown): never {
  if (e instanceof DriveError) {
    if (e.kind === 'no-medium') throw new SenseError(SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT);
    if (e.kind === 'write-protected') throw new SenseError(SenseKey.DATA_PROTECT, Asc.WRITE_PROTECTED);
    if (e.kind === 'bad-length') throw invalidCdb(2);
  }
  throw e;
}

function writeStatus(out: WriteOutcome, lengthAsked: number): ScsiResult | undefined {
  // SSC-3 early warning: past it every write completes and reports EOM, NO SENSE 00/02.
  if (out.overflow) {
    return {
      ...checkCondition(
        new SenseError(SenseKey.VOLUME_OVERFLOW, Asc.END_OF_PARTITION_MEDIUM_DETECTED, {
          eom: true,
          info: out.residue,
        }),
      ),
      transferLength: lengthAsked,
    };
  }
  if (out.earlyWarning) {
    return {
      ...checkCondition(
        new SenseError(SenseKey.NO_SENSE, Asc.END_OF_PARTITION_MEDIUM_DETECTED, { eom: true, info: out.residue }),
      ),
      transferLength: lengthAsked,
    };
  }
  return undefined;
}

function spaceStatus(out: SpaceOutcome, sign: number, drive: TapeDrive): void {
  if (!out.stop) return;
  const info = sign * out.residue;
  const o: SenseOptions = { info };
  if (out.stop === 'filemark') throw new SenseError(SenseKey.NO_SENSE, Asc.FILEMARK_DETECTED, { ...o, filemark: true });
  if (out.stop === 'bop')
    throw new SenseError(SenseKey.NO_SENSE, Asc.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { ...o, eom: true });
  if (out.stop === 'eod')
    throw new SenseError(SenseKey.BLANK_CHECK, Asc.END_OF_DATA_DETECTED, { ...o, eom: drive.beyondEarlyWarning });
}

// ---- handlers ---------------------------------------------------------------------------------

/** SSC-3 READ(6): FIXED with SILI is invalid; a filemark, EOD or wrong length ends the transfer. */
async function read6(task: ScsiTask, lu: TapeDriveLu): Promise<ScsiResult> {
  const c = decodeReadWrite6Cdb(task.cdb);
  const drive = lu.ready();
  if (c.fixed && c.sili) throw invalidCdb(1, 1);
  if (c.fixed && drive.blockLength === 0) throw invalidCdb(1, 0);
  const bytes = c.fixed ? c.length * drive.blockLength : c.length;
  if (bytes > (c.fixed ? MAX_TRANSFER_BYTES : drive.maxRecordBytes)) throw invalidCdb(2);
  if (c.length === 0) return { status: ScsiStatus.GOOD, transferLength: 0 };
  // Pooled: given back by the transport once the Data-In is on the wire (ScsiResult.release).
  const buf = readBuffers.take(bytes);
  let out: ReadOutcome;
  try {
    // Place the read (position moves), start its file I/O, and let the next command be placed.
    const plan = c.fixed ? drive.placeFixed(c.length) : drive.placeVariable(bytes);
    const io = drive.medium().readExtents(plan.extents, buf);
    lu.releaseOrder();
    await io;
    out = plan;
  } catch (e) {
    readBuffers.give(buf);
    mapDriveError(e);
  }
  lu.stats.readCommands++;
  lu.stats.bytesRead += out.bytes;
  return { ...readStatus(c, drive, out, buf.subarray(0, out.bytes), bytes), release: () => readBuffers.give(buf) };
}

/** SSC-3 READ(6) status for what the read met: GOOD, filemark, end of data, or ILI. */
function readStatus(
  c: ReturnType<typeof decodeReadWrite6Cdb>,
  drive: TapeDrive,
  out: ReadOutcome,
  data: Uint8Array,
  bytes: number,
): ScsiResult {
  if (!out.stop) return { status: ScsiStatus.GOOD, dataIn: data, transferLength: bytes };
  if (out.stop === 'filemark') {
    return withData(
      new SenseError(SenseKey.NO_SENSE, Asc.FILEMARK_DETECTED, { filemark: true, info: out.residue }),
      data,
      bytes,
    );
  }
  if (out.stop === 'eod') {
    return withData(
      new SenseError(SenseKey.BLANK_CHECK, Asc.END_OF_DATA_DETECTED, {
        info: out.residue,
        eom: drive.beyondEarlyWarning,
      }),
      data,
      bytes,
    );
  }
  // Incorrect length. SSC-3 READ(6), SILI=1 with FIXED=0: an underlength record is not
  // reported; an overlength one only when the mode block length is not zero.
  if (!c.fixed && c.sili && (out.residue > 0 || drive.blockLength === 0))
    return { status: ScsiStatus.GOOD, dataIn: data, transferLength: bytes };
  return withData(
    new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { ili: true, info: out.residue }),
    data,
    bytes,
  );
}

/** SSC-3 WRITE(6). */
async function write6(task: ScsiTask, lu: TapeDriveLu): Promise<ScsiResult | undefined> {
  const c = decodeReadWrite6Cdb(task.cdb);
  const drive = lu.ready();
  if (c.fixed && drive.blockLength === 0) throw invalidCdb(1, 0);
  const L = c.fixed ? drive.blockLength : 0;
  const bytes = c.fixed ? c.length * L : c.length;
  if (bytes > (c.fixed ? MAX_TRANSFER_BYTES : drive.maxRecordBytes)) throw invalidCdb(2);
  if (c.length === 0) return undefined;
  if (task.dataOut.length < bytes) throw new SenseError(SenseKey.ABORTED_COMMAND, Asc.DATA_PHASE_ERROR);
  let out: WriteOutcome;
  try {
    out = await drive.write(task.dataOut.subarray(0, bytes), L);
    lu.releaseOrder();
    await out.durable;
  } catch (e) {
    mapDriveError(e);
  }
  lu.stats.writeCommands++;
  lu.stats.bytesWritten += bytes - (out.overflow ? (L ? out.residue * L : out.residue) : 0);
  return writeStatus(out, bytes);
}

async function writeFilemarks6(task: ScsiTask, lu: TapeDriveLu): Promise<ScsiResult | undefined> {
  const c = decodeWriteFilemarks6Cdb(task.cdb);
  const drive = lu.ready();
  if (c.wsmk) throw invalidCdb(1, 1);
  let out: WriteOutcome;
  try {
    out = await drive.writeFilemarks(c.count);
  } catch (e) {
    mapDriveError(e);
  }
  return c.count > 0 ? writeStatus(out, 0) : undefined;
}

function space(code: number, count: number, lu: TapeDriveLu): void {
  const drive = lu.ready();
  if (code === SpaceCode.END_OF_DATA) return drive.spaceToEod();
  if (code !== SpaceCode.BLOCKS && code !== SpaceCode.FILEMARKS) throw invalidCdb(1, 3);
  if (count === 0) return;
  const out = code === SpaceCode.BLOCKS ? drive.spaceBlocks(count) : drive.spaceFilemarks(count);
  spaceStatus(out, Math.sign(count), drive);
}

function locate(
  c: { cp: boolean; id: number; partition: number; destType: number },
  lu: TapeDriveLu,
  partitionField: number,
): void {
  const drive = lu.ready();
  if (c.cp && c.partition !== 0) throw invalidCdb(partitionField); // one partition only
  let out: SpaceOutcome;
  if (c.destType === LocateDest.OBJECT) out = drive.locate(c.id);
  else if (c.destType === LocateDest.FILE) out = drive.locateFile(c.id);
  else if (c.destType === LocateDest.EOD) {
    drive.spaceToEod();
    return;
  } else throw invalidCdb(1, 5);
  // SSC-3 LOCATE: past end of data it stops there with BLANK CHECK, EOD detected.
  if (out.stop) throw new SenseError(SenseKey.BLANK_CHECK, Asc.END_OF_DATA_DETECTED, { eom: drive.beyondEarlyWarning });
}

/** SSC-3 READ POSITION: short (20 bytes), long (32) and extended (32) forms (read-position.ts). */
function readPosition(task: ScsiTask, lu: TapeDriveLu): Uint8Array {
  const c = decodeReadPositionCdb(task.cdb);
  const drive = lu.ready();
  const cart = drive.medium();
  const pos = drive.position;
  const flags = { bop: pos === 0, eop: drive.beyondEarlyWarning, bpew: drive.beyondEarlyWarning };
  switch (c.form) {
    case ReadPositionForm.SHORT:
    case ReadPositionForm.SHORT_VENDOR:
      return encodeShortPosition(flags, pos);
    case ReadPositionForm.LONG:
      return encodeLongPosition(flags, pos, cart.fileNumberAt(pos));
    case ReadPositionForm.EXTENDED: {
      const w = encodeExtendedPosition(flags, pos);
      return c.allocationLength ? trimToAllocation(w, c.allocationLength) : w;
    }
    default:
      throw invalidCdb(1, 4);
  }
}

/** SSC-3 READ BLOCK LIMITS: granularity, max and min block length; MLOI form gives the max object id. */
function readBlockLimits(task: ScsiTask, lu: TapeDriveLu): Uint8Array {
  if (decodeReadBlockLimitsCdb(task.cdb).mloi) {
    const w = new ByteWriter(20);
    w.setU16(2, 16); // MLOI: additional length
    w.setU64(12, 0xffffffff);
    return w.buf;
  }
  const w = new ByteWriter(6);
  w.setU24(1, lu.drive.maxRecordBytes);
  w.setU16(4, 1);
  return w.buf;
}

async function loadUnload(task: ScsiTask, lu: TapeDriveLu): Promise<void> {
  const c = decodeLoadUnloadCdb(task.cdb);
  if (c.eot && c.load) throw invalidCdb(4, 2); // SSC-3: EOT with LOAD is invalid
  const drive = lu.drive;
  if (c.load) {
    if (!lu.present) throw new SenseError(SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT);
    if (drive.loaded) drive.rewind();
    else await drive.load(lu.present);
    return;
  }
  if (!drive.loaded) {
    if (!lu.present) throw new SenseError(SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT);
    return;
  }
  if (lu.mediumRemovalPrevented && !c.hold)
    throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_REMOVAL_PREVENTED);
  if (c.hold) {
    drive.rewind();
    return;
  }
  await drive.unload(); // ejected: stays `present` until the changer moves it
}

async function erase6(task: ScsiTask, lu: TapeDriveLu): Promise<void> {
  decodeErase6Cdb(task.cdb);
  const drive = lu.ready();
  try {
    await drive.erase();
  } catch (e) {
    mapDriveError(e);
  }
}

function preventAllow(task: ScsiTask, lu: TapeDriveLu): void {
  const c = decodePreventAllowCdb(task.cdb);
  if (c.prevent > 1) throw invalidCdb(4, 1);
  if (c.prevent) lu.preventers.add(task.nexus.key);
  else lu.preventers.delete(task.nexus.key);
}

/** SSC-3 REPORT DENSITY SUPPORT: one 52-byte descriptor (our single density). */
function reportDensitySupport(task: ScsiTask, lu: TapeDriveLu): Uint8Array {
  const c = decodeReportDensitySupportCdb(task.cdb);
  if (c.mediaType) throw invalidCdb(1, 1);
  const cart = c.medium ? lu.ready().medium() : lu.drive.cartridge;
  const w = new ByteWriter(4 + 52);
  w.setU16(0, 52 + 2);
  const d = 4;
  const density = cart?.label.densityCode ?? DEFAULT_DENSITY_CODE;
  w.setU8(d, density);
  w.setU8(d + 1, density);
  // WRTOK b7, DUP b6, DEFLT b5; 3–4 descriptor length; 5–7 bits per mm; 8–9 width; 10–11 tracks; 12–15 capacity (MB).
  w.setU8(d + 2, (cart?.label.writeProtected ? 0 : 0x80) | 0x20);
  w.setU16(d + 3, 52);
  w.setU16(d + 8, 127); // media width, tenths of mm (½ inch)
  w.setU16(d + 10, 1);
  w.setU32(d + 12, cart ? Math.floor(cart.label.capacityBytes / 1_000_000) : 0);
  const ascii = (at: number, s: string, n: number): void => {
    for (let i = 0; i < n; i++) w.setU8(d + at + i, i < s.length ? s.charCodeAt(i) : 0x20);
  };
  ascii(16, 'FERRY', 8);
  ascii(24, 'FERRYCRT', 8);
  ascii(32, 'Ferry cartridge file', 20);
  return trimToAllocation(w.buf, c.allocationLength);
}

/** SPC-4 LOG SENSE: supported pages, write/read error counters (02h/03h), TapeAlert (2Eh), tape capacity (31h). */
function logSense(task: ScsiTask, lu: TapeDriveLu): Uint8Array {
  const c = decodeLogSenseCdb(task.cdb);
  if (c.sp) throw invalidCdb(1, 0);
  if (c.subpage !== 0) throw invalidCdb(3);
  const params: Array<[number, number, number]> = []; // [code, byte length, value]
  const body: number[] = [];
  switch (c.page) {
    case 0x00:
      body.push(0x00, 0x02, 0x03, 0x2e, 0x31);
      break;
    case 0x2e:
      // SSC-3 TapeAlert log page: flags 0001h–0040h, one byte each; a virtual drive raises none.
      for (let code = 1; code <= 0x40; code++) params.push([code, 1, 0]);
      break;
    case 0x02:
    case 0x03: {
      // SPC-4 write/read error counter log pages: 0000h–0004h errors (all zero), 0005h total bytes processed, 0006h
      // uncorrected.
      const bytes = c.page === 0x02 ? lu.stats.bytesWritten : lu.stats.bytesRead;
      for (let code = 0; code <= 6; code++) params.push([code, 8, code === 5 ? bytes : 0]);
      break;
    }
    case 0x31: {
      // SSC-3 tape capacity log page, in MiB: 1 main partition remaining, 2 alternate remaining, 3 main maximum, 4
      // alternate maximum.
      const cart = lu.drive.cartridge;
      const mib = (n: number): number => Math.floor(n / (1 << 20));
      params.push(
        [1, 4, cart ? mib(cart.label.capacityBytes - cart.usedBytes) : 0],
        [2, 4, 0],
        [3, 4, cart ? mib(cart.label.capacityBytes) : 0],
        [4, 4, 0],
      );
      break;
    }
    default:
      throw invalidCdb(2, 5);
  }
  let data: Uint8Array;
  if (params.length) {
    const len = params.reduce((n, p) => n + 4 + p[1], 0);
    const w = new ByteWriter(4 + len);
    w.pos = 4;
    for (const [code, n, v] of params) {
      if (code < c.parameterPointer) continue;
      w.u16(code).u8(0x03).u8(n); // control: format/linking 11b (binary list)
      if (n === 8) w.u64(v);
      else if (n === 1) w.u8(v);
      else w.u32(v);
    }
    data = w.buf.subarray(0, w.pos);
  } else {
    data = new Uint8Array(4 + body.length);
    data.set(body, 4);
  }
  data[0] = c.page;
  data[2] = (data.length - 4) >> 8;
  data[3] = (data.length - 4) & 0xff;
  return trimToAllocation(data, c.allocationLength);
}

/** MAM attributes (SPC-4 READ ATTRIBUTE, attribute identifiers): [id, read-only, format (0 binary, 1 ASCII), bytes]. */
function mamAttributes(cart: Cartridge): Array<[number, boolean, number, Uint8Array]> {
  const u64 = (v: number): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v));
    return b;
  };
  const ascii = (s: string, n: number): Uint8Array => {
    const b = new Uint8Array(n).fill(0x20);
    for (let i = 0; i < Math.min(n, s.length); i++) b[i] = s.charCodeAt(i) & 0x7f;
    return b;
  };
  const mib = (n: number): number => Math.floor(n / (1 << 20));
  const l = cart.label;
  return [
    [0x0000, true, 0, u64(mib(l.capacityBytes - cart.usedBytes))], // REMAINING CAPACITY IN PARTITION
    [0x0001, true, 0, u64(mib(l.capacityBytes))], // MAXIMUM CAPACITY IN PARTITION
    [0x0003, true, 0, u64(l.loadCount)], // LOAD COUNT
    [0x0400, true, 1, ascii('FERRY', 8)], // MEDIUM MANUFACTURER
    [0x0401, true, 1, ascii(l.mediumSerial, 32)], // MEDIUM SERIAL NUMBER
    [0x0408, true, 0, Uint8Array.of(0)], // MEDIUM TYPE: data
    [0x0806, false, 1, ascii(l.barcode, 32)], // BARCODE
  ];
}

/** SPC-4 READ ATTRIBUTE: ATTRIBUTE VALUES (00h) and ATTRIBUTE LIST (01h). */
function readAttribute(task: ScsiTask, lu: TapeDriveLu): Uint8Array {
  const c = decodeReadAttributeCdb(task.cdb);
  const cart = lu.ready().medium();
  if (c.volume !== 0) throw invalidCdb(5);
  if (c.partition !== 0) throw invalidCdb(7);
  const attrs = mamAttributes(cart).filter(([id]) => id >= c.firstAttribute);
  let body: Uint8Array;
  if (c.serviceAction === 0x00) {
    const len = attrs.reduce((n, a) => n + 5 + a[3].length, 0);
    const w = new ByteWriter(len);
    for (const [id, ro, fmt, v] of attrs)
      w.u16(id)
        .u8((ro ? 0x80 : 0) | fmt)
        .u16(v.length)
        .bytes(v);
    body = w.buf;
  } else if (c.serviceAction === 0x01) {
    const w = new ByteWriter(attrs.length * 2);
    for (const [id] of attrs) w.u16(id);
    body = w.buf;
  } else if (c.serviceAction === 0x02 || c.serviceAction === 0x03) {
    // VOLUME LIST / PARTITION LIST: first 0, count 1.
    body = Uint8Array.of(0, 1);
    const out = new Uint8Array(2 + body.length);
    out[1] = body.length;
    out.set(body, 2);
    return trimToAllocation(out, c.allocationLength);
  } else throw invalidCdb(1, 4);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return trimToAllocation(out, c.allocationLength);
}

/** MODE SELECT: the block descriptor sets density and block length (SSC-3 block descriptor), pages go to spc. */
function tapeModeSelect(c: ModeSelectCdb, task: ScsiTask, lu: TapeDriveLu): void {
  const data = task.dataOut.subarray(0, c.parameterListLength);
  const h = c.parameterListLength > 0 ? decodeModeParameterHeader(data, c.size) : undefined;
  if (h) {
    const hlen = h.headerLength;
    const bdLen = h.blockDescriptorLength;
    if (bdLen !== 0 && bdLen !== 8)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: c.size === 6 ? 3 : 7 },
      });
    if (bdLen === 8) {
      const bd = decodeBlockDescriptor(data, { ...h, longLba: false });
      if (!bd) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
      const L = bd.blockLength;
      if (L > lu.drive.maxRecordBytes)
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
          fieldPointer: { cd: false, field: hlen + 5 },
        });
      const density = bd.density;
      const current = lu.drive.cartridge?.label.densityCode ?? DEFAULT_DENSITY_CODE;
      if (density !== 0 && density !== 0x7f && density !== current) {
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
          fieldPointer: { cd: false, field: hlen },
        });
      }
      // Validate pages before changing the block length.
      modeSelect(c, task, lu.spc);
      if (lu.drive.blockLength !== L) {
        lu.drive.blockLength = L;
        // SPC-4: other I_T nexuses learn that mode parameters changed (2Ah/01h).
        lu.spc.ua.addAll(Asc.MODE_PARAMETERS_CHANGED, task.nexus.key);
      }
      return;
    }
  }
  modeSelect(c, task, lu.spc);
}

/**
 * Mode pages of a tape drive: data compression 0Fh, device configuration 10h, medium partition 11h. SSC-3 mode
 * parameters
 */
function tapeModePages(): ReturnType<typeof makePage>[] {
  return [
    // 0Fh: DCE b7/DCC b6 (byte 2), DDE b7 (byte 3), algorithms 4–7/8–11. We do not compress; DCE is accepted.
    makePage(0x0f, [0x40, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    // 10h: byte 8 RSMK/AVC/SOCF/ROBO/REW = 0; byte 10 EOD DEFINED 000b, EEG b4, SEW b3 (early warning reported).
    makePage(0x10, [0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    // 11h: one partition (max additional 0, defined 0), FDP/SDP/IDP 0, PSUM 11b, units MiB; one size descriptor.
    makePage(0x11, [0, 0, 0x18, 0x03, 0x0a, 0, 0xff, 0xff], [0, 0, 0, 0, 0, 0, 0, 0]),
  ];
}

function entry(
  name: string,
  cdbLength: number,
  handler: CommandEntry<TapeDriveLu>['handler'],
  pr?: 'allowed' | 'read' | 'write',
): CommandEntry<TapeDriveLu> {
  return { name, cdbLength, handler, pr };
}

const O = ScsiOpcode;
/** The SSC command table: SPC entries spread in, then the stream commands. */
export const SSC_TABLE: CommandTable<TapeDriveLu> = new Map<number, CommandEntry<TapeDriveLu>>([
  ...spcCommands<TapeDriveLu>((lu) => lu.notReady()),
  [O.MODE_SELECT_6, entry('MODE SELECT(6)', 6, (t, lu) => tapeModeSelect(decodeModeSelect6Cdb(t.cdb), t, lu))],
  [O.MODE_SELECT_10, entry('MODE SELECT(10)', 10, (t, lu) => tapeModeSelect(decodeModeSelect10Cdb(t.cdb), t, lu))],
  [O.MODE_SENSE_6, entry('MODE SENSE(6)', 6, (t, lu) => modeSense(decodeModeSense6Cdb(t.cdb), lu.spc), 'read')],
  [O.MODE_SENSE_10, entry('MODE SENSE(10)', 10, (t, lu) => modeSense(decodeModeSense10Cdb(t.cdb), lu.spc), 'read')],
  [O.REWIND, entry('REWIND', 6, (_t, lu) => void lu.ready().rewind(), 'read')],
  [O.READ_BLOCK_LIMITS, entry('READ BLOCK LIMITS', 6, readBlockLimits, 'allowed')],
  [O.READ_6, entry('READ(6)', 6, read6, 'read')],
  [O.WRITE_6, entry('WRITE(6)', 6, write6)],
  [O.WRITE_FILEMARKS_6, entry('WRITE FILEMARKS(6)', 6, writeFilemarks6)],
  [
    O.SPACE_6,
    entry(
      'SPACE(6)',
      6,
      (t, lu) => {
        const c = decodeSpace6Cdb(t.cdb);
        space(c.code, c.count, lu);
      },
      'read',
    ),
  ],
  [
    O.SPACE_16,
    entry(
      'SPACE(16)',
      16,
      (t, lu) => {
        const c = decodeSpace16Cdb(t.cdb);
        space(c.code, c.count, lu);
      },
      'read',
    ),
  ],
  [O.ERASE_6, entry('ERASE(6)', 6, erase6)],
  [O.LOAD_UNLOAD, entry('LOAD UNLOAD', 6, loadUnload, 'read')],
  [O.PREVENT_ALLOW_MEDIUM_REMOVAL, entry('PREVENT ALLOW MEDIUM REMOVAL', 6, preventAllow, 'read')],
  [O.LOCATE_10, entry('LOCATE(10)', 10, (t, lu) => locate(decodeLocate10Cdb(t.cdb), lu, 8), 'read')],
  [O.LOCATE_16, entry('LOCATE(16)', 16, (t, lu) => locate(decodeLocate16Cdb(t.cdb), lu, 3), 'read')],
  [O.READ_POSITION, entry('READ POSITION', 10, readPosition, 'read')],
  [O.REPORT_DENSITY_SUPPORT, entry('REPORT DENSITY SUPPORT', 10, reportDensitySupport, 'allowed')],
  [O.LOG_SENSE, entry('LOG SENSE', 10, logSense, 'allowed')],
  [O.READ_ATTRIBUTE, entry('READ ATTRIBUTE', 16, readAttribute, 'read')],
]);
