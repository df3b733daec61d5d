import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { cartridgeResource, getCartridge, markCartridge, release, reserve } from '../catalog/queries/cartridges.ts';
import { createJob } from '../catalog/queries/jobs.ts';
import { fakePiece, fakeSet, simulatedMonth } from '../catalog/testing.ts';
import { completeSet } from '../catalog/queries/sets.ts';
import { firstRecordOf, remoteSha256, startJobsWorld } from './testing.ts';

// `ferry prune` through the server library, in one process over real iSCSI: a pool that keeps the
// last set of each volume. The expired set's cartridge returns to scratch, a prune is refused
// while a job holds that cartridge, an expired set cannot be restored, and the cartridge, reused
// when nothing else is writable, gets a new label before its next set, which restores bit-exact.

const MIB = 1 << 20;

test('prune: dry run, refused while a job holds the cartridge, expire, scratch, relabel on reuse', async () => {
  await inTempDir('ferry-prune-', async (dir) => {
    const w = await startJobsWorld(dir, { iqn: 'iqn.2026-11.dev.ferry:prune-test', cartridgeSize: 16 * MIB });
    try {
      w.config.pools[0].retention = { keepLast: 1 };
      const db = w.service.catalog.db;
      const src = await w.lun(2 * MIB);
      const volume = `store:${src.lun}`;
      const backup = async (): Promise<{ set: number; cartridge: string }> => {
        await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        const j = await w.service.waitForJob((await w.service.startBackup({ volume })).id);
        assert.equal(j.state, 'done', JSON.stringify(j.error));
        const s = await w.service.getSet(j.set!);
        return { set: s.id, cartridge: s.cartridges[0] };
      };
      const first = await backup();
      await markCartridge(db, first.cartridge, { state: 'full' }); // the next set goes to another cartridge
      const second = await backup();
      assert.notEqual(second.cartridge, first.cartridge);

      const dry = await w.service.prune({ dryRun: true });
      assert.deepEqual(
        dry.expired.map((e) => [e.set, e.volume, e.cartridges]),
        [[first.set, volume, [first.cartridge]]],
      );
      assert.deepEqual(dry.kept, [{ set: second.set, why: 'keepLast' }]);
      assert.deepEqual(dry.scratch, [first.cartridge]);
      assert.equal((await w.service.listSets()).length, 2, 'a dry run changes nothing');

      // A job holding the cartridge of a set that would expire: refused, nothing pruned.
      const holder = await createJob(db, { type: 'restore', volumeId: null, params: {} });
      await reserve(db, cartridgeResource(first.cartridge), holder.id);
      await assert.rejects(
        w.service.prune(),
        new RegExp(
          `set ${first.set} would expire, but its cartridge ${first.cartridge} is in use by job ${holder.id}: prune ` +
            `again when the job has ended \\(nothing was pruned\\)`,
        ),
      );
      assert.equal((await w.service.listSets()).length, 2);
      await release(db, holder.id);

      const done = await w.service.prune();
      assert.deepEqual(
        [done.dryRun, done.expired.map((e) => e.set), done.scratch],
        [false, [first.set], [first.cartridge]],
      );
      assert.deepEqual(
        (await w.service.listSets()).map((s) => s.id),
        [second.set],
      );
      await assert.rejects(
        w.service.startRestore({ set: first.set, to: 'store:new' }),
        new RegExp(`set ${first.set} expired on .*: its cartridge may have been written over`),
      );
      const scratch = await getCartridge(db, first.cartridge);
      assert.deepEqual([scratch?.state, scratch?.pool, scratch?.recycledAt !== null], ['blank', null, true]);

      // A catalog rebuild reads the old label and sets on it, and leaves it in scratch.
      const rb = await w.service.waitForJob((await w.service.startRebuild({})).id);
      assert.equal(rb.state, 'done', JSON.stringify(rb.error));
      assert.deepEqual(
        (await w.service.listSets()).map((s) => s.id),
        [second.set],
        'the expired set stays expired',
      );
      const afterRebuild = await getCartridge(db, first.cartridge);
      assert.deepEqual(
        [afterRebuild?.state, afterRebuild?.pool, afterRebuild?.uuid, afterRebuild?.recycledAt],
        [scratch?.state, scratch?.pool, scratch?.uuid, scratch?.recycledAt],
        'still in scratch after the rebuild',
      );

      // Nothing else writable: the recycled cartridge is reused, relabeled first.
      for (const c of await w.service.listCartridges())
        if (c.barcode !== first.cartridge) await markCartridge(db, c.barcode, { state: 'full' });
      const oldUuid = scratch!.uuid;
      const third = await backup();
      assert.equal(third.cartridge, first.cartridge);
      const events = await w.service.events((await w.service.listJobs({ type: 'backup' }))[0].id);
      assert.ok(
        events.some((e) => e.message.startsWith(`cartridge ${first.cartridge} came back from scratch`)),
        events.map((e) => e.message).join('\n'),
      );
      const relabeled = await getCartridge(db, first.cartridge);
      assert.deepEqual([relabeled?.pool, relabeled?.recycledAt, relabeled?.state], ['default', null, 'append']);
      assert.notEqual(relabeled?.uuid, oldUuid, 'a new label, a new uuid');
      // On tape: the new label at block 0.
      assert.equal(await firstRecordOf(w, first.cartridge), `${relabeled?.uuid} default`);
      // The reused cartridge's set restores bit-exact.
      const want = await remoteSha256(src.dev);
      const r = await w.service.waitForJob((await w.service.startRestore({ set: third.set, to: 'store:new' })).id);
      assert.equal(r.state, 'done', JSON.stringify(r.error));
      assert.equal(await remoteSha256(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), want);
    } finally {
      await w.close();
    }
  });
});

test(
  'prune through the server after a simulated month of daily sets: --dry-run names exactly the sets the rules ' +
    'expire, then prune expires them',
  async () => {
    await inTempDir('ferry-prune-month-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-11.dev.ferry:prune-month', cartridgeSize: 16 * MIB });
      try {
        // The month's sets are in pool "daily" of library vtl (src/catalog/testing.ts simulatedMonth).
        w.config.pools.push({
          name: 'daily',
          library: 'vtl',
          tapeBlockBytes: w.config.pools[0].tapeBlockBytes,
          retention: { keepLast: 2, keepDaily: 5, keepWeekly: 2, keepMonthly: 2 },
        });
        await simulatedMonth(w.service.catalog.db);
        // An incremental in a pool without rules, built on set 5 of pool daily: 5 and its chain stay.
        w.config.pools.push({ name: 'offsite', library: 'vtl', tapeBlockBytes: w.config.pools[0].tapeBlockBytes });
        await completeSet(w.service.catalog.db, {
          set: fakeSet(35, { pool: 'offsite', mode: 'image', level: 'incremental', baseSetId: 5 }),
          pieces: [fakePiece(1, 'C4')],
          cartridges: [],
        });
        const expect = [6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21];
        const dry = await w.service.prune({ dryRun: true });
        assert.deepEqual(
          dry.expired.map((e) => e.set),
          expect,
        );
        assert.deepEqual(dry.scratch, ['C2'], 'the cartridge left with nothing kept (C1 keeps 1–5, C3 keeps 15)');
        assert.deepEqual(dry.unmanaged, ['default', 'offsite'], 'a pool without rules keeps everything');
        assert.deepEqual(
          dry.kept.find((k) => k.set === 23),
          { set: 23, why: 'base of set 24' },
        );
        assert.deepEqual(
          dry.kept.filter((k) => k.set <= 5),
          [1, 2, 3, 4, 5].map((n) => ({ set: n, why: `base of set ${n === 5 ? 35 : n + 1}` })),
        );
        assert.equal((await w.service.listSets()).length, 35);
        const done = await w.service.prune();
        assert.deepEqual(
          done.expired.map((e) => e.set),
          expect,
        );
        assert.equal((await w.service.listSets()).length, 20);
        assert.deepEqual((await w.service.prune()).expired, [], 'nothing more on a second run');
      } finally {
        await w.close();
      }
    });
  },
);
