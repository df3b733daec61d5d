// Fault drills, each role its own process (test/helpers/site.ts). With three `ferry mover`s
// (m1, m2, m3):
//   a backup whose mover is SIGKILLed at about 30 % and the next one's at about 70 % resumes each
//   time on another mover from where the tape stopped (not from the start), and its set restores
//   bit-exact;
//   with one mover left, killing it fails the job cleanly (no set), a retry after a mover is back
//   succeeds, and it appends where the catalog says: every set restores, one of them with its
//   mover killed mid-restore.
// The tape node, and in its own test the storage node, SIGKILLed mid-copy: the job fails naming
// that role, the set before it still restores, and the next backup succeeds.
// Three volumes backed up at once on two drives and two movers: two run, one on each mover, the
// third waits for a drive and then runs; all three restore bit-exact.
// The backup server SIGKILLed mid-copy: after restart the job is failed, no set is listed, its
// snapshot is released, the next backup appends over what it left, every set restores, and a
// catalog rebuild from tape finds exactly the catalog's sets.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { remoteSha256 } from '../../src/jobs/testing.ts';
import type { JobView } from '../../src/jobs/types.ts';
import { ServerClient } from '../../src/server/client.ts';
import { inTempDir } from '../helpers/temp-dir.ts';
import { startSite, STORE_IQN, type Site } from '../helpers/site.ts';

const MIB = 1 << 20;
const VOLUME_BYTES = 256 * MIB;
/** Each mover's --max-rate: a copy of the volume takes about 3 s, so a kill lands near the fraction it aims at. */
const MOVER_RATE = '80M';
const WS = 'iqn.2026-11.dev.ferry:failover-test-ws';

/** The server's REST API as the CLI reaches it (a new client each time: a restarted server has a new URL). */
async function api(site: Site): Promise<ServerClient> {
  return new ServerClient(site.server.url, (await readFile(site.server.tokenFile, 'utf8')).trim());
}

/** Start a job detached; its id. */
async function start(site: Site, args: string[]): Promise<number> {
  const r = await site.ferry([...args, '--detach', '--json']);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.json<{ job: number }>().job;
}

/** Poll the job until `until` holds (or it ends): the view that satisfied it. */
async function watch(site: Site, job: number, until: (j: JobView) => boolean): Promise<JobView> {
  for (;;) {
    const j = await (await api(site)).getJob(job);
    if (until(j) || ['done', 'failed', 'canceled'].includes(j.state)) return j;
    await sleep(20);
  }
}

const fraction = (j: JobView): number => (j.progress.bytesTotal ? j.progress.bytesDone / j.progress.bytesTotal : 0);

async function ended(site: Site, job: number): Promise<JobView> {
  return watch(site, job, () => false);
}

/**
 * Restore set `set` to store:new and return the restored LUN's SHA-256, read over iSCSI. With
 * `killAt`, the restore's mover is SIGKILLed once that fraction is restored; the job must finish.
 */
async function restoredSha(site: Site, ws: InitiatorSession, set: number, killAt?: number): Promise<string> {
  const job = await start(site, ['restore', String(set), '--to', 'store:new']);
  if (killAt !== undefined) {
    const j = await watch(site, job, (v) => v.state === 'copying' && fraction(v) >= killAt && v.mover !== null);
    assert.equal(j.state, 'copying', `the restore is still copying at ${killAt * 100} %`);
    await site.killMover(j.mover!);
  }
  const r = await ended(site, job);
  assert.equal(r.state, 'done', `restore of set ${set}: ${JSON.stringify(r.error)}\n${site.logTail()}`);
  if (killAt !== undefined) {
    const events = await (await api(site)).events(job);
    assert.ok(
      events.some((e) => /^data mover m\d failed/.test(e.message)) &&
        events.some((e) => e.message.startsWith('resuming the restore')),
      events.map((e) => e.message).join('\n'),
    );
  }
  return remoteSha256(await RemoteBlockDevice.open(ws, r.result?.lun as number, { readOnly: true }));
}

/** Write `bytes` of random data as diskN.img in `dir` (before the storage node opens it); its SHA-256. */
async function randomDisk(dir: string, bytes: number, n = 0): Promise<string> {
  const content = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; off += 64 * MIB) randomFillSync(content, off, Math.min(64 * MIB, bytes - off));
  const fh = await open(join(dir, `disk${n}.img`), 'w');
  await fh.write(content, 0, content.length, 0);
  await fh.close();
  return createHash('sha256').update(content).digest('hex');
}

test(
  'a backup whose data mover is killed at ~30 % and again at ~70 % resumes on another mover where the tape ' +
    'stopped, and restores bit-exact; with no mover left the job fails cleanly and a retry appends',
  async (t: TestContext) => {
    await inTempDir('failover', async (dir) => {
      const want = await randomDisk(dir, VOLUME_BYTES);

      const site = await startSite({
        dir,
        disks: [VOLUME_BYTES],
        cartridgeBytes: 2048 * MIB,
        slots: 4,
        movers: 3,
        quietPeriodMs: 200,
        moverRate: MOVER_RATE,
      });
      let ws: InitiatorSession | undefined;
      try {
        ws = await InitiatorSession.login({
          host: '127.0.0.1',
          port: Number(site.store.portal.split(':')[1]),
          initiatorName: WS,
          targetName: STORE_IQN,
        });

        // 1. Two kills in one job.
        const job = await start(site, ['backup', 'store:0', '--mode', 'image']);
        const killed: string[] = [];
        for (const at of [0.3, 0.7]) {
          const j = await watch(
            site,
            job,
            (v) => v.state === 'copying' && fraction(v) >= at && v.mover !== null && !killed.includes(v.mover),
          );
          assert.equal(
            j.state,
            'copying',
            `the job is still copying at ${at * 100} % (it is ${j.state}; raise VOLUME_BYTES if the copy is too ` +
              `fast)\n${site.logTail()}`,
          );
          t.diagnostic(`killing ${j.mover} at ${(fraction(j) * 100).toFixed(0)} %`);
          killed.push(j.mover!);
          await site.killMover(j.mover!);
        }
        const done = await ended(site, job);
        assert.equal(
          done.state,
          'done',
          `the job completes on the third mover: ${JSON.stringify(done.error)}\n${site.logTail(30)}`,
        );
        const third = ['m1', 'm2', 'm3'].find((m) => !killed.includes(m))!;
        assert.equal(done.mover, third);
        const events = await (await api(site)).events(job);
        const failed = events.filter((e) => /^data mover m\d failed: its session was lost/.test(e.message));
        assert.deepEqual(
          failed.map((e) => e.data?.failedMover),
          killed,
          'each kill is an event naming the mover and why',
        );
        // Each failover goes on where the tape stopped: in the data (`resuming set`), or at the
        // trailer when the kill came after the last data block.
        const resumed = events.filter(
          (e) =>
            e.message.startsWith(`resuming set ${done.set}`) ||
            e.message.startsWith(`writing the trailer of set ${done.set} again`),
        );
        assert.equal(resumed.length, 2, events.map((e) => e.message).join('\n'));
        const blocks = resumed.map((e) => e.data?.tapeBlock as number);
        const dataBlocks = VOLUME_BYTES / 262_144;
        assert.ok(
          blocks[0] > 0.1 * dataBlocks && blocks[1] > blocks[0],
          `resumed at tape blocks ${blocks.join(', ')}, not from the start`,
        );
        assert.ok(
          resumed[0].message.startsWith('resuming set') && (resumed[0].data?.streamByte as number) > 0,
          resumed[0].message,
        );
        for (const e of [...failed, ...resumed]) t.diagnostic(e.message);
        assert.equal(await restoredSha(site, ws, done.set!), want, 'the resumed set restores bit-exact');

        // 2. One mover left: its death fails the job, which records nothing.
        const before = await (await api(site)).listSets();
        const lone = await start(site, ['backup', 'store:0', '--mode', 'image']);
        const j = await watch(site, lone, (v) => v.state === 'copying' && fraction(v) >= 0.3);
        assert.equal(j.state, 'copying');
        await site.killMover(third);
        const gone = await ended(site, lone);
        assert.equal(gone.state, 'failed');
        t.diagnostic(gone.error!.message);
        assert.match(
          gone.error!.message,
          new RegExp(
            `data mover ${third} failed \\(its session was lost.*\\) and no other can take over: no data mover can ` +
              `take ` +
              `the job: .*cannot connect.*run the job again`,
          ),
        );
        assert.deepEqual(
          (await (await api(site)).listSets()).map((s) => s.id),
          before.map((s) => s.id),
          'no set for the failed job',
        );

        // 3. A mover is back: the retry succeeds, written over what the failed job left, and every set restores.
        await site.startMover(killed[0]);
        const retry = await start(site, ['backup', 'store:0', '--mode', 'image']);
        const again = await ended(site, retry);
        assert.equal(again.state, 'done', JSON.stringify(again.error));
        assert.equal(await restoredSha(site, ws, again.set!), want, 'the retried set restores bit-exact');
        // A restore whose mover dies goes on with another one, from the list it was in.
        await site.startMover(killed[1]);
        assert.equal(
          await restoredSha(site, ws, done.set!, 0.4),
          want,
          'the earlier set on the cartridge still restores, with a mover killed mid-restore',
        );
      } finally {
        await ws?.logout().catch(() => undefined);
        await site.stop();
      }
    });
  },
);

async function nodeSnapshots(site: Site): Promise<string[]> {
  const token = (await readFile(site.store.tokenFile, 'utf8')).trim();
  const r = await fetch(`${site.store.api}/v1/snapshots`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  return ((await r.json()) as Array<{ id: string }>).map((x) => x.id).sort();
}

/**
 * A full backup, then a second one during which `role` is SIGKILLed at about 30 %: the job fails
 * naming the role; once it is back the set before still restores and the next backup succeeds.
 */
async function roleKilledMidCopy(t: TestContext, role: 'tape' | 'store', names: RegExp): Promise<void> {
  await inTempDir(`kill-${role}`, async (dir) => {
    const want = await randomDisk(dir, VOLUME_BYTES);
    const site = await startSite({
      dir,
      disks: [VOLUME_BYTES],
      cartridgeBytes: 2048 * MIB,
      slots: 4,
      quietPeriodMs: 200,
      moverRate: MOVER_RATE,
    });
    try {
      const first = await ended(site, await start(site, ['backup', 'store:0', '--mode', 'image']));
      assert.equal(first.state, 'done', JSON.stringify(first.error));
      const setsBefore = (await (await api(site)).listSets()).map((s) => s.id);

      const job = await start(site, ['backup', 'store:0', '--mode', 'image']);
      const j = await watch(site, job, (v) => v.state === 'copying' && fraction(v) >= 0.3);
      assert.equal(j.state, 'copying', `the job is still copying at 30 % (it is ${j.state})`);
      await (role === 'tape' ? site.stopTape('SIGKILL') : site.stopStore('SIGKILL'));
      const failed = await ended(site, job);
      assert.equal(failed.state, 'failed', `the job fails, never done: ${JSON.stringify(failed)}`);
      t.diagnostic(failed.error!.message);
      assert.match(failed.error!.message, names);
      assert.deepEqual(
        (await (await api(site)).listSets()).map((s) => s.id),
        setsBefore,
        'no set for the failed job',
      );

      await (role === 'tape' ? site.startTape() : site.startStore());
      const next = await ended(site, await start(site, ['backup', 'store:0', '--mode', 'image']));
      assert.equal(next.state, 'done', `the next backup succeeds: ${JSON.stringify(next.error)}\n${site.logTail(30)}`);
      const ws = await InitiatorSession.login({
        host: '127.0.0.1',
        port: Number(site.store.portal.split(':')[1]),
        initiatorName: WS,
        targetName: STORE_IQN,
      });
      try {
        assert.equal(
          await restoredSha(site, ws, first.set!),
          want,
          'the set written before the kill restores bit-exact',
        );
        assert.equal(await restoredSha(site, ws, next.set!), want, 'the set written after it too');
      } finally {
        await ws.logout().catch(() => undefined);
      }
    } finally {
      await site.stop();
    }
  });
}

test(
  'the tape node SIGKILLed mid-copy: the job fails naming the tape library; the earlier set restores and the next ' +
    'backup succeeds',
  async (t) => {
    await roleKilledMidCopy(
      t,
      'tape',
      /^tape library vtl \(127\.0\.0\.1:\d+\) does not answer \(.*\): the copy failed there, not on data mover m1/,
    );
  },
);

test(
  'the storage node SIGKILLed mid-copy: the job fails naming the storage node; the earlier set restores and the ' +
    'next backup succeeds',
  async (t) => {
    await roleKilledMidCopy(
      t,
      'store',
      new RegExp(
        String.raw`^storage node store \(127\.0\.0\.1:\d+, LUN \d+\) does not answer \(.*\): ` +
          String.raw`the copy failed there, not on data mover m1`,
      ),
    );
  },
);

test(
  'the backup server SIGKILLed mid-copy: after restart the job is failed with no set and its snapshot released; ' +
    'the next backup appends and every set restores; a rebuild from tape agrees',
  async (t) => {
    await inTempDir('kill-server', async (dir) => {
      const want = await randomDisk(dir, VOLUME_BYTES);
      const site = await startSite({
        dir,
        disks: [VOLUME_BYTES],
        cartridgeBytes: 2048 * MIB,
        slots: 4,
        quietPeriodMs: 200,
        moverRate: MOVER_RATE,
      });
      try {
        const first = await ended(site, await start(site, ['backup', 'store:0', '--mode', 'image']));
        assert.equal(first.state, 'done', JSON.stringify(first.error));
        assert.deepEqual(await nodeSnapshots(site), [], 'the set keeps a change id, not its snapshot');

        const job = await start(site, ['backup', 'store:0', '--mode', 'image']);
        const j = await watch(site, job, (v) => v.state === 'copying' && fraction(v) >= 0.3);
        assert.equal(j.state, 'copying', `the job is still copying at 30 % (it is ${j.state})`);
        await site.stopServer('SIGKILL');
        assert.equal((await nodeSnapshots(site)).length, 1, "the job's snapshot outlives the server");
        await site.startServer();
        const after = await (await api(site)).getJob(job);
        assert.equal(after.state, 'failed');
        assert.equal(after.error?.message, 'interrupted by server restart');
        assert.deepEqual(
          (await (await api(site)).listSets()).map((s) => s.id),
          [first.set],
          'no set for the interrupted job',
        );
        assert.deepEqual(await nodeSnapshots(site), [], "the interrupted job's snapshot is released at restart");
        const events = await (await api(site)).events(job);
        t.diagnostic(events.at(-1)!.message);
        assert.match(
          events.at(-1)!.message,
          /^released snapshot snap-\w+ of store:0, taken by this job before the server stopped$/,
        );

        const next = await ended(site, await start(site, ['backup', 'store:0', '--mode', 'image']));
        assert.equal(
          next.state,
          'done',
          `the next backup succeeds: ${JSON.stringify(next.error)}\n${site.logTail(30)}`,
        );
        const ws = await InitiatorSession.login({
          host: '127.0.0.1',
          port: Number(site.store.portal.split(':')[1]),
          initiatorName: WS,
          targetName: STORE_IQN,
        });
        try {
          assert.equal(
            await restoredSha(site, ws, first.set!),
            want,
            'the set written before the kill restores bit-exact',
          );
          assert.equal(await restoredSha(site, ws, next.set!), want, 'the set appended after it too');
        } finally {
          await ws.logout().catch(() => undefined);
        }
        // The tape says what the catalog says: a rebuild from labels, headers and trailers finds the same sets.
        const setsNow = await (await api(site)).listSets();
        const r = await site.ferry(['catalog', 'rebuild', '--json']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(await (await api(site)).listSets(), setsNow);
        t.diagnostic(`rebuild: ${r.stdout.trim()}`);
      } finally {
        await site.stop();
      }
    });
  },
);

test(
  'three volumes at once on two drives and two movers: two run, one per mover, the third waits for a drive, then ' +
    'runs; all restore bit-exact',
  async (t) => {
    await inTempDir('parallel', async (dir) => {
      const BYTES = 128 * MIB;
      const want = await Promise.all([0, 1, 2].map((n) => randomDisk(dir, BYTES, n)));
      // 3 s a copy: the three are started well within the first one's copy.
      const site = await startSite({
        dir,
        disks: [BYTES, BYTES, BYTES],
        cartridgeBytes: 1024 * MIB,
        slots: 4,
        movers: 2,
        quietPeriodMs: 200,
        moverRate: '40M',
      });
      try {
        const jobs = await Promise.all([0, 1, 2].map((n) => start(site, ['backup', `store:${n}`, '--mode', 'image'])));
        // Watch all three until they end: what each was doing at every poll.
        const seen = new Map<number, Set<string>>(jobs.map((j) => [j, new Set<string>()]));
        const movers = new Map<number, string>();
        let together = 0;
        const c = await api(site);
        for (;;) {
          const views = await Promise.all(jobs.map((j) => c.getJob(j)));
          for (const v of views) {
            seen.get(v.id)!.add(v.state);
            if (v.mover) movers.set(v.id, v.mover);
          }
          const copying = views.filter((v) => v.state === 'copying').length;
          assert.ok(copying <= 2, `at most one copy per drive: ${views.map((v) => `${v.id} ${v.state}`).join(', ')}`);
          together = Math.max(together, copying);
          if (views.every((v) => ['done', 'failed', 'canceled'].includes(v.state))) break;
          await sleep(20);
        }
        const ends = await Promise.all(jobs.map((j) => c.getJob(j)));
        for (const e of ends) assert.equal(e.state, 'done', JSON.stringify(e.error));
        t.diagnostic(jobs.map((j) => `job ${j}: ${[...seen.get(j)!].join(' → ')} on ${movers.get(j)}`).join('; '));
        assert.equal(together, 2, 'two backups copied at the same time');
        const waited = jobs.filter((j) => seen.get(j)!.has('waiting-drive'));
        assert.equal(waited.length, 1, 'exactly one job waited for a drive');
        const events = await (await api(site)).events(waited[0]);
        assert.ok(
          events.some((e) => e.message === 'every drive of pool default is in use'),
          events.map((e) => e.message).join('\n'),
        );
        assert.deepEqual(
          new Set(jobs.filter((j) => j !== waited[0]).map((j) => movers.get(j))),
          new Set(['m1', 'm2']),
          'the two that ran together had a mover each',
        );
        const ws = await InitiatorSession.login({
          host: '127.0.0.1',
          port: Number(site.store.portal.split(':')[1]),
          initiatorName: WS,
          targetName: STORE_IQN,
        });
        try {
          for (const [i, e] of ends.entries())
            assert.equal(await restoredSha(site, ws, e.set!), want[i], `store:${i} restores bit-exact`);
        } finally {
          await ws.logout().catch(() => undefined);
        }
      } finally {
        await site.stop();
      }
    });
  },
);
