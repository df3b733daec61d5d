import { decodeModeParameterHeader, encodeModeSelectBlockDescriptor } from '../scsi/mode-parameters.ts';
import { decodeLongPosition, decodeShortPosition } from '../scsi/read-position.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { ScsiCommandError, type CommandResult, type InitiatorSession } from '../initiator/session.ts';
import { RemoteTapeDevice } from '../initiator/remote-tape-device.ts';
import { Asc, SenseKey } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { TapeReadResult } from '../tape/tape-device.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { ByteReader } from '../util/byte-reader.ts';
import { TapeDriveError } from './errors.ts';
import {
  buildInquiry,
  buildModeSelect6,
  buildModeSense6,
  buildReadAttribute,
  buildTestUnitReady,
} from '../scsi/cdb/spc.ts';
import {
  ReadPositionForm,
  SpaceCode,
  buildErase6,
  buildLoadUnload,
  buildLocate10,
  buildLocate16,
  buildRead6,
  buildReadBlockLimits,
  buildReadPosition,
  buildSpace6,
} from '../scsi/cdb/ssc.ts';

/** Where the tape is: SSC-3 READ POSITION. */
export interface DrivePosition {
  /** Logical object identifier of the next block (filemarks count as objects). */
  blockId: number;
  /** Beginning of partition. */
  bop: boolean;
  /** End of partition (at or past early warning on our LU). */
  eop: boolean;
  /** Beyond programmable early warning. */
  bpew: boolean;
}

/** What readBlocks() returns: the TapeDevice result plus the bytes read. */
export type BlockReadResult = TapeReadResult & { data: Uint8Array };

export interface DriveClientOptions {
  /** Name for messages (default: the session's target name). */
  name?: string;
  /** How long ready() waits while the drive is BECOMING READY (default 60 s). */
  readyTimeoutMs?: number;
  /** Time, passed in so tests need not wait. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

const REAL_CLOCK = { now: (): number => Date.now(), sleep: (ms: number): Promise<void> => delay(ms) };
/** UNIT ATTENTIONs ready() swallows in a row (medium changed, mode parameters changed, reset…). */
const MAX_UNIT_ATTENTIONS = 8;
const READY_POLL_MS = 250;
/** SPC-4 READ ATTRIBUTE attribute 0000h REMAINING CAPACITY IN PARTITION, in MiB. */
const MAM_REMAINING_CAPACITY = 0x0000;
/** SPC-4 7.4.2.2 LOAD COUNT: times the medium has been loaded. */
const MAM_LOAD_COUNT = 0x0003;

/**
 * A tape drive (SSC-3) reached through the initiator: readiness, block size, protection,
 * positioning and capacity around a RemoteTapeDevice, which readers and writers use directly
 * (`device`). The device is re-opened after the block size changes, since it reads the block
 * length once.
 */
export class DriveClient {
  readonly session: InitiatorSession;
  readonly lun: number;
  readonly name: string;
  /** Standard INQUIRY 3PC: the LU is a copy manager (EXTENDED COPY). A tgtd tape LU is not. */
  readonly copyManager: boolean;
  /**
   * A READ whose expected transfer length is shorter than the block may be sent: the target
   * sends that much and reports the rest as residual (RFC 7143 11.4.5.2). Only Ferry's own LUs
   * are trusted with it: tgtd 1.0.x reads the whole block into a buffer of the expected length.
   */
  readonly partialBlockReads: boolean;
  /** LOCATE answered ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE (tgtd): position by REWIND + SPACE. */
  private noLocate = false;
  private dev: RemoteTapeDevice;
  private readonly readyTimeoutMs: number;
  private readonly clock: { now(): number; sleep(ms: number): Promise<void> };

  private constructor(
    session: InitiatorSession,
    lun: number,
    dev: RemoteTapeDevice,
    std: Uint8Array,
    opts: DriveClientOptions,
  ) {
    this.session = session;
    this.lun = lun;
    this.dev = dev;
    this.copyManager = std.length > 5 && (std[5] & 0x08) !== 0;
    this.partialBlockReads = std.length >= 16 && Buffer.from(std.subarray(8, 16)).toString('latin1').trim() === 'FERRY';
    this.name = opts.name ?? session.targetName ?? 'tape target';
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
    this.clock = opts.clock ?? REAL_CLOCK;
  }

  /** Open the drive at `lun`, checking it is one (standard INQUIRY PERIPHERAL DEVICE TYPE 01h). */
  static async open(session: InitiatorSession, lun: number, opts: DriveClientOptions = {}): Promise<DriveClient> {
    const std = (await session.command(lun, buildInquiry(96), { inLength: 96 })).data;
    if (std.length < 1 || std[0] >> 5 !== 0 || (std[0] & 0x1f) !== 0x01) {
      const pdt = std.length ? `0x${(std[0] & 0x1f).toString(16).padStart(2, '0')}` : 'none';
      const name = opts.name ?? session.targetName ?? 'tape target';
      const why = `LUN ${lun} of ${name} is not a tape drive (device type ${pdt}): use a drive LUN discovery reports`;
      throw new TapeDriveError('ERR_NOT_A_DRIVE', why);
    }
    return new DriveClient(session, lun, await RemoteTapeDevice.open(session, lun), std, opts);
  }

  /** The stream seam for readers and writers (re-opened by setFixedBlock). */
  get device(): RemoteTapeDevice {
    return this.dev;
  }

  private get what(): string {
    return `drive LUN ${this.lun} of ${this.name}`;
  }

  /**
   * TEST UNIT READY until GOOD. UNIT ATTENTION (28h/00h after a medium change, 29h after a
   * reset…) is swallowed; NOT READY, BECOMING READY (04h/01h) is waited out; no medium and any
   * other NOT READY are errors that say what to do.
   */
  async ready(): Promise<void> {
    const deadline = this.clock.now() + this.readyTimeoutMs;
    let attentions = 0;
    for (;;) {
      const r = await this.session.command(this.lun, buildTestUnitReady(), {
        allowCheckCondition: true,
        unitAttentionRetries: 0,
      });
      if (r.status === ScsiStatus.GOOD) return;
      const s = r.sense;
      const check = r.status === ScsiStatus.CHECK_CONDITION;
      if (check && s?.key === SenseKey.UNIT_ATTENTION && ++attentions <= MAX_UNIT_ATTENTIONS) continue;
      if (check && s?.key === SenseKey.NOT_READY) {
        if (s.asc === Asc.MEDIUM_NOT_PRESENT[0]) throw this.noMedium();
        const [asc, ascq] = Asc.LOGICAL_UNIT_NOT_READY_BECOMING_READY;
        const becoming = s.asc === asc && s.ascq === ascq;
        if (becoming && this.clock.now() < deadline) {
          await this.clock.sleep(READY_POLL_MS);
          continue;
        }
        const why = becoming
          ? `still becoming ready after ${this.readyTimeoutMs} ms`
          : `not ready (ASC/ASCQ ${hex2(s.asc)}/${hex2(s.ascq)})`;
        throw new TapeDriveError('ERR_DRIVE_NOT_READY', `${this.what} is ${why}: check the drive, then retry`);
      }
      throw this.failure('test unit ready', r);
    }
  }

  /**
   * Fixed-block mode with `bytes` per block (0 = variable): MODE SELECT(6) with a block
   * descriptor (SSC-3 8.3.3), checked by MODE SENSE when the device is re-opened.
   */
  async setFixedBlock(bytes: number): Promise<void> {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffffff) {
      throw new TapeDriveError('ERR_BLOCK_SIZE', `block size ${bytes} is not a whole number from 0 to 16777215`);
    }
    const list = encodeModeSelectBlockDescriptor(bytes);
    const cdb = buildModeSelect6(list.length);
    const r = await this.session.command(this.lun, cdb, { dataOut: list, allowCheckCondition: true });
    if (r.status !== ScsiStatus.GOOD) {
      if (r.sense?.key === SenseKey.ILLEGAL_REQUEST) {
        const limits = await this.blockLimits().catch(() => undefined);
        const range = limits ? ` (the drive takes ${limits.min}–${limits.max} bytes)` : '';
        const why = `${this.what} refused ${bytes}-byte blocks${range}: choose a block size it takes`;
        throw new TapeDriveError('ERR_BLOCK_SIZE_REFUSED', why, { cause: new ScsiCommandError(r.status, r.rawSense) });
      }
      throw this.failure('set the block size of', r);
    }
    this.dev = await RemoteTapeDevice.open(this.session, this.lun);
    if (this.dev.blockLength !== bytes) {
      throw new TapeDriveError(
        'ERR_BLOCK_SIZE_NOT_SET',
        `${this.what} accepted ${bytes}-byte blocks but reports ${this.dev.blockLength}: ` +
          'the drive ignores MODE SELECT; set the size on the target',
      );
    }
  }

  /** SSC-3 READ BLOCK LIMITS: 1–3 MAXIMUM BLOCK LENGTH LIMIT, 4–5 MINIMUM BLOCK LENGTH LIMIT. */
  async blockLimits(): Promise<{ min: number; max: number }> {
    const d = new ByteReader((await this.session.command(this.lun, buildReadBlockLimits(), { inLength: 6 })).data);
    return { max: d.u24(1), min: d.u16(4) };
  }

  /** The WP bit of the MODE SENSE device-specific parameter (SSC-3 8.3.2: mode parameter header byte 2 b7). */
  async writeProtected(): Promise<boolean> {
    const cdb = buildModeSense6(0x3f, { dbd: true, allocationLength: 255 });
    const r = await this.session.command(this.lun, cdb, { inLength: 255, allowCheckCondition: true });
    if (r.status !== ScsiStatus.GOOD) throw this.failure('read the mode parameters of', r);
    const h = decodeModeParameterHeader(r.data, 6);
    if (!h)
      throw new TapeDriveError(
        'ERR_BAD_MODE_DATA',
        `${this.what} returned ${r.data.length} bytes of mode parameters, shorter than their header`,
      );
    return (h.deviceSpecific & 0x80) !== 0;
  }

  /**
   * SSC-3 READ POSITION. Short form: 0 BOP b7, EOP b6, LOLU b2, PERR b1, BPEW b0; 4–7 FIRST
   * LOGICAL OBJECT LOCATION. PERR (a location past 32 bits) falls back to the long form, 8–15
   * LOGICAL OBJECT NUMBER. A drive that does not know its position (tgtd sets LOLU and zeros) or
   * has no READ POSITION throws ERR_POSITION_UNKNOWN: the job then relies on the block ids it
   * tracks itself (the catalog's end block, the blocks each copy wrote).
   */
  async position(): Promise<DrivePosition> {
    const cdb = buildReadPosition(ReadPositionForm.SHORT, 20);
    const r = await this.session.command(this.lun, cdb, { inLength: 20, allowCheckCondition: true });
    if (isInvalidOpcode(r))
      throw new TapeDriveError(
        'ERR_POSITION_UNKNOWN',
        `${this.what} has no READ POSITION: it cannot report its position`,
      );
    if (r.status !== ScsiStatus.GOOD) throw this.failure('read the position of', r);
    const p = decodeShortPosition(r.data);
    if (p.unknown) {
      const why = `${this.what} does not know its position: rewind or locate first`;
      throw new TapeDriveError('ERR_POSITION_UNKNOWN', why);
    }
    const pos = { bop: p.bop, eop: p.eop, bpew: p.bpew };
    if (!p.overflow) return { blockId: p.blockId, ...pos };
    const long = await this.session.command(this.lun, buildReadPosition(ReadPositionForm.LONG, 32), { inLength: 32 });
    return { blockId: decodeLongPosition(long.data).blockId, ...pos };
  }

  /**
   * Position before logical object `blockId` (filemarks count as objects): SSC-3 LOCATE(10), or
   * LOCATE(16) past 32 bits. A drive without LOCATE (tgtd answers 05/20/00) is positioned by
   * REWIND and SPACE instead (spaceTo).
   */
  async locate(blockId: number): Promise<void> {
    if (!Number.isSafeInteger(blockId) || blockId < 0) {
      throw new TapeDriveError('ERR_BLOCK_ID', `block id ${blockId} is not a whole number ≥ 0`);
    }
    if (this.noLocate) return this.spaceTo(blockId);
    const cdb = blockId > 0xffffffff ? buildLocate16(blockId) : buildLocate10(blockId);
    const r = await this.session.command(this.lun, cdb, { allowCheckCondition: true });
    if (r.status === ScsiStatus.GOOD) return;
    if (isInvalidOpcode(r)) {
      this.noLocate = true;
      return this.spaceTo(blockId);
    }
    if (r.sense?.key === SenseKey.BLANK_CHECK) throw this.pastEod(blockId);
    throw this.failure(`locate block ${blockId} on`, r);
  }

  /**
   * Position before logical object `blockId` without LOCATE: REWIND, SPACE(6) forward over
   * `blockId − 1` objects, then READ the last one (one block, or a filemark). Both kinds of drive
   * are handled: one that stops at a filemark while spacing blocks (SSC-3: CHECK CONDITION with
   * FM, INFORMATION = blocks not spaced, position after the mark), and tgtd, whose SPACE blocks
   * passes filemarks and counts each as one object. The last object is read rather than spaced
   * over because tgtd reports END OF DATA (00/05, no INFORMATION) also when a SPACE *lands* on end
   * of data, which would leave "at end of data" and "short of it" indistinguishable; a READ of
   * the last object is unambiguous on both. A `blockId` past end of data is ERR_LOCATE_PAST_EOD.
   */
  async spaceTo(blockId: number): Promise<void> {
    await this.rewind();
    if (blockId === 0) return;
    for (let left = blockId - 1; left > 0;) {
      const n = Math.min(left, SPACE6_MAX);
      const r = await this.session.command(this.lun, buildSpace6(SpaceCode.BLOCKS, n), { allowCheckCondition: true });
      if (r.status === ScsiStatus.GOOD) {
        left -= n;
        continue;
      }
      const s = r.sense;
      if (s?.filemark && s.info !== undefined && s.info <= n) {
        left -= n - s.info + 1; // the blocks spaced, and the filemark
        continue;
      }
      if (isEndOfData(r)) throw this.pastEod(blockId);
      throw this.failure(`space ${n} blocks forward on`, r);
    }
    const last = await this.readObject();
    if (last === 'eod') throw this.pastEod(blockId);
    if (typeof last !== 'string') {
      if (last.sense?.key === SenseKey.MEDIUM_ERROR && last.sense.asc === Asc.MEDIUM_FORMAT_CORRUPTED[0]) {
        // tgtd in fixed-block mode: end of data, or a block of another size.
        const why =
          `${this.what}: block ${blockId - 1} is past the end of data or not a ${this.dev.blockLength}-byte ` +
          `block: check the catalog's position for this set`;
        throw new TapeDriveError('ERR_LOCATE_PAST_EOD', why);
      }
      throw this.failure(`read block ${blockId - 1} of`, last);
    }
  }

  /**
   * Whether the cartridge is blank: REWIND, then READ the first object. A fixed-block READ at end
   * of data answers BLANK CHECK on SSC-3 drives, but MEDIUM ERROR 03/31/00 on tgtd (its end of
   * data has no block size, so it reports a size mismatch); that answer is asked again in
   * variable-block mode, where tgtd says BLANK CHECK with EOM. The block size is restored. Leaves
   * the drive after the object read (at the start when blank).
   */
  async isBlank(): Promise<boolean> {
    await this.rewind();
    const first = await this.readObject();
    if (typeof first === 'string') return first === 'eod';
    const fixed = this.dev.blockLength;
    const mismatch = first.sense?.key === SenseKey.MEDIUM_ERROR && first.sense.asc === Asc.MEDIUM_FORMAT_CORRUPTED[0];
    if (!fixed || !mismatch) throw this.failure('read the first block of', first);
    await this.setFixedBlock(0);
    try {
      await this.rewind();
      const again = await this.readObject();
      if (typeof again !== 'string') throw this.failure('read the first record of', again);
      return again === 'eod';
    } finally {
      await this.setFixedBlock(fixed);
    }
  }

  /**
   * READ(6) of one object: one block in fixed-block mode, one byte of the record in variable mode
   * (a longer record is passed over with ILI). What it met, or the failed command.
   */
  private async readObject(): Promise<'data' | 'filemark' | 'eod' | CommandResult> {
    const bl = this.dev.blockLength;
    const r = await this.session.command(this.lun, buildRead6(1, { fixed: bl !== 0 }), {
      inLength: bl || 1,
      allowCheckCondition: true,
    });
    if (r.status === ScsiStatus.GOOD) return 'data';
    const s = r.sense;
    if (r.status !== ScsiStatus.CHECK_CONDITION || !s) return r;
    if (s.filemark) return 'filemark';
    if (isEndOfData(r)) return 'eod';
    if (s.key === SenseKey.NO_SENSE && s.ili) return 'data';
    return r;
  }

  async rewind(): Promise<void> {
    await this.dev.rewind();
  }

  /**
   * SSC-3 ERASE(6) LONG at the position: end of data here, so what a failed job left after the
   * last complete set no longer counts against the remaining capacity. False when the drive does
   * not implement ERASE (the next WRITE truncates there anyway).
   */
  async eraseFromHere(): Promise<boolean> {
    const r = await this.session.command(this.lun, buildErase6({ long: true }), { allowCheckCondition: true });
    if (r.status === ScsiStatus.GOOD) return true;
    if (r.sense?.key === SenseKey.ILLEGAL_REQUEST) return false;
    throw this.failure('erase after the last set on', r);
  }

  /** SSC-3 SPACE(6) to end of data (code 3), where the next backup set is appended. */
  async spaceEod(): Promise<void> {
    const cdb = buildSpace6(SpaceCode.END_OF_DATA, 0);
    const r = await this.session.command(this.lun, cdb, { allowCheckCondition: true });
    if (r.status !== ScsiStatus.GOOD) throw this.failure('space to end of data on', r);
  }

  /** Read `count` fixed blocks (into `into` when given), as TapeDevice.read reports them. */
  async readBlocks(count: number, into?: Uint8Array): Promise<BlockReadResult> {
    const bl = this.dev.blockLength;
    if (bl === 0) {
      const why = `${this.what} is in variable-block mode: call setFixedBlock() first`;
      throw new TapeDriveError('ERR_NOT_FIXED_BLOCK', why);
    }
    if (!Number.isInteger(count) || count < 1) {
      throw new TapeDriveError('ERR_BLOCK_COUNT', `block count ${count} is not a whole number ≥ 1`);
    }
    const n = count * bl;
    if (into && into.length < n) {
      const why = `${count} blocks of ${bl} bytes need ${n} bytes, the buffer has ${into.length}`;
      throw new TapeDriveError('ERR_BUFFER_TOO_SMALL', why);
    }
    const buf = (into ?? new Uint8Array(n)).subarray(0, n);
    const res = await this.dev.read(buf);
    return { ...res, data: buf.subarray(0, res.kind === 'data' ? res.bytes : 0) };
  }

  /**
   * Bytes left on the cartridge from MAM attribute 0000h REMAINING CAPACITY IN PARTITION (MiB,
   * SPC-4 READ ATTRIBUTE); undefined when the drive has no READ ATTRIBUTE or no such attribute.
   */
  async remainingCapacityBytes(): Promise<number | undefined> {
    const cdb = buildReadAttribute(0x00, MAM_REMAINING_CAPACITY, 4096);
    const r = await this.session.command(this.lun, cdb, { inLength: 4096, allowCheckCondition: true });
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === SenseKey.ILLEGAL_REQUEST) return undefined;
    if (r.status !== ScsiStatus.GOOD) throw this.failure('read the medium attributes of', r);
    const mib = findAttribute(r.data, MAM_REMAINING_CAPACITY);
    if (!mib || mib.length !== 8) return undefined;
    return new ByteReader(mib).u64(0) * (1 << 20);
  }

  /** MAM attribute 0003h LOAD COUNT of the cartridge in the drive; undefined when the drive does not report it. */
  async loadCount(): Promise<number | undefined> {
    const cdb = buildReadAttribute(0x00, MAM_LOAD_COUNT, 4096);
    const r = await this.session.command(this.lun, cdb, { inLength: 4096, allowCheckCondition: true });
    if (r.status !== ScsiStatus.GOOD) return undefined;
    const v = findAttribute(r.data, MAM_LOAD_COUNT);
    return v && v.length === 8 ? new ByteReader(v).u64(0) : undefined;
  }

  /** SSC-3 LOAD UNLOAD with LOAD=0: rewind and eject, ready for the changer. No medium: nothing to do. */
  async unload(): Promise<void> {
    const r = await this.session.command(this.lun, buildLoadUnload(false), { allowCheckCondition: true });
    if (r.status === ScsiStatus.GOOD) return;
    if (r.sense?.key === SenseKey.NOT_READY && r.sense.asc === Asc.MEDIUM_NOT_PRESENT[0]) return;
    if (r.sense?.key === SenseKey.ILLEGAL_REQUEST && r.sense.asc === Asc.MEDIUM_REMOVAL_PREVENTED[0]) {
      const why = `${this.what}: medium removal is prevented by an initiator: release it, then unload`;
      throw new TapeDriveError('ERR_MEDIUM_REMOVAL_PREVENTED', why);
    }
    throw this.failure('unload', r);
  }

  /** The LU's NAA designator (VPD 83h, association LU), which EXTENDED COPY CSCDs name. */
  async designator(): Promise<Designator> {
    const page = (await this.session.command(this.lun, buildInquiry(4096, 0x83), { inLength: 4096 })).data;
    const naa = decodeDeviceIdentificationPage(page).find((d) => d.designatorType === 3 && d.association === 0);
    if (!naa) {
      const why = `${this.what} reports no NAA designator in VPD page 83h: copy targets cannot name it`;
      throw new TapeDriveError('ERR_NO_NAA', why);
    }
    return naa;
  }

  private pastEod(blockId: number): TapeDriveError {
    const why = `${this.what}: block ${blockId} is past the end of data: check the catalog's position for this set`;
    return new TapeDriveError('ERR_LOCATE_PAST_EOD', why);
  }

  private noMedium(): TapeDriveError {
    const why = `${this.what} has no cartridge: load one through the changer first`;
    return new TapeDriveError('ERR_DRIVE_NO_MEDIUM', why);
  }

  private failure(what: string, r: CommandResult): TapeDriveError {
    if (r.sense?.key === SenseKey.NOT_READY && r.sense.asc === Asc.MEDIUM_NOT_PRESENT[0]) return this.noMedium();
    const e = new ScsiCommandError(r.status, r.rawSense);
    return new TapeDriveError('ERR_DRIVE_COMMAND', `cannot ${what} ${this.what}: ${e.message}`, { cause: e });
  }
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** SPACE(6) COUNT is a 24-bit two's complement number. */
const SPACE6_MAX = 0x7fffff;

/** ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE: the drive does not have the command. */
function isInvalidOpcode(r: CommandResult): boolean {
  const [asc, ascq] = Asc.INVALID_COMMAND_OPERATION_CODE;
  return (
    r.status === ScsiStatus.CHECK_CONDITION &&
    r.sense?.key === SenseKey.ILLEGAL_REQUEST &&
    r.sense.asc === asc &&
    r.sense.ascq === ascq
  );
}

/**
 * End of data met: SSC-3 BLANK CHECK (08/00/05); tgtd answers a SPACE that meets it with NO SENSE
 * 00/05 (no EOM) and a variable-mode READ with BLANK CHECK + EOM 08/00/00; NO SENSE with EOM and
 * no ILI as RemoteTapeDevice reads it.
 */
function isEndOfData(r: CommandResult): boolean {
  const s = r.sense;
  if (r.status !== ScsiStatus.CHECK_CONDITION || !s) return false;
  if (s.key === SenseKey.BLANK_CHECK) return true;
  const [asc, ascq] = Asc.END_OF_DATA_DETECTED;
  return s.key === SenseKey.NO_SENSE && ((s.asc === asc && s.ascq === ascq) || (s.eom && !s.ili && !s.filemark));
}

/**
 * SPC-4 READ ATTRIBUTE, ATTRIBUTE VALUES: 0–3 AVAILABLE DATA; then attributes of 0–1 ATTRIBUTE
 * IDENTIFIER, 2 READ ONLY b7 FORMAT b1:0, 3–4 ATTRIBUTE LENGTH, 5… value.
 */
function findAttribute(data: Uint8Array, id: number): Uint8Array | undefined {
  const r = new ByteReader(data);
  if (data.length < 4) return undefined;
  const end = Math.min(data.length, 4 + r.u32(0));
  for (let at = 4; at + 5 <= end;) {
    const len = r.u16(at + 3);
    if (at + 5 + len > end) return undefined;
    if (r.u16(at) === id) return data.subarray(at + 5, at + 5 + len);
    at += 5 + len;
  }
  return undefined;
}
