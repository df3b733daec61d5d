import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { openLibrary, openStandaloneDrive, type OpenedLibrary } from '../storage-node/tape-library.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { ChangerClient } from './changer-client.ts';
import { DriveClient } from './drive-client.ts';
import { discoverLibrary } from './discovery.ts';
import { ChangerError, DiscoveryError, TapeDriveError } from './errors.ts';

// The media layer against a real in-process Ferry library over a real iSCSI session. The drives
// are mapped to LUNs in the reverse of their element order, so discovery must match by DVCID.

const IQN = 'iqn.2026-11.dev.ferry:media-test';
const INITIATOR = 'iqn.2026-11.dev.ferry:media-client';
const BLOCK = 262144;

interface Lib {
  lib: OpenedLibrary;
  session: InitiatorSession;
  close(): Promise<void>;
}

/** A library target: changer at LUN 0, then `map(drives)` as LUN 1, 2, … */
async function startLibrary(map: (drives: LogicalUnit[]) => LogicalUnit[] = (d) => [...d].reverse()): Promise<Lib> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-media-'));
  const lib = await openLibrary(join(dir, 'vtl'), { drives: 2, slots: 4, cartridgeSizeBytes: 64 << 20 });
  const target = new Target({ name: IQN });
  target.addLun(0, lib.changer);
  map(lib.drives).forEach((d, i) => target.addLun(i + 1, d));
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  const session = await InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: IQN });
  return {
    lib,
    session,
    async close() {
      await session.logout().catch(() => undefined);
      await server.close();
      await lib.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const pattern = (n: number, tag: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (tag * 31 + i * 7) & 0xff);

test('discovery finds the changer and both drives by DVCID, not by LUN order', async () => {
  const t = await startLibrary();
  try {
    const found = await discoverLibrary(t.session);
    assert.deepEqual(found.changer, { lun: 0 });
    assert.deepEqual(
      found.drives.map((d) => [d.elementAddress, d.lun]),
      [
        [0x100, 2],
        [0x101, 1],
      ],
    );
    for (const d of found.drives) {
      const lu = t.lib.drives[d.elementAddress - 0x100];
      assert.deepEqual([d.designator.designatorType, d.designator.association], [3, 0]);
      assert.deepEqual(d.designator.designator, Uint8Array.from(lu.spc.identity.naa));
    }
    assert.deepEqual(found.slots, [0x1000, 0x1001, 0x1002, 0x1003]);
    assert.deepEqual(found.ie, [0x10]);
  } finally {
    await t.close();
  }
});

test('changer: load by barcode, no-op reload, swap, unload; errors name the cartridge and element', async () => {
  const t = await startLibrary();
  try {
    const changer = await ChangerClient.open(t.session, 0);
    const drive2 = 0x101;
    await changer.load('FER002L8', drive2);
    let els = await changer.status();
    const inDrive = els.find((e) => e.address === drive2)!;
    const seen = [inDrive.type, inDrive.full, inDrive.barcode, inDrive.sourceAddress];
    assert.deepEqual(seen, ['drive', true, 'FER002L8', 0x1001]);
    assert.equal(els.find((e) => e.address === 0x1001)!.full, false);
    assert.ok(inDrive.designator, 'DVCID reported for the drive');

    await changer.load('FER002L8', drive2); // already there
    assert.equal((await changer.findCartridge('FER002L8'))!.address, drive2);

    await changer.load('FER003L8', drive2); // swap: FER002L8 goes home first
    els = await changer.status();
    assert.equal(els.find((e) => e.address === drive2)!.barcode, 'FER003L8');
    assert.equal(els.find((e) => e.address === 0x1001)!.barcode, 'FER002L8');
    assert.equal(els.find((e) => e.address === 0x1002)!.full, false);

    // A short first allocation: the client re-issues with the length the header reports.
    const small = await ChangerClient.open(t.session, 0, { allocationLength: 40 });
    assert.deepEqual(await small.status(), els);

    await changer.unload(drive2);
    assert.equal((await changer.findCartridge('FER003L8'))!.address, 0x1002);
    await changer.unload(drive2); // empty: nothing to do

    await assert.rejects(changer.load('FER009L8', drive2), (e: ChangerError) => {
      assert.equal(e.code, 'ERR_CARTRIDGE_NOT_FOUND');
      assert.match(e.message, /cartridge FER009L8 is not in library iqn\.2026-11\.dev\.ferry:media-test: /);
      assert.match(e.message, /check `ferry cartridges`$/);
      return true;
    });
    const notDrive = { code: 'ERR_NOT_A_DRIVE', message: /element 0x1003 is not a drive.*0x0100, 0x0101/ };
    await assert.rejects(changer.load('FER001L8', 0x1003), notDrive);
    await assert.rejects(changer.moveMedium(0x1000, 0x1001), { code: 'ERR_ELEMENT_FULL', message: /0x1001 is full/ });
    await assert.rejects(changer.moveMedium(0x0100, 0x1002), { code: 'ERR_ELEMENT_EMPTY' });
    await assert.rejects(ChangerClient.open(t.session, 1), { code: 'ERR_NOT_A_CHANGER' });
  } finally {
    await t.close();
  }
});

test('drive: ready after a load, 256 KiB blocks via drive.device, position/locate, capacity, unload', async () => {
  const t = await startLibrary();
  try {
    const found = await discoverLibrary(t.session);
    const changer = await ChangerClient.open(t.session, found.changer.lun);
    const d2 = found.drives.find((d) => d.elementAddress === 0x101)!;
    const drive = await DriveClient.open(t.session, d2.lun);
    const noMedium = { code: 'ERR_DRIVE_NO_MEDIUM', message: new RegExp(`drive LUN ${d2.lun} .* has no cartridge`) };
    await assert.rejects(drive.ready(), noMedium);

    await changer.load('FER001L8', d2.elementAddress);
    await drive.ready(); // swallows 28/00 NOT READY TO READY CHANGE
    assert.equal(await drive.writeProtected(), false);
    assert.deepEqual(await drive.designator(), d2.designator);

    await drive.setFixedBlock(BLOCK);
    assert.equal(drive.device.blockLength, BLOCK);
    const blocks = [0, 1, 2, 3, 4].map((i) => pattern(BLOCK, i));
    const two = new Uint8Array(2 * BLOCK);
    two.set(blocks[0]);
    two.set(blocks[1], BLOCK);
    assert.deepEqual(await drive.device.write(two), { earlyWarning: false });
    for (const b of blocks.slice(2)) await drive.device.write(b);
    assert.deepEqual(await drive.position(), { blockId: 5, bop: false, eop: false, bpew: false });

    await drive.rewind();
    assert.deepEqual(await drive.position(), { blockId: 0, bop: true, eop: false, bpew: false });
    let r = await drive.readBlocks(2);
    assert.equal(r.kind, 'data');
    assert.deepEqual(r.data, two);

    await drive.locate(3);
    assert.equal((await drive.position()).blockId, 3);
    const into = new Uint8Array(3 * BLOCK);
    r = await drive.readBlocks(1, into);
    assert.deepEqual([r.kind, r.data.length], ['data', BLOCK]);
    assert.deepEqual(into.subarray(0, BLOCK), blocks[3]);
    assert.equal(r.data.buffer, into.buffer, 'read straight into the caller buffer');
    assert.equal((await drive.position()).blockId, 4);
    r = await drive.readBlocks(3, into); // one block left, then end of data
    assert.deepEqual([r.kind, r.data.length], ['data', BLOCK]);
    assert.deepEqual(into.subarray(0, BLOCK), blocks[4]);
    assert.equal((await drive.readBlocks(1)).kind, 'eod');
    await assert.rejects(drive.locate(50), { code: 'ERR_LOCATE_PAST_EOD' });
    await drive.rewind();
    await drive.spaceEod();
    assert.equal((await drive.position()).blockId, 5);

    const left = await drive.remainingCapacityBytes();
    assert.equal(typeof left, 'number');
    assert.ok(left! > 0 && left! <= (64 << 20) - 5 * BLOCK, `remaining ${left}`);
    assert.equal(left! % (1 << 20), 0, 'whole MiB');

    await drive.unload();
    await changer.unload(d2.elementAddress);
    assert.equal((await changer.findCartridge('FER001L8'))!.address, 0x1000);
    await assert.rejects(drive.ready(), { code: 'ERR_DRIVE_NO_MEDIUM' });
    await drive.unload(); // no medium: nothing to do
    await assert.rejects(drive.setFixedBlock(1.5), TapeDriveError);
    await assert.rejects(DriveClient.open(t.session, found.changer.lun), { code: 'ERR_NOT_A_DRIVE' });
  } finally {
    await t.close();
  }
});

test('drive: writeProtected reflects a write-protected cartridge', async () => {
  const t = await startLibrary();
  try {
    // Cartridge files are created on first load; make FER004L8's write-protected first.
    const inv = t.lib.inventory;
    const opts = { barcode: 'FER004L8', capacityBytes: 64 << 20, writeProtected: true };
    const c = await Cartridge.create(inv.cartridgePath('FER004L8'), opts);
    await c.close();
    const found = await discoverLibrary(t.session);
    const changer = await ChangerClient.open(t.session, found.changer.lun);
    const d1 = found.drives.find((d) => d.elementAddress === 0x100)!;
    await changer.load('FER004L8', d1.elementAddress);
    const drive = await DriveClient.open(t.session, d1.lun);
    await drive.ready();
    assert.equal(await drive.writeProtected(), true);
    await changer.load('FER003L8', d1.elementAddress); // swap the protected one out
    await drive.ready();
    assert.equal(await drive.writeProtected(), false);
    assert.equal((await changer.findCartridge('FER004L8'))!.address, 0x1003);
  } finally {
    await t.close();
  }
});

test('discovery: no changer, and a drive element whose LUN is not mapped, are clear errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-media-nochanger-'));
  const lone = await openStandaloneDrive(join(dir, 'one.cart'), { createSizeBytes: 8 << 20 });
  const target = new Target({ name: IQN });
  target.addLun(0, lone);
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  const s = await InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: IQN });
  try {
    await assert.rejects(discoverLibrary(s), (e: DiscoveryError) => {
      assert.equal(e.code, 'ERR_NO_CHANGER');
      assert.match(e.message, /has no medium changer \(it reports LUNs 0\)/);
      return true;
    });
  } finally {
    await s.logout().catch(() => undefined);
    await server.close();
    await lone.close();
    await rm(dir, { recursive: true, force: true });
  }

  const t = await startLibrary((d) => [d[1]]); // drive 0 (element 0x100) is not mapped
  try {
    await assert.rejects(discoverLibrary(t.session), (e: DiscoveryError) => {
      assert.equal(e.code, 'ERR_DRIVE_UNMATCHED');
      assert.match(e.message, /drive element 0x0100 .* has device identifier "FERRY {3}VIRTUAL-TAPE {4}[0-9a-f]{24}"/);
      assert.match(e.message, /which no tape LUN .* reports: map that drive's LUN to this target$/);
      return true;
    });
  } finally {
    await t.close();
  }
});
