// One contract, two implementations: the in-process SnapshotService and SnapshotApiClient
// talking HTTP to a real management API on 127.0.0.1. The backup server may hold either.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../util/errors.ts';
import { startSnapshotApi } from './api.ts';
import { SnapshotApiClient } from './api-client.ts';
import { DirLunRegistry } from './lun-registry.ts';
import { MAX_DIGEST_EXTENTS, type NodeControl } from './node-control.ts';
import { SnapshotService } from './node-service.ts';

const TOKEN = 'node-control-token-0123456789';
const BS = 512;
const GRANULE_BLOCKS = 8;
const NODE = 'storage node iqn.2026-11.dev.ferry:contract';
const NAA = /^6[0-9a-f]{31}$/;

interface Harness {
  control: NodeControl;
  /** Writes go straight to a LUN's block device, as the disk LU's would. */
  registry: DirLunRegistry;
  close(): Promise<void>;
}

async function openService(dir: string): Promise<{ registry: DirLunRegistry; service: SnapshotService }> {
  const registry = await DirLunRegistry.open(dir, { blockSize: BS, chunkBytes: GRANULE_BLOCKS * BS });
  const service = new SnapshotService(registry, { name: NODE });
  await service.start();
  return { registry, service };
}

const IMPLEMENTATIONS: Array<[string, (dir: string) => Promise<Harness>]> = [
  [
    'SnapshotService (in process)',
    async (dir) => {
      const { registry, service } = await openService(dir);
      return { control: service, registry, close: () => registry.close() };
    },
  ],
  [
    'SnapshotApiClient (HTTP)',
    async (dir) => {
      const { registry, service } = await openService(dir);
      const api = await startSnapshotApi(service, { host: '127.0.0.1', port: 0, token: TOKEN });
      const control = new SnapshotApiClient(`http://127.0.0.1:${api.address.port}`, TOKEN);
      return {
        control,
        registry,
        async close() {
          await api.close();
          await registry.close();
        },
      };
    },
  ],
];

/** Rejects with a FerryError of this code whose message matches every pattern. */
async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FerryError, `a FerryError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

const sha = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const [name, open] of IMPLEMENTATIONS) {
  describe(`NodeControl contract: ${name}`, () => {
    const withNode = async (fn: (h: Harness) => Promise<void>): Promise<void> => {
      const dir = await mkdtemp(join(tmpdir(), 'ferry-node-control-'));
      const h = await open(dir);
      try {
        await fn(h);
      } finally {
        await h.close();
        await rm(dir, { recursive: true, force: true });
      }
    };

    test('createLun, listLuns, deleteLun', async () => {
      await withNode(async ({ control }) => {
        assert.deepEqual(await control.listLuns(), []);
        const a = await control.createLun({ sizeBytes: 256 * 1024 });
        assert.match(a.designator, NAA);
        assert.deepEqual(a, {
          lun: 0,
          kind: 'disk',
          blockSize: BS,
          blockCount: 512,
          sizeBytes: 256 * 1024,
          readOnly: false,
          designator: a.designator,
        });
        const b = await control.createLun({ sizeBytes: 64 * 1024, blockSize: BS });
        assert.equal(b.lun, 1);
        assert.notEqual(b.designator, a.designator);
        assert.deepEqual(await control.listLuns(), [a, b]);
        await rejectsWith(control.createLun({ sizeBytes: 1000 }), 'ERR_BAD_REQUEST', /multiple of the 512-byte block/);
        const wrongBlock = control.createLun({ sizeBytes: 4096, blockSize: 4096 });
        await rejectsWith(wrongBlock, 'ERR_BAD_REQUEST', /512-byte blocks/);
        await control.deleteLun(1);
        assert.deepEqual(await control.listLuns(), [a]);
        await rejectsWith(control.deleteLun(1), 'ERR_LUN_NOT_FOUND', new RegExp(`no LUN 1 on ${NODE}`));
      });
    });

    test('createSnapshot, getSnapshot, listSnapshots, deleteSnapshot; each is its own read-only LUN', async () => {
      await withNode(async ({ control, registry }) => {
        const disk = await control.createLun({ sizeBytes: 256 * 1024 });
        const before = randomFillSync(Buffer.alloc(disk.sizeBytes));
        await registry.device(0)!.write(0, before);
        const s1 = await control.createSnapshot(0, { quietPeriodMs: 0 });
        assert.equal(typeof s1.id, 'string');
        assert.equal(s1.sourceLun, 0);
        assert.equal(s1.lun, 1);
        assert.equal(s1.mode, 'crash-consistent');
        assert.equal(typeof s1.waitedMs, 'number');
        assert.equal(new Date(s1.takenAt).toISOString(), s1.takenAt);
        assert.match(s1.designator ?? '', NAA);
        assert.notEqual(s1.designator, disk.designator);

        const snapLun = (await control.listLuns()).find((l) => l.lun === s1.lun);
        assert.deepEqual(snapLun, {
          lun: s1.lun,
          kind: 'snapshot',
          blockSize: BS,
          blockCount: disk.blockCount,
          sizeBytes: disk.sizeBytes,
          readOnly: true,
          designator: s1.designator,
          snapshotId: s1.id,
          sourceLun: 0,
        });
        assert.deepEqual(await control.getSnapshot(s1.id), s1);

        await registry.device(0)!.write(0, Buffer.alloc(BS, 0xee));
        const s2 = await control.createSnapshot(0, { quietPeriodMs: 50, timeoutMs: 5000 });
        assert.equal(s2.mode, 'quiesced');
        assert.equal(s2.quietPeriodMs, 50);
        assert.equal(s2.timeoutMs, 5000);
        assert.ok((s2.waitedMs ?? -1) >= 0);
        assert.deepEqual(
          (await control.listSnapshots()).map((s) => s.id),
          [s1.id, s2.id],
        );
        assert.deepEqual(
          (await control.listSnapshots(0)).map((s) => s.id),
          [s1.id, s2.id],
        );
        assert.deepEqual(await control.listSnapshots(s1.lun), [], 'a snapshot LUN has no snapshots of its own');
        assert.equal((await control.getSnapshot(s1.id))?.preservedChunks, 1, 'the overwritten chunk went to s1');

        const ofSnapshot = control.createSnapshot(s1.lun, { quietPeriodMs: 0 });
        await rejectsWith(ofSnapshot, 'ERR_NOT_A_DISK', new RegExp(`LUN ${s1.lun}`));
        await rejectsWith(control.deleteLun(0), 'ERR_LUN_HAS_SNAPSHOTS', /LUN 0 has 2 snapshot/);
        await control.deleteSnapshot(s1.id);
        assert.equal(await control.getSnapshot(s1.id), undefined);
        assert.deepEqual(
          (await control.listSnapshots()).map((s) => s.id),
          [s2.id],
        );
        assert.equal(
          (await control.listLuns()).some((l) => l.lun === s1.lun),
          false,
          "the snapshot's LUN is unmapped",
        );
        const again = control.deleteSnapshot(s1.id);
        await rejectsWith(again, 'ERR_SNAPSHOT_NOT_FOUND', new RegExp(`no snapshot ${s1.id} on ${NODE}`));
        await control.deleteSnapshot(s2.id);
        await control.deleteLun(0);
        assert.deepEqual(await control.listLuns(), []);
      });
    });

    test('changedSince: the granules written after a snapshot, until now or a later snapshot', async () => {
      await withNode(async ({ control, registry }) => {
        await control.createLun({ sizeBytes: 256 * 1024 });
        const dev = registry.device(0)!;
        await dev.write(0, Buffer.alloc(512 * BS, 0x11));
        const s1 = await control.createSnapshot(0, { quietPeriodMs: 0 });
        const none = { tracking: 'exact', granularity: GRANULE_BLOCKS * BS, blockSize: BS, extents: [] };
        assert.deepEqual(await control.changedSince(0, s1.id), none);
        await dev.write(20, Buffer.alloc(3 * BS, 0x22)); // granule 2
        await dev.write(100, Buffer.alloc(20 * BS, 0x33)); // granules 12..14
        const want = [
          { lba: 16, blocks: 8 },
          { lba: 96, blocks: 24 },
        ];
        const c = await control.changedSince(0, s1.id);
        assert.deepEqual(c, { ...none, extents: want });
        const s2 = await control.createSnapshot(0, { quietPeriodMs: 0 });
        await dev.write(511, Buffer.alloc(BS, 0x44)); // the last granule
        assert.deepEqual((await control.changedSince(0, s1.id, { until: s2.id })).extents, want);
        assert.deepEqual((await control.changedSince(0, s2.id)).extents, [{ lba: 504, blocks: 8 }]);
        assert.deepEqual((await control.changedSince(0, s1.id)).extents, [...want, { lba: 504, blocks: 8 }]);
        await rejectsWith(control.changedSince(0, s2.id, { until: s1.id }), 'ERR_SNAPSHOT_ORDER');
        await rejectsWith(control.changedSince(s1.lun, s1.id), 'ERR_NOT_A_DISK');
        // Change ids outlive their snapshots; the snapshot ids keep naming them.
        assert.match(s1.changeId, /^chg-[0-9a-f]{12}$/);
        await control.deleteSnapshot(s1.id);
        await control.deleteSnapshot(s2.id);
        assert.deepEqual((await control.changedSince(0, s1.changeId, { until: s2.changeId })).extents, want);
        assert.deepEqual((await control.changedSince(0, s1.id, { until: s2.id })).extents, want);
        assert.deepEqual((await control.changedSince(0, s2.changeId)).extents, [{ lba: 504, blocks: 8 }]);
      });
    });

    test(
      'markChanges starts an epoch without a snapshot; changeTracking lists the epochs and their ' + 'space',
      async () => {
        await withNode(async ({ control, registry }) => {
          await control.createLun({ sizeBytes: 256 * 1024 });
          const dev = registry.device(0)!;
          const t0 = await control.changeTracking(0);
          assert.deepEqual(t0, { lun: 0, granularity: GRANULE_BLOCKS * BS, maxEpochs: 32, bytes: 0, epochs: [] });
          await rejectsWith(
            control.changedSince(0, 'chg-000000000000'),
            'ERR_CHANGE_ID_NOT_FOUND',
            /no change id or snapshot chg-000000000000 in the change tracking of LUN 0/,
          );
          const m = await control.markChanges(0);
          assert.equal(m.lun, 0);
          assert.match(m.changeId, /^chg-[0-9a-f]{12}$/);
          assert.equal(new Date(m.startedAt).toISOString(), m.startedAt);
          await dev.write(40, Buffer.alloc(BS, 1)); // granule 5
          const s = await control.createSnapshot(0, { quietPeriodMs: 0 });
          await dev.write(0, Buffer.alloc(BS, 2)); // granule 0
          assert.deepEqual((await control.changedSince(0, m.changeId, { until: s.changeId })).extents, [
            { lba: 40, blocks: 8 },
          ]);
          assert.deepEqual((await control.changedSince(0, m.changeId)).extents, [
            { lba: 0, blocks: 8 },
            { lba: 40, blocks: 8 },
          ]);
          const t = await control.changeTracking(0);
          assert.deepEqual(
            t.epochs.map((e) => [e.changeId, e.snapshotId, e.lost]),
            [
              [m.changeId, null, null],
              [s.changeId, s.id, null],
            ],
          );
          // Two epochs of 64 granules: a 32-byte header and 8 bytes of bits each.
          assert.equal(t.bytes, 2 * (32 + 8));
          await rejectsWith(control.markChanges(s.lun), 'ERR_NOT_A_DISK');
          await rejectsWith(control.markChanges(99), 'ERR_LUN_NOT_FOUND');
        });
      },
    );

    test('digest: SHA-256 of the extents in order, over several reads, of disks and snapshots', async () => {
      await withNode(async ({ control, registry }) => {
        const lun = await control.createLun({ sizeBytes: 6 << 20 });
        const data = randomFillSync(Buffer.alloc(lun.sizeBytes));
        await registry.device(0)!.write(0, data);
        const blocks = (lba: number, n: number): Buffer => data.subarray(lba * BS, (lba + n) * BS);
        // The second extent is 4.4 MiB: more than one read.
        const extents = [
          { lba: 10_000, blocks: 7 },
          { lba: 1, blocks: 9000 },
        ];
        const d = await control.digest(0, extents);
        assert.deepEqual(d, { sha256: sha(blocks(10_000, 7), blocks(1, 9000)), bytes: 9007 * BS });
        assert.notEqual(d.sha256, (await control.digest(0, [...extents].reverse())).sha256, 'order matters');
        assert.deepEqual(await control.digest(0, []), { sha256: sha(), bytes: 0 });

        const snap = await control.createSnapshot(0, { quietPeriodMs: 0 });
        await registry.device(0)!.write(10_000, Buffer.alloc(7 * BS));
        assert.equal((await control.digest(snap.lun, extents)).sha256, d.sha256, 'the snapshot kept the old content');
        assert.notEqual((await control.digest(0, extents)).sha256, d.sha256);

        const end = lun.blockCount;
        await rejectsWith(
          control.digest(0, [
            { lba: 0, blocks: 1 },
            { lba: end - 1, blocks: 2 },
          ]),
          'ERR_RANGE',
        );
        await rejectsWith(control.digest(0, [{ lba: 0, blocks: 0 }]), 'ERR_BAD_REQUEST');
        const tooMany = Array.from({ length: MAX_DIGEST_EXTENTS + 1 }, () => ({ lba: 0, blocks: 1 }));
        await rejectsWith(control.digest(0, tooMany), 'ERR_BAD_REQUEST', new RegExp(`${MAX_DIGEST_EXTENTS}`));
      });
    });

    test('activity: no write yet, a recent write, time passing; a snapshot LUN is never written', async () => {
      await withNode(async ({ control, registry }) => {
        await control.createLun({ sizeBytes: 64 * 1024 });
        assert.deepEqual(await control.activity(0), { lastWriteMsAgo: null });
        await registry.device(0)!.write(3, Buffer.alloc(BS, 1));
        const a = (await control.activity(0)).lastWriteMsAgo;
        assert.ok(a !== null && a >= 0 && a < 2000, `just written: ${a}`);
        await sleep(80);
        const b = (await control.activity(0)).lastWriteMsAgo;
        assert.ok(b !== null && b >= 70 && b >= a, `80 ms later: ${b}`);
        const snap = await control.createSnapshot(0, { quietPeriodMs: 0 });
        assert.deepEqual(await control.activity(snap.lun), { lastWriteMsAgo: null });
      });
    });

    test('errors: unknown LUN and snapshot, quiet period that never comes, absurd periods: same codes', async () => {
      await withNode(async ({ control, registry }) => {
        await control.createLun({ sizeBytes: 64 * 1024 });
        const unknown = [/no LUN 99 on storage node iqn\.2026-11\.dev\.ferry:contract/];
        await rejectsWith(control.deleteLun(99), 'ERR_LUN_NOT_FOUND', ...unknown);
        await rejectsWith(control.createSnapshot(99, { quietPeriodMs: 0 }), 'ERR_LUN_NOT_FOUND', ...unknown);
        await rejectsWith(control.listSnapshots(99), 'ERR_LUN_NOT_FOUND', ...unknown);
        await rejectsWith(control.changedSince(99, 'snap-000000000000'), 'ERR_LUN_NOT_FOUND', ...unknown);
        await rejectsWith(control.digest(99, [{ lba: 0, blocks: 1 }]), 'ERR_LUN_NOT_FOUND', ...unknown);
        await rejectsWith(control.activity(99), 'ERR_LUN_NOT_FOUND', ...unknown);

        const nope = 'snap-000000000000';
        assert.equal(await control.getSnapshot(nope), undefined);
        const del = control.deleteSnapshot(nope);
        await rejectsWith(del, 'ERR_SNAPSHOT_NOT_FOUND', new RegExp(`no snapshot ${nope} on ${NODE}`));
        const since = control.changedSince(0, nope);
        await rejectsWith(
          since,
          'ERR_CHANGE_ID_NOT_FOUND',
          new RegExp(`no change id or snapshot ${nope} in the change tracking of LUN 0 on ${NODE}`),
        );
        const s = await control.createSnapshot(0, { quietPeriodMs: 0 });
        await rejectsWith(control.changedSince(0, s.id, { until: nope }), 'ERR_CHANGE_ID_NOT_FOUND', new RegExp(nope));

        const absurd = [
          { quietPeriodMs: -1 },
          { quietPeriodMs: 5000, timeoutMs: 1000 },
          { timeoutMs: 36_000_000 },
          { quietPeriodMs: 0.5 },
        ];
        for (const opts of absurd) {
          await rejectsWith(control.createSnapshot(0, opts), 'ERR_BAD_PERIOD');
        }

        // Writes that never pause: the node's reason, and nothing created.
        const disk = registry.device(0)!;
        let stop = false;
        const writer = (async () => {
          for (let i = 0; !stop; i++) {
            await disk.write(i % 100, Buffer.alloc(BS, i));
            await sleep(15);
          }
        })();
        try {
          const pending = control.createSnapshot(0, { quietPeriodMs: 200, timeoutMs: 700 });
          await sleep(100);
          const waiting = (await control.activity(0)).lastWriteMsAgo;
          assert.ok(waiting !== null && waiting < 200, `while waiting for quiet writes: last write ${waiting} ms ago`);
          const reason = /^LUN 0: no 200 ms pause in writes came within the 700 ms timeout; waited \d+ ms, the last/;
          await rejectsWith(pending, 'ERR_QUIESCE_TIMEOUT', reason);
        } finally {
          stop = true;
          await writer;
        }
        assert.deepEqual(
          (await control.listSnapshots()).map((x) => x.id),
          [s.id],
        );
        assert.equal((await control.listLuns()).length, 2);
      });
    });

    test('createSnapshot: an abort while waiting for quiet writes cancels it, and nothing is created', async () => {
      await withNode(async ({ control, registry }) => {
        const { lun } = await control.createLun({ sizeBytes: 64 * 1024 });
        await registry.device(lun)!.write(0, Buffer.alloc(BS, 1)); // the quiet period starts now: 10 minutes of it
        const ac = new AbortController();
        const pending = control.createSnapshot(lun, {
          quietPeriodMs: 600_000,
          timeoutMs: 1_200_000,
          signal: ac.signal,
        });
        await sleep(50);
        ac.abort();
        await rejectsWith(pending, 'ERR_CANCELED', /canceled/);
        // The node stopped waiting: the LUN takes a new snapshot (over HTTP once it has seen the hang-up).
        let next;
        for (let tries = 0; !next; tries++) {
          try {
            next = await control.createSnapshot(lun, { quietPeriodMs: 0 });
          } catch (e) {
            if ((e as FerryError).code !== 'ERR_SNAPSHOT_IN_PROGRESS' || tries >= 100) throw e;
            await sleep(20);
          }
        }
        assert.deepEqual(
          (await control.listSnapshots(lun)).map((x) => x.id),
          [next.id],
          'only the one taken after the cancel',
        );
      });
    });
  });
}
