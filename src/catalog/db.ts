// The catalog seam: open the SQLite file (WAL, foreign keys, busy timeout), hand out a Kysely handle, migrate.
// A PostgreSQL catalog would be another open function returning the same Catalog over PostgresDialect.
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { FerryError } from '../util/errors.ts';
import type { Database } from './schema.ts';
import { migrate, type MigrateResult } from './migrate.ts';

export interface Catalog {
  db: Kysely<Database>;
  path: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** How long a statement waits for another process's write lock. */
  busyTimeoutMs?: number;
  /** Told what migrate did (versions applied). */
  onMigrated?: (r: MigrateResult) => void;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

function openError(path: string, why: string, fix: string, cause?: unknown): FerryError {
  return new FerryError('ERR_CATALOG_OPEN', `cannot open catalog ${path}: ${why}; ${fix}`, { cause });
}

function explain(path: string, e: unknown): FerryError {
  if (e instanceof FerryError) return e;
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : String(e);
  switch (code) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return openError(
        path,
        'the file is not an SQLite database',
        'point Ferry at its catalog file, or move ' + 'this file away to start a new catalog',
        e,
      );
    case 'SQLITE_CANTOPEN':
      return openError(path, msg, `check that the directory ${dirname(path)} exists and is writable`, e);
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return openError(path, msg, 'the catalog, its -wal and -shm files and its directory must be writable', e);
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return openError(path, msg, 'another process holds the catalog locked; stop it or wait', e);
  }
  if (/directory does not exist/.test(msg)) {
    return openError(path, msg, `create the directory ${dirname(path)} or choose another catalog path`, e);
  }
  return openError(path, msg, 'check the path and its permissions', e);
}

/** Open (creating if missing) and migrate the catalog at `path`; `':memory:'` for tests. */
export async function openCatalog(path: string, opts: OpenOptions = {}): Promise<Catalog> {
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(path);
  } catch (e) {
    throw explain(path, e);
  }
  let db: Kysely<Database> | undefined;
  try {
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
    const mode = String(sqlite.pragma('journal_mode = WAL', { simple: true }));
    if (mode !== 'wal' && !(path === ':memory:' && mode === 'memory')) {
      throw openError(path, `the journal mode stays '${mode}', not WAL`, 'put the catalog on a local file system');
    }
    sqlite.pragma('foreign_keys = ON');
    if (sqlite.pragma('foreign_keys', { simple: true }) !== 1) {
      throw openError(path, 'this SQLite cannot enforce foreign keys', 'use the better-sqlite3 Ferry ships with');
    }
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    const tables = (await db.introspection.getTables()).map((t) => t.name);
    if (tables.length && !tables.includes('schema_version')) {
      const some = tables.slice(0, 5).join(', ');
      throw openError(
        path,
        `it is an SQLite database but not a Ferry catalog (tables: ${some})`,
        'point Ferry at its catalog file, or choose a new path',
      );
    }
    const r = await migrate(db);
    opts.onMigrated?.(r);
  } catch (e) {
    if (db) await db.destroy();
    else sqlite.close();
    if (e instanceof FerryError && e.code !== 'ERR_CATALOG_OPEN') {
      throw new FerryError(e.code, `catalog ${path}: ${e.message}`, { cause: e });
    }
    throw explain(path, e);
  }
  const handle = db;
  let closed = false;
  return {
    db: handle,
    path,
    async close() {
      if (closed) return;
      closed = true;
      await handle.destroy();
    },
  };
}
