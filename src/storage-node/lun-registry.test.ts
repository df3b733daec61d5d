import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../block/block-device.ts';
import { DirLunRegistry, type LunInfo } from './lun-registry.ts';
import { SnapshotService } from './node-service.ts';

test(
  'configured images come first and keep their LUNs across a restart; API LUNs keep theirs; hooks see every ' +
    'change',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-reg-'));
    try {
      const mapped = new Map<number, { info: LunInfo; device: BlockDevice }>();
      const hooks = {
        allocate: () => {
          let n = 0;
          while (mapped.has(n)) n++;
          return n;
        },
        added: (info: LunInfo, device: BlockDevice) => void mapped.set(info.lun, { info, device }),
        removed: (lun: number) => void mapped.delete(lun),
      };
      const images = [
        { path: join(dir, 'a.img'), sizeBytes: 1 << 20 },
        { path: join(dir, 'b.img'), sizeBytes: 2 << 20 },
      ];
      let reg = await DirLunRegistry.open(join(dir, 'luns'), { images, hooks });
      assert.deepEqual(
        reg.list().map((l) => [l.lun, l.sizeBytes]),
        [
          [0, 1 << 20],
          [1, 2 << 20],
        ],
      );
      assert.equal((await reg.create({ sizeBytes: 4096 })).lun, 2);
      const service = new SnapshotService(reg);
      await reg.device(1)!.write(0, Buffer.alloc(512, 7));
      const s = await service.createSnapshot(1, { quietPeriodMs: 0 });
      assert.equal(s.lun, 3);
      assert.deepEqual([...mapped.keys()].sort(), [0, 1, 2, 3]);
      assert.equal(mapped.get(3)?.info.kind, 'snapshot');
      assert.equal(mapped.get(3)?.device.readOnly, true);
      await assert.rejects(reg.delete(0), { code: 'ERR_LUN_CONFIGURED' });
      assert.ok((await readdir(dir)).includes('b.img.snapshots'), 'snapshots of a configured image live beside it');
      await reg.close();
      assert.equal(mapped.size, 0);

      reg = await DirLunRegistry.open(join(dir, 'luns'), { images, hooks });
      const again = new SnapshotService(reg);
      await again.start();
      assert.deepEqual(
        reg.list().map((l) => [l.lun, l.kind]),
        [
          [0, 'disk'],
          [1, 'disk'],
          [2, 'disk'],
          [3, 'snapshot'],
        ],
      );
      assert.equal((await mapped.get(3)!.device.read(0, 1))[0], 7);
      await again.deleteSnapshot(s.id);
      await again.deleteLun(2);
      assert.deepEqual([...mapped.keys()].sort(), [0, 1]);
      await reg.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('a hook that refuses a LUN leaves nothing mapped or open', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-reg-'));
  try {
    const reg = await DirLunRegistry.open(dir, {
      hooks: {
        added: (info) => {
          if (info.lun === 1) throw new Error('LUN 1 is taken by a tape drive');
        },
      },
    });
    await reg.create({ sizeBytes: 4096 });
    await assert.rejects(reg.create({ sizeBytes: 4096 }), /tape drive/);
    assert.deepEqual(
      reg.list().map((l) => l.lun),
      [0],
    );
    assert.deepEqual((await readdir(dir)).sort(), ['lun-0.img', 'lun-0.img.snapshots']);
    await reg.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
