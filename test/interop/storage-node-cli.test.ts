// The storage node as users run it: `ferry target --api` plus `ferry snapshot …`, with data
// written and read over iSCSI by our initiator, across a restart of the target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FERRY_BIN, spawnTarget } from '../helpers/ferry-cli.ts';
import { requireTools } from '../helpers/tools.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';

const IQN = 'iqn.2026-11.dev.ferry:node-cli';
const exec = promisify(execFile);

async function ferry(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(process.execPath, [FERRY_BIN, ...args], { encoding: 'utf8' });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

test(
  'ferry target --api with ferry snapshot create/ls/changed/rm, snapshot LUN read over iSCSI, survives a restart',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-node-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'node-cli-token-0123456789\n');
    const args = [
      '--iqn',
      IQN,
      '--disk',
      `${join(dir, 'disk0.img')}:8M`,
      '--api',
      '127.0.0.1:0',
      '--api-token-file',
      tokenFile,
    ];
    let tgt = await spawnTarget(args);
    try {
      let apiUrl = String(tgt.logs.find((l) => l.msg === 'target ready')!.api);
      const s = await InitiatorSession.login({
        host: '127.0.0.1',
        port: tgt.port,
        initiatorName: 'iqn.2026-11.dev.ferry:ws',
        targetName: IQN,
      });
      const disk = await RemoteBlockDevice.open(s, 0);
      const before = randomBytes(1 << 20);
      await disk.write(0, before);

      const created = await ferry(
        'snapshot',
        'create',
        '--api',
        apiUrl,
        '--token-file',
        tokenFile,
        '--lun',
        '0',
        '--quiet-period',
        '200ms',
        '--timeout',
        '10s',
        '--json',
      );
      assert.equal(created.code, 0, created.stderr);
      const snap = JSON.parse(created.stdout) as { id: string; lun: number; takenAt: string; waitedMs: number };
      assert.ok(
        snap.id && snap.lun > 0 && !Number.isNaN(Date.parse(snap.takenAt)) && snap.waitedMs >= 0,
        created.stdout,
      );

      const after = randomBytes(64 << 10);
      await disk.write(4096, after); // 64 KiB at byte 2 MiB: exactly one 64 KiB granule
      const snapDev = await RemoteBlockDevice.open(s, snap.lun);
      assert.ok(Buffer.from(await snapDev.read(0, 2048)).equals(before), 'snapshot holds the pre-snapshot data');
      assert.ok(
        Buffer.from(await snapDev.read(4096, 128)).equals(Buffer.alloc(64 << 10)),
        'later writes do not reach the snapshot',
      );

      const changed = await ferry(
        'snapshot',
        'changed',
        '--api',
        apiUrl,
        '--token-file',
        tokenFile,
        '--lun',
        '0',
        '--since',
        snap.id,
        '--json',
      );
      assert.equal(changed.code, 0, changed.stderr);
      const c = JSON.parse(changed.stdout) as {
        granularity: number;
        blockSize: number;
        extents: Array<[number, number]>;
      };
      assert.equal(c.granularity, 65536);
      assert.equal(c.blockSize, 512);
      assert.deepEqual(c.extents, [[4096, 128]]);
      await s.logout();

      // Restart: the snapshot and its LUN come back.
      await tgt.stop();
      tgt = await spawnTarget(args);
      apiUrl = String(tgt.logs.find((l) => l.msg === 'target ready')!.api);
      const ls = await ferry('snapshot', 'ls', '--api', apiUrl, '--token-file', tokenFile, '--json');
      assert.equal(ls.code, 0, ls.stderr);
      const listed = JSON.parse(ls.stdout) as Array<{ id: string; lun: number }>;
      assert.deepEqual(
        listed.map((x) => x.id),
        [snap.id],
      );
      const s2 = await InitiatorSession.login({
        host: '127.0.0.1',
        port: tgt.port,
        initiatorName: 'iqn.2026-11.dev.ferry:ws',
        targetName: IQN,
      });
      const again = await RemoteBlockDevice.open(s2, listed[0].lun);
      assert.ok(Buffer.from(await again.read(0, 2048)).equals(before));
      await s2.logout();

      const bad = await ferry('snapshot', 'ls', '--api', apiUrl, '--token-file', join(dir, 'missing'), '--json');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /token/i);

      const removed = await ferry('snapshot', 'rm', '--api', apiUrl, '--token-file', tokenFile, snap.id);
      assert.equal(removed.code, 0, removed.stderr);
    } finally {
      await tgt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('ferry target refuses bad options with a message that says what to fix', async () => {
  const noLun = await ferry('target', '--listen', '127.0.0.1:0');
  assert.equal(noLun.code, 2);
  assert.match(noLun.stderr, /no LUNs: give at least one --disk/);
  const badSize = await ferry('target', '--disk', '/tmp/x.img:lots');
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /not a size/);
  const badBs = await ferry('target', '--disk', '/tmp/x.img:1M', '--block-size', '1000');
  assert.notEqual(badBs.code, 0);
  assert.match(badBs.stderr, /block-size/);
  const badChap = await ferry('target', '--disk', '/tmp/x.img:1M', '--chap', 'user:short');
  assert.equal(badChap.code, 2);
  assert.match(badChap.stderr, /at least 12 characters/);
  const apiNoToken = await ferry('target', '--disk', '/tmp/x.img:1M', '--api', '127.0.0.1:0');
  assert.equal(apiNoToken.code, 2);
  assert.match(apiNoToken.stderr, /--api-token-file/);
  const help = await ferry('target', '--help');
  assert.match(help.stdout, /--disk <file\[:size\]>/);
  assert.match(help.stdout, /SIGINT\/SIGTERM/);
});

test(
  'ferry target --library/--tape serves a changer at LUN 0, drives next, then disks (seen by iscsi-ls)',
  { timeout: 60_000 },
  async (t) => {
    if (!requireTools(t, 'iscsi-ls')) return;
    const dir = await mkdtemp(join(tmpdir(), 'ferry-vtl-'));
    const tgt = await spawnTarget([
      '--iqn',
      IQN,
      '--library',
      join(dir, 'vtl'),
      '--drives',
      '2',
      '--slots',
      '5',
      '--cartridge-size',
      '64M',
      '--tape',
      join(dir, 'one.cart'),
      '--disk',
      `${join(dir, 'd.img')}:8M`,
    ]);
    try {
      const ls = (await exec('iscsi-ls', ['-s', `iscsi://127.0.0.1:${tgt.port}`], { encoding: 'utf8' })).stdout;
      assert.match(ls, /Lun:0\s+Type:MEDIA_CHANGER/);
      assert.match(ls, /Lun:1\s+Type:SEQUENTIAL_ACCESS/);
      assert.match(ls, /Lun:2\s+Type:SEQUENTIAL_ACCESS/);
      assert.match(ls, /Lun:3\s+Type:SEQUENTIAL_ACCESS/, 'the stand-alone drive');
      assert.match(ls, /Lun:4\s+Type:DIRECT_ACCESS/);
      const vtl = await ferry('vtl', 'ls', join(dir, 'vtl'), '--json');
      assert.equal(vtl.code, 0, vtl.stderr);
      assert.match(vtl.stdout, /FER001L8/);
    } finally {
      await tgt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'ferry target --metrics serves Prometheus metrics that count what an outside initiator did',
  { timeout: 60_000 },
  async (t) => {
    if (!requireTools(t, 'iscsi-ls')) return;
    const dir = await mkdtemp(join(tmpdir(), 'ferry-metrics-'));
    const tgt = await spawnTarget(['--iqn', IQN, '--disk', `${join(dir, 'd.img')}:8M`, '--metrics', '127.0.0.1:0']);
    try {
      const url = String((await tgt.waitForLog('metrics served')).metrics);
      await exec('iscsi-ls', ['-s', `iscsi://127.0.0.1:${tgt.port}`], { encoding: 'utf8' });
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const text = await res.text();
      const commands = Number(
        new RegExp(`^ferry_iscsi_commands_total\\{target="${IQN}"\\} (\\d+)$`, 'm').exec(text)?.[1],
      );
      assert.ok(commands > 0, `iscsi-ls sent SCSI commands: ${commands}`);
      assert.match(text, /^# TYPE ferry_lun_read_bytes_total counter$/m);
      assert.match(text, /^process_resident_memory_bytes \d+/m);
    } finally {
      await tgt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'ferry target --config FILE serves what the file says; a bad config names the field to fix',
  { timeout: 60_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cfg-'));
    try {
      const cfg = join(dir, 'target.json');
      await writeFile(
        cfg,
        JSON.stringify({
          listen: '127.0.0.1:0',
          iqn: IQN,
          blockSize: 4096,
          disks: [`${join(dir, 'a.img')}:8M`, { path: join(dir, 'b.img'), size: '4M' }],
          chap: { user: 'cfg-user', secret: 'config-file-secret' },
        }),
      );
      const tgt = await spawnTarget(['--config', cfg]);
      try {
        const chap = { user: 'cfg-user', secret: 'config-file-secret' };
        const s = await InitiatorSession.login({
          host: '127.0.0.1',
          port: tgt.port,
          initiatorName: 'iqn.2026-11.dev.ferry:cfg',
          targetName: IQN,
          chap,
        });
        const a = await RemoteBlockDevice.open(s, 0);
        const b = await RemoteBlockDevice.open(s, 1);
        assert.deepEqual([a.blockSize, a.blockCount, b.blockCount], [4096, 2048, 1024]);
        await s.logout();
      } finally {
        await tgt.stop();
      }
      await writeFile(cfg, JSON.stringify({ disks: ['x.img:1M'], blockSize: 1000, colour: 'blue' }));
      const bad = await ferry('target', '--config', cfg);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /blockSize/);
      assert.match(bad.stderr, /colour/);
      await writeFile(cfg, '{ not json');
      const notJson = await ferry('target', '--config', cfg);
      assert.equal(notJson.code, 2);
      assert.match(notJson.stderr, /not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
