// Helpers shared by the query modules: the handle type, transactions, times, JSON and numbers.
import type { Kysely, Transaction } from 'kysely';
import { FerryError } from '../../util/errors.ts';
import type { Database } from '../schema.ts';

/** A catalog handle or a transaction on it: every query takes either. */
export type Db = Kysely<Database>;

/** A time: a Date or an ISO-8601 string. Stored as ISO-8601 UTC TEXT, so text order is time order. */
export type Instant = Date | string;

/** Run `fn` in a transaction, or inside the caller's if `db` already is one (kysely does not nest). */
export function inTransaction<T>(db: Db, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db as Transaction<Database>) : db.transaction().execute(fn);
}

export function iso(t: Instant = new Date()): string {
  const d = typeof t === 'string' ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) throw new FerryError('ERR_CATALOG_VALUE', `not a valid time: ${String(t)}`);
  return d.toISOString();
}

export function toJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new FerryError('ERR_CATALOG_VALUE', 'value cannot be stored as JSON');
  return text;
}

export function fromJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** BIGINT columns come back as strings from some drivers (pg). */
export function num(v: number | bigint | string): number {
  return Number(v);
}

export function numOrNull(v: number | bigint | string | null): number | null {
  return v === null ? null : Number(v);
}

export function notFound(what: string, id: string | number): FerryError {
  return new FerryError('ERR_CATALOG_NOT_FOUND', `${what} ${id} is not in the catalog`);
}
