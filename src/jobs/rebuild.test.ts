import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { getSet } from '../catalog/queries/sets.ts';
import { getCartridge } from '../catalog/queries/cartridges.ts';
import { ChangerClient } from '../media/changer-client.ts';
import { DriveClient } from '../media/drive-client.ts';
import { discoverLibrary } from '../media/discovery.ts';
import { TapeDriveLu } from '../scsi/ssc.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import type { CartridgeView, JobView } from './types.ts';
import { remoteSha256, startJobsWorld } from './testing.ts';

// Catalog rebuild end to end in one process, over real iSCSI (the world of service.test.ts):
// back up, lose the catalog file, rebuild it from the cartridges alone, then restore and back up.

const IQN = 'iqn.2026-11.dev.ferry:rebuild-test';
const MIB = 1 << 20;
const B = 32 * 1024;

/** The jobs world (library of 6 cartridges, or one stand-alone drive `solo`), and what the rebuild tests look at. */
async function world(dir: string, opts: { cartridgeSize: number; standalone?: boolean }) {
  const base = await startJobsWorld(dir, { iqn: IQN, tapeBlockBytes: B, ...opts });
  const { node, config } = base;
  const drives = () => node.tapes.luns.map(([, lu]) => lu).filter((lu): lu is TapeDriveLu => lu instanceof TapeDriveLu);
  return Object.assign(base, {
    /** Bytes and READ commands the library's drives have served so far. */
    reads() {
      return drives().reduce(
        (a, d) => ({ bytes: a.bytes + d.stats.bytesRead, commands: a.commands + d.stats.readCommands }),
        { bytes: 0, commands: 0 },
      );
    },
    /** Wait until no drive has written for a while (a canceled job's copy runs on in the copy manager). */
    async settle() {
      const written = () => drives().reduce((n, d) => n + d.stats.bytesWritten, 0);
      for (let last = -1, now = written(); now !== last; last = now, now = written()) await delay(600);
    },
    /** Lose the catalog: close the server, delete the file and its -wal/-shm, open a new one. */
    async loseCatalog() {
      await base.service.close();
      for (const f of ['', '-wal', '-shm']) await rm(config.catalog + f, { force: true });
      base.service = await base.openService();
    },
  });
}

const sha = remoteSha256;

function ok(j: JobView): JobView {
  assert.equal(j.state, 'done', `job ${j.id} (${j.type}): ${JSON.stringify(j.error)}`);
  return j;
}

const cartView = (c: CartridgeView) => ({
  barcode: c.barcode,
  pool: c.pool,
  library: c.library,
  state: c.state,
  bytesUsed: c.bytesUsed,
  sets: c.sets,
});

/**
 * Write a record of random bytes and a filemark on cartridge `barcode` through the second drive, as another program
 * would.
 */
async function writeForeignData(ws: InitiatorSession, barcode: string): Promise<void> {
  const found = await discoverLibrary(ws, { name: 'vtl' });
  const changer = await ChangerClient.open(ws, found.changer.lun, { name: 'vtl' });
  const d = found.drives[1];
  await changer.load(barcode, d.elementAddress);
  const drive = await DriveClient.open(ws, d.lun);
  await drive.ready();
  await drive.setFixedBlock(B);
  await drive.device.write(randomFillSync(new Uint8Array(2 * B)));
  await drive.device.writeFilemarks(1);
  await drive.unload();
  await changer.unload(d.elementAddress);
}

test(
  "catalog rebuild: sets, spanning, cartridges and a failed job's leftovers come back from tape alone; restore and " +
    'backup go on',
  async () => {
    await inTempDir('rebuild', async (dir) => {
      // 16 MiB cartridges: volume b (20 MiB) spans two of them.
      const w = await world(dir, { cartridgeSize: 16 * MIB });
      try {
        const barcodes = (await w.service.listCartridges()).map((c) => c.barcode).sort();
        const foreign = barcodes.at(-1)!;
        await writeForeignData(w.ws, foreign);

        // Volume a: full, changes, incremental.
        const a = await w.lun(4 * MIB);
        await a.dev.write(0, randomFillSync(new Uint8Array(4 * MIB)));
        await a.dev.flush();
        ok(await w.service.waitForJob((await w.service.startBackup({ volume: `store:${a.lun}`, level: 'full' })).id));
        const patch = randomFillSync(new Uint8Array(200 * 1024));
        await a.dev.write(2048, patch);
        await a.dev.write(10, patch.subarray(0, 4096));
        await a.dev.flush();
        const inc = ok(
          await w.service.waitForJob(
            (await w.service.startBackup({ volume: `store:${a.lun}`, level: 'incremental' })).id,
          ),
        );
        const atInc = await sha(a.dev);

        // Volume b: a full that spans cartridges.
        const b = await w.lun(20 * MIB);
        await b.dev.write(0, randomFillSync(new Uint8Array(20 * MIB)));
        await b.dev.flush();
        ok(await w.service.waitForJob((await w.service.startBackup({ volume: `store:${b.lun}` })).id));

        // A backup canceled while copying leaves a header and data without a trailer after the last set.
        const c = await w.lun(MIB);
        await c.dev.write(0, randomFillSync(new Uint8Array(MIB)));
        await c.dev.flush();
        const doomed = await w.service.startBackup({ volume: `store:${c.lun}`, level: 'full' });
        const canceled = new Promise<void>((resolve) => {
          const unsub = w.service.subscribe(doomed.id, (e) => {
            if (e.kind === 'state' && e.state === 'copying') {
              unsub();
              void w.service.cancel(doomed.id).then(() => resolve());
            }
          });
        });
        const d = await w.service.waitForJob(doomed.id);
        await canceled;
        assert.equal((await w.service.getJob(doomed.id)).state, 'canceled', JSON.stringify(d.error));
        await w.settle();

        const sets = await w.service.listSets();
        assert.equal(sets.length, 3);
        const bset = sets[2];
        assert.ok(bset.cartridges.length >= 2, `set ${bset.id} spans ${bset.cartridges.join(',')}`);
        const carts = (await w.service.listCartridges()).filter((c) => c.barcode !== foreign).map(cartView);
        assert.ok(
          carts.some((c) => c.state === 'full') && carts.some((c) => c.state === 'append'),
          JSON.stringify(carts),
        );
        const dataBytes = sets.reduce((n, s) => n + s.bytes, 0);

        // The catalog is lost.
        await w.loseCatalog();
        assert.deepEqual(await w.service.listSets(), []);
        const before = w.reads();
        const rb = ok(await w.service.waitForJob((await w.service.startRebuild({})).id));
        const read = { bytes: w.reads().bytes - before.bytes, commands: w.reads().commands - before.commands };
        const result = rb.result as {
          cartridges: number;
          sets: number[];
          skipped: Array<{ uuid: string; why: string }>;
        };
        assert.equal(result.cartridges, 6);
        assert.deepEqual(
          result.sets,
          sets.map((s) => s.id),
        );
        assert.equal(result.skipped.length, 1, JSON.stringify(result.skipped));
        assert.match(result.skipped[0].why, /incomplete|missing/);
        const events = (await w.service.events(rb.id)).map((e) => e.message);
        assert.ok(
          events.some((m) => m.includes(`skipped set ${result.skipped[0].uuid}`)),
          events.join('\n'),
        );

        // Only records were read: a few blocks per cartridge and piece, never the data.
        // (13 blocks of 32 KiB in 33 READs for 25 MB of sets when this was written.)
        const what =
          `rebuild read ${read.bytes / B} blocks of ${B} bytes in ${read.commands} READs; the sets hold ` +
          `${dataBytes} bytes`;
        assert.ok(read.bytes < dataBytes / 50, what);
        assert.ok(read.bytes <= 24 * B, what);

        assert.deepEqual(await w.service.listSets(), sets);
        const after = (await w.service.listCartridges()).map(cartView);
        assert.deepEqual(
          after.filter((c) => c.barcode !== foreign),
          carts,
        );
        const bad = await getCartridge(w.service.catalog.db, foreign);
        assert.equal(bad?.state, 'error');
        assert.match(bad?.error ?? '', /not a Ferry|magic/i);
        assert.ok(
          events.some((m) => m.includes(foreign) && m.includes('marked error')),
          events.join('\n'),
        );
        for (const s of sets) {
          const full = await getSet(w.service.catalog.db, s.id);
          assert.equal(full?.jobId, null);
        }
        assert.deepEqual(
          (await w.service.listVolumes()).map((v) => v.lastSet),
          [null, null],
        );

        // A rebuild into a catalog that has the sets adds nothing.
        const again = ok(await w.service.waitForJob((await w.service.startRebuild({ library: 'vtl' })).id));
        assert.deepEqual((again.result as { sets: number[] }).sets, []);
        assert.deepEqual(await w.service.listSets(), sets);
        await assert.rejects(w.service.startRebuild({ library: 'nope' }), /no library or drive named nope/);

        // The rebuilt incremental restores bit-exact (its chain: the full, then the incremental).
        const r = ok(await w.service.waitForJob((await w.service.startRestore({ set: inc.set!, to: 'store:new' })).id));
        assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), atInc);

        // A new backup appends after the rebuilt sets (over the canceled job's leftovers) and restores.
        const ends = new Map(
          (await Promise.all(barcodes.map((c) => getCartridge(w.service.catalog.db, c)))).map((c) => [
            c!.barcode,
            c!.endBlock,
          ]),
        );
        const nb = ok(
          await w.service.waitForJob(
            (await w.service.startBackup({ volume: `store:${a.lun}`, level: 'incremental' })).id,
          ),
        );
        const nset = await getSet(w.service.catalog.db, nb.set!);
        assert.equal(nset?.level, 'full');
        assert.match(nset?.reason ?? '', /no earlier set/);
        assert.ok(nset!.id > Math.max(...sets.map((s) => s.id)));
        // Blank cartridges get a one-block label and a filemark first.
        for (const p of nset!.pieces)
          assert.equal(
            p.headerBlock,
            ends.get(p.cartridge) || 2,
            `piece ${p.seq} of the new set starts where ${p.cartridge} ended`,
          );
        const leftovers = /piece 1 on (\S+) at block (\d+) is incomplete/.exec(result.skipped[0].why);
        assert.ok(leftovers, result.skipped[0].why);
        assert.deepEqual(
          [nset!.pieces[0].cartridge, nset!.pieces[0].headerBlock],
          [leftovers[1], Number(leftovers[2])],
          'the new set is written over the leftovers',
        );
        assert.equal(leftovers[1], bset.cartridges.at(-1));
        const now = await sha(a.dev);
        const r2 = ok(await w.service.waitForJob((await w.service.startRestore({ set: nb.set!, to: 'store:new' })).id));
        assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r2.result!.lun as number)), now);
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'catalog rebuild: a cartridge written with another block size than the pool now says is read in its own (the ' +
    'label says which)',
  async () => {
    await inTempDir('rebuild', async (dir) => {
      const w = await world(dir, { cartridgeSize: 16 * MIB });
      try {
        const a = await w.lun(2 * MIB);
        await a.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        await a.dev.flush();
        ok(await w.service.waitForJob((await w.service.startBackup({ volume: `store:${a.lun}` })).id));
        const sets = await w.service.listSets();
        const carts = (await w.service.listCartridges()).map(cartView);

        w.config.pools[0] = { ...w.config.pools[0], tapeBlockBytes: 2 * B };
        await w.loseCatalog();
        const rb = ok(await w.service.waitForJob((await w.service.startRebuild({ library: 'vtl' })).id));
        assert.deepEqual((rb.result as { sets: number[] }).sets, [sets[0].id]);
        const events = (await w.service.events(rb.id)).map((e) => e.message);
        assert.ok(
          events.some((m) => m.includes(`${B}-byte blocks (pool default uses ${2 * B}: switched)`)),
          events.join('\n'),
        );
        assert.deepEqual(await w.service.listSets(), sets);
        assert.deepEqual((await w.service.listCartridges()).map(cartView), carts);
        const r = ok(
          await w.service.waitForJob((await w.service.startRestore({ set: sets[0].id, to: 'store:new' })).id),
        );
        assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), await sha(a.dev));
      } finally {
        await w.close();
      }
    });
  },
);

test('catalog rebuild: the cartridge in a stand-alone drive (a pool on a tape LUN) comes back too', async () => {
  await inTempDir('rebuild', async (dir) => {
    const w = await world(dir, { cartridgeSize: 16 * MIB, standalone: true });
    try {
      const a = await w.lun(2 * MIB);
      await a.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
      await a.dev.flush();
      ok(await w.service.waitForJob((await w.service.startBackup({ volume: `store:${a.lun}` })).id));
      await a.dev.write(100, randomFillSync(new Uint8Array(64 * 1024)));
      await a.dev.flush();
      const inc = ok(
        await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${a.lun}`, level: 'incremental' })).id,
        ),
      );
      const sets = await w.service.listSets();
      const carts = (await w.service.listCartridges()).map(cartView);
      assert.deepEqual(
        carts.map((c) => [c.barcode, c.state]),
        [['solo', 'append']],
      );

      await w.loseCatalog();
      const rb = ok(await w.service.waitForJob((await w.service.startRebuild({ library: 'solo' })).id));
      const {
        cartridges,
        sets: rebuilt,
        skipped,
      } = rb.result as { cartridges: number; sets: number[]; skipped: unknown[] };
      assert.deepEqual(
        { cartridges, rebuilt, skipped },
        { cartridges: 1, rebuilt: sets.map((s) => s.id), skipped: [] },
      );
      assert.deepEqual(await w.service.listSets(), sets);
      assert.deepEqual((await w.service.listCartridges()).map(cartView), carts);
      const r = ok(await w.service.waitForJob((await w.service.startRestore({ set: inc.set!, to: 'store:new' })).id));
      assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), await sha(a.dev));
    } finally {
      await w.close();
    }
  });
});
