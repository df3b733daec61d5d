import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { cartridgeResource, getCartridge, release, reserve } from '../catalog/queries/cartridges.ts';
import { createJob } from '../catalog/queries/jobs.ts';
import { firstRecordOf, remoteSha256, startJobsWorld } from './testing.ts';

// Media operations through the server library, in one process over the real library (SMC over
// iSCSI): drives and what they hold, where each cartridge is and its MAM load count, export to
// the import/export element (no job touches it then) and import back, and labeling for a pool.

const MIB = 1 << 20;

test(
  'media: ferry drives and cartridges show where each cartridge is and its load count; an exported cartridge is ' +
    'out of reach until imported',
  async () => {
    await inTempDir('ferry-media-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-11.dev.ferry:media-test', cartridgeSize: 16 * MIB });
      try {
        const src = await w.lun(2 * MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        const want = await remoteSha256(src.dev);
        const j = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(j.state, 'done', JSON.stringify(j.error));
        const set = await w.service.getSet(j.set!);
        const barcode = set.cartridges[0];

        const drives = await w.service.listDrives();
        assert.deepEqual(
          drives.map((d) => [d.name, d.job, d.pools]),
          [
            ['vtl/256', null, ['default']],
            ['vtl/257', null, ['default']],
          ],
        );
        assert.ok(
          drives.some((d) => d.cartridge === barcode),
          `the backup's cartridge is still in a drive: ${JSON.stringify(drives)}`,
        );
        let cart = (await w.service.listCartridges()).find((c) => c.barcode === barcode)!;
        assert.match(cart.where ?? '', /^drive 25[67]$/);
        assert.equal(cart.loadCount, 1, 'the MAM load count of its first mount');
        assert.ok(
          (await w.service.listCartridges())
            .filter((c) => c.barcode !== barcode)
            .every((c) => /^slot \d+$/.test(c.where ?? '')),
        );

        // In use by a job, or in a drive a job holds: refused, and it stays in reach.
        const holder = await createJob(w.service.catalog.db, { type: 'restore', volumeId: null, params: {} });
        await reserve(w.service.catalog.db, cartridgeResource(barcode), holder.id);
        await assert.rejects(
          w.service.exportCartridge(barcode),
          new RegExp(`cartridge ${barcode} is in use by job ${holder.id}: export it when the job has ended`),
        );
        await release(w.service.catalog.db, holder.id);
        const loadedIn = drives.find((d) => d.cartridge === barcode)!.name;
        await reserve(w.service.catalog.db, `drive:${loadedIn}`, holder.id);
        await assert.rejects(
          w.service.exportCartridge(barcode),
          new RegExp(`cartridge ${barcode} is in drive ${loadedIn}, which job ${holder.id} holds`),
        );
        await release(w.service.catalog.db, holder.id);
        assert.equal(
          (await getCartridge(w.service.catalog.db, barcode))?.exportedAt,
          null,
          'a refused export leaves it in reach',
        );

        // Export: from the drive to the import/export element; restores of its sets say what to do.
        cart = await w.service.exportCartridge(barcode);
        assert.match(cart.where ?? '', /^import\/export element \d+$/);
        assert.ok((await w.service.listDrives()).every((d) => d.cartridge !== barcode));
        const blocked = await w.service.waitForJob((await w.service.startRestore({ set: set.id, to: 'store:new' })).id);
        assert.equal(blocked.state, 'failed');
        assert.match(
          blocked.error?.message ?? '',
          new RegExp(
            `cartridge ${barcode} was exported on .*: put it back with \`ferry cartridges import ${barcode}\``,
          ),
        );
        await assert.rejects(w.service.exportCartridge('NOPE01'), /no cartridge NOPE01 in a library of the config/);
        await assert.rejects(w.service.importCartridge('NOPE01'), /cartridge NOPE01 is in no import\/export element/);

        // Import: back into a slot, and the set restores.
        cart = await w.service.importCartridge(barcode);
        assert.match(cart.where ?? '', /^slot \d+$/);
        const r = await w.service.waitForJob((await w.service.startRestore({ set: set.id, to: 'store:new' })).id);
        assert.equal(r.state, 'done', JSON.stringify(r.error));
        assert.equal(await remoteSha256(await RemoteBlockDevice.open(w.ws, r.result!.lun as number)), want);
        assert.equal(
          (await w.service.listCartridges()).find((c) => c.barcode === barcode)?.loadCount,
          2,
          'loaded again for the restore',
        );
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'media: ferry cartridges label writes a label now, for a pool; refused for one with kept sets or already labeled ' +
    'for that pool',
  async () => {
    await inTempDir('ferry-label-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-11.dev.ferry:label-test', cartridgeSize: 16 * MIB });
      try {
        const B = w.config.pools[0].tapeBlockBytes;
        w.config.pools.push({ name: 'offsite', library: 'vtl', tapeBlockBytes: B });
        const blank = (await w.service.listCartridges()).find((c) => c.state === 'blank')!.barcode;
        const j = await w.service.waitForJob((await w.service.startLabel({ barcode: blank })).id);
        assert.equal(j.state, 'done', JSON.stringify(j.error));
        assert.deepEqual([j.result?.cartridge, j.result?.pool], [blank, 'default']);
        const first = await getCartridge(w.service.catalog.db, blank);
        assert.deepEqual([first?.labeled, first?.pool, first?.state, first?.endBlock], [true, 'default', 'append', 2]);
        const onTape = (): Promise<string> => firstRecordOf(w, blank);
        assert.equal(await onTape(), `${first?.uuid} default`);

        // Labeled for that pool already: refused. For another pool (it holds no set): a new label.
        const again = await w.service.waitForJob((await w.service.startLabel({ barcode: blank })).id);
        assert.equal(again.state, 'failed');
        assert.match(again.error?.message ?? '', new RegExp(`cartridge ${blank} is labeled for pool default already`));
        const moved = await w.service.waitForJob((await w.service.startLabel({ barcode: blank, pool: 'offsite' })).id);
        assert.equal(moved.state, 'done', JSON.stringify(moved.error));
        const second = await getCartridge(w.service.catalog.db, blank);
        assert.equal(second?.pool, 'offsite');
        assert.notEqual(second?.uuid, first?.uuid);
        assert.equal(await onTape(), `${second?.uuid} offsite`);

        // A backup to pool offsite appends after that label; then the cartridge holds a kept set: refused.
        const src = await w.lun(MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(MIB)));
        const b = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${src.lun}`, pool: 'offsite' })).id,
        );
        assert.equal(b.state, 'done', JSON.stringify(b.error));
        assert.deepEqual((await w.service.getSet(b.set!)).cartridges, [blank]);
        const busy = await w.service.waitForJob((await w.service.startLabel({ barcode: blank })).id);
        assert.equal(busy.state, 'failed');
        assert.match(
          busy.error?.message ?? '',
          new RegExp(`cartridge ${blank} holds set ${b.set}: a new label would end it; expire it first`),
        );
        await assert.rejects(w.service.startLabel({ barcode: 'NOPE01' }), /no cartridge NOPE01 in the catalog/);
        await assert.rejects(w.service.startLabel({ barcode: blank, pool: 'nopool' }), /no pool named nopool/);
        assert.deepEqual((await w.service.listJobs({ type: 'label' })).length, 4);
      } finally {
        await w.close();
      }
    });
  },
);
