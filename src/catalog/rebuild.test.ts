// The rebuild reconciler over hand-made scans: which sets are whole, what cartridges and volumes become,
// what is left alone, and that it writes all or nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SetHeader, SetTrailer, VolumeLabel } from '../tapeformat/records.ts';
import { testBoth, fakeSet, fakePiece } from './testing.ts';
import { applyRebuild, wholeSets, type ScannedCartridge, type ScannedPiece } from './queries/rebuild.ts';
import { getCartridge, listCartridges, upsertCartridge } from './queries/cartridges.ts';
import { completeSet, getSet, listSets } from './queries/sets.ts';
import { getVolume, upsertVolume } from './queries/volumes.ts';

const DBB = 512;
const B = 4096;
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Piece `seq` of set `id` holding stream bytes [start, end) of `total`, its header at `at`. */
function piece(
  id: number,
  seq: number,
  start: number,
  end: number,
  total: number,
  at: number,
  o: { base?: number; volume?: string } = {},
): ScannedPiece {
  const header: SetHeader = {
    kind: 'header',
    setId: id,
    setUuid: uuid(id),
    jobId: 7,
    sequence: seq,
    volume: { name: o.volume ?? 'store:0', designator: '6001405abcdef0123456789abcdef012' },
    snapshot: { id: `snap-${id}`, takenAt: '2026-01-01T00:00:00.000Z' },
    mode: 'image',
    level: o.base ? 'incremental' : 'full',
    baseSetId: o.base ?? null,
    baseSetUuid: o.base ? uuid(o.base) : null,
    diskBlockBytes: DBB,
    volumeBlocks: 1 << 20,
    tapeBlockBytes: B,
    extents: [{ lba: 0, blocks: total / DBB, streamOffset: 0 }],
    piece: { streamStart: start, dataBlockId: at + 1 },
    startedAt: `2026-01-01T00:00:0${id % 10}.000Z`,
  };
  const dataBlocks = Math.ceil((end - start) / B);
  const trailer: SetTrailer = {
    kind: 'trailer',
    setId: id,
    setUuid: uuid(id),
    sequence: seq,
    piece: { streamStart: start, streamEnd: end, dataBlocks },
    streamBytes: total,
    complete: end === total,
    endedAt: `2026-01-01T00:01:0${id % 10}.000Z`,
    digests: { sha256: end === total ? 'ab'.repeat(32) : null },
  };
  const trailerBlock = at + 1 + dataBlocks;
  return { header, trailer, headerBlock: at, dataBlock: at + 1, dataBlocks, trailerBlock, endBlock: trailerBlock + 2 };
}

function label(barcode: string, n: number): VolumeLabel {
  return {
    kind: 'label',
    cartridgeUuid: uuid(900 + n),
    barcode,
    pool: 'daily',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    tapeBlockBytes: B,
  };
}

function cart(
  barcode: string,
  n: number,
  pieces: ScannedPiece[],
  more: Partial<ScannedCartridge> = {},
): ScannedCartridge {
  return {
    barcode,
    library: 'vtl',
    kind: 'labeled',
    label: label(barcode, n),
    error: null,
    pieces,
    incomplete: [],
    labelEndBlock: 2,
    ...more,
  };
}

const KIB = 1024;

/**
 * Set 1 full on C1; set 2 spans C1 → C2; set 3 incremental of 1 on C2; set 4 only its first piece on C2 (a failed job);
 * a blank and a foreign cartridge.
 */
function scene(): ScannedCartridge[] {
  const p1 = piece(1, 1, 0, 64 * KIB, 64 * KIB, 2);
  const p2a = piece(2, 1, 0, 32 * KIB, 96 * KIB, p1.endBlock);
  const p2b = piece(2, 2, 32 * KIB, 96 * KIB, 96 * KIB, 2);
  const p3 = piece(3, 1, 0, 8 * KIB, 8 * KIB, p2b.endBlock, { base: 1 });
  const p4 = piece(4, 1, 0, 8 * KIB, 64 * KIB, p3.endBlock, { volume: 'store:1' });
  return [
    cart('C1', 1, [p1, p2a]),
    cart('C2', 2, [p2b, p3, p4], {
      incomplete: [{ headerBlock: p4.endBlock, setUuid: uuid(5), setId: 5, sequence: 1, why: 'no trailer' }],
    }),
    {
      barcode: 'C3',
      library: 'vtl',
      kind: 'blank',
      label: null,
      error: null,
      pieces: [],
      incomplete: [],
      labelEndBlock: 0,
    },
    {
      barcode: 'C4',
      library: 'vtl',
      kind: 'error',
      label: null,
      error: 'not a Ferry cartridge: bad magic',
      pieces: [],
      incomplete: [],
      labelEndBlock: 0,
    },
  ];
}

test('wholeSets keeps sets with pieces 1..n and a complete last one, and says why the others are not', () => {
  const { candidates, skipped } = wholeSets(scene());
  assert.deepEqual(
    candidates.map((c) => [c.set.id, c.pieces.map((p) => `${p.seq}@${p.cartridge}`)]),
    [
      [1, ['1@C1']],
      [2, ['1@C1', '2@C2']],
      [3, ['1@C2']],
    ],
  );
  assert.deepEqual(
    skipped.map((s) => s.uuid),
    [uuid(4), uuid(5)],
  );
  assert.match(skipped[0].why, /piece 2 is missing/);
  assert.match(skipped[1].why, /piece 1 on C2 at block \d+ is incomplete \(no trailer\)/);
  const two = candidates[1].set;
  assert.deepEqual(
    [two.streamBytes, two.sha256, two.endedAt, two.jobId, two.pool],
    [96 * KIB, 'ab'.repeat(32), '2026-01-01T00:01:02.000Z', null, 'daily'],
  );

  // Piece 1 missing, and a piece found twice.
  const [c1, c2] = scene();
  assert.match(wholeSets([c2]).skipped.find((s) => s.uuid === uuid(2))!.why, /piece 1 is missing/);
  assert.match(wholeSets([c1, c1, c2]).skipped.find((s) => s.uuid === uuid(2))!.why, /found twice/);
});

testBoth(
  'applyRebuild writes whole sets, volumes without a kept change id and cartridge states in one go',
  async ({ db }) => {
    const out = await applyRebuild(db, scene());
    assert.deepEqual(out.inserted, [1, 2, 3]);
    assert.deepEqual(out.existing, []);
    assert.deepEqual(
      out.skipped.map((s) => s.uuid),
      [uuid(4), uuid(5)],
    );

    const sets = await listSets(db);
    assert.deepEqual(
      sets.map((s) => [s.id, s.level, s.baseSetId, s.cartridges]),
      [
        [1, 'full', null, ['C1']],
        [2, 'full', null, ['C1', 'C2']],
        [3, 'incremental', 1, ['C2']],
      ],
    );
    const two = await getSet(db, 2);
    assert.deepEqual(
      two!.pieces.map((p) => [p.seq, p.streamStart, p.streamEnd]),
      [
        [1, 0, 32 * KIB],
        [2, 32 * KIB, 96 * KIB],
      ],
    );
    const vol = await getVolume(db, 'store:0');
    assert.deepEqual(
      [vol?.node, vol?.lun, vol?.keptChangeId, vol?.keptSetId, vol?.diskBlockBytes],
      ['store', 0, null, null, DBB],
    );
    assert.equal(await getVolume(db, 'store:1'), undefined, 'no volume for a set that was skipped');

    const s = scene();
    const c1 = await getCartridge(db, 'C1');
    assert.deepEqual(
      [c1?.state, c1?.pool, c1?.labeled, c1?.uuid, c1?.endBlock, c1?.bytesUsed],
      ['full', 'daily', true, uuid(901), s[0].pieces[1].endBlock, s[0].pieces[1].endBlock * B],
    );
    const c2 = await getCartridge(db, 'C2');
    // The end is after set 3, the last whole one: set 4's first piece and set 5's header are a failed job's leftovers.
    assert.deepEqual([c2?.state, c2?.endBlock], ['append', s[1].pieces[1].endBlock]);
    assert.deepEqual(
      (await listCartridges(db)).map((c) => [c.barcode, c.state, c.error]),
      [
        ['C1', 'full', null],
        ['C2', 'append', null],
        ['C3', 'blank', null],
        ['C4', 'error', 'not a Ferry cartridge: bad magic'],
      ],
    );

    // Again: nothing is duplicated, the sets are reported as already there.
    const again = await applyRebuild(db, scene());
    assert.deepEqual([again.inserted, again.existing], [[], [1, 2, 3]]);
    assert.equal((await listSets(db)).length, 3);
  },
);

testBoth(
  "applyRebuild leaves the catalog's sets alone, maps bases by uuid, and skips what clashes or lacks a base",
  async ({ db }) => {
    // The catalog already has set 1's uuid under id 11, and another set under id 3.
    await upsertCartridge(db, { barcode: 'OLD', library: 'vtl' });
    await upsertVolume(db, {
      node: 'store',
      lun: 0,
      designator: '6001405abcdef0123456789abcdef012',
      diskBlockBytes: DBB,
      volumeBlocks: 1 << 20,
    });
    await completeSet(db, { set: fakeSet(11, { uuid: uuid(1) }), pieces: [fakePiece(1, 'OLD')], cartridges: [] });
    await completeSet(db, { set: fakeSet(3, { uuid: uuid(33) }), pieces: [fakePiece(1, 'OLD')], cartridges: [] });
    const p6 = piece(6, 1, 0, 8 * KIB, 8 * KIB, 2, { base: 1 });
    const p7 = piece(7, 1, 0, 8 * KIB, 8 * KIB, p6.endBlock, { base: 8 });
    const out = await applyRebuild(db, [...scene(), cart('C5', 5, [p6, p7])]);
    assert.deepEqual(out.inserted, [2, 6]);
    assert.deepEqual(out.existing, [11]);
    const why = new Map(out.skipped.map((s) => [s.uuid, s.why]));
    assert.match(why.get(uuid(3))!, /another set with id 3/);
    assert.match(why.get(uuid(7))!, /base set 8 .* is neither in the catalog nor whole/);
    assert.equal((await getSet(db, 6))?.baseSetId, 11, 'the base is found by uuid, under the id the catalog gave it');
    assert.equal((await getSet(db, 11))?.jobId, null);
  },
);

testBoth('applyRebuild writes nothing when one write fails', async ({ db }) => {
  const s = scene();
  // Two cartridges with one label uuid: the second cartridge row breaks the unique uuid.
  const twin = cart('C9', 1, []);
  await assert.rejects(applyRebuild(db, [...s, twin]));
  assert.deepEqual(await listSets(db), []);
  assert.deepEqual(await listCartridges(db), []);
});
