import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { resolveTargetConfig } from '../storage-node/config.ts';
import { startStorageNode } from '../storage-node/storage-node.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { openCatalog } from '../catalog/db.ts';
import { getSet } from '../catalog/queries/sets.ts';
import { driveResource, release, reserve } from '../catalog/queries/cartridges.ts';
import { parseServerConfig, type ServerConfig } from '../server/config.ts';
import { TapeNodeClient } from '../storage-node/tape-digest-api.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { Site } from './site.ts';
import { LocalJobService } from './service.ts';
import type { JobEvent, JobView } from './types.ts';
import { startJobsWorld } from './testing.ts';

// Verify end to end in one process, over real iSCSI (as service.test.ts): a storage node that
// also serves a library (changer + 2 drives) and its management API, the drive LUs as copy
// managers, a SQLite catalog. `tape-node` digests on the library node through its API;
// `scratch-lun` restores into a scratch LUN and has the storage node digest it.

const IQN = 'iqn.2026-11.dev.ferry:verify-test';
const MIB = 1 << 20;
const TOKEN = 'verify-test-token-0123456789';

async function world(dir: string, opts: { cartridgeSize?: number } = {}) {
  const base = await startJobsWorld(dir, { iqn: IQN, apiToken: TOKEN, ...opts });
  const { node, config } = base;
  const { url: api, tokenFile } = base.api!;
  return Object.assign(base, {
    api,
    /** `tape-node` (the library's API is configured) or `scratch-lun` (it is not). */
    method(m: 'tape-node' | 'scratch-lun') {
      const lib = config.libraries[0];
      if (m === 'tape-node') Object.assign(lib, { api, tokenFile });
      else {
        delete lib.api;
        delete lib.tokenFile;
      }
    },
    async volume(sizeBytes: number) {
      const { lun, dev } = await base.lun(sizeBytes);
      await dev.write(0, randomFillSync(new Uint8Array(sizeBytes)));
      await dev.flush();
      return `store:${lun}`;
    },
    async run(start: Promise<JobView>): Promise<{ job: JobView; states: string[] }> {
      const job = await base.service.waitForJob((await start).id);
      // Every state move is a stored event.
      const states = (await base.service.events(job.id))
        .filter((e: JobEvent) => e.kind === 'state')
        .map((e) => e.state!);
      return { job, states };
    },
    async diskLuns(): Promise<number[]> {
      return (await node.snapshots.listLuns()).filter((l) => l.kind === 'disk').map((l) => l.lun);
    },
  });
}
type World = Awaited<ReturnType<typeof world>>;

/**
 * Flip one byte of data block `k` of piece `seq` of a set inside its cartridge file, with the
 * cartridge out of any drive so that nothing has the file open (docs/tape-format.md: a data
 * run's blocks are packed at DATA_BASE + dataOffset; Cartridge.extentOf finds a block).
 */
async function flipDataByte(w: World, setId: number, seq = 1, k = 1): Promise<string> {
  const set = (await getSet(w.service.catalog.db, setId))!;
  const p = set.pieces.find((x) => x.seq === seq)!;
  const lib = w.node.tapes.library!;
  const el = lib.inventory.elements().find((e) => e.barcode === p.cartridge)!;
  if (el.kind === 'drive') {
    const slot = el.source ?? lib.inventory.elements().find((e) => e.kind === 'storage' && !e.barcode)!.address;
    await lib.changer.move(el.address, slot);
  }
  const path = lib.inventory.cartridgePath(p.cartridge);
  const c = await Cartridge.open(path, { readOnly: true });
  const id = p.dataBlock + Math.min(k, p.dataBlocks - 1);
  const pos = c.extentOf(c.runIndexOf(id), id, 1).pos + 1234;
  await c.close();
  const fh = await open(path, 'r+');
  try {
    const b = new Uint8Array(1);
    await fh.read(b, 0, 1, pos);
    b[0] ^= 0x5a;
    await fh.write(b, 0, 1, pos);
  } finally {
    await fh.close();
  }
  return p.cartridge;
}

test(
  'verify: by the library node and through a scratch LUN; a flipped data byte on tape fails both, naming the set, ' +
    'cartridge and digests',
  async () => {
    await inTempDir('verify', async (dir) => {
      const w = await world(dir);
      try {
        const vol = await w.volume(8 * MIB);
        const b = await w.run(w.service.startBackup({ volume: vol }));
        assert.equal(b.job.state, 'done', JSON.stringify(b.job.error));
        const set = b.job.set!;
        const expected = (await getSet(w.service.catalog.db, set))!.sha256!;
        const disks = await w.diskLuns();

        w.method('tape-node');
        const a = await w.run(w.service.startVerify({ set }));
        assert.equal(a.job.state, 'done', JSON.stringify(a.job.error));
        assert.deepEqual(a.states, ['queued', 'mounting', 'verifying', 'done']);
        assert.deepEqual(a.job.result, { ok: true, set, expected, found: expected, method: 'tape-node', bytes: 0 });
        assert.equal(a.job.set, set);
        assert.equal(a.job.volume, vol);

        w.method('scratch-lun');
        const s = await w.run(w.service.startVerify({ set }));
        assert.equal(s.job.state, 'done', JSON.stringify(s.job.error));
        assert.deepEqual(s.states.slice(-3), ['mounting', 'verifying', 'done']);
        assert.deepEqual(
          { ...s.job.result, bytes: 0 },
          { ok: true, set, expected, found: expected, method: 'scratch-lun', bytes: 0 },
        );
        assert.ok(s.job.bytes >= 8 * MIB, `the mover restored the stream: ${s.job.bytes} bytes`);
        assert.match(s.job.mover ?? '', /^vtl \(drive LU \d+\)$/);
        assert.deepEqual(await w.diskLuns(), disks, 'the scratch LUN is gone');

        const cart = await flipDataByte(w, set);
        for (const m of ['tape-node', 'scratch-lun'] as const) {
          w.method(m);
          const f = await w.run(w.service.startVerify({ set }));
          assert.equal(f.job.state, 'failed', m);
          assert.equal(f.job.error!.code, 'ERR_VERIFY_MISMATCH', m);
          const msg = f.job.error!.message;
          assert.match(msg, new RegExp(`^set ${set} did not verify: the digests on tape and disk differ`), m);
          assert.ok(msg.includes(`sha256 ${expected}`), `${m}: ${msg}`);
          assert.ok(msg.includes(`cartridge ${cart}`), `${m}: ${msg}`);
          const found = /give sha256 ([0-9a-f]{64})/.exec(msg)?.[1];
          assert.ok(found && found !== expected, `${m}: ${msg}`);
          assert.equal(f.job.set, null);
          assert.ok(f.states.includes('verifying'), `${m}: ${f.states.join(',')}`);
          assert.deepEqual(await w.diskLuns(), disks, `${m}: the scratch LUN is gone after a failure too`);
        }
        assert.equal((await w.service.listSets()).length, 1, 'verify changes no set');
        await assert.rejects(w.service.startVerify({ set: 42 }), /no set 42/);
      } finally {
        await w.close();
      }
    });
  },
);

test('backup --verify: the same job moves to verifying and ends done, by either method', async () => {
  await inTempDir('verify', async (dir) => {
    const w = await world(dir);
    try {
      const vol = await w.volume(4 * MIB);
      for (const m of ['tape-node', 'scratch-lun'] as const) {
        w.method(m);
        const b = await w.run(w.service.startBackup({ volume: vol, verify: true }));
        assert.equal(b.job.state, 'done', `${m}: ${JSON.stringify(b.job.error)}`);
        const at = b.states.indexOf('copying');
        assert.ok(at >= 0 && b.states.indexOf('verifying', at) > at, `${m}: ${b.states.join(',')}`);
        assert.equal(b.states.at(-1), 'done');
        const v = b.job.result!.verify as Record<string, unknown>;
        const sha = (await getSet(w.service.catalog.db, b.job.set!))!.sha256;
        assert.deepEqual(v, { ok: true, set: b.job.set, expected: sha, found: sha, method: m });
        if (m === 'scratch-lun')
          assert.ok(b.job.bytes >= 8 * MIB, `backup and verify copies both counted: ${b.job.bytes}`);
      }
      assert.deepEqual(await w.diskLuns(), [Number(vol.split(':')[1])], 'no scratch LUN is left');
    } finally {
      await w.close();
    }
  });
});

test(
  'verify: a set that spans cartridges verifies by both methods, and a flipped byte on its last cartridge ' +
    'fails it',
  async () => {
    await inTempDir('verify', async (dir) => {
      // 6 MiB cartridges: a 16 MiB volume needs three of them.
      const w = await world(dir, { cartridgeSize: 6 * MIB });
      try {
        const vol = await w.volume(16 * MIB);
        const b = await w.run(w.service.startBackup({ volume: vol }));
        assert.equal(b.job.state, 'done', JSON.stringify(b.job.error));
        const set = await w.service.getSet(b.job.set!);
        assert.ok(set.cartridges.length >= 3, `cartridges ${set.cartridges.join(',')}`);
        for (const m of ['tape-node', 'scratch-lun'] as const) {
          w.method(m);
          const v = await w.run(w.service.startVerify({ set: set.id }));
          assert.equal(v.job.state, 'done', `${m}: ${JSON.stringify(v.job.error)}`);
          assert.equal(v.job.result!.ok, true);
          if (m === 'scratch-lun') assert.ok(v.states.filter((s) => s === 'mounting').length >= 3, v.states.join(','));
        }
        const seq = set.cartridges.length;
        const cart = await flipDataByte(w, set.id, seq, 0);
        w.method('tape-node');
        const f = await w.run(w.service.startVerify({ set: set.id }));
        assert.equal(f.job.error?.code, 'ERR_VERIFY_MISMATCH');
        assert.ok(f.job.error!.message.includes(`cartridges ${set.cartridges.join(', ')}`), f.job.error!.message);
        assert.ok(set.cartridges.includes(cart));
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'verify: a pool on a stand-alone drive of a Ferry node digests the cartridge the drive holds (by its ' + 'LUN)',
  async () => {
    await inTempDir('verify', async (dir) => {
      const tokenFile = join(dir, 'node.token');
      await writeFile(tokenFile, `${TOKEN}\n`);
      const cfg = resolveTargetConfig(
        {
          listen: '127.0.0.1:0',
          iqn: IQN,
          blockSize: 512,
          lunDir: join(dir, 'luns'),
          tape: join(dir, 't1.cart'),
          cartridgeSize: 64 * MIB,
          api: '127.0.0.1:0',
          apiTokenFile: tokenFile,
          logLevel: 'silent',
        },
        'test',
      );
      const node = await startStorageNode(cfg, pino({ level: 'silent' }));
      const portal = { host: node.address.host, port: node.address.port };
      const api = `http://127.0.0.1:${node.api!.port}`;
      const config: ServerConfig = {
        file: join(dir, 'server.json'),
        listen: { host: '127.0.0.1', port: 0 },
        tokenFile: join(dir, 'token'),
        catalog: join(dir, 'catalog.db'),
        nodes: [{ name: 'store', portal, iqn: IQN, api, tokenFile }],
        libraries: [],
        drives: [{ name: 't1', portal, iqn: IQN, lun: 0, api, tokenFile }],
        movers: [],
        pools: [{ name: 'default', drive: 't1', tapeBlockBytes: 64 * 1024 }],
        defaults: { quietPeriodMs: 0, timeoutMs: 10_000 },
      };
      const service = await LocalJobService.open(
        await openCatalog(config.catalog),
        new Site(config, new Map([['store', node.snapshots]])),
      );
      const ws = await InitiatorSession.login({
        host: portal.host,
        port: portal.port,
        initiatorName: 'iqn.2026-11.dev.ferry:verify-test-ws',
        targetName: IQN,
      });
      try {
        const l = await node.registry.create({ sizeBytes: 2 * MIB });
        const dev = await RemoteBlockDevice.open(ws, l.lun);
        await dev.write(0, randomFillSync(new Uint8Array(2 * MIB)));
        const b = await service.waitForJob((await service.startBackup({ volume: `store:${l.lun}`, verify: true })).id);
        assert.equal(b.state, 'done', JSON.stringify(b.error));
        assert.equal((b.result!.verify as { method: string }).method, 'tape-node');
        const v = await service.waitForJob((await service.startVerify({ set: b.set! })).id);
        assert.equal(v.state, 'done', JSON.stringify(v.error));
        assert.equal(v.result!.ok, true);
      } finally {
        ws.close();
        await service.close();
        await node.close();
      }
    });
  },
);

test('POST /v1/tapes/digest: ranges are checked, unknown cartridges and wrong tokens refused', async () => {
  await inTempDir('verify', async (dir) => {
    const w = await world(dir);
    try {
      const vol = await w.volume(1 * MIB);
      const b = await w.run(w.service.startBackup({ volume: vol }));
      assert.equal(b.job.state, 'done', JSON.stringify(b.job.error));
      const s = (await getSet(w.service.catalog.db, b.job.set!))!;
      const p = s.pieces[0];
      const c = new TapeNodeClient(w.api, TOKEN);
      const one = {
        barcode: p.cartridge,
        fromBlock: p.dataBlock,
        blocks: p.dataBlocks,
        bytes: p.streamEnd - p.streamStart,
      };
      assert.deepEqual(await c.tapeDigest({ pieces: [one], blockBytes: s.tapeBlockBytes }), {
        sha256: s.sha256,
        bytes: s.streamBytes,
        pieces: [{ barcode: p.cartridge, bytes: s.streamBytes }],
      });
      // The trailer's filemark follows the trailer: a range over it is refused.
      await assert.rejects(
        c.tapeDigest({ pieces: [{ ...one, blocks: p.dataBlocks + 2 }] }),
        (e: Error & { code?: string }) => e.code === 'ERR_RANGE' && /is a filemark/.test(e.message),
      );
      await assert.rejects(
        c.tapeDigest({ pieces: [{ ...one, fromBlock: 10_000 }] }),
        (e: Error & { code?: string }) => e.code === 'ERR_RANGE' && /past its end of data/.test(e.message),
      );
      await assert.rejects(
        c.tapeDigest({ pieces: [{ ...one, bytes: p.dataBlocks * s.tapeBlockBytes + 1 }] }),
        /fewer than the/,
      );
      await assert.rejects(c.tapeDigest({ pieces: [one], blockBytes: 512 }), /not 512/);
      await assert.rejects(
        c.tapeDigest({ pieces: [{ ...one, barcode: 'NOPE01L8' }] }),
        (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND',
      );
      await assert.rejects(c.tapeDigest({ pieces: [{ ...one, lun: 1 }] }), /exactly one of barcode and lun/);
      await assert.rejects(
        new TapeNodeClient(w.api, 'wrong-token-0123456789').tapeDigest({ pieces: [one] }),
        (e: Error & { code?: string }) => e.code === 'ERR_UNAUTHORIZED',
      );
      const doc = (await (await fetch(`${w.api}/openapi.json`)).json()) as { paths: Record<string, unknown> };
      assert.ok(doc.paths['/v1/tapes/digest']);
    } finally {
      await w.close();
    }
  });
});

test('server config: a library or drive takes api and tokenFile together', () => {
  const base = { tokenFile: 't', catalog: 'c.db', pools: [{ name: 'p', library: 'vtl' }] };
  const lib = { name: 'vtl', portal: '127.0.0.1:3261', iqn: 'iqn.2026-11.dev.ferry:vtl' };
  const c = parseServerConfig(
    { ...base, libraries: [{ ...lib, api: 'http://127.0.0.1:8461', tokenFile: 'vtl.token' }] },
    '/etc/ferry/server.json',
  );
  assert.deepEqual([c.libraries[0].api, c.libraries[0].tokenFile], ['http://127.0.0.1:8461', '/etc/ferry/vtl.token']);
  assert.equal(parseServerConfig({ ...base, libraries: [lib] }, '/etc/ferry/server.json').libraries[0].api, undefined);
  assert.throws(
    () => parseServerConfig({ ...base, libraries: [{ ...lib, api: 'http://127.0.0.1:8461' }] }, '/x.json'),
    /libraries\[0\] \("vtl"\) needs both api and tokenFile/,
  );
  assert.throws(
    () => parseServerConfig({ ...base, libraries: [{ ...lib, api: 'nope', tokenFile: 'x' }] }, '/x.json'),
    /libraries\[0\]\.api is "nope": expected an http\(s\) URL/,
  );
});

test(
  'backup --verify through a scratch LUN keeps to the drive the backup holds, even when another drive ' + 'frees up',
  async () => {
    await inTempDir('verify', async (dir) => {
      const w = await world(dir);
      try {
        w.method('scratch-lun');
        const vol = await w.volume(32 * MIB);
        const earlier = await w.run(w.service.startBackup({ volume: vol }));
        assert.equal(earlier.job.state, 'done', JSON.stringify(earlier.job.error));
        const db = w.service.catalog.db;
        const site = w.service.site;
        const [first] = await site.drivesOf(site.pool(undefined));
        // The first drive is busy when the backup starts, and free by the time it verifies.
        await reserve(db, driveResource(first), earlier.job.id);
        const id = (await w.service.startBackup({ volume: vol, verify: true })).id;
        let released: Promise<unknown> | undefined;
        const unsub = w.service.subscribe(id, (e) => {
          if (e.kind === 'state' && e.state === 'mounting') released ??= release(db, earlier.job.id);
        });
        const b = await w.run(w.service.getJob(id));
        unsub();
        assert.ok(released, 'the first drive was freed while the backup ran');
        await released;
        assert.equal(b.job.state, 'done', JSON.stringify(b.job.error));
        assert.ok(b.states.includes('verifying'));
        const drives = (await w.service.events(id))
          .filter((e) => e.kind === 'state' && e.state === 'mounting')
          .map((e) => e.data?.drive);
        assert.ok(drives.length >= 2, `a mount for the backup and one for the verify: ${JSON.stringify(drives)}`);
        assert.ok(
          drives.every((d) => d === drives[0] && d !== first),
          `every mount in the backup's drive: ${JSON.stringify(drives)}`,
        );
      } finally {
        await w.close();
      }
    });
  },
);
