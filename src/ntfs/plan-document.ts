import type { SkippedRecord } from './tree.ts';
import type { FilePlan } from './plan-tables.ts';

/** Plan format version (docs/ntfs.md). */
export const PLAN_VERSION = 1;

// The plan document: what `ferry ntfs plan --json` prints and restore reads (docs/ntfs.md).

/** One attribute: resident → its whole attribute record; non-resident → its headers plus block runs. */
export interface PlanAttribute {
  type: number;
  typeName: string;
  name: string;
  resident: boolean;
  /** Data size in bytes (the value length when resident). */
  size: number;
  /** Resident: the whole attribute record (header + value); the value starts at `valueOffset`. */
  bytes?: PlanBytes;
  valueOffset?: number;
  /** Non-resident: attribute flags (compression, sparse), sizes, and every extent's attribute record (base64). */
  flags?: number;
  compressionUnit?: number;
  allocatedSize?: number;
  initializedSize?: number;
  headers?: PlanBytes[];
  /** Non-resident: [vcn, clusterCount, lba] with lba null for a hole; lba is in device blocks. */
  runs?: [number, number, number | null][];
}

export interface PlanName {
  parent: number;
  name: string;
  namespace: number;
}

export interface PlanFile {
  record: number;
  seq: number;
  /** Absolute path through the first non-DOS name (null when the parent chain is broken). */
  path: string | null;
  type: 'file' | 'dir' | 'symlink' | 'reparse';
  names: PlanName[];
  fileAttributes: number;
  /** $STANDARD_INFORMATION security id (NTFS 3.x: the descriptor in /$Secure), null without one. */
  securityId: number | null;
  /** $STANDARD_INFORMATION times, ms since 1970 UTC (null without one). */
  createdMs: number | null;
  modifiedMs: number | null;
  changedMs: number | null;
  accessedMs: number | null;
  attributes: PlanAttribute[];
}

export interface NtfsPlan {
  version: number;
  blockSize: number;
  clusterSize: number;
  sectorSize: number;
  clusterCount: number;
  serial: string;
  files: PlanFile[];
  /** Every block the file-level backup reads: [lba, blockCount], sorted and merged. */
  extents: [number, number][];
  /** The used-blocks plan: allocated clusters, plus the backup boot sector past the last cluster. */
  used: UsedPlan;
  skipped: SkippedRecord[];
}

export interface UsedPlan {
  ranges: [number, number][];
  backupBootByteOffset: number;
  extents: [number, number][];
}

/** Bytes in memory; base64 strings once the plan went through JSON (planToJson). */
export type PlanBytes = Uint8Array | string;

export function planBytes(b: PlanBytes | undefined): Uint8Array {
  return b === undefined ? new Uint8Array(0) : typeof b === 'string' ? Buffer.from(b, 'base64') : b;
}

/** The plan as JSON (docs/ntfs.md): byte fields become base64 strings; files are stringified one at a time. */
export function planToJson(plan: FilePlan): string {
  const j = JSON.stringify;
  const parts = [
    `{"version":${plan.version},"blockSize":${plan.blockSize},"clusterSize":${plan.clusterSize},` +
      `"sectorSize":${plan.sectorSize},"clusterCount":${plan.clusterCount},"serial":${j(plan.serial)},"files":[`,
  ];
  for (let i = 0; i < plan.fileCount; i++) parts.push(i ? `,${j(plan.file(i, true))}` : j(plan.file(i, true)));
  parts.push(`],"extents":${j(plan.extents)},"used":${j(plan.used)},"skipped":${j(plan.skipped)}}`);
  return parts.join('');
}
