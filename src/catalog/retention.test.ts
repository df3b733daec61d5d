import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getCartridge, pickWritable, upsertCartridge } from './queries/cartridges.ts';
import { cartridgesEmptiedBy, expireSets, keptSets, setProtected } from './queries/retention.ts';
import { getSet, listSets } from './queries/sets.ts';
import { simulatedMonth as month, testBoth } from './testing.ts';
import { isoWeek, keepsSomething, pruneMarks } from '../jobs/retention.ts';

// Retention over a simulated month (the sets' times are given, nothing waits): the rules of
// src/jobs/retention.ts on the catalog's kept sets, then expiring them in the catalog.

const RULES = { keepLast: 2, keepDaily: 5, keepWeekly: 2, keepMonthly: 2 };

test('retention rules: ISO weeks, and rules that keep nothing are told apart', () => {
  assert.equal(isoWeek(new Date(2026, 11, 3)), '2026-W49');
  assert.equal(isoWeek(new Date(2027, 0, 1)), '2026-W53', 'Friday 1 January belongs to the last week of 2026');
  assert.equal(isoWeek(new Date(2024, 11, 30)), '2025-W01', 'Monday 30 December starts week 1 of 2025');
  assert.equal(isoWeek(new Date(2026, 10, 1)), '2026-W44');
  assert.equal(keepsSomething({}), false);
  assert.equal(keepsSomething({ keepLast: 0, keepDaily: 0 }), false);
  assert.equal(keepsSomething({ keepMonthly: 1 }), true);
});

testBoth(
  'retention over a month: keepLast 2, keepDaily 5, keepWeekly 2, keepMonthly 2 keep exactly these sets and the ' +
    'bases ' +
    'they need',
  async ({ db }) => {
    await month(db);
    const marks = pruneMarks(await keptSets(db, 'daily'), RULES);
    const why = new Map(marks.filter((m) => m.keep).map((m) => [m.set, m.why]));
    // By hand: the two newest (31, 30); the newest of each of the 5 days before (29 … 25); the
    // newest of the 2 ISO weeks not yet covered (W47: 22, W46: 15); November is covered, and no
    // older month has a set. Incrementals 25 … 28 need 24 and 23 (22 is a full).
    assert.deepEqual(Object.fromEntries(why), {
      15: 'keepWeekly 2026-W46',
      22: 'keepWeekly 2026-W47',
      23: 'base of set 24',
      24: 'base of set 25',
      25: 'keepDaily 2026-11-25',
      26: 'keepDaily 2026-11-26',
      27: 'keepDaily 2026-11-27',
      28: 'keepDaily 2026-11-28',
      29: 'keepDaily 2026-11-29',
      30: 'keepLast',
      31: 'keepLast',
      32: 'keepLast', // store:1 is its own group
      33: 'keepLast',
      34: 'keepLast', // and so is store:0's files mode
    });
    const expired = marks.filter((m) => !m.keep).map((m) => m.set);
    assert.deepEqual(expired, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21]);
    assert.ok(marks.filter((m) => !m.keep).every((m) => m.why === 'expired'));

    // A protected incremental keeps its whole chain.
    await setProtected(db, 3, true);
    const again = pruneMarks(await keptSets(db, 'daily'), RULES);
    const kept = new Map(again.filter((m) => m.keep).map((m) => [m.set, m.why]));
    assert.equal(kept.get(3), 'protected');
    assert.equal(kept.get(2), 'base of set 3');
    assert.equal(kept.get(1), 'base of set 2');
    const toExpire = again.filter((m) => !m.keep).map((m) => m.set);
    assert.deepEqual(toExpire, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21]);

    // C2 holds only expiring sets; C1 keeps 1–3, C3 keeps 15.
    assert.deepEqual(await cartridgesEmptiedBy(db, toExpire), ['C2']);
    assert.equal((await listSets(db)).length, 34, 'a dry run changes nothing');
    assert.deepEqual(await expireSets(db, toExpire, '2026-12-01T08:00:00.000Z'), ['C2']);
    assert.deepEqual(
      (await listSets(db)).map((s) => s.id),
      [1, 2, 3, 15, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34],
    );
    assert.equal((await listSets(db, { expired: true })).length, 34, 'expired sets stay in the history');
    assert.equal((await getSet(db, 4))?.expiredAt, '2026-12-01T08:00:00.000Z');
    const c2 = await getCartridge(db, 'C2');
    assert.deepEqual(
      {
        state: c2?.state,
        pool: c2?.pool,
        endBlock: c2?.endBlock,
        labeled: c2?.labeled,
        uuid: c2?.uuid,
        recycledAt: c2?.recycledAt,
      },
      {
        state: 'blank',
        pool: null,
        endBlock: 0,
        labeled: true,
        uuid: 'uuid-C2',
        recycledAt: '2026-12-01T08:00:00.000Z',
      },
      'back in scratch, its label still known (checked before it is relabeled)',
    );
    // The same rules again expire nothing more: pruning is stable.
    const third = pruneMarks(await keptSets(db, 'daily'), RULES);
    assert.ok(
      third.every((m) => m.keep),
      JSON.stringify(third.filter((m) => !m.keep)),
    );
    await assert.rejects(setProtected(db, 4, true), /set 4/, 'an expired set cannot be protected');
  },
);

testBoth(
  "a recycled cartridge is reused last: after the pool's appendable and blank ones, the longest in scratch first",
  async ({ db }) => {
    await upsertCartridge(db, {
      barcode: 'R1',
      library: 'vtl',
      labeled: true,
      uuid: 'u1',
      recycledAt: '2026-12-02T00:00:00.000Z',
    });
    await upsertCartridge(db, {
      barcode: 'R0',
      library: 'vtl',
      labeled: true,
      uuid: 'u0',
      recycledAt: '2026-12-01T00:00:00.000Z',
    });
    await upsertCartridge(db, { barcode: 'B9', library: 'vtl' });
    await upsertCartridge(db, {
      barcode: 'A5',
      library: 'vtl',
      pool: 'daily',
      state: 'append',
      labeled: true,
      uuid: 'u5',
    });
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await pickWritable(db, 'daily', { library: 'vtl' });
      order.push(c!.barcode);
      await upsertCartridge(db, { barcode: c!.barcode, state: 'full', pool: 'daily' });
    }
    assert.deepEqual(order, ['A5', 'B9', 'R0', 'R1']);
  },
);
