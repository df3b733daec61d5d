import type { BlockDevice } from '../block/block-device.ts';
import { ScsiStatus, type LogicalUnit, type Nexus, type ResetKind, type ScsiResult, type ScsiTask } from './task.ts';
import { runCommand, type CommandEntry, type CommandTable } from './command-table.ts';
import { SpcState, VersionDescriptor, spcGate, type SpcLu, type VpdBuilder } from './spc.ts';
import { SenseError, SenseKey, Asc } from './sense.ts';
import type { LuIdentity } from './identity.ts';
import { SBC_COMMANDS, sbcVpdPages, sbcModePages, DiskLimits } from './sbc.ts';
import type { SenseFormat } from './sense.ts';

export interface DiskLuOptions {
  identity: LuIdentity;
  /** Standard INQUIRY 3PC: set by the copy-manager module when it serves EXTENDED COPY. */
  threePC?: boolean;
  /**
   * RMB=1 (default): START STOP UNIT with LOEJ ejects and loads the virtual medium and PREVENT
   * ALLOW MEDIUM REMOVAL is honoured. Set false to present a fixed disk.
   */
  removable?: boolean;
  /**
   * Physical block size for READ CAPACITY(16) LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT and the
   * optimal unmap granularity. Default: the logical block size. 4096 on a 512-byte LU reports
   * 512e, which is what the host page cache does; libiscsi 1.19's GetLBAStatus.UnmapSingle then
   * fails by its own defect (docs/conformance.md), so it is opt-in.
   */
  physicalBlockSize?: number;
  /** SANITIZE runs in the background at this many bytes per second (default 8 MiB/s). */
  sanitizeBytesPerSecond?: number;
  /** Bugs (non-SenseError exceptions) are reported here before becoming 04h/44h/00h. */
  onInternalError?: (err: unknown, task: ScsiTask) => void;
}

/**
 * Lets ordinary writes run concurrently while COMPARE AND WRITE / ORWRITE / SANITIZE run
 * alone (SBC-3 5.2: the compare and the write are one atomic operation w.r.t. other writes).
 */
export class WriteGate {
  private shared = 0;
  private exclusive = false;
  private pendingExclusive = 0;
  private waiters: Array<() => void> = [];

  /** Enter as an ordinary writer (waits while an exclusive user holds or awaits the gate). */
  async enterShared(): Promise<() => void> {
    while (this.exclusive || this.pendingExclusive > 0) await this.wait();
    this.shared++;
    return () => {
      this.shared--;
      this.wake();
    };
  }

  async enterExclusive(): Promise<() => void> {
    this.pendingExclusive++;
    try {
      while (this.exclusive || this.shared > 0) await this.wait();
    } finally {
      this.pendingExclusive--;
    }
    this.exclusive = true;
    return () => {
      this.exclusive = false;
      this.wake();
    };
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** More commands, VPD pages and reset hooks for a LU: how src/xcopy adds the copy manager. */
export interface LuExtension<L> {
  readonly commands: Iterable<[number, CommandEntry<L>]>;
  readonly vpd?: Iterable<[number, VpdBuilder]>;
  /** Standard INQUIRY 3PC (the LU is a copy manager). */
  readonly threePC?: boolean;
  reset?(kind: ResetKind, from: Nexus): void;
  nexusLost?(nexus: Nexus): void;
}

/** A SCSI direct-access block device (SBC-3/4) over a BlockDevice. */
export class DiskLu implements LogicalUnit, SpcLu {
  readonly deviceType = 0x00;
  readonly spc: SpcState;
  get senseFormat(): SenseFormat {
    return this.spc.senseFormat;
  }
  readonly device: BlockDevice;
  readonly limits = DiskLimits;
  readonly gate = new WriteGate();
  readonly sanitizeBytesPerSecond: number;
  readonly physicalBlockSize: number;
  /** LOEJ state of the virtual medium. */
  mediumPresent = true;
  /** I_T nexuses that sent PREVENT ALLOW MEDIUM REMOVAL with PREVENT=01b. SBC-3 5.13 */
  readonly preventers = new Set<string>();
  /** A SANITIZE in progress (NOT READY 04h/1Bh for most commands until it settles). */
  sanitizing: Promise<void> | undefined;
  /** Progress of the sanitize in progress, 0..65535 (SPC-4 4.5.2.4.4). */
  sanitizeProgress = 0;
  private readonly onInternalError?: (err: unknown, task: ScsiTask) => void;
  private table: CommandTable<DiskLu> = SBC_COMMANDS;
  private readonly extensions: LuExtension<DiskLu>[] = [];

  constructor(device: BlockDevice, opts: DiskLuOptions) {
    if (device.blockSize !== 512 && device.blockSize !== 4096)
      throw new RangeError(`block size ${device.blockSize}: a disk LU uses 512 or 4096`);
    this.device = device;
    this.spc = new SpcState({
      identity: opts.identity,
      deviceType: this.deviceType,
      threePC: opts.threePC,
      removable: opts.removable ?? true,
      versionDescriptors: [VersionDescriptor.SBC_3],
    });
    this.spc.table = SBC_COMMANDS;
    for (const [code, b] of sbcVpdPages(this)) this.spc.vpd.set(code, b);
    for (const p of sbcModePages()) this.spc.modePages.add(p);
    this.spc.modeHeader = () => ({
      deviceSpecific: (this.writeProtected ? 0x80 : 0) | 0x10, // WP, DPOFUA
      blockDescriptor: { blockCount: this.device.blockCount, blockSize: this.device.blockSize },
    });
    this.sanitizeBytesPerSecond = opts.sanitizeBytesPerSecond ?? 8 << 20;
    this.physicalBlockSize = opts.physicalBlockSize ?? device.blockSize;
    if (
      this.physicalBlockSize < device.blockSize ||
      this.physicalBlockSize % device.blockSize !== 0 ||
      (this.physicalBlockSize & (this.physicalBlockSize - 1)) !== 0
    ) {
      throw new RangeError(
        `physical block size ${this.physicalBlockSize} must be a power-of-two multiple of ${device.blockSize}`,
      );
    }
    this.onInternalError = opts.onInternalError;
  }

  /** Hardware (read-only device) or software (SWP in the control mode page) write protection. */
  get writeProtected(): boolean {
    return this.device.readOnly || this.spc.softwareWriteProtect;
  }

  /** The copy manager's view of this LU (src/xcopy/resolver.ts CopyCapableLu). */
  get blockDevice(): BlockDevice {
    return this.device;
  }

  /** Serve more commands (listed by REPORT SUPPORTED OPERATION CODES too) and VPD pages. */
  extend(ext: LuExtension<DiskLu>): void {
    this.table = new Map([...this.table, ...ext.commands]);
    this.spc.table = this.table;
    for (const [code, b] of ext.vpd ?? []) this.spc.vpd.set(code, b);
    if (ext.threePC) this.spc.threePC = true;
    this.extensions.push(ext);
  }

  async execute(task: ScsiTask): Promise<ScsiResult> {
    const r = await runCommand(this.table, this, task, {
      gate: (entry, t) => spcGate(this, entry, t),
      senseFormat: () => this.spc.senseFormat,
      onInternalError: (err, t) => {
        if (!t.signal.aborted) this.onInternalError?.(err, t);
      },
    });
    // SAM-5 5.6: an aborted task ends TASK ABORTED (the transport may send nothing at all).
    return task.signal.aborted ? { status: ScsiStatus.TASK_ABORTED } : r;
  }

  /** NOT READY reasons, in SPC-4 priority: sanitize in progress, then no medium. */
  notReady(): SenseError | undefined {
    if (this.sanitizing) {
      const ssk = Uint8Array.of(0, this.sanitizeProgress >> 8, this.sanitizeProgress & 0xff);
      return new SenseError(SenseKey.NOT_READY, Asc.LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS, {
        senseKeySpecific: ssk,
      });
    }
    if (!this.mediumPresent) return new SenseError(SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT);
    return undefined;
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

  /** The device grew or shrank underneath: every nexus learns on its next command. SBC-3 4.11 */
  capacityChanged(): void {
    this.spc.ua.addAll(Asc.CAPACITY_DATA_HAS_CHANGED);
  }

  /** Set by close(): a sanitize in progress finishes at full speed instead of paced. */
  sanitizeHurry = false;

  async close(): Promise<void> {
    this.sanitizeHurry = true;
    await this.sanitizing?.catch(() => undefined);
    await this.device.flush();
  }
}
