import assert from 'node:assert/strict';
import { FerryError } from '../util/errors.ts';
import {
  ReservedError,
  cartridgeResource,
  driveResource,
  getCartridge,
  listCartridges,
  listReservations,
  markCartridge,
  pickWritable,
  release,
  releaseAll,
  reserve,
  upsertCartridge,
} from './queries/cartridges.ts';
import { createJob } from './queries/jobs.ts';
import { testBoth } from './testing.ts';

testBoth('upsertCartridge inserts with defaults and changes only the given fields', async ({ db }) => {
  const a = await upsertCartridge(db, { barcode: 'FER001L8', library: 'vtl' });
  assert.deepEqual(a, {
    barcode: 'FER001L8',
    uuid: null,
    pool: null,
    library: 'vtl',
    state: 'blank',
    labeled: false,
    endBlock: 0,
    bytesUsed: 0,
    lastWrittenAt: null,
    error: null,
    recycledAt: null,
    loadCount: null,
    exportedAt: null,
  });
  const b = await upsertCartridge(db, { barcode: 'FER001L8', pool: 'daily', labeled: true, uuid: 'u-1' });
  assert.deepEqual([b.library, b.pool, b.labeled, b.uuid, b.state], ['vtl', 'daily', true, 'u-1', 'blank']);
  assert.deepEqual(await upsertCartridge(db, { barcode: 'FER001L8' }), b);
  await markCartridge(db, 'FER001L8', { state: 'error', error: 'medium error at block 9' });
  assert.deepEqual(
    (await listCartridges(db, { state: 'error' })).map((c) => c.error),
    ['medium error at block 9'],
  );
  await assert.rejects(
    markCartridge(db, 'NOPE', { state: 'full' }),
    (e: unknown) => e instanceof FerryError && e.code === 'ERR_CATALOG_NOT_FOUND',
  );
  assert.equal(await getCartridge(db, 'NOPE'), undefined);
});

testBoth(
  'pickWritable prefers append, then blank of the pool, then scratch; skips full, error, reserved',
  async ({ db }) => {
    const put = (barcode: string, state: 'blank' | 'append' | 'full' | 'error', pool: string | null) =>
      upsertCartridge(db, { barcode, state, pool, library: 'vtl' });
    await put('A00', 'full', 'daily');
    await put('A01', 'error', 'daily');
    await put('A02', 'blank', null);
    await put('A03', 'blank', 'daily');
    await put('A04', 'blank', 'daily');
    await put('A05', 'append', 'weekly');
    await put('A07', 'append', 'daily');
    await put('A06', 'append', 'daily');
    assert.equal((await pickWritable(db, 'daily'))?.barcode, 'A06');
    const job = await createJob(db, { type: 'backup', params: {} });
    await reserve(db, cartridgeResource('A06'), job.id);
    assert.equal((await pickWritable(db, 'daily'))?.barcode, 'A07');
    await markCartridge(db, 'A07', { state: 'full' });
    assert.equal((await pickWritable(db, 'daily'))?.barcode, 'A03', 'blank of the pool before scratch');
    await markCartridge(db, 'A03', { state: 'full' });
    await markCartridge(db, 'A04', { state: 'error' });
    assert.equal((await pickWritable(db, 'daily'))?.barcode, 'A02', 'scratch last');
    assert.equal(await pickWritable(db, 'daily', { library: 'other' }), undefined);
    await markCartridge(db, 'A02', { state: 'full' });
    assert.equal(await pickWritable(db, 'daily'), undefined);
    assert.equal((await pickWritable(db, 'weekly'))?.barcode, 'A05');
    assert.deepEqual(
      (await listCartridges(db, { pool: 'daily', state: 'full' })).map((c) => c.barcode),
      ['A00', 'A03', 'A07'],
    );
  },
);

testBoth('reservations refuse a second holder and go with release and with the job', async ({ db }) => {
  const a = await createJob(db, { type: 'backup', params: {} });
  const b = await createJob(db, { type: 'restore', params: {} });
  await reserve(db, driveResource('vtl/1'), a.id, '2024-05-01T00:00:00Z');
  await reserve(db, driveResource('vtl/1'), a.id); // the holder again: fine
  await reserve(db, cartridgeResource('FER001L8'), a.id);
  await assert.rejects(
    reserve(db, driveResource('vtl/1'), b.id),
    (e: unknown) =>
      e instanceof ReservedError &&
      e.code === 'ERR_RESERVED' &&
      e.holderJobId === a.id &&
      e.message === `drive:vtl/1 is reserved by job ${a.id}`,
  );
  assert.deepEqual(await listReservations(db), [
    { resource: 'cartridge:FER001L8', jobId: a.id, at: (await listReservations(db))[0].at },
    { resource: 'drive:vtl/1', jobId: a.id, at: '2024-05-01T00:00:00.000Z' },
  ]);
  assert.deepEqual(await release(db, a.id), ['cartridge:FER001L8', 'drive:vtl/1']);
  await reserve(db, driveResource('vtl/1'), b.id);
  await reserve(db, driveResource('vtl/2'), b.id);
  assert.equal(await releaseAll(db), 2);
  await reserve(db, driveResource('vtl/1'), a.id);
  await db.deleteFrom('jobs').where('id', '=', a.id).execute();
  assert.deepEqual(await listReservations(db), [], 'ON DELETE CASCADE');
});
