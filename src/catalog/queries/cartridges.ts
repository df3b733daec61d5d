// Cartridges (inventory and fill state) and reservations of drives and cartridges by jobs.
import type { Insertable, Selectable, Updateable } from 'kysely';
import { FerryError } from '../../util/errors.ts';
import type { CartridgesTable } from '../schema.ts';
import { inTransaction, iso, notFound, num, type Db, type Instant } from './common.ts';

export type CartridgeState = 'blank' | 'append' | 'full' | 'error';

export interface Cartridge {
  barcode: string;
  uuid: string | null;
  pool: string | null;
  /** Library name, or the drive name for a stand-alone drive. */
  library: string | null;
  state: CartridgeState;
  labeled: boolean;
  /** Block id right after the last complete set's filemark: where the next set starts. */
  endBlock: number;
  bytesUsed: number;
  lastWrittenAt: string | null;
  error: string | null;
  /** Its sets have all expired: back in scratch since then, relabeled before its next set. */
  recycledAt: string | null;
  /** MAM LOAD COUNT at its last mount. */
  loadCount: number | null;
  /** Taken out of its library (`ferry cartridges export`): no job picks it until it is imported. */
  exportedAt: string | null;
}

/** Fields to insert or change; undefined leaves a field as it is (or at its default on insert). */
export interface CartridgeInput {
  barcode: string;
  uuid?: string | null;
  pool?: string | null;
  library?: string | null;
  state?: CartridgeState;
  labeled?: boolean;
  endBlock?: number;
  bytesUsed?: number;
  lastWrittenAt?: Instant | null;
  error?: string | null;
  recycledAt?: Instant | null;
  loadCount?: number | null;
  exportedAt?: Instant | null;
}

export interface CartridgeMark {
  state: CartridgeState;
  endBlock?: number;
  bytesUsed?: number;
  lastWrittenAt?: Instant | null;
  error?: string | null;
}

/** A cartridge change that completeSet applies with the set. */
export interface CartridgeUpdate extends CartridgeMark {
  barcode: string;
}

export interface Reservation {
  resource: string;
  jobId: number;
  at: string;
}

export function driveResource(drive: string): string {
  return `drive:${drive}`;
}

export function cartridgeResource(barcode: string): string {
  return `cartridge:${barcode}`;
}

/** Held by the backup of a volume while it runs. */
export function volumeResource(volumeId: string): string {
  return `volume:${volumeId}`;
}

/** reserve found the resource held by another job. */
export class ReservedError extends FerryError {
  readonly resource: string;
  readonly holderJobId: number;
  constructor(resource: string, holderJobId: number) {
    super('ERR_RESERVED', `${resource} is reserved by job ${holderJobId}`);
    this.resource = resource;
    this.holderJobId = holderJobId;
  }
}

function toCartridge(r: Selectable<CartridgesTable>): Cartridge {
  return {
    barcode: r.barcode,
    uuid: r.uuid,
    pool: r.pool,
    library: r.library,
    state: r.state as CartridgeState,
    labeled: num(r.labeled) !== 0,
    endBlock: num(r.end_block),
    bytesUsed: num(r.bytes_used),
    lastWrittenAt: r.last_written_at,
    error: r.error,
    recycledAt: r.recycled_at,
    loadCount: r.load_count === null ? null : num(r.load_count),
    exportedAt: r.exported_at,
  };
}

function changes(c: Omit<CartridgeInput, 'barcode'>): Updateable<CartridgesTable> {
  const u: Updateable<CartridgesTable> = {};
  if (c.uuid !== undefined) u.uuid = c.uuid;
  if (c.pool !== undefined) u.pool = c.pool;
  if (c.library !== undefined) u.library = c.library;
  if (c.state !== undefined) u.state = c.state;
  if (c.labeled !== undefined) u.labeled = c.labeled ? 1 : 0;
  if (c.endBlock !== undefined) u.end_block = c.endBlock;
  if (c.bytesUsed !== undefined) u.bytes_used = c.bytesUsed;
  if (c.lastWrittenAt !== undefined) u.last_written_at = c.lastWrittenAt === null ? null : iso(c.lastWrittenAt);
  if (c.error !== undefined) u.error = c.error;
  if (c.recycledAt !== undefined) u.recycled_at = c.recycledAt === null ? null : iso(c.recycledAt);
  if (c.loadCount !== undefined) u.load_count = c.loadCount;
  if (c.exportedAt !== undefined) u.exported_at = c.exportedAt === null ? null : iso(c.exportedAt);
  return u;
}

/** Insert a cartridge (blank, unlabeled unless given) or change the given fields of a known one. */
export async function upsertCartridge(db: Db, c: CartridgeInput): Promise<Cartridge> {
  const set = changes(c);
  const row: Insertable<CartridgesTable> = {
    barcode: c.barcode,
    uuid: null,
    pool: null,
    library: null,
    state: 'blank',
    labeled: 0,
    end_block: 0,
    bytes_used: 0,
    last_written_at: null,
    error: null,
    ...set,
  };
  return inTransaction(db, async (trx) => {
    await trx
      .insertInto('cartridges')
      .values(row)
      .onConflict((oc) => (Object.keys(set).length ? oc.column('barcode').doUpdateSet(set) : oc.doNothing()))
      .execute();
    const out = await getCartridge(trx, c.barcode);
    if (!out) throw notFound('cartridge', c.barcode);
    return out;
  });
}

export async function getCartridge(db: Db, barcode: string): Promise<Cartridge | undefined> {
  const r = await db.selectFrom('cartridges').selectAll().where('barcode', '=', barcode).executeTakeFirst();
  return r && toCartridge(r);
}

export interface CartridgeFilter {
  pool?: string;
  state?: CartridgeState;
  library?: string;
}

export async function listCartridges(db: Db, filter: CartridgeFilter = {}): Promise<Cartridge[]> {
  let q = db.selectFrom('cartridges').selectAll();
  if (filter.pool !== undefined) q = q.where('pool', '=', filter.pool);
  if (filter.state !== undefined) q = q.where('state', '=', filter.state);
  if (filter.library !== undefined) q = q.where('library', '=', filter.library);
  return (await q.orderBy('barcode').execute()).map(toCartridge);
}

/**
 * The cartridge the next set of `pool` goes to: an `append` one of the pool, else a `blank` one of the pool,
 * else an unassigned blank (scratch), each by barcode. Full and error ones are skipped, and reserved
 * ones unless `includeReserved` (to tell "all in use" from "none").
 */
export async function pickWritable(
  db: Db,
  pool: string,
  opts: { library?: string; includeReserved?: boolean } = {},
): Promise<Cartridge | undefined> {
  let q = db
    .selectFrom('cartridges')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb.and([eb('pool', '=', pool), eb('state', 'in', ['append', 'blank'])]),
        eb.and([eb('pool', 'is', null), eb('state', '=', 'blank')]),
      ]),
    );
  if (opts.library !== undefined) q = q.where('library', '=', opts.library);
  const rows = await q.where('exported_at', 'is', null).orderBy('barcode').execute();
  const held = await db
    .selectFrom('reservations')
    .select('resource')
    .where('resource', 'like', cartridgeResource('%'))
    .execute();
  const reserved = new Set(held.map((r) => r.resource));
  // Appendable first, then blank ones of the pool, then new scratch; recycled ones last, longest in scratch first.
  const rank = (c: Selectable<CartridgesTable>) =>
    c.state === 'append' ? 0 : c.recycled_at !== null ? 3 : c.pool !== null ? 1 : 2;
  const free = opts.includeReserved ? rows : rows.filter((c) => !reserved.has(cartridgeResource(c.barcode)));
  free.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.recycled_at ?? '').localeCompare(b.recycled_at ?? '') ||
      (a.barcode < b.barcode ? -1 : a.barcode > b.barcode ? 1 : 0),
  );
  return free.length ? toCartridge(free[0]) : undefined;
}

/** Set a cartridge's fill state; undefined fields stay. Throws ERR_CATALOG_NOT_FOUND for an unknown barcode. */
export async function markCartridge(db: Db, barcode: string, m: CartridgeMark): Promise<void> {
  const r = await db.updateTable('cartridges').set(changes(m)).where('barcode', '=', barcode).executeTakeFirst();
  if (r.numUpdatedRows !== 1n) throw notFound('cartridge', barcode);
}

/** Reserve `resource` for `jobId` (idempotent for the holder). Throws ERR_RESERVED naming the holder. */
export async function reserve(db: Db, resource: string, jobId: number, at?: Instant): Promise<void> {
  await inTransaction(db, async (trx) => {
    // Two tries: under PostgreSQL's read committed the holder may release between the insert and the read.
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await trx
        .insertInto('reservations')
        .values({ resource, job_id: jobId, at: iso(at) })
        .onConflict((oc) => oc.column('resource').doNothing())
        .executeTakeFirst();
      if (r.numInsertedOrUpdatedRows === 1n) return;
      const holder = await trx
        .selectFrom('reservations')
        .select('job_id')
        .where('resource', '=', resource)
        .executeTakeFirst();
      if (!holder) continue;
      if (num(holder.job_id) === jobId) return;
      throw new ReservedError(resource, num(holder.job_id));
    }
    throw new FerryError('ERR_RESERVED', `${resource} is changing hands; try again`);
  });
}

/** Release what `jobId` holds (only `resource` when given); returns the resources released. */
export async function release(db: Db, jobId: number, resource?: string): Promise<string[]> {
  let q = db.deleteFrom('reservations').where('job_id', '=', jobId);
  if (resource !== undefined) q = q.where('resource', '=', resource);
  const rows = await q.returning('resource').execute();
  return rows.map((r) => r.resource).sort();
}

/** Release every reservation (server start: no job runs yet). Returns how many there were. */
export async function releaseAll(db: Db): Promise<number> {
  const r = await db.deleteFrom('reservations').executeTakeFirst();
  return num(r.numDeletedRows);
}

export async function listReservations(db: Db): Promise<Reservation[]> {
  const rows = await db.selectFrom('reservations').selectAll().orderBy('resource').execute();
  return rows.map((r) => ({ resource: r.resource, jobId: num(r.job_id), at: r.at }));
}
