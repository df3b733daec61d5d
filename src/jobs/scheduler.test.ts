import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { driveResource, release, reserve } from '../catalog/queries/cartridges.ts';
import { parseServerConfig } from '../server/config.ts';
import { Scheduler } from './scheduler.ts';
import { startJobsWorld } from './testing.ts';

// The scheduler's decisions, with the clock passed in (no waiting for cron): real jobs on a real
// storage node, library and catalog (src/jobs/testing.ts).

const MIB = 1 << 20;
const DAY = 86_400_000;

test(
  'scheduler: the first run is a full, then incrementals until fullEvery has passed; a run while the volume is ' +
    'still being backed up skips and says which job',
  async () => {
    await inTempDir('ferry-sched-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-12.dev.ferry:sched' });
      try {
        const { lun, dev } = await w.lun(1 * MIB);
        await dev.write(0, randomFillSync(new Uint8Array(1 * MIB)));
        const volume = `store:${lun}`;
        const s = new Scheduler(w.service, [
          { name: 'nightly', volume, mode: 'image', level: 'incremental', cron: '0 22 * * 1-5', fullEveryMs: 7 * DAY },
        ]);
        const t0 = new Date();

        const first = await s.fire('nightly', t0);
        assert.ok(first.started);
        assert.equal(first.level, 'full', 'no full set yet');
        assert.equal((await w.service.waitForJob(first.job)).state, 'done');

        // The next run waits for a drive (both held), so the one after finds it still going.
        const [d1, d2] = await w.service.site.drivesOf(w.service.site.pool(undefined));
        for (const d of [d1, d2]) await reserve(w.service.catalog.db, driveResource(d), first.job);
        const second = await s.fire('nightly', new Date(t0.getTime() + DAY));
        assert.ok(second.started);
        assert.equal(second.level, 'incremental', 'the full is a day old');
        const third = await s.fire('nightly', new Date(t0.getTime() + 2 * DAY));
        assert.equal(third.started, false);
        assert.match(
          third.skipped,
          new RegExp(`^backup job ${second.job} of ${volume} is still (queued|waiting-quiet|planning|waiting-drive)$`),
        );
        await release(w.service.catalog.db, first.job);
        assert.equal((await w.service.waitForJob(second.job)).state, 'done');

        const later = await s.fire('nightly', new Date(Date.now() + 8 * DAY));
        assert.ok(later.started);
        assert.equal(later.level, 'full', 'the last full is over 7 days old');
        assert.equal((await w.service.waitForJob(later.job)).state, 'done');
        const sets = await w.service.listSets({ volume });
        assert.deepEqual(
          sets.map((x) => x.level),
          ['full', 'incremental', 'full'],
        );

        const [view] = s.list(new Date(2026, 11, 4, 12, 0)); // a Friday, noon (server local time)
        assert.equal(view.nextRun, new Date(2026, 11, 4, 22, 0).toISOString());
        assert.deepEqual(view.last, later);
        assert.equal(
          s.list(new Date(2026, 11, 4, 23, 0))[0].nextRun,
          new Date(2026, 11, 7, 22, 0).toISOString(),
          'Friday night → Monday',
        );
        await assert.rejects(s.fire('weekly'), /no schedule weekly/);
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'scheduler config: a bad cron pattern, two schedules of one volume, an unknown node or pool, and a bad period ' +
    'name what to fix',
  () => {
    const base = {
      tokenFile: 't',
      catalog: 'c.db',
      nodes: [
        {
          name: 'store',
          portal: '127.0.0.1:3260',
          iqn: 'iqn.2026-12.dev.ferry:s',
          api: 'http://127.0.0.1:8460',
          tokenFile: 'n',
        },
      ],
      libraries: [{ name: 'vtl', portal: '127.0.0.1:3261', iqn: 'iqn.2026-12.dev.ferry:t' }],
      pools: [{ name: 'default', library: 'vtl' }],
    };
    const parse = (schedules: unknown[]) => parseServerConfig({ ...base, schedules }, '/etc/ferry/server.json');
    const ok = parse([{ volume: 'store:0', cron: '0 22 * * 1-5', fullEvery: '7d' }]);
    assert.deepEqual(ok.schedules, [
      {
        name: 'store:0',
        volume: 'store:0',
        mode: 'image',
        level: 'incremental',
        cron: '0 22 * * 1-5',
        fullEveryMs: 7 * DAY,
      },
    ]);
    assert.throws(
      () => parse([{ volume: 'store:0', cron: '0 25 * * *' }]),
      /schedules\[0\]\.cron is "0 25 \* \* \*": expected a cron pattern/,
    );
    assert.throws(
      () =>
        parse([
          { volume: 'store:0', cron: '0 22 * * *' },
          { name: 'b', volume: 'store:0', cron: '0 3 * * 0' },
        ]),
      /schedules\[1\] and schedules\[0\] both back up store:0: one schedule per volume/,
    );
    assert.throws(
      () => parse([{ volume: 'nas:0', cron: '0 22 * * *' }]),
      /schedules\[0\]\.volume "nas:0" names node "nas", which is not in nodes/,
    );
    assert.throws(
      () => parse([{ volume: 'store:0', cron: '0 22 * * *', pool: 'weekly' }]),
      /schedules\[0\]\.pool "weekly" is not in pools/,
    );
    assert.throws(
      () => parse([{ volume: 'store:0', cron: '0 22 * * *', fullEvery: 'weekly' }]),
      /schedules\[0\]\.fullEvery is "weekly": expected a period such as "7d"/,
    );
    assert.throws(
      () => parse([{ volume: 'store', cron: '0 22 * * *' }]),
      /schedules\[0\]\.volume is "store": expected NODE:LUN/,
    );
  },
);

test(
  'scheduler: start() arms the patterns; a due schedule starts its backup by itself, and stop() ' + 'disarms',
  async () => {
    await inTempDir('ferry-sched-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-12.dev.ferry:sched-timer' });
      try {
        const { lun, dev } = await w.lun(1 * MIB);
        await dev.write(0, randomFillSync(new Uint8Array(1 * MIB)));
        const fired: Array<{ name: string; o: unknown }> = [];
        // Every second (croner's optional seconds field).
        const s = new Scheduler(
          w.service,
          [{ name: 'often', volume: `store:${lun}`, mode: 'image', level: 'full', cron: '* * * * * *' }],
          {
            onFire: (name, o) => fired.push({ name, o }),
          },
        );
        s.start();
        let started: { job: number } | undefined;
        for (let i = 0; i < 100 && !started; i++) {
          await new Promise((r) => setTimeout(r, 50));
          started = fired.map((f) => f.o as { started?: boolean; job: number }).find((o) => o.started);
        }
        s.stop();
        assert.ok(started, `a run started: ${JSON.stringify(fired)}`);
        assert.equal((await w.service.waitForJob(started.job)).state, 'done');
        const n = fired.length;
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(fired.length, n, 'nothing fires after stop()');
      } finally {
        await w.close();
      }
    });
  },
);
