// Retention: which sets a pool still keeps, protecting a set, and expiring sets (their cartridges
// return to scratch once nothing on them is kept).
import { inTransaction, iso, notFound, num, numOrNull, type Db, type Instant } from './common.ts';
import { cartridgeResource, ReservedError } from './cartridges.ts';
import type { SetLevel, SetMode } from './sets.ts';

/** A kept set as the retention rules see it. */
export interface RetainedSet {
  id: number;
  pool: string;
  volumeId: string;
  mode: SetMode;
  level: SetLevel;
  baseSetId: number | null;
  snapshotAt: string;
  protected: boolean;
  cartridges: string[];
}

/**
 * The sets of `pool` (of every pool when undefined) that have not expired, oldest first, with the cartridges they lie
 * on.
 */
export async function keptSets(db: Db, pool?: string): Promise<RetainedSet[]> {
  let q = db
    .selectFrom('sets')
    .select(['id', 'pool', 'volume_id', 'mode', 'level', 'base_set_id', 'snapshot_at', 'protected'])
    .where('expired_at', 'is', null);
  let p = db
    .selectFrom('set_pieces')
    .innerJoin('sets', 'sets.id', 'set_pieces.set_id')
    .select(['set_pieces.set_id', 'set_pieces.cartridge'])
    .where('sets.expired_at', 'is', null);
  if (pool !== undefined) {
    q = q.where('pool', '=', pool);
    p = p.where('sets.pool', '=', pool);
  }
  const rows = await q.orderBy('id').execute();
  const pieces = await p.orderBy('set_pieces.set_id').orderBy('set_pieces.seq').execute();
  const on = new Map<number, string[]>();
  for (const p of pieces) on.set(num(p.set_id), [...(on.get(num(p.set_id)) ?? []), p.cartridge]);
  return rows.map((r) => ({
    id: num(r.id),
    pool: r.pool,
    volumeId: r.volume_id,
    mode: r.mode as SetMode,
    level: r.level as SetLevel,
    baseSetId: numOrNull(r.base_set_id),
    snapshotAt: r.snapshot_at,
    protected: num(r.protected) !== 0,
    cartridges: on.get(num(r.id)) ?? [],
  }));
}

/** Protect a set from pruning, or lift that. */
export async function setProtected(db: Db, id: number, on: boolean): Promise<void> {
  const r = await db
    .updateTable('sets')
    .set({ protected: on ? 1 : 0 })
    .where('id', '=', id)
    .where('expired_at', 'is', null)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw notFound('set', id);
}

/** The cartridges of sets `ids` that a job holds now, with the job. */
export async function heldCartridgesOf(
  db: Db,
  ids: readonly number[],
): Promise<Array<{ cartridge: string; jobId: number }>> {
  if (ids.length === 0) return [];
  const carts = await db.selectFrom('set_pieces').select('cartridge').distinct().where('set_id', 'in', ids).execute();
  const byResource = new Map(carts.map((c) => [cartridgeResource(c.cartridge), c.cartridge]));
  if (byResource.size === 0) return [];
  const rows = await db
    .selectFrom('reservations')
    .select(['resource', 'job_id'])
    .where('resource', 'in', [...byResource.keys()])
    .orderBy('resource')
    .execute();
  return rows.map((r) => ({ cartridge: byResource.get(r.resource)!, jobId: num(r.job_id) }));
}

/** Cartridges that would hold no kept set once `ids` expire (they return to scratch). */
export async function cartridgesEmptiedBy(db: Db, ids: readonly number[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const touched = await db.selectFrom('set_pieces').select('cartridge').distinct().where('set_id', 'in', ids).execute();
  const still = await db
    .selectFrom('set_pieces')
    .innerJoin('sets', 'sets.id', 'set_pieces.set_id')
    .select('set_pieces.cartridge')
    .distinct()
    .where('sets.expired_at', 'is', null)
    .where('sets.id', 'not in', ids)
    .where(
      'set_pieces.cartridge',
      'in',
      touched.map((t) => t.cartridge),
    )
    .execute();
  const kept = new Set(still.map((r) => r.cartridge));
  return touched
    .map((t) => t.cartridge)
    .filter((c) => !kept.has(c))
    .sort();
}

/**
 * Expire `ids` in one transaction: they leave the listings, their file index goes, and every
 * cartridge left with no kept set returns to scratch (blank, no pool, recycled). The barcodes.
 */
export async function expireSets(db: Db, ids: readonly number[], at: Instant = new Date()): Promise<string[]> {
  if (ids.length === 0) return [];
  return inTransaction(db, async (trx) => {
    // In the transaction: a job that reserves one of their cartridges meanwhile waits for it or comes after.
    const held = await heldCartridgesOf(trx, ids);
    if (held.length) throw new ReservedError(cartridgeResource(held[0].cartridge), held[0].jobId);
    const emptied = await cartridgesEmptiedBy(trx, ids);
    await trx
      .updateTable('sets')
      .set({ expired_at: iso(at) })
      .where('id', 'in', ids)
      .execute();
    await trx.deleteFrom('set_files').where('set_id', 'in', ids).execute();
    await trx.deleteFrom('set_file_indexes').where('set_id', 'in', ids).execute();
    if (emptied.length) {
      await trx
        .updateTable('cartridges')
        .set({ state: 'blank', pool: null, end_block: 0, bytes_used: 0, recycled_at: iso(at) })
        .where('barcode', 'in', emptied)
        .execute();
    }
    return emptied;
  });
}
