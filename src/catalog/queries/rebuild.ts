// Catalog rebuild, the reconciler half (docs/on-tape-format.md "Catalog rebuild"): what a scan of
// the cartridges found goes into the catalog in ONE transaction. The scanner (src/jobs/rebuild.ts)
// reads labels, headers and trailers; this module decides which sets are whole and writes them.
import {
  decodeFileIndex,
  type FileIndex,
  type SetHeader,
  type SetTrailer,
  type VolumeLabel,
} from '../../tapeformat/records.ts';
import { getCartridge, upsertCartridge, type CartridgeInput } from './cartridges.ts';
import { inTransaction, type Db } from './common.ts';
import { getSet, getSetByUuid, insertCompletedSet, type BackupSet, type SetPiece } from './sets.ts';
import { insertSetFiles } from './files.ts';
import { getVolume, upsertVolume } from './volumes.ts';

/** A set piece whose header and trailer were read and checked (checkPiece, trailer position). */
export interface ScannedPiece {
  header: SetHeader;
  trailer: SetTrailer;
  headerBlock: number;
  dataBlock: number;
  dataBlocks: number;
  trailerBlock: number;
  /** Block id after the piece's filemark. */
  endBlock: number;
}

/** A header with no valid trailer, or a record that is no header where one should be. */
export interface IncompletePiece {
  headerBlock: number;
  setUuid: string | null;
  setId: number | null;
  sequence: number | null;
  why: string;
}

/** What the scanner learnt about one cartridge. */
export interface ScannedCartridge {
  barcode: string;
  /** Library name (or stand-alone drive name). */
  library: string | null;
  /** `labeled`: a Ferry label was read; `blank`: end of data at block 0; `error`: neither. */
  kind: 'labeled' | 'blank' | 'error';
  label: VolumeLabel | null;
  /** For `error`: what is wrong, in words. */
  error: string | null;
  /** Valid pieces, in tape order. */
  pieces: ScannedPiece[];
  incomplete: IncompletePiece[];
  /** Block id after the label's filemark: where the first set starts. */
  labelEndBlock: number;
}

export interface RebuildOutcome {
  /** Ids of the sets written, in id order. */
  inserted: number[];
  /** Sets found whole on tape that the catalog already had (by uuid): left alone. */
  existing: number[];
  /** Sets not written, with why. */
  skipped: Array<{ uuid: string; why: string }>;
}

interface Candidate {
  set: BackupSet;
  pieces: SetPiece[];
  header: SetHeader;
  /** A files set's index, from its last trailer. */
  files?: FileIndex;
}

/**
 * Group the pieces by set and keep the sets whose pieces 1..n are all there, each starting where
 * the previous ended, the last one complete. Pure: no catalog access.
 */
export function wholeSets(scans: readonly ScannedCartridge[]): {
  candidates: Candidate[];
  skipped: RebuildOutcome['skipped'];
} {
  const bySet = new Map<string, Array<{ p: ScannedPiece; cart: ScannedCartridge }>>();
  for (const c of scans) {
    for (const p of c.pieces) {
      const list = bySet.get(p.header.setUuid) ?? [];
      list.push({ p, cart: c });
      bySet.set(p.header.setUuid, list);
    }
  }
  const candidates: Candidate[] = [];
  const skipped: RebuildOutcome['skipped'] = [];
  for (const [uuid, found] of bySet) {
    found.sort((a, b) => a.p.header.sequence - b.p.header.sequence);
    const why = incompleteWhy(found.map((f) => f.p));
    if (why) {
      skipped.push({ uuid, why: `set ${found[0].p.header.setId}: ${why}` });
      continue;
    }
    const first = found[0];
    const last = found.at(-1)!;
    const h = first.p.header;
    let files: FileIndex | undefined;
    try {
      files = last.p.trailer.fileIndex === undefined ? undefined : decodeFileIndex(last.p.trailer.fileIndex);
    } catch (e) {
      skipped.push({ uuid, why: `set ${h.setId}: its file index does not decode (${(e as Error).message})` });
      continue;
    }
    candidates.push({
      header: h,
      ...(files ? { files } : {}),
      set: {
        id: h.setId,
        uuid,
        volumeId: h.volume.name,
        jobId: null,
        pool: first.cart.label?.pool ?? '',
        mode: h.mode,
        level: h.level,
        baseSetId: h.baseSetId,
        snapshotId: h.snapshot.id,
        snapshotAt: h.snapshot.takenAt,
        diskBlockBytes: h.diskBlockBytes,
        volumeBlocks: h.volumeBlocks,
        tapeBlockBytes: h.tapeBlockBytes,
        extents: h.extents.map((e) => ({ lba: e.lba, blocks: e.blocks, streamOffset: e.streamOffset })),
        streamBytes: last.p.trailer.streamBytes,
        sha256: last.p.trailer.digests.sha256,
        reason: h.reason ?? null,
        startedAt: h.startedAt,
        endedAt: last.p.trailer.endedAt,
      },
      pieces: found.map(({ p, cart }) => ({
        seq: p.header.sequence,
        cartridge: cart.barcode,
        headerBlock: p.headerBlock,
        dataBlock: p.dataBlock,
        dataBlocks: p.dataBlocks,
        trailerBlock: p.trailerBlock,
        endBlock: p.endBlock,
        streamStart: p.trailer.piece.streamStart,
        streamEnd: p.trailer.piece.streamEnd,
      })),
    });
  }
  // A header seen without a trailer whose set is not whole anywhere: a failed job's leftovers.
  const known = new Set([...bySet.keys()]);
  for (const c of scans) {
    for (const i of c.incomplete) {
      if (i.setUuid === null || known.has(i.setUuid)) continue;
      known.add(i.setUuid);
      skipped.push({
        uuid: i.setUuid,
        why: `set ${i.setId}: piece ${i.sequence} on ${c.barcode} at block ${i.headerBlock} is incomplete (${i.why})`,
      });
    }
  }
  candidates.sort((a, b) => a.set.id - b.set.id);
  return { candidates, skipped };
}

function incompleteWhy(ps: ScannedPiece[]): string | null {
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i];
    if (p.header.sequence !== i + 1) {
      return i > 0 && p.header.sequence === i
        ? `piece ${i} was found twice`
        : `piece ${i + 1} is missing (found pieces ${ps.map((x) => x.header.sequence).join(', ')})`;
    }
    if (i > 0) {
      const prev = ps[i - 1];
      if (p.trailer.piece.streamStart !== prev.trailer.piece.streamEnd) {
        return (
          `piece ${i + 1} starts at stream byte ${p.trailer.piece.streamStart}, piece ${i} ends at ` +
          `${prev.trailer.piece.streamEnd}`
        );
      }
      if (p.header.setId !== prev.header.setId || p.trailer.streamBytes !== prev.trailer.streamBytes)
        return `pieces ${i} and ${i + 1} disagree about the set`;
      if (prev.trailer.complete) return `piece ${i} says it is the last, yet piece ${i + 1} exists`;
    }
  }
  const last = ps.at(-1)!;
  if (!last.trailer.complete)
    return `pieces 1 to ${ps.length} found, the last one found is not complete: piece ${ps.length + 1} is missing`;
  return null;
}

function parseVolumeName(name: string): { node: string; lun: number } | null {
  const m = /^(.+):(\d+)$/.exec(name);
  return m ? { node: m[1], lun: Number(m[2]) } : null;
}

/**
 * The cartridge's row as the tape tells it. Its end is after the last piece of a whole set: a
 * failed job's leftovers after it (even a valid first piece of a set that never continued) are
 * space the next backup writes over. Full when that last piece continues on another cartridge;
 * a cartridge the catalog already calls full at the same end stays full.
 */
function cartridgeRow(
  c: ScannedCartridge,
  whole: ReadonlySet<string>,
  existing: { state: string; endBlock: number; uuid: string | null; recycledAt: string | null } | undefined,
): CartridgeInput {
  const base = { barcode: c.barcode, ...(c.library !== null ? { library: c.library } : {}) };
  if (c.kind === 'error') return { ...base, state: 'error', error: c.error ?? 'unreadable' };
  // Still in scratch since `ferry prune` expired its sets (the same label): it stays there.
  if (existing?.recycledAt && c.label && existing.uuid === c.label.cartridgeUuid) return base;
  if (c.kind === 'blank' || !c.label)
    return { ...base, state: 'blank', labeled: false, uuid: null, endBlock: 0, bytesUsed: 0, error: null };
  const last = c.pieces.filter((p) => whole.has(p.header.setUuid)).at(-1);
  const endBlock = last?.endBlock ?? c.labelEndBlock;
  const spansOn = last !== undefined && !last.trailer.complete;
  const keptFull = existing?.state === 'full' && existing.endBlock === endBlock;
  return {
    ...base,
    uuid: c.label.cartridgeUuid,
    pool: c.label.pool,
    labeled: true,
    state: spansOn || keptFull ? 'full' : 'append',
    endBlock,
    bytesUsed: endBlock * c.label.tapeBlockBytes,
    lastWrittenAt: last?.trailer.endedAt ?? c.label.createdAt,
    error: null,
  };
}

/**
 * Apply a scan: cartridges (state, pool, uuid, end of the last complete set), volumes that are
 * missing (with no kept change id, so their next backup is a full), and every whole set that the
 * catalog does not hold yet, with its pieces; a set whose base is neither in the catalog nor
 * rebuilt is skipped. All in one transaction: a failure writes nothing.
 */
export async function applyRebuild(db: Db, scans: readonly ScannedCartridge[]): Promise<RebuildOutcome> {
  const { candidates, skipped } = wholeSets(scans);
  return inTransaction(db, async (trx) => {
    const whole = new Set(candidates.map((c) => c.set.uuid));
    for (const c of scans) await upsertCartridge(trx, cartridgeRow(c, whole, await getCartridge(trx, c.barcode)));
    const inserted: number[] = [];
    const existing: number[] = [];
    const idOf = new Map<string, number>();
    let pending = candidates;
    // Bases first: a pass inserts every set whose base is known; repeat while that helps.
    for (let progress = true; pending.length && progress;) {
      const next: Candidate[] = [];
      for (const cand of pending) {
        const s = cand.set;
        const have = await getSetByUuid(trx, s.uuid);
        if (have) {
          existing.push(have.id);
          idOf.set(s.uuid, have.id);
          continue;
        }
        const clash = await getSet(trx, s.id);
        if (clash) {
          skipped.push({
            uuid: s.uuid,
            why: `set ${s.id}: the catalog has another set with id ${s.id} (uuid ${clash.uuid})`,
          });
          continue;
        }
        let baseSetId: number | null = null;
        if (s.level === 'incremental') {
          const baseUuid = cand.header.baseSetUuid!;
          const known = idOf.get(baseUuid) ?? (await getSetByUuid(trx, baseUuid))?.id;
          if (known === undefined) {
            if (pending.some((p) => p.set.uuid === baseUuid)) next.push(cand);
            else
              skipped.push({
                uuid: s.uuid,
                why:
                  `set ${s.id}: its base set ${cand.header.baseSetId} (${baseUuid}) is neither in the catalog nor ` +
                  `whole on the cartridges read`,
              });
            continue;
          }
          baseSetId = known;
        }
        const vol = parseVolumeName(s.volumeId);
        if (!vol) {
          skipped.push({ uuid: s.uuid, why: `set ${s.id}: volume name ${JSON.stringify(s.volumeId)} is not NODE:LUN` });
          continue;
        }
        if (!(await getVolume(trx, s.volumeId))) {
          const h = newestHeader(candidates, s.volumeId);
          await upsertVolume(trx, {
            ...vol,
            designator: h.volume.designator,
            diskBlockBytes: h.diskBlockBytes,
            volumeBlocks: h.volumeBlocks,
          });
        }
        await insertCompletedSet(trx, { ...s, baseSetId }, cand.pieces);
        if (cand.files) await insertSetFiles(trx, s.id, cand.files);
        inserted.push(s.id);
        idOf.set(s.uuid, s.id);
      }
      // What is left waits on a base still pending: another pass, unless this one changed nothing.
      progress = next.length < pending.length;
      pending = next;
      if (!progress) {
        for (const c of next)
          skipped.push({
            uuid: c.set.uuid,
            why: `set ${c.set.id}: its base set ${c.header.baseSetId} (${c.header.baseSetUuid}) was skipped`,
          });
      }
    }
    inserted.sort((a, b) => a - b);
    existing.sort((a, b) => a - b);
    return { inserted, existing, skipped };
  });
}

function newestHeader(candidates: readonly Candidate[], volumeId: string): SetHeader {
  const mine = candidates.filter((c) => c.set.volumeId === volumeId);
  return mine.reduce((a, b) => (b.set.id > a.set.id ? b : a)).header;
}
