import assert from 'node:assert/strict';
import { FerryError } from '../util/errors.ts';
import { getCartridge, upsertCartridge } from './queries/cartridges.ts';
import { createJob, transitionJob } from './queries/jobs.ts';
import {
  claimSetId,
  completeSet,
  getChain,
  getSet,
  getSetByUuid,
  latestSet,
  listSets,
  nextSetId,
} from './queries/sets.ts';
import { getVolume, listVolumes, setKeptChange, upsertVolume } from './queries/volumes.ts';
import { fakePiece, fakeSet, testBoth } from './testing.ts';
import type { Db } from './queries/common.ts';

async function seed(db: Db): Promise<void> {
  await upsertVolume(db, {
    node: 'store',
    lun: 0,
    designator: '600140500000000000000000000000a0',
    diskBlockBytes: 512,
    volumeBlocks: 2097152,
  });
  for (const barcode of ['FER001L8', 'FER002L8', 'FER003L8']) {
    await upsertCartridge(db, { barcode, pool: 'daily', state: 'append', labeled: true, endBlock: 1 });
  }
}

testBoth(
  'completeSet writes set, pieces, cartridges and volume; getSet and listSets read them back',
  async ({ db }) => {
    await seed(db);
    const job = await createJob(db, { type: 'backup', volumeId: 'store:0', params: {} });
    const id = await claimSetId(db, job.id);
    assert.equal(id, 1);
    assert.equal(await claimSetId(db, job.id), 1, 'a job keeps its claimed id');
    assert.equal(await nextSetId(db), 2, 'claimed ids count before the set exists');
    const set = fakeSet(id, { jobId: job.id, streamBytes: 300 });
    // Spans three cartridges, stored deliberately out of barcode order.
    const pieces = [
      fakePiece(1, 'FER003L8', { streamStart: 0, streamEnd: 100 }),
      fakePiece(2, 'FER001L8', { streamStart: 100, streamEnd: 200, headerBlock: 0 }),
      fakePiece(3, 'FER002L8', { streamStart: 200, streamEnd: 300 }),
    ];
    await completeSet(db, {
      set,
      pieces,
      cartridges: [
        { barcode: 'FER003L8', state: 'full', bytesUsed: 100, lastWrittenAt: '2024-05-01T10:00:09Z' },
        { barcode: 'FER001L8', state: 'full', bytesUsed: 100 },
        { barcode: 'FER002L8', state: 'append', endBlock: 8, bytesUsed: 100 },
      ],
      volume: { keptChangeId: 'chg-1', keptSetId: id },
    });
    const got = await getSet(db, id);
    assert.deepEqual(
      got,
      { ...set, pieces, protected: false, expiredAt: null },
      'a new set is neither protected nor expired',
    );
    assert.deepEqual(await getSetByUuid(db, set.uuid), got);
    assert.equal(await getSet(db, 99), undefined);
    const [listed] = await listSets(db, { volumeId: 'store:0' });
    assert.deepEqual(listed.cartridges, ['FER003L8', 'FER001L8', 'FER002L8']);
    assert.equal('extents' in listed, false);
    assert.deepEqual(await listSets(db, { volumeId: 'other:1' }), []);
    const c3 = await getCartridge(db, 'FER003L8');
    assert.deepEqual([c3?.state, c3?.bytesUsed, c3?.lastWrittenAt], ['full', 100, '2024-05-01T10:00:09.000Z']);
    assert.equal((await getCartridge(db, 'FER002L8'))?.endBlock, 8);
    const v = await getVolume(db, 'store:0');
    assert.deepEqual([v?.keptChangeId, v?.keptSetId], ['chg-1', 1]);
    assert.equal(await nextSetId(db), 2);
  },
);

testBoth(
  'completeSet is atomic: a failing insert or update leaves no set, no pieces, no cartridge change',
  async ({ db }) => {
    await seed(db);
    const before = await getCartridge(db, 'FER001L8');
    // 1: a piece on an unknown cartridge (foreign key).
    await assert.rejects(
      completeSet(db, {
        set: fakeSet(1),
        pieces: [fakePiece(1, 'FER001L8', { streamEnd: 10 }), fakePiece(2, 'NOSUCH', { streamStart: 10 })],
        cartridges: [{ barcode: 'FER001L8', state: 'full' }],
      }),
      /FOREIGN KEY/,
    );
    // 2: set and pieces inserted, first cartridge updated, second cartridge unknown.
    await assert.rejects(
      completeSet(db, {
        set: fakeSet(1),
        pieces: [fakePiece(1, 'FER001L8')],
        cartridges: [
          { barcode: 'FER001L8', state: 'full', bytesUsed: 5 },
          { barcode: 'FER999L8', state: 'full' },
        ],
        volume: { keptChangeId: 'snap-1', keptSetId: 1 },
      }),
      (e: unknown) => e instanceof FerryError && e.code === 'ERR_CATALOG_NOT_FOUND',
    );
    assert.equal(await getSet(db, 1), undefined);
    assert.deepEqual(await listSets(db), []);
    assert.equal((await db.selectFrom('set_pieces').selectAll().execute()).length, 0);
    assert.deepEqual(await getCartridge(db, 'FER001L8'), before);
    assert.equal((await getVolume(db, 'store:0'))?.keptChangeId, null);
    // Rejected before any write: pieces that do not join up.
    await assert.rejects(
      completeSet(db, {
        set: fakeSet(1),
        pieces: [fakePiece(1, 'FER001L8', { streamEnd: 10 }), fakePiece(2, 'FER002L8', { streamStart: 11 })],
        cartridges: [],
      }),
      (e: unknown) => e instanceof FerryError && e.code === 'ERR_CATALOG_SET',
    );
  },
);

testBoth('getChain returns full first, then each incremental; latestSet picks the newest', async ({ db }) => {
  await seed(db);
  const add = (id: number, base: number | null, mode: 'used' | 'image' = 'used') =>
    completeSet(db, {
      set: fakeSet(id, { level: base === null ? 'full' : 'incremental', baseSetId: base, mode }),
      pieces: [fakePiece(1, 'FER001L8')],
      cartridges: [],
    });
  await add(1, null);
  await add(2, 1);
  await add(3, 2);
  await add(4, null, 'image');
  assert.deepEqual(
    (await getChain(db, 3)).map((s) => s.id),
    [1, 2, 3],
  );
  assert.deepEqual(
    (await getChain(db, 1)).map((s) => s.id),
    [1],
  );
  await assert.rejects(getChain(db, 42), /set 42 is not in the catalog/);
  assert.equal((await latestSet(db, 'store:0'))?.id, 4);
  assert.equal((await latestSet(db, 'store:0', { mode: 'used' }))?.id, 3);
  assert.equal(await latestSet(db, 'other:0'), undefined);
  await assert.rejects(
    completeSet(db, {
      set: fakeSet(6, { level: 'incremental', baseSetId: null }),
      pieces: [fakePiece(1, 'FER001L8')],
      cartridges: [],
    }),
    /CHECK/,
    'an incremental needs a base',
  );
  // The set's job may be deleted; the set stays.
  const job = await createJob(db, { type: 'backup', params: {} });
  await transitionJob(db, job.id, 'queued', 'done', { message: 'done' });
  await completeSet(db, { set: fakeSet(5, { jobId: job.id }), pieces: [fakePiece(1, 'FER001L8')], cartridges: [] });
  await db.deleteFrom('jobs').where('id', '=', job.id).execute();
  assert.equal((await getSet(db, 5))?.jobId, null);
  assert.deepEqual(
    (await listSets(db)).map((s) => s.id),
    [1, 2, 3, 4, 5],
  );
});

testBoth('volumes: upsert keeps the kept change id for the same disk and forgets it for another', async ({ db }) => {
  await seed(db);
  await setKeptChange(db, 'store:0', 'snap-1', null);
  const again = await upsertVolume(db, {
    node: 'store',
    lun: 0,
    designator: '600140500000000000000000000000a0',
    diskBlockBytes: 512,
    volumeBlocks: 4194304,
    at: '2024-06-01T00:00:00Z',
  });
  assert.deepEqual(
    [again.keptChangeId, again.volumeBlocks, again.updatedAt],
    ['snap-1', 4194304, '2024-06-01T00:00:00.000Z'],
  );
  const other = await upsertVolume(db, {
    node: 'store',
    lun: 0,
    designator: '600140500000000000000000000000ff',
    diskBlockBytes: 4096,
    volumeBlocks: 1000,
  });
  assert.deepEqual([other.keptChangeId, other.keptSetId, other.diskBlockBytes], [null, null, 4096]);
  await upsertVolume(db, { node: 'alpha', lun: 3, designator: 'ab', diskBlockBytes: 512, volumeBlocks: 1 });
  assert.deepEqual(
    (await listVolumes(db)).map((v) => v.id),
    ['alpha:3', 'store:0'],
  );
  assert.deepEqual(
    (await listVolumes(db, { node: 'store' })).map((v) => v.id),
    ['store:0'],
  );
  await assert.rejects(setKeptChange(db, 'nope:0', null, null), /volume nope:0 is not in the catalog/);
});
