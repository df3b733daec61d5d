import { runCommand, type CommandTable } from '../scsi/command-table.ts';
import { SpcState, spcCommands, spcGate, type SpcLu } from '../scsi/spc.ts';
import type { LuIdentity } from '../scsi/identity.ts';
import type { LogicalUnit, Nexus, ResetKind, ScsiResult, ScsiTask } from '../scsi/task.ts';
import { CopyManager, copyManagerCommands, thirdPartyCopyVpdBody, type CopyManagerOptions } from './copy-manager.ts';
import { PDT } from './descriptors.ts';
import type { SenseFormat } from '../scsi/sense.ts';

/**
 * A LU that is only a copy manager: peripheral device type 03h (processor), the SPC commands,
 * EXTENDED COPY and RECEIVE COPY RESULTS. LU 0 of `ferry mover`. SPC-5 Table 134 note a.
 */
export class CopyManagerLu implements LogicalUnit, SpcLu {
  readonly deviceType = PDT.PROCESSOR;
  readonly spc: SpcState;
  get senseFormat(): SenseFormat {
    return this.spc.senseFormat;
  }
  readonly copyManager: CopyManager;
  private static readonly table: CommandTable<CopyManagerLu> = new Map([
    ...spcCommands<CopyManagerLu>(),
    ...copyManagerCommands<CopyManagerLu>(
      (lu) => lu.copyManager,
      (lu) => lu.spc.senseFormat,
    ),
  ]);
  private readonly onInternalError?: (err: unknown, task: ScsiTask) => void;

  constructor(
    identity: LuIdentity,
    opts: CopyManagerOptions & { onInternalError?: (err: unknown, task: ScsiTask) => void } = {},
  ) {
    this.copyManager = new CopyManager(opts);
    this.spc = new SpcState({ identity, deviceType: this.deviceType, threePC: true });
    this.spc.table = CopyManagerLu.table;
    this.spc.vpd.set(0x8f, () => thirdPartyCopyVpdBody(this.copyManager.limits));
    this.onInternalError = opts.onInternalError;
  }

  execute(task: ScsiTask): Promise<ScsiResult> {
    return runCommand(CopyManagerLu.table, this, task, {
      gate: (entry, t) => spcGate(this, entry, t),
      senseFormat: () => this.spc.senseFormat,
      onInternalError: this.onInternalError,
    });
  }

  reset(kind: ResetKind, _from: Nexus): void {
    this.spc.reset(kind);
    this.copyManager.reset();
  }

  nexusLost(nexus: Nexus): void {
    this.spc.nexusLost(nexus);
    this.copyManager.nexusLost(nexus);
  }

  async close(): Promise<void> {
    this.copyManager.reset();
  }
}
