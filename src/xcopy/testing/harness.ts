import type { BlockDevice } from '../../block/block-device.ts';
import type { TapeDevice } from '../../tape/tape-device.ts';
import { runCommand, type CommandTable } from '../../scsi/command-table.ts';
import {
  ScsiStatus,
  makeNexus,
  type LogicalUnit,
  type Nexus,
  type ScsiResult,
  type ScsiTask,
  type TargetContext,
} from '../../scsi/task.ts';
import { buildExtendedCopy } from '../../scsi/cdb/spc.ts';
import { CopyManager, copyManagerCommands, type CopyManagerOptions } from '../copy-manager.ts';
import type { Designator } from '../copy-target.ts';
import type { CscdInput } from '../descriptors.ts';

/** A LU for tests: a block or tape device, one NAA designator, and a copy manager. */
export class TestLu implements LogicalUnit {
  readonly deviceType: number;
  readonly blockDevice?: BlockDevice;
  readonly tapeDevice?: TapeDevice;
  readonly copyManager: CopyManager;
  readonly naa: Uint8Array;
  static readonly table: CommandTable<TestLu> = new Map(copyManagerCommands<TestLu>((lu) => lu.copyManager));

  constructor(dev: { block?: BlockDevice; tape?: TapeDevice }, naaSeed: number, opts?: CopyManagerOptions) {
    this.blockDevice = dev.block;
    this.tapeDevice = dev.tape;
    this.deviceType = dev.block ? 0x00 : 0x01;
    this.copyManager = new CopyManager(opts);
    // NAA 6h, IEEE company id 0x001405-ish test value, then the seed.
    this.naa = new Uint8Array([
      0x60,
      0x01,
      0x40,
      0x50,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      (naaSeed >> 8) & 0xff,
      naaSeed & 0xff,
    ]);
  }
  designators(): Designator[] {
    return [{ codeSet: 1, association: 0, designatorType: 3, designator: this.naa }];
  }
  cscd(opts: Partial<CscdInput> = {}): CscdInput {
    return {
      peripheralDeviceType: this.deviceType,
      codeSet: 1,
      association: 0,
      designatorType: 3,
      designator: this.naa,
      pad: false,
      fixed: this.tapeDevice ? this.tapeDevice.blockLength !== 0 : false,
      blockLength: this.blockDevice ? this.blockDevice.blockSize : (this.tapeDevice?.blockLength ?? 0),
      ...opts,
    };
  }
  execute(task: ScsiTask): Promise<ScsiResult> {
    return runCommand(TestLu.table, this, task);
  }
  reset(): void {
    this.copyManager.reset();
  }
  nexusLost(nexus: Nexus): void {
    this.copyManager.nexusLost(nexus);
  }
  async close(): Promise<void> {}
}

export function targetOf(luns: LogicalUnit[]): TargetContext {
  const map = new Map(luns.map((lu, i) => [i, lu]));
  return { targetName: 'iqn.2026-01.test:t', relativePortId: 1, luns: () => map };
}

export function nexus(isid = '400000000001'): Nexus {
  return makeNexus('iqn.2026-01.test:i', isid, 'iqn.2026-01.test:t', 1);
}

export interface SendOptions {
  lun?: number;
  nexus?: Nexus;
  signal?: AbortSignal;
  pll?: number;
}

export function send(
  target: TargetContext,
  cdb: Uint8Array,
  dataOut: Uint8Array = new Uint8Array(0),
  o: SendOptions = {},
): Promise<ScsiResult> {
  const lun = o.lun ?? 0;
  const lu = target.luns().get(lun)!;
  return lu.execute({
    cdb,
    lun,
    nexus: o.nexus ?? nexus(),
    target,
    dataOut,
    expectedInLength: 0x10000,
    signal: o.signal ?? new AbortController().signal,
  });
}

export function xcopy(target: TargetContext, list: Uint8Array, o: SendOptions = {}): Promise<ScsiResult> {
  return send(target, buildExtendedCopy(o.pll ?? list.length), list, o);
}

export const GOOD = ScsiStatus.GOOD;
