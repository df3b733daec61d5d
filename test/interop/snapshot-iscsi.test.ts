// Snapshots over iSCSI: several workstations (each its own session) write known patterns to a
// disk LUN of a Ferry target while the management API takes a snapshot; the snapshot LUN, read
// over iSCSI and digested on the node, holds one instant of the LUN and never changes after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { resolveTargetConfig } from '../../src/storage-node/config.ts';
import { startStorageNode, type StorageNode } from '../../src/storage-node/storage-node.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { SnapshotApiClient } from '../../src/storage-node/api-client.ts';
import { buildWrite10 } from '../../src/scsi/cdb/sbc.ts';
import { buildInquiry } from '../../src/scsi/cdb/spc.ts';

const IQN = 'iqn.2026-11.dev.ferry:snap-test';
const TOKEN = 'snapshot-iscsi-token-0123456789';
const BS = 512;
const WRITERS = 4;
const REGION = 512; // blocks per workstation
const IO = 16; // blocks per write

/** The storage node as `ferry target --disk … --api …` runs it, in this process. */
async function startNode(): Promise<{ dir: string; node: StorageNode; port: number; client: SnapshotApiClient }> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-snap-iscsi-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, TOKEN);
  const cfg = resolveTargetConfig({
    listen: '127.0.0.1:0',
    iqn: IQN,
    blockSize: BS,
    disks: [{ path: join(dir, 'disk0.img'), size: WRITERS * REGION * BS }],
    api: '127.0.0.1:0',
    apiTokenFile: tokenFile,
    logLevel: 'silent',
  });
  const node = await startStorageNode(cfg, pino({ level: 'silent' }));
  return {
    dir,
    node,
    port: node.address.port,
    client: new SnapshotApiClient(`http://127.0.0.1:${node.api!.port}`, TOKEN),
  };
}

/** Block content for write k of workstation w: every byte says (w, k). */
function stamp(w: number, k: number): Buffer {
  const b = Buffer.alloc(IO * BS);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32BE((w << 24) | k, i);
  return b;
}

/** The region of workstation w after its writes 1..k (write k goes to slot (k-1) mod slots). */
function regionAfter(w: number, k: number): Buffer {
  const img = Buffer.alloc(REGION * BS);
  for (let j = 1; j <= k; j++) stamp(w, j).copy(img, ((j - 1) % (REGION / IO)) * IO * BS);
  return img;
}

test(
  'a snapshot under several iSCSI writers is one instant of the LUN; iSCSI reads and the digest endpoint ' + 'agree',
  async () => {
    const { dir, node, port, client } = await startNode();
    const target = node.target;
    const sessions: InitiatorSession[] = [];
    try {
      for (let w = 0; w < WRITERS; w++) {
        sessions.push(
          await InitiatorSession.login({
            host: '127.0.0.1',
            port,
            initiatorName: `iqn.2026-11.dev.ferry:ws${w}`,
            targetName: IQN,
          }),
        );
      }
      const disks = await Promise.all(sessions.map((s) => RemoteBlockDevice.open(s, 0)));
      const acked = new Array<number>(WRITERS).fill(0);
      let stop = false;
      const writers = disks.map(async (d, w) => {
        for (let k = 1; !stop; k++) {
          await d.write(w * REGION + ((k - 1) % (REGION / IO)) * IO, stamp(w, k));
          acked[w] = k;
        }
      });
      const until = async (ok: () => boolean): Promise<void> => {
        while (!ok()) await new Promise((r) => setTimeout(r, 10));
      };
      await until(() => acked.every((k) => k > 5));
      const ackedBefore = [...acked];
      const snap = await client.createSnapshot(0, { quietPeriodMs: 0 });
      const ackedAfter = [...acked];
      await until(() => acked.every((k, w) => k > ackedAfter[w] + 3)); // keep writing after the snapshot
      stop = true;
      await Promise.all(writers);
      assert.ok(
        ackedBefore.every((k) => k > 5),
        `writes before the snapshot: ${ackedBefore}`,
      );
      assert.ok(
        acked.every((k, w) => k > ackedAfter[w]),
        'writes continued after the snapshot',
      );
      assert.equal(snap.mode, 'crash-consistent');

      // Read the snapshot LUN over iSCSI, from a fresh session.
      const reader = await InitiatorSession.login({
        host: '127.0.0.1',
        port,
        initiatorName: 'iqn.2026-11.dev.ferry:mover',
        targetName: IQN,
      });
      sessions.push(reader);
      const snapDev = await RemoteBlockDevice.open(reader, snap.lun);
      assert.equal(snapDev.blockCount, WRITERS * REGION);
      const image = Buffer.from(await snapDev.read(0, snapDev.blockCount));
      // Each workstation's region is exactly its writes 1..k for one k between what was acked
      // before the request and what was acked when it returned (+1 for the write in flight).
      for (let w = 0; w < WRITERS; w++) {
        const region = image.subarray(w * REGION * BS, (w + 1) * REGION * BS);
        let k = 0;
        for (let i = 0; i < region.length; i += IO * BS) k = Math.max(k, region.readUInt32BE(i) & 0xffffff);
        assert.ok(
          k >= ackedBefore[w] && k <= ackedAfter[w] + 1,
          `workstation ${w}: snapshot at write ${k}, acked ${ackedBefore[w]}..${ackedAfter[w]}`,
        );
        assert.ok(region.equals(regionAfter(w, k)), `workstation ${w}: region is its writes 1..${k} exactly`);
      }
      const sha = createHash('sha256').update(image).digest('hex');
      const whole = [{ lba: 0, blocks: WRITERS * REGION }];
      assert.equal((await client.digest(snap.lun, whole)).sha256, sha, 'digest on the node = iSCSI read');
      assert.notEqual((await client.digest(0, whole)).sha256, sha, 'the live LUN moved on');

      // Its own identity, write protected, and unchanged by more writes to the LUN.
      const vpd = async (lun: number): Promise<string> =>
        Buffer.from((await reader.command(lun, buildInquiry(255, 0x83), { inLength: 255 })).data).toString('hex');
      assert.notEqual(await vpd(snap.lun), await vpd(0));
      // The designators the API reports are the NAAs the LUs present (what CSCD descriptors name).
      for (const l of await client.listLuns()) assert.ok((await vpd(l.lun)).includes(l.designator), `LUN ${l.lun}`);
      assert.ok(snap.designator && (await vpd(snap.lun)).includes(snap.designator));
      const wr = await reader.command(snap.lun, buildWrite10(0, 1), {
        dataOut: Buffer.alloc(BS),
        allowCheckCondition: true,
      });
      assert.equal(wr.status, 0x02);
      // DATA PROTECT, WRITE PROTECTED
      assert.deepEqual([wr.sense?.key, wr.sense?.asc, wr.sense?.ascq], [0x07, 0x27, 0x00]);
      await disks[0].write(0, Buffer.alloc(REGION * BS, 0xee));
      assert.equal(
        createHash('sha256')
          .update(await snapDev.read(0, snapDev.blockCount))
          .digest('hex'),
        sha,
      );
      assert.equal((await client.digest(snap.lun, whole)).sha256, sha);

      await client.deleteSnapshot(snap.id);
      assert.equal(target.luns.has(snap.lun), false);
    } finally {
      for (const s of sessions) await s.logout().catch(() => undefined);
      await node.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'over iSCSI, a quiesced snapshot waits for the workstations to pause and holds every write before the ' + 'pause',
  async () => {
    const { dir, node, port, client } = await startNode();
    const sessions: InitiatorSession[] = [];
    const QUIET = 300;
    try {
      for (let w = 0; w < 2; w++) {
        sessions.push(
          await InitiatorSession.login({
            host: '127.0.0.1',
            port,
            initiatorName: `iqn.2026-11.dev.ferry:q${w}`,
            targetName: IQN,
          }),
        );
      }
      const disks = await Promise.all(sessions.map((s) => RemoteBlockDevice.open(s, 0)));
      const issued: number[] = [];
      let snapped = false;
      // Each workstation writes 10 times, 30 ms apart, then waits for the snapshot (at most 3 s).
      const writers = disks.map(async (d, w) => {
        for (let k = 1; k <= 10; k++) {
          issued.push(Date.now());
          await d.write(w * REGION + ((k - 1) % (REGION / IO)) * IO, stamp(w, k));
          await new Promise((r) => setTimeout(r, 30));
        }
        const until = Date.now() + 3000;
        while (!snapped && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
        for (let k = 11; k <= 13; k++) await d.write(w * REGION + ((k - 1) % (REGION / IO)) * IO, stamp(w, k));
      });
      await new Promise((r) => setTimeout(r, 50));
      const snap = await client.createSnapshot(0, { quietPeriodMs: QUIET, timeoutMs: 10_000 });
      snapped = true;
      await Promise.all(writers);
      assert.equal(snap.mode, 'quiesced');
      assert.equal(snap.quietPeriodMs, QUIET);
      const takenAt = Date.parse(snap.takenAt);
      const before = issued.filter((t) => t <= takenAt).sort((a, b) => a - b);
      assert.ok(
        takenAt >= before[before.length - 1] + QUIET,
        `taken ${takenAt - before[before.length - 1]} ms after the last write`,
      );
      // A machine stall of a quiet period between writes would be a real pause, rightly taken.
      if (before.some((t, i) => i > 0 && t - before[i - 1] >= QUIET)) return;
      const reader = await InitiatorSession.login({
        host: '127.0.0.1',
        port,
        initiatorName: 'iqn.2026-11.dev.ferry:mover',
        targetName: IQN,
      });
      sessions.push(reader);
      const image = Buffer.from(await (await RemoteBlockDevice.open(reader, snap.lun)).read(0, 2 * REGION));
      for (let w = 0; w < 2; w++)
        assert.ok(
          image.subarray(w * REGION * BS, (w + 1) * REGION * BS).equals(regionAfter(w, 10)),
          `workstation ${w}: writes 1..10, none after`,
        );
    } finally {
      for (const s of sessions) await s.logout().catch(() => undefined);
      await node.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
