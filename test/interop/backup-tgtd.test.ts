// Interop: the backup server's library with a pool over a stand-alone tgtd tape LUN (a tape
// target that is not Ferry: no LOCATE, no READ POSITION data, no READ ATTRIBUTE, no EXTENDED
// COPY). Our storage node runs in process, a `ferry mover` (in process) with portals to the node
// and to tgtd does the copies, and a LocalJobService plans them. Image full, an incremental that
// appends after it, and restores of both to new LUNs, bit-exact by SHA-256 over iSCSI. A files set
// of every NTFS test image: listed as ntfsls lists it, files read back from the tgtd tape as
// ntfscat reads them, the whole set restored to a volume ntfsls lists the same.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { requireTools } from '../helpers/tools.ts';
import { startTgtd, type Tgtd } from '../helpers/tgtd.ts';
import { inTempDir } from '../helpers/temp-dir.ts';
import { resolveTargetConfig } from '../../src/storage-node/config.ts';
import { startStorageNode, type StorageNode } from '../../src/storage-node/storage-node.ts';
import { startMover, type Mover } from '../../src/mover/mover.ts';
import { resolveMoverConfig } from '../../src/mover/config.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { DriveClient } from '../../src/media/drive-client.ts';
import { openCatalog } from '../../src/catalog/db.ts';
import type { ServerConfig } from '../../src/server/config.ts';
import { Site } from '../../src/jobs/site.ts';
import { remoteSha256 } from '../../src/jobs/testing.ts';
import { LocalJobService } from '../../src/jobs/service.ts';
import { IMAGES, ntfscat, ntfsImages, ntfsls } from './ntfs-images.ts';

const MIB = 1 << 20;
const B = 256 * 1024;
const NODE_IQN = 'iqn.2026-11.dev.ferry:tgtd-backup-store';
const TAPE_IQN = 'iqn.2026-11.dev.ferry:tgtd-backup-tape';
const MOVER_IQN = 'iqn.2026-11.dev.ferry:tgtd-backup-mover';
const WS = 'iqn.2026-11.dev.ferry:tgtd-backup-ws';

/** A fresh tgtimg cartridge of `mb` MB as LUN 1 of a new tgtd. */
async function tgtdTape(dir: string, barcode: string, mb: number): Promise<Tgtd> {
  const img = join(dir, `${barcode}.img`);
  execFileSync(
    'tgtimg',
    [
      '--op',
      'new',
      '--device-type',
      'tape',
      '--barcode',
      barcode,
      '--size',
      String(mb),
      '--type',
      'data',
      '--file',
      img,
    ],
    { stdio: 'pipe' },
  );
  const tgtd = await startTgtd(TAPE_IQN);
  try {
    tgtd.addLun(1, img, { deviceType: 'tape' });
  } catch (e) {
    await tgtd.stop();
    throw e;
  }
  return tgtd;
}

const sha = remoteSha256;

test(
  'DriveClient against tgtd: blank check, positioning by REWIND + SPACE, position ' + 'unknown',
  async (t: TestContext) => {
    if (!requireTools(t, 'tgtd', 'tgtadm', 'tgtimg')) return;
    await inTempDir('tgtd-seek', async (dir) => {
      const tgtd = await tgtdTape(dir, 'SEEK01', 32);
      let s: InitiatorSession | undefined;
      try {
        s = await InitiatorSession.login({
          host: '127.0.0.1',
          port: tgtd.port,
          initiatorName: WS,
          targetName: tgtd.iqn,
        });
        const d = await DriveClient.open(s, 1);
        await d.ready();
        assert.equal(d.copyManager, false, 'a tgtd tape LU has no 3PC');
        assert.equal(d.partialBlockReads, false, 'tgtd is not trusted with short expected lengths');
        const bs = 4096;
        await d.setFixedBlock(bs);
        // A fresh tape: the fixed-mode read at end of data is MEDIUM ERROR 03/31/00 on tgtd; isBlank asks again in
        // variable mode.
        assert.equal(await d.isBlank(), true);
        assert.equal(d.device.blockLength, bs, 'isBlank restores the block size');
        await d.locate(0); // LOCATE is 05/20/00 on tgtd: REWIND

        // Objects: 0,1 data; 2 FM; 3,4,5 data; 6 FM; end of data at 7.
        const blocks = (tags: number[]) => {
          const b = new Uint8Array(tags.length * bs);
          tags.forEach((tag, i) => b.fill(tag, i * bs, (i + 1) * bs));
          return b;
        };
        await d.device.write(blocks([10, 11]));
        await d.device.writeFilemarks(1);
        await d.device.write(blocks([13, 14, 15]));
        await d.device.writeFilemarks(1);
        await assert.rejects(d.position(), { code: 'ERR_POSITION_UNKNOWN' }, 'tgtd READ POSITION sets LOLU');
        assert.equal(await d.isBlank(), false);

        for (const [id, tag] of [
          [0, 10],
          [1, 11],
          [3, 13],
          [4, 14],
          [5, 15],
        ]) {
          await d.locate(id);
          const r = await d.readBlocks(1);
          assert.equal(r.kind, 'data', `block ${id}`);
          assert.equal(r.data[0], tag, `block ${id} holds tag ${tag}`);
        }
        await d.locate(2);
        assert.equal((await d.readBlocks(1)).kind, 'filemark', 'object 2 is the filemark');
        await d.locate(6);
        assert.equal((await d.readBlocks(1)).kind, 'filemark', 'object 6 is the filemark');
        // Exactly at end of data (where a set is appended): a SPACE that lands there reports END OF DATA on tgtd, so
        // the
        // last object is read instead.
        await d.locate(7);
        await d.device.write(blocks([17]));
        await d.locate(7);
        assert.equal((await d.readBlocks(1)).data[0], 17, 'the append landed at block 7');
        await assert.rejects(d.locate(9), { code: 'ERR_LOCATE_PAST_EOD' });
        await assert.rejects(d.locate(20), { code: 'ERR_LOCATE_PAST_EOD' });
        // Writing after a locate truncates: block 4 becomes the last one.
        await d.locate(4);
        await d.device.write(blocks([24]));
        await d.locate(4);
        assert.equal((await d.readBlocks(1)).data[0], 24);
        await assert.rejects(d.locate(6), { code: 'ERR_LOCATE_PAST_EOD' });
      } finally {
        await s?.logout().catch(() => undefined);
        await tgtd.stop();
      }
    });
  },
);

interface World {
  node: StorageNode;
  tgtd: Tgtd;
  mover: Mover;
  ws: InitiatorSession;
  service: LocalJobService;
  lun(sizeBytes: number): Promise<{ lun: number; dev: RemoteBlockDevice }>;
  close(): Promise<void>;
}

async function world(dir: string, opts: { mover: boolean }): Promise<World> {
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const cfg = resolveTargetConfig(
      // One seed disk (a node needs a LUN to start); the test's LUNs are created through the registry.
      {
        listen: '127.0.0.1:0',
        iqn: NODE_IQN,
        blockSize: 512,
        disks: [{ path: join(dir, 'seed.img'), size: '1M' }],
        lunDir: join(dir, 'luns'),
        logLevel: 'silent',
      },
      'test',
    );
    const node = await startStorageNode(cfg, pino({ level: 'silent' }));
    closers.push(() => node.close());
    const portal = { host: node.address.host, port: node.address.port };
    const tgtd = await tgtdTape(dir, 'TGT001', 256);
    closers.push(() => tgtd.stop());
    const mover = await startMover(
      resolveMoverConfig({
        listen: '127.0.0.1:0',
        iqn: MOVER_IQN,
        portals: [`${portal.host}:${portal.port}`, `127.0.0.1:${tgtd.port}`],
        logLevel: 'silent',
      }),
    );
    closers.push(() => mover.close());
    const config: ServerConfig = {
      file: join(dir, 'server.json'),
      listen: { host: '127.0.0.1', port: 0 },
      tokenFile: join(dir, 'token'),
      catalog: join(dir, 'catalog.db'),
      nodes: [{ name: 'store', portal, iqn: NODE_IQN, api: 'http://127.0.0.1:1', tokenFile: join(dir, 'none') }],
      libraries: [],
      drives: [{ name: 'tgt', portal: { host: '127.0.0.1', port: tgtd.port }, iqn: TAPE_IQN, lun: 1 }],
      movers: opts.mover
        ? [{ name: 'm1', portal: { host: mover.address.host, port: mover.address.port }, iqn: MOVER_IQN, maxJobs: 4 }]
        : [],
      pools: [{ name: 'tgtd', drive: 'tgt', tapeBlockBytes: B }],
      defaults: { quietPeriodMs: 0, timeoutMs: 10_000 },
    };
    const catalog = await openCatalog(config.catalog);
    const service = await LocalJobService.open(catalog, new Site(config, new Map([['store', node.snapshots]])));
    closers.push(() => service.close());
    const ws = await InitiatorSession.login({
      host: portal.host,
      port: portal.port,
      initiatorName: WS,
      targetName: NODE_IQN,
    });
    closers.push(async () => ws.close());
    return {
      node,
      tgtd,
      mover,
      ws,
      service,
      async lun(sizeBytes: number) {
        const l = await node.registry.create({ sizeBytes });
        return { lun: l.lun, dev: await RemoteBlockDevice.open(ws, l.lun) };
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

test(
  'backup to a tgtd tape LUN through a ferry mover: full, appended incremental, restores of both ' + 'bit-exact',
  async (t: TestContext) => {
    if (!requireTools(t, 'tgtd', 'tgtadm', 'tgtimg')) return;
    await inTempDir('tgtd-backup', async (dir) => {
      const w = await world(dir, { mover: true });
      try {
        const size = 32 * MIB;
        const src = await w.lun(size);
        for (let off = 0; off < size; off += 4 * MIB)
          await src.dev.write(off / 512, randomFillSync(new Uint8Array(4 * MIB)));
        await src.dev.flush();
        const vol = `store:${src.lun}`;
        assert.deepEqual(
          (await w.service.listCartridges()).map((c) => [c.barcode, c.state]),
          [['tgt', 'blank']],
          "the stand-alone drive's cartridge is in the catalog under the drive's name",
        );

        // 1. Full: a blank tgtd tape gets a label (isBlank), then the set.
        const full = await w.service.waitForJob(
          (await w.service.startBackup({ volume: vol, mode: 'image', level: 'full' })).id,
        );
        assert.equal(full.state, 'done', JSON.stringify(full.error));
        assert.equal(full.mover, 'm1', 'the ferry mover copied (the tgtd LU is no copy manager)');
        assert.ok(full.bytes >= size, `mover bytes ${full.bytes}`);
        const atFull = await sha(src.dev);

        // 2. Changes, then an incremental appended after the full (positioning without LOCATE).
        await src.dev.write(2048, randomFillSync(new Uint8Array(MIB)));
        await src.dev.write(60_000, randomFillSync(new Uint8Array(64 * 1024)));
        await src.dev.flush();
        const inc = await w.service.waitForJob((await w.service.startBackup({ volume: vol, level: 'incremental' })).id);
        assert.equal(inc.state, 'done', JSON.stringify(inc.error));
        const atInc = await sha(src.dev);
        assert.notEqual(atInc, atFull);

        const sets = await w.service.listSets({ volume: vol });
        assert.deepEqual(
          sets.map((s) => [s.level, s.cartridges]),
          [
            ['full', ['tgt']],
            ['incremental', ['tgt']],
          ],
        );
        assert.equal(sets[1].base, sets[0].id);
        const [cart] = await w.service.listCartridges();
        assert.equal(cart.state, 'append');
        assert.equal(cart.sets, 2);

        // The tape, read back over tgtd: label, FM, set 1 (header, 128 data blocks, trailer), FM, set 2 …
        const fullBlocks = size / B;
        const probe = await InitiatorSession.login({
          host: '127.0.0.1',
          port: w.tgtd.port,
          initiatorName: WS,
          targetName: w.tgtd.iqn,
        });
        try {
          const d = await DriveClient.open(probe, 1);
          await d.setFixedBlock(B);
          await d.locate(1);
          assert.equal((await d.readBlocks(1)).kind, 'filemark', 'block 1: the filemark after the label');
          const set2Header = 2 + 1 + fullBlocks + 1 + 1;
          await d.locate(set2Header - 1);
          assert.equal((await d.readBlocks(1)).kind, 'filemark', `block ${set2Header - 1}: the filemark closing set 1`);
          const h = await d.readBlocks(1);
          assert.equal(h.kind, 'data', `block ${set2Header}: the header of set 2`);
        } finally {
          await probe.logout().catch(() => undefined);
        }

        // 3. Restores to new LUNs: the full alone, and the chain (full + incremental).
        const r1 = await w.service.waitForJob((await w.service.startRestore({ set: sets[0].id, to: 'store:new' })).id);
        assert.equal(r1.state, 'done', JSON.stringify(r1.error));
        assert.equal(
          await sha(await RemoteBlockDevice.open(w.ws, r1.result!.lun as number)),
          atFull,
          'restored full = volume at the full',
        );
        const r2 = await w.service.waitForJob((await w.service.startRestore({ set: sets[1].id, to: 'store:new' })).id);
        assert.equal(r2.state, 'done', JSON.stringify(r2.error));
        assert.equal(
          await sha(await RemoteBlockDevice.open(w.ws, r2.result!.lun as number)),
          atInc,
          'restored chain = volume at the incremental',
        );

        // 4. A third set appends after the incremental, and the full still restores after it.
        const again = await w.service.waitForJob((await w.service.startBackup({ volume: vol, level: 'full' })).id);
        assert.equal(again.state, 'done', JSON.stringify(again.error));
        const r3 = await w.service.waitForJob((await w.service.startRestore({ set: again.set!, to: 'store:new' })).id);
        assert.equal(r3.state, 'done', JSON.stringify(r3.error));
        assert.equal(await sha(await RemoteBlockDevice.open(w.ws, r3.result!.lun as number)), atInc);
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'a pool over a tgtd drive with no ferry mover fails the job saying a mover is needed, and writes ' + 'nothing',
  async (t: TestContext) => {
    if (!requireTools(t, 'tgtd', 'tgtadm', 'tgtimg')) return;
    await inTempDir('tgtd-nomover', async (dir) => {
      const w = await world(dir, { mover: false });
      try {
        const src = await w.lun(2 * MIB);
        await src.dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        const b = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
        assert.equal(b.state, 'failed');
        assert.match(b.error!.message, /drive tgt \(LUN 1\) is not a copy manager .*add a `ferry mover`/);
        assert.deepEqual(await w.service.listSets(), []);
        const s = await InitiatorSession.login({
          host: '127.0.0.1',
          port: w.tgtd.port,
          initiatorName: WS,
          targetName: w.tgtd.iqn,
        });
        try {
          const d = await DriveClient.open(s, 1);
          await d.setFixedBlock(B);
          assert.equal(await d.isBlank(), true, 'the tape is still blank');
        } finally {
          await s.logout().catch(() => undefined);
        }
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'files backups of every NTFS test image to a tgtd tape LUN through a ferry mover: ls = ntfsls, files restore = ' +
    'ntfscat, the whole set restores to a volume',
  async (t: TestContext) => {
    if (!requireTools(t, 'tgtd', 'tgtadm', 'tgtimg', 'ntfscat', 'ntfsls')) return;
    const imgs = ntfsImages(t);
    if (!imgs) return;
    await inTempDir('tgtd-files', async (dir) => {
      const w = await world(dir, { mover: true });
      try {
        const key = (r: { path: string; size: number; record: number }): string => `${r.path}\t${r.size}\t${r.record}`;
        // One set per image, appended one after another on the tgtd cartridge.
        for (const name of IMAGES) {
          const img: string = imgs[name];
          const image = await readFile(img);
          const src = await w.lun(image.length);
          for (let off = 0; off < image.length; off += 4 * MIB)
            await src.dev.write(off / 512, image.subarray(off, off + 4 * MIB));
          await src.dev.flush();
          const job = await w.service.waitForJob(
            (await w.service.startBackup({ volume: `store:${src.lun}`, mode: 'files' })).id,
          );
          assert.equal(job.state, 'done', `${name}: ${JSON.stringify(job.error)}`);
          assert.equal(job.mover, 'm1');
          const set = job.set!;
          const rows = await w.service.listFiles(set, { path: '/', recursive: true });
          assert.deepEqual(rows.map(key).sort(), ntfsls(img).map(key).sort(), `${name}: ls -R = ntfsls`);

          // Up to 12 files back from the tgtd tape (positioned by REWIND + SPACE there), by the server; the largest
          // first.
          const files = rows
            .filter((r) => r.type === 'file')
            .sort((a, b) => b.size - a.size)
            .slice(0, 12)
            .map((r) => r.path)
            .filter((p) => ntfscat(img, p) !== null);
          const out = join(dir, `${name}-out`);
          const fr = await w.service.waitForJob((await w.service.startFileRestore({ set, files, out })).id);
          assert.equal(fr.state, 'done', `${name}: ${JSON.stringify(fr.error)}`);
          for (const p of files)
            assert.ok((await readFile(join(out, p))).equals(ntfscat(img, p)!), `${name}: ${p} = ntfscat`);

          const whole = await w.service.waitForJob((await w.service.startRestore({ set, to: 'store:new' })).id);
          assert.equal(whole.state, 'done', `${name}: ${JSON.stringify(whole.error)}`);
          const dev = await RemoteBlockDevice.open(w.ws, whole.result!.lun as number);
          const parts: Uint8Array[] = [];
          for (let lba = 0; lba < dev.blockCount; lba += 8192)
            parts.push(await dev.read(lba, Math.min(8192, dev.blockCount - lba)));
          const restored = join(dir, `${name}-restored.img`);
          await writeFile(restored, Buffer.concat(parts));
          assert.deepEqual(
            ntfsls(restored).map(key).sort(),
            ntfsls(img).map(key).sort(),
            `${name}: the restored volume lists the same`,
          );
          for (const p of files)
            assert.ok(ntfscat(restored, p)!.equals(ntfscat(img, p)!), `${name}: ${p} on the restored volume`);
          t.diagnostic(`${name}: set ${set}, ${rows.length} entries, ${files.length} files restored from tgtd`);
        }
      } finally {
        await w.close();
      }
    });
  },
);
