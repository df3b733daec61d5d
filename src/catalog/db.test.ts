import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database } from './schema.ts';
import { addJobEvent, createJob, getJob, listJobEvents } from './queries/jobs.ts';
import { listReservations, reserve } from './queries/cartridges.ts';
import { getVolume } from './queries/volumes.ts';
import { oweSnapshotDelete, owedSnapshotDeletes, snapshotDeleted } from './queries/owed-snapshots.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { FerryError } from '../util/errors.ts';
import { openCatalog } from './db.ts';
import { MIGRATIONS, SCHEMA_VERSION, appliedVersions, migrate, type Migration } from './migrate.ts';
import { testBoth } from './testing.ts';

const code =
  (c: string, ...parts: string[]) =>
  (e: unknown) =>
    e instanceof FerryError && e.code === c && parts.every((p) => e.message.includes(p));

test('migrations apply once and reopening is idempotent', () =>
  inTempDir('catalog', async (dir) => {
    const path = join(dir, 'catalog.db');
    const runs: number[][] = [];
    const a = await openCatalog(path, { onMigrated: (r) => runs.push(r.applied) });
    await a.close();
    await a.close(); // twice is fine
    const b = await openCatalog(path, { onMigrated: (r) => runs.push(r.applied) });
    assert.deepEqual(runs, [MIGRATIONS.map((m) => m.version), []]);
    assert.deepEqual(
      await appliedVersions(b.db),
      MIGRATIONS.map((m) => m.version),
    );
    assert.deepEqual(await migrate(b.db), { from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
    await b.close();
  }));

testBoth('WAL (on files), foreign keys and the busy timeout are on', async (cat) => {
  const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(cat.db);
  assert.equal(mode.rows[0].journal_mode, cat.path === ':memory:' ? 'memory' : 'wal');
  const fk = await sql<{ foreign_keys: number }>`PRAGMA foreign_keys`.execute(cat.db);
  assert.equal(fk.rows[0].foreign_keys, 1);
  const busy = await sql<{ timeout: number }>`PRAGMA busy_timeout`.execute(cat.db);
  assert.ok(busy.rows[0].timeout > 0);
  if (cat.path !== ':memory:') assert.ok(existsSync(`${cat.path}-wal`));
  await assert.rejects(
    cat.db
      .insertInto('reservations')
      .values({ resource: 'drive:x', job_id: 999, at: new Date().toISOString() })
      .execute(),
    /FOREIGN KEY/,
  );
});

test('a catalog claiming a newer schema version is refused, naming both versions and the path', () =>
  inTempDir('catalog', async (dir) => {
    const path = join(dir, 'catalog.db');
    const a = await openCatalog(path);
    const newer = SCHEMA_VERSION + 5;
    await a.db.insertInto('schema_version').values({ version: newer, name: 'future', applied_at: 'x' }).execute();
    await a.close();
    await assert.rejects(openCatalog(path), code('ERR_CATALOG_VERSION', path, `${newer}`, `${SCHEMA_VERSION}`));
  }));

test('gaps are refused: in the migration list and in the database', async () => {
  const cat = await openCatalog(':memory:');
  const extra = (version: number, up: string[]): Migration => ({ version, name: `m${version}`, up });
  await assert.rejects(migrate(cat.db, [...MIGRATIONS, extra(SCHEMA_VERSION + 2, [])]), code('ERR_CATALOG_MIGRATIONS'));
  const v2 = SCHEMA_VERSION + 2;
  await cat.db.insertInto('schema_version').values({ version: v2, name: 'gap', applied_at: 'x' }).execute();
  const list = [...MIGRATIONS, extra(SCHEMA_VERSION + 1, []), extra(v2, [])];
  await assert.rejects(migrate(cat.db, list), code('ERR_CATALOG_VERSION', `not ${SCHEMA_VERSION + 1}`));
  await cat.close();
});

test('a later migration applies in one transaction with its version row', async () => {
  const cat = await openCatalog(':memory:');
  const v = SCHEMA_VERSION + 1;
  const bad: Migration = { version: v, name: 'bad', up: ['CREATE TABLE extra (id INTEGER PRIMARY KEY)', 'NOT SQL'] };
  await assert.rejects(migrate(cat.db, [...MIGRATIONS, bad]));
  assert.deepEqual(
    await appliedVersions(cat.db),
    MIGRATIONS.map((m) => m.version),
  );
  assert.ok(!(await cat.db.introspection.getTables()).some((t) => t.name === 'extra'), 'DDL rolled back');
  const good: Migration = { version: v, name: 'extra', up: ['CREATE TABLE extra (id {{auto_id}})'] };
  assert.deepEqual((await migrate(cat.db, [...MIGRATIONS, good])).applied, [v]);
  assert.deepEqual((await migrate(cat.db, [...MIGRATIONS, good])).applied, []);
  await cat.close();
});

test('a file that is not a catalog, or cannot be opened, gives ERR_CATALOG_OPEN with the path and a fix', () =>
  inTempDir('catalog', async (dir) => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, Buffer.alloc(8192, 0x41));
    await assert.rejects(openCatalog(junk), code('ERR_CATALOG_OPEN', junk, 'not an SQLite database'));
    const other = join(dir, 'other.db');
    const s = new SqliteDatabase(other);
    s.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY)');
    s.close();
    await assert.rejects(openCatalog(other), code('ERR_CATALOG_OPEN', other, 'not a Ferry catalog', 'customers'));
    const missing = join(dir, 'no', 'such', 'catalog.db');
    await assert.rejects(openCatalog(missing), code('ERR_CATALOG_OPEN', missing, join(dir, 'no', 'such')));
  }));

test(
  'migration 3 on a version-2 catalog with jobs: every row, event and reservation stays, and jobs take the type ' +
    'label',
  async () => {
    const raw = new SqliteDatabase(':memory:');
    raw.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      await migrate(db, MIGRATIONS.slice(0, 2));
      const job = await createJob(db, { type: 'restore', volumeId: 'store:0', params: { set: 4 } });
      await addJobEvent(db, job.id, { kind: 'log', message: 'kept across the migration' });
      await reserve(db, 'drive:vtl/256', job.id);
      assert.deepEqual((await migrate(db, MIGRATIONS.slice(0, 3))).applied, [3]);
      const after = await getJob(db, job.id);
      assert.deepEqual([after?.type, after?.volumeId, after?.params], ['restore', 'store:0', { set: 4 }]);
      assert.deepEqual(
        (await listJobEvents(db, job.id)).map((e) => e.message),
        ['restore job created', 'kept across the migration'],
      );
      assert.deepEqual(
        (await listReservations(db)).map((r) => [r.resource, r.jobId]),
        [['drive:vtl/256', job.id]],
      );
      assert.equal((await createJob(db, { type: 'label', volumeId: null, params: {} })).type, 'label');
      await assert.rejects(
        createJob(db, { type: 'erase' as never, volumeId: null, params: {} }),
        /CHECK constraint failed/,
      );
      // The foreign keys still hold: deleting the job takes its events and reservation with it.
      await db.deleteFrom('jobs').where('id', '=', job.id).execute();
      assert.deepEqual([(await listJobEvents(db, job.id)).length, (await listReservations(db)).length], [0, 0]);
    } finally {
      await db.destroy();
    }
  },
);

test(
  'migration 4 on a version-3 catalog: the kept snapshot id becomes the kept change id (a node answers for it as ' +
    'one)',
  async () => {
    const raw = new SqliteDatabase(':memory:');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      await migrate(db, MIGRATIONS.slice(0, 3));
      await sql`INSERT INTO volumes
        (id, node, lun, designator, disk_block_bytes, volume_blocks, kept_snapshot_id, kept_set_id, updated_at)
      VALUES ('store:0', 'store', 0, '600a', 512, 2048, 'snap-0123456789ab', NULL, 'x')`.execute(db);
      assert.deepEqual((await migrate(db, MIGRATIONS.slice(0, 4))).applied, [4]);
      assert.equal((await getVolume(db, 'store:0'))?.keptChangeId, 'snap-0123456789ab');
    } finally {
      await db.destroy();
    }
  },
);

test('migration 5 on a version-4 catalog: owed snapshot deletes are kept once per snapshot, with tries', async () => {
  const raw = new SqliteDatabase(':memory:');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
  try {
    await migrate(db, MIGRATIONS.slice(0, 4));
    assert.deepEqual((await migrate(db)).applied, [5]);
    const owed = { node: 'store', snapshotId: 'snap-0123456789ab', volumeId: 'store:0', jobId: null };
    await oweSnapshotDelete(db, { ...owed, error: 'first', at: '2026-12-04T10:00:00Z' });
    await oweSnapshotDelete(db, { ...owed, error: 'second', at: '2026-12-04T11:00:00Z' });
    assert.deepEqual(await owedSnapshotDeletes(db, 'store'), [
      { ...owed, error: 'second', since: '2026-12-04T10:00:00.000Z', tries: 2 },
    ]);
    assert.deepEqual(await owedSnapshotDeletes(db, 'other'), []);
    await snapshotDeleted(db, 'store', owed.snapshotId);
    assert.deepEqual(await owedSnapshotDeletes(db), []);
  } finally {
    await db.destroy();
  }
});
