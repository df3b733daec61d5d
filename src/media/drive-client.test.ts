import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { openStandaloneDrive } from '../storage-node/tape-library.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { DriveClient } from './drive-client.ts';

// DriveClient's positioning without LOCATE (spaceTo) against a Ferry drive, which is SSC-3 about
// SPACE: spacing blocks stops after a filemark with FM and INFORMATION = blocks not spaced (tgtd
// passes filemarks instead: test/interop/backup-tgtd.test.ts covers that kind).

const IQN = 'iqn.2026-11.dev.ferry:drive-client-test';
const BS = 4096;

test('spaceTo reaches every object (filemarks included) on an SSC-3 drive, like LOCATE; isBlank', async () => {
  await inTempDir('drive-client', async (dir) => {
    const lone = await openStandaloneDrive(join(dir, 'one.cart'), { createSizeBytes: 8 << 20 });
    const target = new Target({ name: IQN });
    target.addLun(0, lone);
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port,
      initiatorName: `${IQN}-client`,
      targetName: IQN,
    });
    try {
      const d = await DriveClient.open(s, 0);
      await d.ready();
      assert.equal(d.partialBlockReads, true, 'a Ferry LU sends no more than the expected length');
      assert.equal(d.copyManager, false, 'a bare drive LU without a copy manager has no 3PC');
      await d.setFixedBlock(BS);
      assert.equal(await d.isBlank(), true);

      // Objects: 0,1 data; 2,3 filemarks; 4,5,6 data; 7 filemark; end of data at 8.
      const tags = new Map<number, number | 'fm'>([
        [0, 10],
        [1, 11],
        [2, 'fm'],
        [3, 'fm'],
        [4, 14],
        [5, 15],
        [6, 16],
        [7, 'fm'],
      ]);
      for (const v of tags.values()) {
        if (v === 'fm') await d.device.writeFilemarks(1);
        else await d.device.write(new Uint8Array(BS).fill(v));
      }
      assert.equal(await d.isBlank(), false);
      for (const how of ['spaceTo', 'locate'] as const) {
        for (const [id, v] of tags) {
          await d[how](id);
          assert.equal((await d.position()).blockId, id, `${how}(${id})`);
          const r = await d.readBlocks(1);
          if (v === 'fm') assert.equal(r.kind, 'filemark', `${how}(${id})`);
          else assert.equal(r.data[0], v, `${how}(${id})`);
        }
        await d[how](8);
        assert.equal((await d.position()).blockId, 8, `${how}(8): end of data, where the next set goes`);
        await assert.rejects(d[how](9), { code: 'ERR_LOCATE_PAST_EOD' });
      }
    } finally {
      await s.logout().catch(() => undefined);
      await server.close();
      await lone.close();
    }
  });
});
