import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { cartridgeResource, markCartridge, release, reserve } from '../catalog/queries/cartridges.ts';
import { encodeRecord } from '../tapeformat/codec.ts';
import { FORMAT_VERSION } from '../tapeformat/magic.ts';
import type { JobEvent } from './types.ts';
import { remoteSha256, startJobsWorld } from './testing.ts';
import { freePort } from '../../test/helpers/tgtd.ts';
import type { CopyManagerRef } from './site.ts';
import { owedSnapshotDeletes } from '../catalog/queries/owed-snapshots.ts';

// The backup server's library end to end in one process, over real iSCSI: a storage node with a
// disk LUN and a library (changer + 2 drives), the drive LUs as copy managers, a SQLite catalog.

const IQN = 'iqn.2026-11.dev.ferry:jobs-test';
const MIB = 1 << 20;

const world = (dir: string, opts: { cartridgeSize?: number; tapeBlockBytes?: number } = {}) =>
  startJobsWorld(dir, { iqn: IQN, ...opts });
const sha = remoteSha256;
type World = Awaited<ReturnType<typeof world>>;

/** A LUN of random bytes and a full image backup of it: the LUN, its volume, the job, the set and its cartridge. */
async function backedUp(w: World, mib: number) {
  const src = await w.lun(mib * MIB);
  await src.dev.write(0, randomFillSync(new Uint8Array(mib * MIB)));
  const volume = `store:${src.lun}`;
  const job = await w.service.waitForJob((await w.service.startBackup({ volume })).id);
  assert.equal(job.state, 'done', JSON.stringify(job.error));
  const set = (await w.service.listSets({ volume })).at(-1)!;
  const cartridge = (await w.service.listCartridges()).find((c) => c.barcode === set.cartridges[0])!;
  return { src, volume, job, set, cartridge };
}

/** Load a cartridge into the pool's first drive, fixed blocks of the pool's size, to read or spoil it by hand. */
async function byHand(w: World, barcode: string) {
  const site = w.service.site;
  const pool = site.pool(undefined);
  const [driveName] = await site.drivesOf(pool);
  const d = await site.mount(pool, driveName, barcode);
  await d.drive.setFixedBlock(pool.tapeBlockBytes);
  return { drive: d.drive, B: pool.tapeBlockBytes };
}

test('backup server library: image full, incremental, restore of the chain to a new LUN is bit-exact', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const src = await w.lun(8 * MIB);
      const data = randomFillSync(new Uint8Array(8 * MIB));
      await src.dev.write(0, data);
      await src.dev.flush();
      const events: JobEvent[] = [];
      const full = await w.service.startBackup({
        volume: `store:${src.lun}`,
        mode: 'image',
        level: 'full',
        quietPeriodMs: 200,
      });
      const unsub = w.service.subscribe(full.id, (e) => events.push(e));
      const fullDone = await w.service.waitForJob(full.id);
      unsub();
      assert.equal(fullDone.state, 'done', JSON.stringify(fullDone.error));
      assert.ok(fullDone.bytes >= 8 * MIB, `mover bytes ${fullDone.bytes}`);
      assert.match(fullDone.mover ?? '', /^vtl \(drive LU \d+\)$/, 'no mover configured: the drive LU copies');
      const states = events.filter((e) => e.kind === 'state').map((e) => e.state);
      for (const s of ['waiting-quiet', 'planning', 'mounting', 'copying', 'done'] as const)
        assert.ok(states.includes(s), `${s} in ${states.join(',')}`);
      const atFull = await sha(src.dev);

      // Change a few ranges, then an incremental.
      const patch = randomFillSync(new Uint8Array(300 * 1024));
      await src.dev.write(4096, patch);
      await src.dev.write(100, patch.subarray(0, 4096));
      await src.dev.flush();
      const inc = await w.service.waitForJob(
        (await w.service.startBackup({ volume: `store:${src.lun}`, level: 'incremental' })).id,
      );
      assert.equal(inc.state, 'done', JSON.stringify(inc.error));
      const sets = await w.service.listSets({ volume: `store:${src.lun}` });
      assert.equal(sets.length, 2);
      assert.deepEqual([sets[1].level, sets[1].base, sets[1].reason], ['incremental', sets[0].id, null]);
      assert.ok(sets[1].bytes < 1 * MIB, `incremental moved ${sets[1].bytes} bytes`);
      assert.deepEqual(sets[0].cartridges, sets[1].cartridges, 'the incremental appended to the same cartridge');
      const atInc = await sha(src.dev);
      assert.notEqual(atInc, atFull);

      // Restore the chain to a new LUN.
      const r = await w.service.waitForJob((await w.service.startRestore({ set: sets[1].id, to: 'store:new' })).id);
      assert.equal(r.state, 'done', JSON.stringify(r.error));
      const lun = r.result!.lun as number;
      const restored = await RemoteBlockDevice.open(w.ws, lun);
      assert.equal(await sha(restored), atInc, 'restored chain = volume at the incremental');

      // Restore the full alone into an existing LUN: the volume at the full.
      const dst = await w.lun(8 * MIB);
      const r2 = await w.service.waitForJob(
        (await w.service.startRestore({ set: sets[0].id, to: `store:${dst.lun}` })).id,
      );
      assert.equal(r2.state, 'done', JSON.stringify(r2.error));
      assert.equal(await sha(dst.dev), atFull);

      const carts = await w.service.listCartridges();
      assert.equal(carts.filter((c) => c.state === 'append').length, 1);
    } finally {
      await w.close();
    }
  });
});

test('backup server library: bad input fails the job with a clear message and leaves no set', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const unknown = await w.service.waitForJob((await w.service.startBackup({ volume: 'store:9' })).id);
      assert.equal(unknown.state, 'failed');
      assert.match(unknown.error!.message, /unknown volume store:9/);
      await assert.rejects(w.service.startBackup({ volume: 'store:0', pool: 'nope' }), /no pool named nope/);
      await assert.rejects(w.service.startRestore({ set: 42, to: 'store:new' }), /no set 42/);

      const src = await w.lun(4 * MIB);
      await src.dev.write(0, randomFillSync(new Uint8Array(4 * MIB)));
      const ok = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
      assert.equal(ok.state, 'done', JSON.stringify(ok.error));
      const small = await w.lun(1 * MIB);
      const tooSmall = await w.service.waitForJob(
        (await w.service.startRestore({ set: ok.set!, to: `store:${small.lun}` })).id,
      );
      assert.equal(tooSmall.state, 'failed');
      assert.match(tooSmall.error!.message, /holds 1048576 bytes but set \d+ needs 4194304/);
      const over = await w.service.waitForJob(
        (await w.service.startRestore({ set: ok.set!, to: `store:${src.lun}` })).id,
      );
      assert.match(over.error!.message, /source of set .* --force/);
      assert.equal((await w.service.listSets()).length, 1);
    } finally {
      await w.close();
    }
  });
});

test('backup server library: a set spans cartridges at early warning and restores bit-exact', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    // 6 MiB cartridges: a 16 MiB volume needs three of them.
    const w = await world(dir, { cartridgeSize: 6 * MIB });
    try {
      const src = await w.lun(16 * MIB);
      await src.dev.write(0, randomFillSync(new Uint8Array(16 * MIB)));
      await src.dev.flush();
      const b = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
      assert.equal(b.state, 'done', JSON.stringify(b.error));
      const [set] = await w.service.listSets();
      assert.ok(set.cartridges.length >= 3, `cartridges ${set.cartridges.join(',')}`);
      const r = await w.service.waitForJob((await w.service.startRestore({ set: set.id, to: 'store:new' })).id);
      assert.equal(r.state, 'done', JSON.stringify(r.error));
      assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), await sha(src.dev));
    } finally {
      await w.close();
    }
  });
});

test(
  'backup server library: a write-protected cartridge fails the job naming it, and nothing changes on tape or in ' +
    'the catalog',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir);
      try {
        const inv = w.node.tapes.library!.inventory;
        await (
          await Cartridge.create(inv.cartridgePath('FER001L8'), {
            barcode: 'FER001L8',
            capacityBytes: 64 * MIB,
            writeProtected: true,
          })
        ).close();
        const src = await w.lun(2 * MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        // What the catalog says of each cartridge (its place and load count move with the mount).
        const fill = async () =>
          (await w.service.listCartridges()).map(
            ({ barcode, pool, state, bytesUsed, sets, lastWrittenAt, recycled }) => ({
              barcode,
              pool,
              state,
              bytesUsed,
              sets,
              lastWrittenAt,
              recycled,
            }),
          );
        const before = await fill();
        const b = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(b.state, 'failed');
        assert.match(
          b.error!.message,
          /cartridge FER001L8 is write-protected: clear its write protection or take it out of pool default/,
        );
        assert.deepEqual(await fill(), before);
        assert.deepEqual(await w.service.listSets(), []);
        const c = await Cartridge.open(inv.cartridgePath('FER001L8'), { readOnly: true });
        try {
          assert.equal(c.objectCount, 0, 'nothing was written to the cartridge');
        } finally {
          await c.close();
        }
      } finally {
        await w.close();
      }
    });
  },
);

test('backup server library: a canceled backup ends canceled, with no set and no snapshot left', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const src = await w.lun(4 * MIB);
      await src.dev.write(0, randomFillSync(new Uint8Array(4 * MIB)));
      const job = await w.service.startBackup({ volume: `store:${src.lun}`, quietPeriodMs: 500 });
      const canceled = await w.service.cancel(job.id);
      assert.equal(canceled.state, 'canceled');
      assert.equal(canceled.error?.code, 'ERR_CANCELED');
      assert.deepEqual(await w.service.listSets(), []);
      assert.deepEqual(await w.node.snapshots.listSnapshots(src.lun), []);
      await assert.rejects(w.service.cancel(job.id), /already canceled/);

      // Retry (the console's button, POST /v1/jobs/ID/retry): a new job with the same request.
      const again = await w.service.waitForJob((await w.service.retry(job.id)).id);
      assert.equal(again.state, 'done', JSON.stringify(again.error));
      assert.notEqual(again.id, job.id);
      assert.equal(again.volume, `store:${src.lun}`);
      assert.equal((await w.service.listSets())[0].mode, 'image');
      await assert.rejects(w.service.retry(again.id), /only a failed or canceled job is retried/);
      // The job's MB/s samples are kept in its final state event (none for a copy under a second).
      const last = (await w.service.events(again.id)).filter((e) => e.kind === 'state').at(-1)!;
      assert.equal(last.state, 'done');
      assert.ok(Array.isArray(last.data?.throughput), JSON.stringify(last.data));
      assert.deepEqual(await w.service.throughput(again.id), last.data?.throughput);
    } finally {
      await w.close();
    }
  });
});

test('backup server library: a session that died (target restart, network) is replaced on the next job', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const src = await w.lun(2 * MIB);
      await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
      const first = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
      assert.equal(first.state, 'done', JSON.stringify(first.error));
      const site = w.service.site;
      for (const kind of ['library', 'node'] as const)
        (await site.session(kind === 'library' ? site.config.libraries[0] : site.config.nodes[0], kind)).close();
      const second = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
      assert.equal(second.state, 'done', JSON.stringify(second.error));
    } finally {
      await w.close();
    }
  });
});

test(
  'backup server library: an empty pool, and a restore whose cartridge left the library, fail clearly and change ' +
    'nothing',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir);
      try {
        const src = await w.lun(2 * MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        const b = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(b.state, 'done', JSON.stringify(b.error));
        const [set] = await w.service.listSets();

        // The operator exports the set's cartridge and takes it out of the mail slot.
        const inv = w.node.tapes.library!.inventory;
        const at = inv.elements().find((e) => e.barcode === set.cartridges[0])!;
        const ie = inv.elements().find((e) => e.kind === 'import-export')!;
        await inv.move(at.address, ie.address);
        ie.barcode = null;
        const lunsBefore = w.node.registry.list().length;
        const r = await w.service.waitForJob((await w.service.startRestore({ set: set.id, to: 'store:new' })).id);
        assert.equal(w.node.registry.list().length, lunsBefore, 'the LUN created for the failed restore is gone');
        assert.equal(r.state, 'failed');
        assert.match(
          r.error!.message,
          new RegExp(`cartridge ${set.cartridges[0]} is not in library vtl: check \`ferry cartridges\``),
        );

        // Every other cartridge is full: the pool has nothing to write to.
        const before = await w.service.listSets();
        for (const c of await w.service.listCartridges())
          await markCartridge(w.service.catalog.db, c.barcode, { state: 'full' });
        const e = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(e.state, 'failed');
        assert.match(
          e.error!.message,
          /pool default has no blank or appendable cartridge: add cartridges to library vtl/,
        );
        assert.deepEqual(await w.service.listSets(), before);
      } finally {
        await w.close();
      }
    });
  },
);

test(
  "backup server library: a failed job's leftovers after the last set are erased, not counted against the " +
    "cartridge's room",
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir, { cartridgeSize: 8 * MIB });
      try {
        const { src, set: set1, cartridge: cart } = await backedUp(w, 2);
        // What a job killed mid-copy leaves: 5 MiB of blocks after the last complete set.
        const { drive, B } = await byHand(w, cart.barcode);
        await drive.locate(cart.bytesUsed / B);
        await drive.device.write(randomFillSync(new Uint8Array(5 * MIB)));
        const second = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(second.state, 'done', JSON.stringify(second.error));
        const sets = await w.service.listSets();
        assert.deepEqual(sets[1].cartridges, set1.cartridges, 'the second set went on the same cartridge');
        const r = await w.service.waitForJob((await w.service.startRestore({ set: sets[1].id, to: 'store:new' })).id);
        assert.equal(r.state, 'done', JSON.stringify(r.error));
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'backup server library: a cartridge whose label is not the one the catalog has is refused before anything is ' +
    'erased or written',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir, { cartridgeSize: 8 * MIB });
      try {
        const { volume, cartridge: cart } = await backedUp(w, 1);
        // Another cartridge under the same barcode: its own label and 3 MiB of its own data.
        const { drive, B } = await byHand(w, cart.barcode);
        await drive.rewind();
        const other = '00000000-0000-4000-8000-000000000001';
        const label = encodeRecord(
          {
            kind: 'label',
            cartridgeUuid: other,
            barcode: cart.barcode,
            pool: 'elsewhere',
            formatVersion: FORMAT_VERSION,
            createdAt: new Date().toISOString(),
            tapeBlockBytes: B,
          },
          B,
        );
        await drive.device.write(label);
        const theirs = randomFillSync(new Uint8Array(3 * MIB));
        await drive.device.write(theirs);
        const second = await w.service.waitForJob((await w.service.startBackup({ volume })).id);
        assert.equal(second.state, 'failed');
        assert.equal(second.error?.code, 'ERR_CONFLICT');
        assert.match(
          second.error?.message ?? '',
          new RegExp(
            `cartridge ${cart.barcode} starts with the label of another cartridge \\(uuid ${other}, pool elsewhere\\)`,
          ),
        );
        assert.equal((await w.service.listSets()).length, 1, 'no second set');
        // Their data is still there, untouched.
        const again = (await byHand(w, cart.barcode)).drive;
        await again.locate(label.length / B);
        const back = new Uint8Array(theirs.length);
        const r = await again.device.read(back);
        assert.equal(r.kind, 'data');
        assert.ok(Buffer.from(back).equals(theirs), 'the other cartridge keeps its data');
      } finally {
        await w.close();
      }
    });
  },
);

test('backup server library: a restore and a backup wait for a cartridge another job holds, then run', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const { src, job: first, set: set1 } = await backedUp(w, 2);
      const atBackup = await sha(src.dev);
      const barcode = set1.cartridges[0];
      const db = w.service.catalog.db;
      // Another job holds the set's cartridge, and every other cartridge is full.
      await reserve(db, cartridgeResource(barcode), first.id);
      for (const c of await w.service.listCartridges())
        if (c.barcode !== barcode) await markCartridge(db, c.barcode, { state: 'full' });
      const waitsFor = async (id: number): Promise<string> => {
        for (;;) {
          const j = await w.service.getJob(id);
          assert.ok(
            !['done', 'failed', 'canceled'].includes(j.state),
            `job ${id} ended ${j.state} while the cartridge was held: ${JSON.stringify(j.error)}`,
          );
          if (j.state === 'waiting-media') return j.progress.waitingFor ?? '';
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const restore = await w.service.startRestore({ set: set1.id, to: 'store:new' });
      assert.equal(await waitsFor(restore.id), `cartridge ${barcode}`);
      const backup = await w.service.startBackup({ volume: `store:${src.lun}`, level: 'incremental' });
      assert.equal(await waitsFor(backup.id), 'a writable cartridge of pool default');
      await release(db, first.id);
      const [r, b] = await Promise.all([w.service.waitForJob(restore.id), w.service.waitForJob(backup.id)]);
      assert.equal(r.state, 'done', JSON.stringify(r.error));
      assert.equal(b.state, 'done', JSON.stringify(b.error));
      const restored = await RemoteBlockDevice.open(w.ws, r.result!.lun as number);
      assert.equal(await sha(restored), atBackup, 'the restore that waited is bit-exact');
      assert.deepEqual(
        (await w.service.listSets()).map((s) => s.cartridges),
        [[barcode], [barcode]],
        'the backup that waited appended to the freed cartridge',
      );
    } finally {
      await w.close();
    }
  });
});

test('backup server library: two backups of one volume run one after the other, and no snapshot is kept', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const src = await w.lun(2 * MIB);
      await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
      const a = await w.service.startBackup({ volume: `store:${src.lun}` });
      const b = await w.service.startBackup({ volume: `store:${src.lun}`, level: 'incremental' });
      const [ja, jb] = await Promise.all([w.service.waitForJob(a.id), w.service.waitForJob(b.id)]);
      assert.equal(ja.state, 'done', JSON.stringify(ja.error));
      assert.equal(jb.state, 'done', JSON.stringify(jb.error));
      const waited = (await w.service.events(b.id)).some(
        (e) => e.kind === 'log' && /waiting for the backup of store:\d+ that is running \(job \d+\)/.test(e.message),
      );
      assert.ok(waited, 'the second backup said what it waited for');
      const sets = await w.service.listSets({ volume: `store:${src.lun}` });
      assert.equal(sets.length, 2);
      assert.deepEqual([sets[1].level, sets[1].base], ['incremental', sets[0].id], 'the second built on the first');
      // Each backup deletes its snapshot at the end; the incremental built on the change id alone.
      const kept = await w.node.snapshots.listSnapshots(src.lun);
      assert.equal(kept.length, 0, `snapshots left on the node: ${kept.map((s) => s.id).join(', ')}`);
      const vol = (await w.service.listVolumes()).find((v) => v.id === `store:${src.lun}`);
      assert.equal(vol?.lastSet, sets[1].id);
    } finally {
      await w.close();
    }
  });
});

test('backup server library: a snapshot the node could not delete is owed, and deleted later', async () => {
  await inTempDir('ferry-jobs-', async (dir) => {
    const w = await world(dir);
    try {
      const src = await w.lun(1 * MIB);
      const volume = `store:${src.lun}`;
      await src.dev.write(0, randomFillSync(new Uint8Array(1 * MIB)));
      const node = w.node.snapshots;
      const realDelete = node.deleteSnapshot.bind(node);
      let unreachable = true;
      node.deleteSnapshot = (id: string) =>
        unreachable ? Promise.reject(new Error('connect ECONNREFUSED (test)')) : realDelete(id);
      const logs = async (job: number): Promise<string[]> =>
        (await w.service.events(job)).flatMap((e) => (e.kind === 'log' ? [e.message] : []));

      // 1. The node cannot delete: the job is still done, says so, and the delete is owed.
      const a = await w.service.waitForJob((await w.service.startBackup({ volume })).id);
      assert.equal(a.state, 'done', JSON.stringify(a.error));
      const [left] = await node.listSnapshots(src.lun);
      assert.ok(left, 'the snapshot is still on the node');
      assert.ok(
        (await logs(a.id)).some((m) => m.startsWith(`could not delete snapshot ${left.id} of ${volume}`)),
        'the job names the snapshot it could not delete',
      );
      assert.deepEqual(
        (await owedSnapshotDeletes(w.service.catalog.db)).map((o) => [o.snapshotId, o.jobId]),
        [[left.id, a.id]],
      );

      // 2. The next backup on that node deletes it first.
      unreachable = false;
      const b = await w.service.waitForJob((await w.service.startBackup({ volume, level: 'incremental' })).id);
      assert.equal(b.state, 'done', JSON.stringify(b.error));
      assert.ok((await logs(b.id)).includes(`deleted snapshot ${left.id} of ${volume} (left by job ${a.id})`));
      assert.deepEqual(await node.listSnapshots(src.lun), []);
      assert.deepEqual(await owedSnapshotDeletes(w.service.catalog.db), []);

      // 3. Owed again, then paid when the server starts.
      unreachable = true;
      const c = await w.service.waitForJob((await w.service.startBackup({ volume })).id);
      assert.equal(c.state, 'done', JSON.stringify(c.error));
      assert.equal((await owedSnapshotDeletes(w.service.catalog.db)).length, 1);
      await w.service.close();
      unreachable = false;
      w.service = await w.openService();
      assert.deepEqual(await node.listSnapshots(src.lun), [], 'the server deleted it when it started');
      assert.deepEqual(await owedSnapshotDeletes(w.service.catalog.db), []);
      assert.ok((await logs(c.id)).some((m) => m.startsWith('deleted snapshot ')));
    } finally {
      await w.close();
    }
  });
});

test(
  'backup server library: canceling a backup that waits for quiet writes stops the wait; the volume is free at ' +
    'once',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir);
      try {
        const src = await w.lun(1 * MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(1 * MIB)));
        // Ten minutes of quiet to wait for: the cancel must not wait for it.
        const job = await w.service.startBackup({
          volume: `store:${src.lun}`,
          quietPeriodMs: 600_000,
          timeoutMs: 1_200_000,
        });
        for (let j = await w.service.getJob(job.id); j.state !== 'waiting-quiet'; j = await w.service.getJob(job.id)) {
          assert.ok(
            !['done', 'failed', 'canceled'].includes(j.state),
            `ended ${j.state} before waiting: ${JSON.stringify(j.error)}`,
          );
          await new Promise((r) => setTimeout(r, 10));
        }
        const canceled = await w.service.cancel(job.id);
        assert.equal(canceled.state, 'canceled');
        assert.deepEqual(await w.node.snapshots.listSnapshots(src.lun), [], 'no snapshot was taken');
        const next = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${src.lun}`, quietPeriodMs: 0 })).id,
        );
        assert.equal(next.state, 'done', JSON.stringify(next.error));
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'backup server library: an empty incremental moves on when the appendable cartridge has no room ' + 'left',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir, { cartridgeSize: 8 * MIB });
      try {
        const { volume, cartridge: cart } = await backedUp(w, 1);
        const barcode = cart.barcode;
        // The cartridge fills up after set 1 (as other sets would fill it): 6 MiB more, past early warning.
        const { drive, B } = await byHand(w, barcode);
        await drive.locate(cart.bytesUsed / B);
        await drive.device.write(new Uint8Array(6 * MIB));
        const endBlock = (await drive.position()).blockId;
        await markCartridge(w.service.catalog.db, barcode, { state: 'append', endBlock, bytesUsed: endBlock * B });
        const inc = await w.service.waitForJob((await w.service.startBackup({ volume, level: 'incremental' })).id);
        assert.equal(inc.state, 'done', JSON.stringify(inc.error));
        const sets = await w.service.listSets();
        assert.equal(sets[1].level, 'incremental');
        assert.equal(sets[1].bytes, 0, 'nothing changed');
        assert.equal(sets[1].cartridges.length, 1);
        assert.notEqual(sets[1].cartridges[0], barcode, 'the set went to the next cartridge');
        assert.equal((await w.service.listCartridges()).find((c) => c.barcode === barcode)?.state, 'full');
        const r = await w.service.waitForJob((await w.service.startRestore({ set: sets[1].id, to: 'store:new' })).id);
        assert.equal(r.state, 'done', JSON.stringify(r.error));
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'backup server library: maxJobs bounds the jobs that run at once; the next waits, queued, says why, and can be ' +
    'canceled while it waits',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir);
      try {
        w.config.maxJobs = 1;
        const a = await w.lun(4 * MIB);
        const b = await w.lun(1 * MIB);
        for (const v of [a, b]) await v.dev.write(0, randomFillSync(new Uint8Array(1 * MIB)));
        const first = await w.service.startBackup({ volume: `store:${a.lun}`, quietPeriodMs: 300 });
        const second = await w.service.startBackup({ volume: `store:${b.lun}` });
        const third = await w.service.startBackup({ volume: `store:${b.lun}` });
        const queued = await w.service.getJob(second.id);
        assert.equal(queued.state, 'queued');
        assert.equal(queued.progress.waitingFor, 'a job slot: 1 job run at once (maxJobs)');
        const c = await w.service.cancel(third.id);
        assert.equal(c.state, 'canceled', 'canceled while waiting for its slot');
        const [j1, j2] = await Promise.all([w.service.waitForJob(first.id), w.service.waitForJob(second.id)]);
        assert.equal(j1.state, 'done', JSON.stringify(j1.error));
        assert.equal(j2.state, 'done', JSON.stringify(j2.error));
        // The second left 'queued' only once the first had ended.
        const started = (await w.service.events(second.id)).find((e) => e.kind === 'state' && e.state !== 'queued');
        assert.ok(
          started && Date.parse(started.at) >= Date.parse(j1.endedAt!),
          `second started ${started?.at}, first ended ${j1.endedAt}`,
        );
        assert.ok(
          (await w.service.events(second.id)).some(
            (e) => e.kind === 'log' && e.message === 'waiting for a job slot: 1 job run at once (maxJobs)',
          ),
        );
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'site: with several movers a job gets the least loaded one below its maxJobs (config order on ties), gives it ' +
    'back when it ends, and passes over failed and unreachable ones',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      const w = await world(dir);
      try {
        // Two "movers": sessions to the world's own target (copyManager only logs in; nothing is copied here).
        const { portal, iqn } = w.config.nodes[0];
        w.config.movers = [
          { name: 'm1', portal, iqn, maxJobs: 2 },
          { name: 'm2', portal, iqn, maxJobs: 1 },
        ];
        const site = w.service.site;
        const drive = undefined as never; // not used when movers are configured
        const take = async (mover?: string, exclude?: Set<string>): Promise<CopyManagerRef> => {
          const r = await site.copyManager(mover, drive, exclude);
          assert.notEqual(r, 'busy');
          return r as CopyManagerRef;
        };
        const a = await take();
        const b = await take();
        const c = await take();
        assert.deepEqual([a.name, b.name, c.name], ['m1', 'm2', 'm1']);
        assert.equal(
          await site.copyManager(undefined, drive),
          'busy',
          'm1 runs its 2 jobs and m2 its 1: the next job waits',
        );
        a.release!();
        a.release!(); // once only
        c.release!();
        const d = await take();
        assert.equal(d.name, 'm1', 'm1 is free again, m2 still has one');
        const e = await take('m2');
        assert.equal(e.name, 'm2', 'the one asked for, whatever its load');
        await assert.rejects(site.copyManager('m9', drive), /no mover named m9: the config's movers are m1, m2/);
        for (const r of [b, d, e]) r.release!();
        assert.equal(
          (await take(undefined, new Set(['m1']))).name,
          'm2',
          'a mover that failed in the job is passed over',
        );
        await assert.rejects(
          site.copyManager(undefined, drive, new Set(['m1', 'm2'])),
          /no data mover can take the job: m1 failed in this job; m2 failed in this job/,
        );
        // A mover that cannot be logged in to is passed over too, and named when none is left.
        const closed = await freePort();
        w.config.movers = [
          { name: 'gone', portal: { host: '127.0.0.1', port: closed }, iqn, maxJobs: 4 },
          { name: 'm2', portal, iqn, maxJobs: 4 },
        ];
        assert.equal((await take()).name, 'm2');
        await assert.rejects(
          site.copyManager(undefined, drive, new Set(['m2'])),
          new RegExp(`gone \\(127\\.0\\.0\\.1:${closed}\\): cannot connect`),
        );
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'backup server library: a mover at its maxJobs makes the next job wait (waiting-drive, saying for a mover) with ' +
    'its drive mounted, then run',
  async () => {
    await inTempDir('ferry-jobs-', async (dir) => {
      // 8 MiB at 4 MiB/s (after a second's burst): the first copy lasts long past the second job's mount.
      const w = await startJobsWorld(dir, { iqn: IQN, mover: true, moverRate: 4 * MIB });
      try {
        w.config.movers[0].maxJobs = 1;
        const a = await w.lun(8 * MIB);
        const b = await w.lun(8 * MIB);
        for (const x of [a, b]) await x.dev.write(0, randomFillSync(new Uint8Array(8 * MIB)));
        const jobs = await Promise.all([a, b].map((x) => w.service.startBackup({ volume: `store:${x.lun}` })));
        const ends = await Promise.all(jobs.map((j) => w.service.waitForJob(j.id)));
        for (const e of ends) assert.equal(e.state, 'done', JSON.stringify(e.error));
        const waits = await Promise.all(
          jobs.map(async (j) =>
            (await w.service.events(j.id)).filter((e) => e.kind === 'state' && e.state === 'waiting-drive'),
          ),
        );
        const waited = waits.filter((x) => x.length > 0);
        assert.equal(waited.length, 1, 'one of the two waited for the mover');
        assert.equal(
          waited[0][0].message,
          'waiting for a data mover: every one runs as many jobs as its maxJobs allows',
        );
        assert.ok(ends.every((e) => e.mover === 'm1'));
        // A backup that verifies goes on with its own mover: it does not wait for a second slot on it.
        const v = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${a.lun}`, verify: true })).id,
        );
        assert.equal(v.state, 'done', JSON.stringify(v.error));
        assert.equal((v.result?.verify as { ok?: boolean } | undefined)?.ok, true);
      } finally {
        await w.close();
      }
    });
  },
);
