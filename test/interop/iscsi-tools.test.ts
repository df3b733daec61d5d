// Interop: libiscsi's iscsi-ls / iscsi-inq and qemu-img against a Ferry target;
// our initiator against tgtd; our initiator with digests and CHAP against our target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestTarget, TEST_IQN } from '../helpers/target.ts';
import { requireTools } from '../helpers/tools.ts';
import { startTgtd } from '../helpers/tgtd.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { buildInquiry } from '../../src/scsi/cdb/spc.ts';

const INITIATOR = 'iqn.2026-11.dev.ferry:interop';
// The target runs in this process: outside tools must run asynchronously.
const run = async (cmd: string, args: string[]): Promise<string> =>
  (await promisify(execFile)(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 })).stdout;

test('iscsi-ls discovers the target and its LUN; iscsi-inq reads standard and VPD data', async (t) => {
  if (!requireTools(t, 'iscsi-ls', 'iscsi-inq')) return;
  const tgt = await startTestTarget({ disks: [64 << 20, 32 << 20] });
  try {
    const ls = await run('iscsi-ls', ['-s', `iscsi://${tgt.host}:${tgt.port}`]);
    assert.match(ls, new RegExp(`Target:${TEST_IQN} Portal:127\\.0\\.0\\.1:${tgt.port},1`));
    // iscsi-ls prints lastLBA×blockSize, as it does for tgtd
    assert.match(ls, /Lun:0\s+Type:DIRECT_ACCESS \(Size:63M\)/);
    assert.match(ls, /Lun:1\s+Type:DIRECT_ACCESS \(Size:31M\)/);
    const inq = await run('iscsi-inq', [tgt.url(0)]);
    assert.match(inq, /Vendor:FERRY/);
    assert.match(inq, /Version:6/);
    const vpd83 = await run('iscsi-inq', ['-e', '1', '-c', '131', tgt.url(0)]);
    assert.match(vpd83, /NAA/i);
  } finally {
    await tgt.close();
  }
});

test('qemu-img convert copies a 64 MiB random image into a LUN and back out bit-exact', async (t) => {
  if (!requireTools(t, 'qemu-img')) return;
  const tgt = await startTestTarget({ disks: [64 << 20] });
  const dir = await mkdtemp(join(tmpdir(), 'ferry-qemu-'));
  try {
    const src = join(dir, 'src.raw');
    const back = join(dir, 'back.raw');
    const data = randomBytes(64 << 20);
    await writeFile(src, data);
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, tgt.url(0)]);
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', tgt.url(0), back]);
    const got = await readFile(back);
    assert.equal(got.length, data.length);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'));
    // The LUN file itself holds the bytes (nothing cached only in memory).
    const onDisk = await readFile(join(tgt.dir, 'disk0.img'));
    assert.ok(onDisk.equals(data));
  } finally {
    await tgt.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('our initiator reads and writes a tgtd disk LUN bit-exact', async (t) => {
  if (!requireTools(t, 'tgtd', 'tgtadm')) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tgtd-'));
  const file = join(dir, 'tgtd.img');
  await writeFile(file, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '32M', file]);
  const tgtd = await startTgtd();
  try {
    tgtd.addLun(1, file);
    const disc = await InitiatorSession.login({ host: '127.0.0.1', port: tgtd.port, initiatorName: INITIATOR });
    const targets = await disc.sendTargets();
    await disc.logout();
    assert.deepEqual(
      targets.map((x) => x.name),
      [tgtd.iqn],
    );
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port: tgtd.port,
      initiatorName: INITIATOR,
      targetName: tgtd.iqn,
    });
    const dev = await RemoteBlockDevice.open(s, 1);
    assert.equal(dev.blockCount * dev.blockSize, 32 << 20);
    const data = randomBytes(8 << 20);
    await dev.write(1000, data);
    await dev.flush();
    const back = await dev.read(1000, data.length / dev.blockSize);
    assert.ok(Buffer.from(back).equals(data));
    await s.logout();
    const onDisk = await readFile(file);
    assert.ok(onDisk.subarray(1000 * 512, 1000 * 512 + data.length).equals(data));
  } finally {
    await tgtd.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('header and data digests (CRC32C) negotiated with our initiator carry data intact', async () => {
  const tgt = await startTestTarget({ disks: [16 << 20] });
  try {
    const s = await InitiatorSession.login({
      host: tgt.host,
      port: tgt.port,
      initiatorName: INITIATOR,
      targetName: TEST_IQN,
      headerDigest: true,
      dataDigest: true,
    });
    assert.equal(s.params.headerDigest, true);
    assert.equal(s.params.dataDigest, true);
    const dev = await RemoteBlockDevice.open(s, 0);
    const data = randomBytes(3 << 20);
    await dev.write(7, data);
    assert.ok(Buffer.from(await dev.read(7, data.length / 512)).equals(data));
    const inq = await s.command(0, buildInquiry(96), { inLength: 96 });
    assert.equal(Buffer.from(inq.data.subarray(8, 13)).toString(), 'FERRY');
    await s.logout();
  } finally {
    await tgt.close();
  }
});

test(
  'CHAP one-way and mutual: right secrets log in, wrong ones are refused with a clear error; ACL refuses unknown ' +
    'initiators',
  async () => {
    const chap = { user: 'backup', secret: 'a-long-chap-secret' };
    const mutualChap = { user: 'ferry-target', secret: 'target-side-secret' };
    const tgt = await startTestTarget({ disks: [1 << 20], chap, mutualChap, allowed: [INITIATOR] });
    try {
      const ok = await InitiatorSession.login({
        host: tgt.host,
        port: tgt.port,
        initiatorName: INITIATOR,
        targetName: TEST_IQN,
        chap,
      });
      await ok.logout();
      const mutual = await InitiatorSession.login({
        host: tgt.host,
        port: tgt.port,
        initiatorName: INITIATOR,
        targetName: TEST_IQN,
        chap,
        mutualChap,
      });
      await mutual.logout();
      await assert.rejects(
        InitiatorSession.login({
          host: tgt.host,
          port: tgt.port,
          initiatorName: INITIATOR,
          targetName: TEST_IQN,
          chap: { user: 'backup', secret: 'wrong-secret-xxxx' },
        }),
        /authentication failure/,
      );
      await assert.rejects(
        InitiatorSession.login({
          host: tgt.host,
          port: tgt.port,
          initiatorName: INITIATOR,
          targetName: TEST_IQN,
          chap,
          mutualChap: { user: 'ferry-target', secret: 'not-the-target-secret' },
        }),
        /mutual CHAP/,
      );
      await assert.rejects(
        InitiatorSession.login({ host: tgt.host, port: tgt.port, initiatorName: INITIATOR, targetName: TEST_IQN }),
        /authentication failure/,
      );
      await assert.rejects(
        InitiatorSession.login({
          host: tgt.host,
          port: tgt.port,
          initiatorName: 'iqn.2026-11.dev.ferry:stranger',
          targetName: TEST_IQN,
          chap,
        }),
        /authorization failure/,
      );
    } finally {
      await tgt.close();
    }
  },
);
