import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { closeDiskLu, openDiskLu } from '../storage-node/storage-node.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { TmfFunction } from '../iscsi/pdu/task-mgmt.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { encodeXcopyParameterList, type SegmentInput } from '../xcopy/descriptors.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import { startMover, type Mover } from './mover.ts';
import { resolveMoverConfig } from './config.ts';
import { CopyManagerStatus, decodeCopyStatus } from '../xcopy/copy-results.ts';
import { buildExtendedCopy, buildInquiry, buildReceiveCopyResults, buildTestUnitReady } from '../scsi/cdb/spc.ts';

// `ferry mover` in-process against a Ferry target: a block → block copy between two LUNs
// bit-exact, the mover's PDT 03h identity, and ABORT TASK / LUN RESET stopping a running copy.

const IQN = 'iqn.2026-11.dev.ferry:mover-test-src';
const MOVER = 'iqn.2026-11.dev.ferry:mover-test';
const INITIATOR = 'iqn.2026-11.dev.ferry:mover-test-client';
const MIB = 32;

interface World {
  dir: string;
  port: number;
  server: TargetServer;
  target: Target;
  mover: Mover;
  client: InitiatorSession;
  a: Designator;
  b: Designator;
  close(): Promise<void>;
}

async function world(opts: { chap?: { user: string; secret: string }; moverChap?: string } = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-mover-test-'));
  const fh = await open(join(dir, 'a.img'), 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < MIB << 20; off += chunk.length) await fh.write(randomFillSync(chunk), 0, chunk.length, off);
  await fh.close();
  const target = new Target({ name: IQN, chap: opts.chap });
  target.addLun(0, await openDiskLu(IQN, join(dir, 'a.img'), 512));
  target.addLun(1, await openDiskLu(IQN, join(dir, 'b.img'), 512, MIB << 20));
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  const mover = await startMover(
    resolveMoverConfig({
      listen: '127.0.0.1:0',
      iqn: MOVER,
      portals: [`127.0.0.1:${port}`],
      portalChap: opts.moverChap,
      logLevel: 'silent',
    }),
  );
  const client = await InitiatorSession.login({
    host: '127.0.0.1',
    port: mover.address.port,
    initiatorName: INITIATOR,
    targetName: MOVER,
  });
  const naa = (d: Uint8Array) => decodeDeviceIdentificationPage(d).find((x) => x.designatorType === 3)!;
  const s = await InitiatorSession.login({
    host: '127.0.0.1',
    port,
    initiatorName: INITIATOR,
    targetName: IQN,
    chap: opts.chap,
  });
  const a = naa((await s.command(0, buildInquiry(255, 0x83), { inLength: 255 })).data);
  const b = naa((await s.command(1, buildInquiry(255, 0x83), { inLength: 255 })).data);
  await s.logout();
  return {
    dir,
    port,
    server,
    target,
    mover,
    client,
    a,
    b,
    async close() {
      await client.logout().catch(() => undefined);
      await mover.close();
      await server.close();
      await Promise.all([...target.luns.values()].map((lu) => closeDiskLu(lu)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function copyList(w: World, listId: number): Uint8Array {
  const blocks = (MIB << 20) / 512;
  const per = 16384;
  const segments = Array.from({ length: blocks / per }, (_, i): SegmentInput => ({
    type: 0x02,
    cat: false,
    dc: false,
    source: 0,
    destination: 1,
    blockCount: per,
    sourceLba: i * per,
    destinationLba: i * per,
  }));
  const cscd = (d: Designator) => ({ ...d, peripheralDeviceType: 0, pad: false, fixed: false, blockLength: 512 });
  return encodeXcopyParameterList({
    header: { listId, str: false, listIdUsage: 0, priority: 0 },
    cscds: [cscd(w.a), cscd(w.b)],
    segments,
  });
}

test('the mover copies between two LUNs of another target, bit-exact; LU 0 is a PDT 03h copy manager', async () => {
  const w = await world();
  try {
    const std = (await w.client.command(0, buildInquiry(96), { inLength: 96 })).data;
    assert.equal(std[0] & 0x1f, 0x03);
    assert.equal(std[5] & 0x08, 0x08, '3PC');
    assert.equal((await w.client.command(0, buildInquiry(255, 0x8f), { inLength: 255 })).data[1], 0x8f);
    const list = copyList(w, 1);
    const r = await w.client.command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true });
    assert.equal(r.status, 0, JSON.stringify(r.sense));
    for (const lu of w.target.luns.values()) await lu.close(); // flush
    assert.ok((await readFile(join(w.dir, 'a.img'))).equals(await readFile(join(w.dir, 'b.img'))));
  } finally {
    await w.close();
  }
});

for (const how of ['ABORT TASK', 'LUN RESET'] as const) {
  test(`${how} stops a running copy: the copy manager goes idle and the held status says so`, async () => {
    const w = await world();
    try {
      const list = copyList(w, 7);
      // TEST UNIT READY: take the power-on UA first, so the ITT below is the copy's
      await w.client.command(0, buildTestUnitReady());
      const itt = w.client.peekNextItt();
      let settled = false;
      const running = w.client
        .command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true })
        .finally(() => (settled = true));
      running.catch(() => undefined);
      // Wait until the copy is under way (COPY STATUS shows it in progress).
      for (;;) {
        const st = await w.client.command(0, buildReceiveCopyResults(0, 7, 12), {
          inLength: 12,
          allowCheckCondition: true,
        });
        if (st.status === 0 && decodeCopyStatus(st.data).status === CopyManagerStatus.IN_PROGRESS) break;
        assert.ok(!settled, 'the copy finished before it could be stopped: make it bigger');
        await new Promise((r) => setTimeout(r, 1));
      }
      const resp =
        how === 'ABORT TASK'
          ? await w.client.taskManagement(TmfFunction.ABORT_TASK, 0, itt)
          : await w.client.lunReset(0);
      assert.equal(resp, 0, 'function complete');
      for (let i = 0; i < 1000 && w.mover.lu.copyManager.activeCopies > 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(w.mover.lu.copyManager.activeCopies, 0, 'copy stopped');
      const st = await w.client.command(0, buildReceiveCopyResults(0, 7, 12), {
        inLength: 12,
        allowCheckCondition: true,
        unitAttentionRetries: 5,
      });
      if (how === 'LUN RESET') assert.equal(st.status, 0x02, 'held status dropped by the reset');
      else
        assert.equal(
          decodeCopyStatus(st.data).status,
          CopyManagerStatus.ERROR,
          'aborted copy is held as completed with an error',
        );
    } finally {
      await w.close();
    }
  });
}

test('CHAP from the mover config: with the secret the copy runs; without it the CSCD is unreachable', async () => {
  const chap = { user: 'mover', secret: 'a-very-long-secret' };
  const good = await world({ chap, moverChap: 'mover:a-very-long-secret' });
  try {
    assert.ok(good.mover.remote.known.length >= 2, 'both LUs discovered through CHAP');
    const list = copyList(good, 3);
    const r = await good.client.command(0, buildExtendedCopy(list.length), {
      dataOut: list,
      allowCheckCondition: true,
    });
    assert.equal(r.status, 0, JSON.stringify(r.sense));
  } finally {
    await good.close();
  }
  const bad = await world({ chap });
  try {
    assert.equal(bad.mover.remote.known.length, 0, 'nothing discovered without CHAP');
    const list = copyList(bad, 3);
    const r = await bad.client.command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true });
    assert.equal(r.status, 0x02);
    assert.deepEqual([r.sense?.key, r.sense?.asc, r.sense?.ascq], [0x0a, 0x08, 0x04]);
  } finally {
    await bad.close();
  }
});

test('mover config: portals as strings or objects, CHAP per portal or for all, errors name the field', () => {
  const c = resolveMoverConfig({
    listen: '0.0.0.0:3300',
    portals: ['10.0.0.5', { address: '10.0.0.9:3261', chap: { user: 'u', secret: 'twelve-chars!' } }],
    portalChap: 'all:another-long-secret',
  });
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 3300 });
  assert.deepEqual(c.portals, [
    { host: '10.0.0.5', port: 3260, chap: { user: 'all', secret: 'another-long-secret' }, mutualChap: undefined },
    { host: '10.0.0.9', port: 3261, chap: { user: 'u', secret: 'twelve-chars!' }, mutualChap: undefined },
  ]);
  assert.match(c.initiatorName, /^iqn\.2026-11\.dev\.ferry:mover-initiator$/);
  assert.throws(() => resolveMoverConfig({ portals: [{ address: 'x', chap: 'short:abc' }] }), /portals\.0\.chap/);
  assert.throws(() => resolveMoverConfig({ portal: ['x'] }), /Unrecognized key/);
  assert.equal(c.maxBytesPerSecond, undefined, 'no cap unless asked');
  assert.equal(resolveMoverConfig({ maxRate: '200M' }).maxBytesPerSecond, 200 * 2 ** 20);
  assert.equal(resolveMoverConfig({ maxRate: '1.5G/s' }).maxBytesPerSecond, 1.5 * 2 ** 30);
  assert.equal(resolveMoverConfig({ maxRate: 5_000_000 }).maxBytesPerSecond, 5_000_000);
  assert.throws(
    () => resolveMoverConfig({ maxRate: 'fast' }),
    /max rate "fast" is not a size: use a number with an optional K, M, G or T suffix/,
  );
  assert.throws(() => resolveMoverConfig({ maxRate: '0' }), /max rate "0" must be above 0 bytes per second/);
});

test('the source target restarts between two copies: the mover logs in again and copies', async () => {
  const w = await world();
  try {
    const list = copyList(w, 1);
    assert.equal(
      (await w.client.command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true })).status,
      0,
    );
    // Restart the portal (same port): every mover session to it dies.
    await w.server.close();
    const server2 = new TargetServer({ targets: [w.target] });
    await server2.listen('127.0.0.1', w.port);
    w.server = server2;
    const r = await w.client.command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true });
    assert.equal(r.status, 0, JSON.stringify(r.sense));
  } finally {
    await w.close();
  }
});
