// Durability: what the target acknowledged with FUA, or before SYNCHRONIZE CACHE returned,
// survives a crash. Two views: a SIGKILLed `ferry target` process (nothing held back in
// user space), and a simulated power loss under a disk whose volatile cache only a flush
// makes durable (proves the target flushes before GOOD; this test can fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTarget } from '../helpers/ferry-cli.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { MemoryDevice } from '../../src/block/memory-device.ts';
import type { BlockDevice } from '../../src/block/block-device.ts';
import { DiskLu } from '../../src/scsi/disk-lu.ts';
import { luIdentity } from '../../src/scsi/identity.ts';
import { Target } from '../../src/iscsi-target/target.ts';
import { TargetServer } from '../../src/iscsi-target/server.ts';
import { buildSynchronizeCache10, buildWrite16 } from '../../src/scsi/cdb/sbc.ts';

const IQN = 'iqn.2026-11.dev.ferry:crash';
const INITIATOR = 'iqn.2026-11.dev.ferry:crash-client';

test('SIGKILL of ferry target after FUA writes and SYNCHRONIZE CACHE loses nothing', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-crash-'));
  const img = join(dir, 'disk.img');
  const tgt = await spawnTarget(['--iqn', IQN, '--disk', `${img}:16M`]);
  try {
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port: tgt.port,
      initiatorName: INITIATOR,
      targetName: IQN,
    });
    const fua = randomBytes(1 << 20);
    await s.command(0, buildWrite16(100, fua.length / 512, { fua: true }), { dataOut: fua });
    const plain = randomBytes(512 << 10);
    await s.command(0, buildWrite16(10_000, plain.length / 512), { dataOut: plain });
    await s.command(0, buildSynchronizeCache10());
    const killed = await tgt.stop('SIGKILL');
    assert.equal(killed, null, 'killed by signal, no clean shutdown');
    s.close();
    const onDisk = await readFile(img);
    assert.ok(onDisk.subarray(100 * 512, 100 * 512 + fua.length).equals(fua), 'FUA write is on disk');
    assert.ok(
      onDisk.subarray(10_000 * 512, 10_000 * 512 + plain.length).equals(plain),
      'write before SYNCHRONIZE CACHE is on disk',
    );
  } finally {
    await tgt.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

/** A disk with a volatile write cache: writes land in `cache`; only flush() reaches `media`. */
class VolatileCacheDevice implements BlockDevice {
  readonly blockSize = 512;
  readonly blockCount: number;
  readonly readOnly = false;
  readonly media: MemoryDevice;
  private cache = new Map<number, Uint8Array>();

  constructor(blocks: number) {
    this.blockCount = blocks;
    this.media = new MemoryDevice(512, blocks);
  }
  async read(lba: number, n: number): Promise<Uint8Array> {
    const out = await this.media.read(lba, n);
    for (let i = 0; i < n; i++) {
      const c = this.cache.get(lba + i);
      if (c) out.set(c, i * 512);
    }
    return out;
  }
  async readInto(lba: number, target: Uint8Array): Promise<void> {
    target.set(await this.read(lba, target.length / 512));
  }
  async write(lba: number, data: Uint8Array): Promise<void> {
    for (let i = 0; i < data.length / 512; i++) this.cache.set(lba + i, data.slice(i * 512, (i + 1) * 512));
  }
  async flush(): Promise<void> {
    for (const [lba, b] of this.cache) await this.media.write(lba, b);
    this.cache.clear();
  }
  /** Power loss: the cache is gone. */
  crash(): void {
    this.cache.clear();
  }
  async close(): Promise<void> {}
}

test('a simulated power loss keeps FUA and synced writes and loses only unsynced ones', async () => {
  const dev = new VolatileCacheDevice(8192);
  const target = new Target({ name: IQN });
  target.addLun(0, new DiskLu(dev, { identity: luIdentity('crash-test') }));
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const s = await InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: IQN });
    const fua = randomBytes(64 << 10);
    const unsynced = randomBytes(64 << 10);
    const synced = randomBytes(64 << 10);
    await s.command(0, buildWrite16(0, 128, { fua: true }), { dataOut: fua });
    await s.command(0, buildWrite16(1000, 128), { dataOut: unsynced });
    dev.crash();
    await s.command(0, buildWrite16(2000, 128), { dataOut: synced });
    await s.command(0, buildSynchronizeCache10());
    dev.crash();
    await s.logout();
    assert.ok(Buffer.from(await dev.media.read(0, 128)).equals(fua), 'FUA data survived');
    assert.ok(Buffer.from(await dev.media.read(2000, 128)).equals(synced), 'SYNCHRONIZE CACHE data survived');
    // The control: without FUA or a flush, the data was only cached, and the crash took it.
    assert.ok(
      Buffer.from(await dev.media.read(1000, 128)).equals(Buffer.alloc(64 << 10)),
      'unsynced data was lost, as the model says',
    );
  } finally {
    await server.close();
  }
});
