// Backup sets and where their pieces lie on tape. A set is written once, complete, in one transaction.
import type { Selectable, Transaction } from 'kysely';
import { FerryError } from '../../util/errors.ts';
import type { Database, SetPiecesTable, SetsTable } from '../schema.ts';
import { markCartridge, type CartridgeUpdate } from './cartridges.ts';
import { fromJson, inTransaction, notFound, num, numOrNull, toJson, type Db } from './common.ts';
import { setKeptChange } from './volumes.ts';
import { insertSetFiles } from './files.ts';
import type { FileIndex } from '../../tapeformat/records.ts';

export type SetMode = 'image' | 'used' | 'files';
export type SetLevel = 'full' | 'incremental';

/** A run of disk blocks and where it starts in the set's data stream. */
export interface Extent {
  lba: number;
  blocks: number;
  streamOffset: number;
}

export interface BackupSet {
  id: number;
  uuid: string;
  volumeId: string;
  jobId: number | null;
  pool: string;
  mode: SetMode;
  level: SetLevel;
  /** The set an incremental builds on; null for a full. */
  baseSetId: number | null;
  snapshotId: string;
  snapshotAt: string;
  diskBlockBytes: number;
  volumeBlocks: number;
  tapeBlockBytes: number;
  extents: Extent[];
  streamBytes: number;
  sha256: string | null;
  /** Why a requested incremental ran as a full. */
  reason: string | null;
  startedAt: string;
  endedAt: string;
  /** Read back from the catalog (a new set is neither). */
  protected?: boolean;
  /** When `ferry prune` expired it. */
  expiredAt?: string | null;
}

/** The part of a set on one cartridge (a set spans cartridges in seq order). Positions are tape block ids. */
export interface SetPiece {
  seq: number;
  cartridge: string;
  headerBlock: number;
  dataBlock: number;
  dataBlocks: number;
  trailerBlock: number;
  /** Block id after the filemark. */
  endBlock: number;
  streamStart: number;
  streamEnd: number;
}

export interface SetWithPieces extends BackupSet {
  pieces: SetPiece[];
}

/** A set as listed: no extents, and the barcodes it lies on in piece order. */
export interface SetSummary extends Omit<BackupSet, 'extents'> {
  cartridges: string[];
}

export interface CompletedSet {
  set: BackupSet;
  pieces: SetPiece[];
  /** Cartridge fill states after the set, applied in the same transaction. */
  cartridges: CartridgeUpdate[];
  /** The change id the volume's next incremental builds on, and the set it builds on. */
  volume?: { keptChangeId: string | null; keptSetId: number | null };
  /** A files set's index (the last trailer's). */
  files?: FileIndex;
}

function toSummary(r: Selectable<SetsTable>): Omit<BackupSet, 'extents'> {
  return {
    id: num(r.id),
    uuid: r.uuid,
    volumeId: r.volume_id,
    jobId: numOrNull(r.job_id),
    pool: r.pool,
    mode: r.mode as SetMode,
    level: r.level as SetLevel,
    baseSetId: numOrNull(r.base_set_id),
    snapshotId: r.snapshot_id,
    snapshotAt: r.snapshot_at,
    diskBlockBytes: num(r.disk_block_bytes),
    volumeBlocks: num(r.volume_blocks),
    tapeBlockBytes: num(r.tape_block_bytes),
    streamBytes: num(r.stream_bytes),
    sha256: r.sha256,
    reason: r.reason,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    protected: num(r.protected) !== 0,
    expiredAt: r.expired_at,
  };
}

function toSet(r: Selectable<SetsTable>): BackupSet {
  return { ...toSummary(r), extents: fromJson(r.extents) as Extent[] };
}

function toPiece(r: Selectable<SetPiecesTable>): SetPiece {
  return {
    seq: num(r.seq),
    cartridge: r.cartridge,
    headerBlock: num(r.header_block),
    dataBlock: num(r.data_block),
    dataBlocks: num(r.data_blocks),
    trailerBlock: num(r.trailer_block),
    endBlock: num(r.end_block),
    streamStart: num(r.stream_start),
    streamEnd: num(r.stream_end),
  };
}

function badSet(id: number, why: string): FerryError {
  return new FerryError('ERR_CATALOG_SET', `set ${id}: ${why}`);
}

/** Insert a complete set and its pieces inside the caller's transaction. */
export async function insertCompletedSet(
  trx: Transaction<Database>,
  set: BackupSet,
  pieces: readonly SetPiece[],
): Promise<void> {
  if (pieces.length === 0) throw badSet(set.id, 'has no pieces');
  for (let i = 1; i < pieces.length; i++) {
    if (pieces[i].seq !== pieces[i - 1].seq + 1) throw badSet(set.id, `piece seq ${pieces[i].seq} out of order`);
    if (pieces[i].streamStart !== pieces[i - 1].streamEnd) {
      throw badSet(
        set.id,
        `piece ${pieces[i].seq} starts at stream byte ${pieces[i].streamStart}, ` +
          `not where piece ${pieces[i - 1].seq} ends (${pieces[i - 1].streamEnd})`,
      );
    }
  }
  await trx
    .insertInto('sets')
    .values({
      id: set.id,
      uuid: set.uuid,
      volume_id: set.volumeId,
      job_id: set.jobId,
      pool: set.pool,
      mode: set.mode,
      level: set.level,
      base_set_id: set.baseSetId,
      snapshot_id: set.snapshotId,
      snapshot_at: set.snapshotAt,
      disk_block_bytes: set.diskBlockBytes,
      volume_blocks: set.volumeBlocks,
      tape_block_bytes: set.tapeBlockBytes,
      extents: toJson(set.extents),
      stream_bytes: set.streamBytes,
      sha256: set.sha256,
      reason: set.reason,
      started_at: set.startedAt,
      ended_at: set.endedAt,
    })
    .execute();
  await trx
    .insertInto('set_pieces')
    .values(
      pieces.map((p) => ({
        set_id: set.id,
        seq: p.seq,
        cartridge: p.cartridge,
        header_block: p.headerBlock,
        data_block: p.dataBlock,
        data_blocks: p.dataBlocks,
        trailer_block: p.trailerBlock,
        end_block: p.endBlock,
        stream_start: p.streamStart,
        stream_end: p.streamEnd,
      })),
    )
    .execute();
}

/** The set, its pieces, the cartridges' new fill states and the volume's kept change id: all or nothing. */
export async function completeSet(db: Db, c: CompletedSet): Promise<void> {
  await inTransaction(db, async (trx) => {
    await insertCompletedSet(trx, c.set, c.pieces);
    if (c.files) await insertSetFiles(trx, c.set.id, c.files);
    for (const u of c.cartridges) await markCartridge(trx, u.barcode, u);
    if (c.volume) await setKeptChange(trx, c.set.volumeId, c.volume.keptChangeId, c.volume.keptSetId);
  });
}

export async function getSet(db: Db, id: number): Promise<SetWithPieces | undefined> {
  const r = await db.selectFrom('sets').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return undefined;
  const pieces = await db.selectFrom('set_pieces').selectAll().where('set_id', '=', id).orderBy('seq').execute();
  return { ...toSet(r), pieces: pieces.map(toPiece) };
}

export async function getSetByUuid(db: Db, uuid: string): Promise<SetWithPieces | undefined> {
  const r = await db.selectFrom('sets').select('id').where('uuid', '=', uuid).executeTakeFirst();
  return r ? getSet(db, num(r.id)) : undefined;
}

/** Sets in id order, each with the barcodes it lies on in piece order; expired ones only when asked. */
export async function listSets(db: Db, filter: { volumeId?: string; expired?: boolean } = {}): Promise<SetSummary[]> {
  let sets = db.selectFrom('sets').selectAll();
  if (!filter.expired) sets = sets.where('expired_at', 'is', null);
  let pieces = db
    .selectFrom('set_pieces')
    .innerJoin('sets', 'sets.id', 'set_pieces.set_id')
    .select(['set_pieces.set_id', 'set_pieces.cartridge']);
  if (filter.volumeId !== undefined) {
    sets = sets.where('volume_id', '=', filter.volumeId);
    pieces = pieces.where('sets.volume_id', '=', filter.volumeId);
  }
  const rows = await sets.orderBy('id').execute();
  const byset = new Map<number, string[]>();
  for (const p of await pieces.orderBy('set_pieces.set_id').orderBy('set_pieces.seq').execute()) {
    const id = num(p.set_id);
    const list = byset.get(id) ?? [];
    list.push(p.cartridge);
    byset.set(id, list);
  }
  return rows.map((r) => ({ ...toSummary(r), cartridges: byset.get(num(r.id)) ?? [] }));
}

/** The sets a restore of `setId` needs: its full first, then each incremental up to and including it. */
export async function getChain(db: Db, setId: number): Promise<BackupSet[]> {
  const chain: BackupSet[] = [];
  const seen = new Set<number>();
  let id: number | null = setId;
  while (id !== null) {
    if (seen.has(id)) throw new FerryError('ERR_CATALOG_CHAIN', `set ${setId}: its chain loops at set ${id}`);
    seen.add(id);
    const r = await db.selectFrom('sets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound('set', id);
    const s = toSet(r);
    if (chain.length && s.volumeId !== chain[0].volumeId) {
      throw new FerryError(
        'ERR_CATALOG_CHAIN',
        `set ${setId}: base set ${id} is of volume ${s.volumeId}, ` + `not ${chain[0].volumeId}`,
      );
    }
    chain.push(s);
    id = s.baseSetId;
  }
  return chain.reverse();
}

/** The newest set of a volume (highest id), optionally of one mode. */
export async function latestSet(
  db: Db,
  volumeId: string,
  opts: { mode?: SetMode } = {},
): Promise<BackupSet | undefined> {
  let q = db.selectFrom('sets').selectAll().where('volume_id', '=', volumeId);
  if (opts.mode !== undefined) q = q.where('mode', '=', opts.mode);
  const r = await q.orderBy('id', 'desc').limit(1).executeTakeFirst();
  return r && toSet(r);
}

/** One more than any set id in use: by a set, or claimed by a job whose set is not complete yet. */
export async function nextSetId(db: Db): Promise<number> {
  const s = await db
    .selectFrom('sets')
    .select((eb) => eb.fn.max('id').as('m'))
    .executeTakeFirst();
  const j = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.max('set_id').as('m'))
    .executeTakeFirst();
  return Math.max(numOrNull(s?.m ?? null) ?? 0, numOrNull(j?.m ?? null) ?? 0) + 1;
}

/** Give job `jobId` the next set id (once: a job that has one keeps it). The id goes into the tape header. */
export async function claimSetId(db: Db, jobId: number): Promise<number> {
  return inTransaction(db, async (trx) => {
    const job = await trx.selectFrom('jobs').select('set_id').where('id', '=', jobId).executeTakeFirst();
    if (!job) throw notFound('job', jobId);
    if (job.set_id !== null) return num(job.set_id);
    const id = await nextSetId(trx);
    await trx.updateTable('jobs').set({ set_id: id }).where('id', '=', jobId).execute();
    return id;
  });
}
