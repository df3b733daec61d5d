import type { LuExtension } from '../scsi/disk-lu.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import type { SpcLu } from '../scsi/spc.ts';
import { CopyManager, copyManagerCommands, thirdPartyCopyVpdBody, type CopyManagerOptions } from './copy-manager.ts';

/** A LU that takes extra commands: DiskLu and TapeDriveLu. */
export interface ExtensibleLu<L> extends LogicalUnit, SpcLu {
  extend(ext: LuExtension<L>): void;
}

/**
 * Make a disk or tape LU a copy manager: EXTENDED COPY and RECEIVE COPY RESULTS in its command
 * table, the Third-party Copy VPD page (8Fh), the 3PC bit, and its copies stopped on LU reset
 * or when an I_T nexus goes. DESIGN.md: every Ferry LU is a data mover.
 */
export function attachCopyManager<L extends ExtensibleLu<L>>(lu: L, opts: CopyManagerOptions = {}): CopyManager {
  const cm = new CopyManager(opts);
  lu.extend({
    commands: copyManagerCommands<L>(
      () => cm,
      (l) => l.spc.senseFormat,
    ),
    vpd: [[0x8f, () => thirdPartyCopyVpdBody(cm.limits)]],
    threePC: true,
    reset: () => cm.reset(),
    nexusLost: (nexus) => cm.nexusLost(nexus),
  });
  return cm;
}
