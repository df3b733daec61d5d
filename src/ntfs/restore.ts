import type { BlockDevice } from '../block/block-device.ts';
import { HOLE, type Run } from './data-runs.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { planBytes, type NtfsPlan, type PlanAttribute, type PlanFile } from './plan-document.ts';
import { streamContent, type AttrContent, type ClusterSource } from './stream.ts';

/**
 * Restore side: rebuild an attribute's content from its plan entry alone (resident bytes, or
 * runs whose LBAs are read from `dev`, the restored blocks). Same rules as reading the volume:
 * holes and bytes past the initialized size are zeros, compressed units are LZNT1-decoded.
 */
export function planContent(
  plan: Pick<NtfsPlan, 'clusterSize' | 'blockSize'>,
  file: Pick<PlanFile, 'record'>,
  a: Omit<PlanAttribute, 'typeName'>,
): AttrContent {
  if (a.resident) {
    const bytes = planBytes(a.bytes);
    const at = a.valueOffset ?? 0;
    if (at + a.size > bytes.length)
      throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE, 'plan: resident value past its bytes', {
        record: file.record,
        expected: at + a.size,
        actual: bytes.length,
      });
    return {
      record: file.record,
      resident: true,
      value: new Uint8Array(bytes.buffer, bytes.byteOffset + at, a.size),
      flags: 0,
      compressionUnit: 0,
      dataSize: a.size,
      initializedSize: a.size,
      runs: [],
    };
  }
  const bpc = plan.clusterSize / plan.blockSize;
  const runs: Run[] = (a.runs ?? []).map(([vcn, length, lba]) => ({
    vcn,
    length,
    lcn: lba === null ? HOLE : lba / bpc,
  }));
  return {
    record: file.record,
    resident: false,
    flags: a.flags ?? 0,
    compressionUnit: a.compressionUnit ?? 0,
    dataSize: a.size,
    initializedSize: a.initializedSize ?? a.size,
    runs,
  };
}

/** Clusters read back through a BlockDevice holding the volume's blocks at their original LBAs. */
export function deviceClusters(dev: BlockDevice, clusterSize: number): ClusterSource {
  const bpc = clusterSize / dev.blockSize;
  return { clusterSize, readClusters: (lcn, count) => dev.read(lcn * bpc, count * bpc) };
}

/** Stream one attribute of a planned file, rebuilt from the plan and the restored blocks. */
export function rebuildAttribute(
  plan: NtfsPlan,
  dev: BlockDevice,
  file: PlanFile,
  a: PlanAttribute,
): AsyncGenerator<Uint8Array> {
  return streamContent(deviceClusters(dev, plan.clusterSize), planContent(plan, file, a));
}
