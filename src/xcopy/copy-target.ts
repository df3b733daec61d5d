import type { BlockDevice } from '../block/block-device.ts';
import type { TapeDevice } from '../tape/tape-device.ts';

/**
 * What a CSCD descriptor resolves to: a block device (disk LU, snapshot, remote LUN) or a
 * stream device (tape drive, local or remote). The copy manager only ever sees these seams.
 */
export type CopyTarget =
  | {
      readonly kind: 'block';
      readonly device: BlockDevice;
      readonly peripheralDeviceType?: number;
      readonly lu?: string;
    }
  | {
      readonly kind: 'stream';
      readonly device: TapeDevice;
      readonly peripheralDeviceType?: number;
      readonly lu?: string;
    };
// `lu`: which logical unit this is, where each lookup makes a new device object (a remote LU).
// Targets with the same `lu` are one LU: the copy manager uses one device object for all of
// them, so the engine sees when two CSCDs name the same blocks.

/** A VPD 83h designation descriptor's identifying fields (SPC-4 7.8.6.1). */
import type { Designator } from '../scsi/device-identification.ts';

export type { Designator };

/**
 * Remote LUs the mover can reach through its own configured portals (SendTargets + login +
 * INQUIRY VPD 83h). Implemented by the initiator; the copy manager asks it only after the
 * LUs mapped to the requesting session. Never a global lookup (CVE-2020-28374).
 */
export interface RemoteCopyTargets {
  find(designator: Designator, signal: AbortSignal): Promise<CopyTarget | undefined>;
}

export function sameDesignator(a: Designator, b: Designator): boolean {
  if (a.codeSet !== b.codeSet || a.association !== b.association || a.designatorType !== b.designatorType) return false;
  if (a.designator.length !== b.designator.length) return false;
  for (let i = 0; i < a.designator.length; i++) if (a.designator[i] !== b.designator[i]) return false;
  return true;
}
