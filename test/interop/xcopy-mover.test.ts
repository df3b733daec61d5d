import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../../src/iscsi-target/target.ts';
import { TargetServer } from '../../src/iscsi-target/server.ts';
import { closeDiskLu, openDiskLu, startStorageNode } from '../../src/storage-node/storage-node.ts';
import { resolveTargetConfig } from '../../src/storage-node/config.ts';
import pino from 'pino';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { startMover } from '../../src/mover/mover.ts';
import type { TestContext } from 'node:test';
import { resolveMoverConfig } from '../../src/mover/config.ts';
import { decodeDeviceIdentificationPage } from '../../src/scsi/device-identification.ts';
import { encodeXcopyParameterList, type CscdInput, type SegmentInput } from '../../src/xcopy/descriptors.ts';
import type { Designator } from '../../src/xcopy/copy-target.ts';
import { requireTools } from '../helpers/tools.ts';
import { startTgtd } from '../helpers/tgtd.ts';
import { startFerryTape, TAPE_IQN } from './tape-script.ts';
import { CopyManagerStatus, decodeCopyStatus } from '../../src/xcopy/copy-results.ts';
import { buildExtendedCopy, buildInquiry, buildReceiveCopyResults } from '../../src/scsi/cdb/spc.ts';
import { buildRewind } from '../../src/scsi/cdb/ssc.ts';
import { buildSynchronizeCache10 } from '../../src/scsi/cdb/sbc.ts';

// The product's promise, end to end: an initiator sends ONE EXTENDED COPY to a copy manager
// (`ferry mover`, or the one inside the source disk LU), which copies a random disk LUN on a
// Ferry target to a tape LUN (tgtd's or Ferry's; embedded header first), then a second one
// restores the tape to a fresh LUN. Bit-exact, and the issuing initiator's sockets carry less
// than 0.1% of the bytes moved.

const MIB = Number(process.env.XCOPY_TEST_MIB ?? 256);
const BLOCK = 512;
const RECORD = 256 * 1024; // tape record (STDL, variable mode)
const SEG_BLOCKS = 32768; // 16 MiB per segment
const SRC_IQN = 'iqn.2026-11.dev.ferry:xcopy-src';
const INITIATOR = 'iqn.2026-11.dev.ferry:backup-server';

function naaOf(vpd83: Uint8Array): Designator {
  const d = decodeDeviceIdentificationPage(vpd83).filter((x) => x.designatorType === 3 && x.association === 0);
  assert.ok(d.length >= 1, 'an NAA designator with LU association');
  return d[0];
}

const cscd = (d: Designator, pdt: number, blockLength: number): CscdInput => ({
  ...d,
  peripheralDeviceType: pdt,
  pad: false,
  fixed: false,
  blockLength,
});

async function sameFiles(a: string, b: string, bytes: number): Promise<void> {
  const fa = await open(a);
  const fb = await open(b);
  try {
    const ba = Buffer.alloc(4 << 20);
    const bb = Buffer.alloc(4 << 20);
    for (let off = 0; off < bytes; off += ba.length) {
      await fa.read(ba, 0, ba.length, off);
      await fb.read(bb, 0, bb.length, off);
      assert.ok(ba.equals(bb), `files differ in the 4 MiB at ${off}`);
    }
  } finally {
    await fa.close();
    await fb.close();
  }
}

interface TapeEnd {
  host: string;
  port: number;
  iqn: string;
  lun: number;
}

async function roundTrip(
  t: TestContext,
  opts: {
    mib: number;
    tape: TapeEnd;
    copyManager: 'mover' | 'source';
    dir: string;
    cleanup: Array<() => Promise<unknown>>;
  },
): Promise<void> {
  const { dir, cleanup, tape: tapeEnd } = opts;
  const BYTES = opts.mib << 20;
  // Source disk: random bytes in a file, served by a Ferry target with a fresh LUN 1.
  const srcPath = join(dir, 'src.img');
  const dstPath = join(dir, 'dst.img');
  const fh = await open(srcPath, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < BYTES; off += chunk.length) await fh.write(randomFillSync(chunk), 0, chunk.length, off);
  await fh.close();
  let srcAddr: { port: number };
  if (opts.copyManager === 'source') {
    // The copy managers inside the storage node's LUs reach the tape through --copy-portal.
    const cfg = resolveTargetConfig({
      listen: '127.0.0.1:0',
      iqn: SRC_IQN,
      disks: [srcPath, `${dstPath}:${BYTES}`],
      lunDir: join(dir, 'luns'),
      copyPortals: [`${tapeEnd.host}:${tapeEnd.port}`],
      logLevel: 'silent',
    });
    const node = await startStorageNode(cfg, pino({ level: 'silent' }));
    cleanup.push(() => node.close());
    srcAddr = node.address;
  } else {
    const src = new Target({ name: SRC_IQN });
    src.addLun(0, await openDiskLu(SRC_IQN, srcPath, BLOCK));
    src.addLun(1, await openDiskLu(SRC_IQN, dstPath, BLOCK, BYTES));
    const srcServer = new TargetServer({ targets: [src] });
    srcAddr = await srcServer.listen('127.0.0.1', 0);
    cleanup.push(async () => {
      await srcServer.close();
      for (const lu of src.luns.values()) await closeDiskLu(lu);
    });
  }

  // The backup server: learns designators (INQUIRY only), positions the tape, sends the lists.
  const toSrc = await InitiatorSession.login({
    host: '127.0.0.1',
    port: srcAddr.port,
    initiatorName: INITIATOR,
    targetName: SRC_IQN,
  });
  const toTape = await InitiatorSession.login({
    host: tapeEnd.host,
    port: tapeEnd.port,
    initiatorName: INITIATOR,
    targetName: tapeEnd.iqn,
  });
  cleanup.push(() => Promise.all([toSrc, toTape].map((s) => s.logout().catch(() => undefined))));
  let send: (which: 'backup' | 'restore', list: Uint8Array) => ReturnType<InitiatorSession['command']>;
  const sessions = [toSrc, toTape];
  if (opts.copyManager === 'mover') {
    // The mover reaches both targets through its configured portals only.
    const mover = await startMover(
      resolveMoverConfig({
        listen: '127.0.0.1:0',
        iqn: 'iqn.2026-11.dev.ferry:mover',
        portals: [`127.0.0.1:${srcAddr.port}`, `${tapeEnd.host}:${tapeEnd.port}`],
        logLevel: 'silent',
      }),
    );
    cleanup.push(() => mover.close());
    const toMover = await InitiatorSession.login({
      host: '127.0.0.1',
      port: mover.address.port,
      initiatorName: INITIATOR,
      targetName: 'iqn.2026-11.dev.ferry:mover',
    });
    cleanup.push(() => toMover.logout().catch(() => undefined));
    sessions.push(toMover);
    send = (_w, list) =>
      toMover.command(0, buildExtendedCopy(list.length), { dataOut: list, allowCheckCondition: true });
  } else {
    // EXTENDED COPY to the source LU for the backup, to the destination LU for the restore.
    send = (w, list) =>
      toSrc.command(w === 'backup' ? 0 : 1, buildExtendedCopy(list.length), {
        dataOut: list,
        allowCheckCondition: true,
      });
  }
  const srcDisk = naaOf((await toSrc.command(0, buildInquiry(255, 0x83), { inLength: 255 })).data);
  const dstDisk = naaOf((await toSrc.command(1, buildInquiry(255, 0x83), { inLength: 255 })).data);
  const tape = naaOf((await toTape.command(tapeEnd.lun, buildInquiry(255, 0x83), { inLength: 255 })).data);
  await toTape.command(tapeEnd.lun, buildRewind());

  const header = Buffer.from(
    `FERRY-SET 1 source=${Buffer.from(srcDisk.designator).toString('hex')} blocks=${BYTES / BLOCK}`.padEnd(128, ' '),
  );
  const segs = BYTES / BLOCK / SEG_BLOCKS;
  const backup: SegmentInput[] = [
    { type: 0x05, cat: false, destination: 1, streamTransferLength: header.length, data: header },
    ...Array.from({ length: segs }, (_, i): SegmentInput => ({
      type: 0x00,
      cat: false,
      source: 0,
      destination: 1,
      streamTransferLength: RECORD,
      blockCount: SEG_BLOCKS,
      lba: i * SEG_BLOCKS,
    })),
    { type: 0x10, cat: false, destination: 1, immed: false, count: 1 },
  ];
  const list1 = encodeXcopyParameterList({
    header: { listId: 1, str: false, listIdUsage: 0, priority: 0 },
    cscds: [cscd(srcDisk, 0, BLOCK), cscd(tape, 1, 0)],
    segments: backup,
  });
  const r1 = await send('backup', list1);
  assert.equal(r1.status, 0, `backup XCOPY: ${JSON.stringify(r1.sense)}`);
  if (opts.copyManager === 'mover') {
    const st = await sessions[2].command(0, buildReceiveCopyResults(0, 1, 12), { inLength: 12 });
    const copyStatus = decodeCopyStatus(st.data);
    assert.equal(copyStatus.status, CopyManagerStatus.GOOD, 'COPY STATUS: completed');
    assert.equal(copyStatus.segmentsProcessed, backup.length);
  }

  // Restore: rewind, skip the header record, stream → block into the fresh LUN.
  await toTape.command(tapeEnd.lun, buildRewind());
  const restore: SegmentInput[] = [
    { type: 0x06, cat: false, source: 0, streamTransferLength: header.length, byteCount: header.length },
    ...Array.from({ length: segs }, (_, i): SegmentInput => ({
      type: 0x01,
      cat: false,
      source: 0,
      destination: 1,
      streamTransferLength: RECORD,
      blockCount: SEG_BLOCKS,
      lba: i * SEG_BLOCKS,
    })),
  ];
  const list2 = encodeXcopyParameterList({
    header: { listId: 2, str: false, listIdUsage: 0, priority: 0 },
    cscds: [cscd(tape, 1, 0), cscd(dstDisk, 0, BLOCK)],
    segments: restore,
  });
  const r2 = await send('restore', list2);
  assert.equal(r2.status, 0, `restore XCOPY: ${JSON.stringify(r2.sense)}`);

  // No data through the server: every byte on the issuing initiator's sockets, both ways.
  const onWire = sessions.reduce((n, s) => n + s.bytesOnWire.sent + s.bytesOnWire.received, 0);
  const moved = 2 * BYTES;
  t.diagnostic(`initiator sockets: ${onWire} bytes for ${moved} bytes moved (${((100 * onWire) / moved).toFixed(4)}%)`);
  assert.ok(onWire < moved * 0.001, `${onWire} bytes on the initiator's sockets is not < 0.1% of ${moved}`);

  await toSrc.command(1, buildSynchronizeCache10());
  await sameFiles(srcPath, dstPath, BYTES);
}

async function withTgtdTape(
  t: TestContext,
  mib: number,
  run: (tape: TapeEnd, dir: string, cleanup: Array<() => Promise<unknown>>) => Promise<void>,
): Promise<void> {
  if (!requireTools(t, 'tgtd', 'tgtadm', 'tgtimg')) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-'));
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const tgtd = await startTgtd('iqn.2026-11.dev.ferry:xcopy-tape');
    cleanup.push(() => tgtd.stop());
    const tapeImg = join(dir, 'tape.img');
    execFileSync(
      'tgtimg',
      [
        '--op',
        'new',
        '--device-type',
        'tape',
        '--barcode',
        'XCOPY1',
        '--size',
        String(mib + 64),
        '--type',
        'data',
        '--file',
        tapeImg,
      ],
      { stdio: 'pipe' },
    );
    tgtd.addLun(1, tapeImg, { deviceType: 'tape' });
    await run({ host: '127.0.0.1', port: tgtd.port, iqn: tgtd.iqn, lun: 1 }, dir, cleanup);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

test(
  `ferry mover: ${MIB} MiB Ferry disk → tgtd tape → fresh disk, bit-exact, no data through the ` + `initiator`,
  async (t) => {
    await withTgtdTape(t, MIB, (tape, dir, cleanup) =>
      roundTrip(t, { mib: MIB, tape, copyManager: 'mover', dir, cleanup }),
    );
  },
);

test('copy manager inside the source target (no separate mover): Ferry disk → tgtd tape → fresh disk', async (t) => {
  const mib = Math.min(MIB, 64);
  await withTgtdTape(t, mib, (tape, dir, cleanup) => roundTrip(t, { mib, tape, copyManager: 'source', dir, cleanup }));
});

test('ferry mover between two Ferry targets: disk → Ferry tape → fresh disk', async (t) => {
  const mib = Math.min(MIB, 64);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-ft-'));
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const ft = await startFerryTape({ cartridgeBytes: (mib + 16) << 20 });
    cleanup.push(() => ft.close());
    await roundTrip(t, {
      mib,
      tape: { host: ft.host, port: ft.port, iqn: TAPE_IQN, lun: 0 },
      copyManager: 'mover',
      dir,
      cleanup,
    });
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});
