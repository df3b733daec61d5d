import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import type { JobView } from './types.ts';
import { remoteSha256, startJobsWorld, type JobsWorld } from './testing.ts';

// Drills of issue 14 in one process over real iSCSI (the world of service.test.ts):
//   the catalog file deleted mid-life, after full and incremental sets of which some were pruned:
//   a rebuild from tape brings back every set that was kept, and the latest chain restores;
//   end of medium mid-set while another job writes on the other drive: the set spans, both restore.

const MIB = 1 << 20;

function ok(j: JobView): JobView {
  assert.equal(j.state, 'done', `job ${j.id} (${j.type}): ${JSON.stringify(j.error)}`);
  return j;
}

async function restoredSha(w: JobsWorld, set: number): Promise<string> {
  const r = ok(await w.service.waitForJob((await w.service.startRestore({ set, to: 'store:new' })).id));
  return remoteSha256(await RemoteBlockDevice.open(w.ws, r.result!.lun as number));
}

test(
  'the catalog deleted mid-life, after fulls and incrementals some of which were pruned: a rebuild brings back ' +
    'every kept set, and the latest chain restores bit-exact',
  async () => {
    await inTempDir('drill-catalog', async (dir) => {
      const w = await startJobsWorld(dir, {
        iqn: 'iqn.2026-11.dev.ferry:drill-catalog',
        cartridgeSize: 32 * MIB,
        tapeBlockBytes: 32 * 1024,
      });
      try {
        w.config.pools[0].retention = { keepLast: 3 };
        const src = await w.lun(4 * MIB);
        const volume = `store:${src.lun}`;
        await src.dev.write(0, randomFillSync(new Uint8Array(4 * MIB)));
        // full, inc, inc, full, inc, inc: a change before each incremental.
        const ids: number[] = [];
        for (const level of ['full', 'incremental', 'incremental', 'full', 'incremental', 'incremental'] as const) {
          if (level === 'incremental') await src.dev.write(ids.length * 512, randomFillSync(new Uint8Array(64 * 1024)));
          await src.dev.flush();
          ids.push(ok(await w.service.waitForJob((await w.service.startBackup({ volume, level })).id)).set!);
        }
        const latest = await remoteSha256(src.dev);
        // keepLast 3 keeps the last three (the second full and its two incrementals); the first chain expires.
        const pruned = await w.service.prune();
        assert.deepEqual(
          pruned.expired.map((e) => e.set),
          ids.slice(0, 3),
        );
        const kept = (await w.service.listSets()).map((s) => s.id);
        assert.deepEqual(kept, ids.slice(3));

        // The catalog file is lost; the server starts on an empty one and rebuilds it from tape.
        await w.service.close();
        for (const f of ['', '-wal', '-shm']) await rm(w.config.catalog + f, { force: true });
        w.service = await w.openService();
        assert.deepEqual(await w.service.listSets(), []);
        ok(await w.service.waitForJob((await w.service.startRebuild({})).id));
        const back = (await w.service.listSets()).map((s) => s.id);
        for (const id of kept) assert.ok(back.includes(id), `kept set ${id} is back (back: ${back.join(', ')})`);
        // The pruned sets are still on the cartridge (it was never recycled): a rebuild finds them too, and the rules
        // expire them again.
        assert.deepEqual(
          (await w.service.prune()).expired.map((e) => e.set),
          ids.slice(0, 3),
        );
        assert.equal(await restoredSha(w, ids.at(-1)!), latest, 'the latest incremental chain restores bit-exact');
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'end of medium mid-set while another backup writes on the other drive: the set spans cartridges, and both sets ' +
    'restore bit-exact',
  async () => {
    await inTempDir('drill-eom', async (dir) => {
      // 8 MiB cartridges: the 12 MiB volume cannot fit on one.
      const w = await startJobsWorld(dir, {
        iqn: 'iqn.2026-11.dev.ferry:drill-eom',
        cartridgeSize: 8 * MIB,
        tapeBlockBytes: 32 * 1024,
      });
      try {
        const big = await w.lun(12 * MIB);
        const small = await w.lun(3 * MIB);
        await big.dev.write(0, randomFillSync(new Uint8Array(12 * MIB)));
        await small.dev.write(0, randomFillSync(new Uint8Array(3 * MIB)));
        const want = { big: await remoteSha256(big.dev), small: await remoteSha256(small.dev) };
        const [a, b] = await Promise.all([
          w.service.startBackup({ volume: `store:${big.lun}` }),
          w.service.startBackup({ volume: `store:${small.lun}` }),
        ]);
        // Both copy at the same time, each on its own drive.
        let both = false;
        const seen = new Set<number>();
        const unsubs = [a, b].map((j) =>
          w.service.subscribe(j.id, (e) => {
            if (e.kind === 'state' && e.state === 'copying') seen.add(j.id);
            if (seen.size === 2) both = true;
          }),
        );
        const [ja, jb] = [ok(await w.service.waitForJob(a.id)), ok(await w.service.waitForJob(b.id))];
        for (const u of unsubs) u();
        assert.ok(both, 'the two backups were copying at once');
        const sets = await w.service.listSets();
        const bigSet = sets.find((s) => s.id === ja.set)!;
        const smallSet = sets.find((s) => s.id === jb.set)!;
        assert.ok(bigSet.cartridges.length >= 2, `the big set spans: ${bigSet.cartridges.join(', ')}`);
        const events = await w.service.events(a.id);
        assert.ok(
          events.some((e) =>
            /reached early warning at stream byte \d+; the set continues on the next cartridge/.test(e.message),
          ),
          events.map((e) => e.message).join('\n'),
        );
        assert.equal(await restoredSha(w, bigSet.id), want.big);
        assert.equal(await restoredSha(w, smallSet.id), want.small);
      } finally {
        await w.close();
      }
    });
  },
);
