import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { openStandaloneDrive } from '../storage-node/tape-library.ts';
import { InitiatorSession } from './session.ts';
import { RemoteTapeDevice } from './remote-tape-device.ts';

// The stream seam over iSCSI against a Ferry tape drive: records, filemarks, end of data,
// records shorter and longer than asked (SILI=0), space, locate, position.

test(
  'RemoteTapeDevice: write, filemark, read exact/short/long records, filemark, end of data, space, ' + 'locate',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-remote-tape-'));
    const iqn = 'iqn.2026-11.dev.ferry:remote-tape-test';
    const drive = await openStandaloneDrive(join(dir, 't.cart'), { createSizeBytes: 16 << 20 });
    const target = new Target({ name: iqn });
    target.addLun(0, drive);
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port,
      initiatorName: 'iqn.2026-11.dev.ferry:rt',
      targetName: iqn,
    });
    try {
      const tape = await RemoteTapeDevice.open(s, 0);
      assert.equal(tape.blockLength, 0, 'variable mode');
      const rec = (n: number, v: number) => new Uint8Array(n).fill(v);
      for (const [n, v] of [
        [1000, 1],
        [2000, 2],
        [500, 3],
      ] as const)
        assert.deepEqual(await tape.write(rec(n, v)), { earlyWarning: false });
      await tape.writeFilemarks(1);
      await tape.write(rec(100, 4));
      await tape.rewind();
      const buf = new Uint8Array(4096);
      assert.deepEqual(await tape.read(buf.subarray(0, 1000)), { kind: 'data', bytes: 1000, recordLength: 1000 });
      assert.equal(buf[999], 1);
      const short = await tape.read(buf.subarray(0, 2500)); // the 2000-byte record, asked for 2500
      assert.deepEqual(short, { kind: 'data', bytes: 2000, recordLength: 2000 });
      const long = await tape.read(buf.subarray(0, 200)); // the 500-byte record, asked for 200
      assert.equal(long.kind, 'data');
      assert.equal(long.kind === 'data' && long.recordLength, 500);
      assert.deepEqual(await tape.read(buf), { kind: 'filemark' });
      assert.deepEqual(await tape.read(buf.subarray(0, 100)), { kind: 'data', bytes: 100, recordLength: 100 });
      assert.deepEqual(await tape.read(buf), { kind: 'eod' });
      await tape.locate(1);
      assert.equal((await tape.position()).blockId, 1);
      await tape.space('blocks', 1);
      assert.deepEqual(await tape.read(buf.subarray(0, 500)), { kind: 'data', bytes: 500, recordLength: 500 });
    } finally {
      await s.logout().catch(() => undefined);
      await server.close();
      await drive.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'RemoteTapeDevice: past early warning, records and filemarks are written and reported as a warning, not an ' +
    'error',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-remote-tape-'));
    const iqn = 'iqn.2026-11.dev.ferry:remote-tape-ew';
    // 1 MiB cartridge: early warning 64 KiB before the end.
    const drive = await openStandaloneDrive(join(dir, 't.cart'), { createSizeBytes: 1 << 20 });
    const target = new Target({ name: iqn });
    target.addLun(0, drive);
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port,
      initiatorName: 'iqn.2026-11.dev.ferry:rt',
      targetName: iqn,
    });
    try {
      const tape = await RemoteTapeDevice.open(s, 0);
      const rec = new Uint8Array(32 * 1024);
      let warned = false;
      for (let i = 0; i < 31 && !warned; i++) warned = (await tape.write(rec)).earlyWarning;
      assert.equal(warned, true, 'reached early warning');
      await tape.writeFilemarks(1); // SSC-3 4.2.5: NO SENSE, EOM — written
      await tape.rewind();
      await tape.space('filemarks', 1);
      assert.deepEqual(await tape.read(rec), { kind: 'eod' }, 'the filemark is on tape');
    } finally {
      await s.logout().catch(() => undefined);
      await server.close();
      await drive.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
