import type { BlockDevice } from '../block/block-device.ts';
import { buildPlan } from '../ntfs/plan.ts';
import { type FilePlan } from '../ntfs/plan-tables.ts';
import { planBytes } from '../ntfs/plan-document.ts';
import { openVolume, type Volume } from '../ntfs/volume.ts';
import { decodeSecurityDescriptor, secureStore, type SecurityDescriptor } from '../ntfs/security.ts';
import { AttrType } from '../ntfs/record.ts';
import { planContent } from '../ntfs/restore.ts';
import { readContent } from '../ntfs/stream.ts';
import { NtfsFormatError } from '../ntfs/errors.ts';
import type { SkippedRecord } from '../ntfs/tree.ts';
import { tapePosition } from '../tapeformat/geometry.ts';
import type { FileIndex, IndexAttribute, IndexFile } from '../tapeformat/records.ts';
import type { StreamExtent } from '../xcopy/list-builder.ts';
import { FerryError } from '../util/errors.ts';

/**
 * A files set (docs/file-backup.md): the snapshot's NTFS metadata, read over iSCSI, gives the
 * plan (every file's attributes: resident ones whole, non-resident ones as runs); the set's data
 * stream is the blocks those runs point to, in LBA order, merged; the file index goes on tape in
 * the last trailer with each run's tape position.
 */

/** The plan of a files backup: every file, system files included, and the blocks they use. */
export async function planFiles(
  dev: BlockDevice,
  volume: string,
  onSkip: (s: SkippedRecord) => void,
): Promise<{ plan: FilePlan; ranges: Array<{ lba: number; blocks: number }> }> {
  let vol;
  try {
    vol = await openVolume(dev);
  } catch (e) {
    throw new FerryError(
      'ERR_NOT_NTFS',
      `volume ${volume} is not NTFS (${(e as Error).message}): back it up with --mode image`,
    );
  }
  const plan = await buildPlan(vol, { blockSize: dev.blockSize, system: true, onError: onSkip });
  owners.set(plan, await ownersOf(vol, plan, onSkip));
  // The file extents, then the boot sector's backup past the last cluster: a whole restore is mountable.
  const ranges = plan.extents.map(([lba, blocks]) => ({ lba, blocks }));
  const bootAt = plan.used.backupBootByteOffset;
  if (bootAt + plan.sectorSize <= dev.blockCount * dev.blockSize)
    ranges.push({ lba: Math.floor(bootAt / dev.blockSize), blocks: Math.max(1, plan.sectorSize / dev.blockSize) });
  return { plan, ranges };
}

type Sids = { owner?: string; group?: string };

/** Owner and group SIDs by MFT record, for the plans planFiles made. */
const owners = new WeakMap<FilePlan, ReadonlyMap<number, Sids>>();

/**
 * The owner and group of each file, as `ferry ntfs ls` finds them: its own $SECURITY_DESCRIPTOR,
 * else its security id in $Secure:$SDS (a system file's metadata, read once;
 * docs/file-backup.md). A descriptor that does not decode leaves them out.
 */
async function ownersOf(vol: Volume, plan: FilePlan, onSkip: (s: SkippedRecord) => void): Promise<Map<number, Sids>> {
  const out = new Map<number, Sids>();
  const store = await secureStore(vol).catch((e: unknown) => {
    if (!(e instanceof NtfsFormatError)) throw e;
    onSkip({ record: e.record, code: e.code, message: e.message });
    return undefined;
  });
  const byId = new Map<number, Sids>();
  const sids = (d: SecurityDescriptor | undefined): Sids => ({
    ...(d?.owner ? { owner: d.owner } : {}),
    ...(d?.group ? { group: d.group } : {}),
  });
  for (const f of plan.files()) {
    try {
      const own = f.attributes.find((a) => a.type === AttrType.SECURITY_DESCRIPTOR);
      if (own) {
        // Resident from the record; non-resident (a full record moved it out) from its cluster or two.
        const b = own.resident
          ? planBytes(own.bytes).subarray(own.valueOffset ?? 0, (own.valueOffset ?? 0) + own.size)
          : await readContent(vol, planContent(plan, f, own), 0, own.size);
        out.set(f.record, sids(decodeSecurityDescriptor(b, { record: f.record })));
      } else if (!own && f.securityId !== null && store) {
        let s = byId.get(f.securityId);
        if (!s) byId.set(f.securityId, (s = sids(store.descriptor(f.securityId))));
        out.set(f.record, s);
      }
    } catch (e) {
      if (!(e instanceof NtfsFormatError)) throw e;
    }
  }
  return out;
}

/** Where a piece of the set lies on tape. */
export interface PlacedPiece {
  seq: number;
  dataBlock: number;
  streamStart: number;
  streamEnd: number;
}

/**
 * The file index for the last trailer: the plan's files with each run's first byte placed on
 * tape as [sequence, blockId, offset] through the set's extents (sorted by LBA) and pieces.
 */
export function fileIndex(
  plan: FilePlan,
  extents: readonly StreamExtent[],
  pieces: readonly PlacedPiece[],
  diskBlockBytes: number,
  tapeBlockBytes: number,
  chain?: ChainSets,
): FileIndex {
  const place = (lba: number): [number, number, number] | null => {
    const e = extentAt(extents, lba);
    if (!e && chain) return null; // an incremental: the block is in an earlier set of the chain
    if (!e) throw new FerryError('ERR_FILE_INDEX', `block ${lba} of a file is not in the set's extents`);
    const s = e.streamOffset + (lba - e.lba) * diskBlockBytes;
    const p = pieces.find((x) => s >= x.streamStart && s < x.streamEnd);
    if (!p) throw new FerryError('ERR_FILE_INDEX', `stream byte ${s} is in no piece of the set`);
    const t = tapePosition({ streamStart: p.streamStart, dataBlockId: p.dataBlock }, s, tapeBlockBytes);
    return [p.seq, t.blockId, t.offset];
  };
  const files: IndexFile[] = [];
  for (const f of plan.files(true)) {
    const dataSet = chain ? holder(f.attributes, extents, chain) : undefined;
    const who = owners.get(plan)?.get(f.record);
    files.push({
      ...f,
      ...who,
      ...(dataSet !== undefined ? { dataSet } : {}),
      // The streams ($DATA) only, as a file restore needs them: resident values whole, runs placed
      // on tape. Every attribute record is also on tape in $MFT's blocks, and every other
      // non-resident attribute's blocks are in the set's extents (a whole restore needs them).
      attributes: f.attributes
        .filter((a) => a.type === AttrType.DATA)
        .map((a) => {
          const { headers: _headers, typeName: _typeName, ...rest } = a;
          if (a.resident) return rest as IndexAttribute;
          return {
            ...rest,
            tape: (a.runs ?? []).map(([, , lba]) => (lba === null ? null : place(lba))),
          } as IndexAttribute;
        }),
    });
  }
  const skipped = plan.skipped.map((s) => ({
    ...(s.record !== undefined ? { record: s.record } : {}),
    ...(s.path !== undefined ? { path: s.path } : {}),
    code: s.code,
    message: s.message,
  }));
  const deleted = chain ? chain.deleted : undefined;
  return {
    clusterSize: plan.clusterSize,
    sectorSize: plan.sectorSize,
    clusterCount: plan.clusterCount,
    serial: plan.serial,
    skipped,
    files,
    ...(deleted ? { deleted } : {}),
  };
}

/** An incremental's chain: the sets before it, newest first, and the paths gone since its base. */
export interface ChainSets {
  sets: Array<{ id: number; extents: ReadonlyArray<{ lba: number; blocks: number }> }>;
  deleted: string[];
}

/**
 * The earlier set of the chain that holds an unchanged file's data: undefined when this set holds
 * some of it (or it has no blocks: resident or empty streams are in this set's index).
 */
function holder(
  attrs: ReadonlyArray<{ type: number; resident: boolean; runs?: [number, number, number | null][] }>,
  extents: readonly StreamExtent[],
  chain: ChainSets,
): number | undefined {
  let first: number | undefined;
  for (const a of attrs) {
    if (a.type !== AttrType.DATA || a.resident) continue;
    for (const [, clusters, lba] of a.runs ?? []) {
      if (lba === null || clusters === 0) continue;
      if (extentAt(extents, lba)) return undefined;
      first ??= lba;
    }
  }
  if (first === undefined) return undefined;
  return chain.sets.find((s) => extentAt(s.extents, first) !== undefined)?.id;
}

/** The extent holding block `lba`; extents sorted by LBA, not overlapping. */
export function extentAt<E extends { lba: number; blocks: number }>(extents: readonly E[], lba: number): E | undefined {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid];
    if (lba < e.lba) hi = mid - 1;
    else if (lba >= e.lba + e.blocks) lo = mid + 1;
    else return e;
  }
  return undefined;
}
