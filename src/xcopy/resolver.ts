import type { BlockDevice } from '../block/block-device.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import type { LogicalUnit, ScsiTask } from '../scsi/task.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { buildInquiry } from '../scsi/cdb/spc.ts';
import { VpdPage } from '../scsi/spc.ts';
import type { CscdDescriptor } from './descriptors.ts';
import { sameDesignator, type CopyTarget, type Designator, type RemoteCopyTargets } from './copy-target.ts';

/**
 * CSCD → device. Looks ONLY at the LUs mapped to the requesting session (task.target.luns())
 * and then at the mover's own remote targets. Never a global lookup: LIO's CVE-2020-28374 was
 * exactly that (any backstore reachable by designator).
 */

/** What a LU shows the copy manager. DiskLu exposes `blockDevice`, the tape LU `tapeDevice`. */
export interface CopyCapableLu {
  readonly blockDevice?: BlockDevice;
  /** Undefined while no cartridge is loaded. */
  readonly tapeDevice?: TapeDevice;
  /** VPD 83h designators; without it the resolver asks the LU with INQUIRY. */
  designators?(): readonly Designator[];
}

export function luCopyTarget(lu: LogicalUnit): CopyTarget | undefined {
  const c = lu as LogicalUnit & CopyCapableLu;
  if (c.blockDevice) return { kind: 'block', device: c.blockDevice, peripheralDeviceType: lu.deviceType };
  if (c.tapeDevice) return { kind: 'stream', device: c.tapeDevice, peripheralDeviceType: lu.deviceType };
  return undefined;
}

export class CopyTargetResolver {
  private readonly remote?: RemoteCopyTargets;
  private readonly cache = new WeakMap<LogicalUnit, readonly Designator[]>();

  constructor(remote?: RemoteCopyTargets) {
    this.remote = remote;
  }

  /** SPC-5 Table 148 FFFFh: the LU the EXTENDED COPY was sent to. */
  own(task: ScsiTask): CopyTarget | undefined {
    const lu = task.target.luns().get(task.lun);
    return lu ? luCopyTarget(lu) : undefined;
  }

  /** SPC-5 6.4.5.6: an LU whose VPD 83h holds this exact designator. */
  async resolve(cscd: CscdDescriptor, task: ScsiTask): Promise<CopyTarget | undefined> {
    const want: Designator = cscd;
    for (const [lun, lu] of task.target.luns()) {
      const ids = await this.designatorsOf(lu, lun, task);
      if (ids.some((d) => sameDesignator(d, want))) {
        const t = luCopyTarget(lu);
        if (t) return t;
      }
    }
    return this.remote?.find(want, task.signal);
  }

  private async designatorsOf(lu: LogicalUnit, lun: number, task: ScsiTask): Promise<readonly Designator[]> {
    const c = lu as LogicalUnit & CopyCapableLu;
    if (typeof c.designators === 'function') return c.designators();
    const hit = this.cache.get(lu);
    if (hit) return hit;
    // INQUIRY EVPD=1 page 83h, executed on the LU as the requesting nexus would.
    const cdb = buildInquiry(0x1000, VpdPage.DEVICE_IDENTIFICATION);
    const res = await lu.execute({ ...task, cdb, lun, dataOut: new Uint8Array(0), expectedInLength: 0x1000 });
    const ids = res.status === ScsiStatus.GOOD && res.dataIn ? decodeDeviceIdentificationPage(res.dataIn) : [];
    if (res.status === ScsiStatus.GOOD) this.cache.set(lu, ids);
    return ids;
  }
}
