import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from './file-device.ts';
import { MemoryDevice } from './memory-device.ts';
import type { BlockDevice } from './block-device.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

async function roundTrip(dev: BlockDevice): Promise<void> {
  const data = new Uint8Array(dev.blockSize * 3).map((_, i) => (i * 7 + 1) & 0xff);
  await dev.write(5, data);
  assert.deepEqual(Buffer.from(await dev.read(5, 3)), Buffer.from(data));
  const into = new Uint8Array(dev.blockSize);
  await dev.readInto(6, into);
  assert.deepEqual(Buffer.from(into), Buffer.from(data.subarray(dev.blockSize, 2 * dev.blockSize)));
  await assert.rejects(dev.read(dev.blockCount - 1, 2), RangeError);
  await assert.rejects(dev.write(0, new Uint8Array(dev.blockSize + 1)), RangeError);
}

test('MemoryDevice reads back what it wrote and refuses out-of-range I/O', async () => {
  await roundTrip(new MemoryDevice(512, 64));
});

test('FileDevice creates a sparse file of the asked size and round-trips blocks', async () => {
  await inTempDir('fd', async (dir) => {
    const path = join(dir, 'disk.img');
    const dev = await FileDevice.open(path, { blockSize: 4096, sizeBytes: 1 << 20 });
    assert.equal(dev.blockCount, 256);
    await roundTrip(dev);
    await dev.flush();
    await dev.close();
    const st = await stat(path);
    assert.equal(st.size, 1 << 20);
    assert.ok(st.blocks * 512 < 1 << 20, 'file should stay sparse');
    const again = await FileDevice.open(path, { blockSize: 4096, readOnly: true });
    assert.equal(again.blockCount, 256);
    await assert.rejects(again.write(0, new Uint8Array(4096)));
    await again.close();
  });
});

test(
  'FileDevice starts one background fdatasync per writebackBytes written; a failed one fails every later ' + 'flush',
  async () => {
    await inTempDir('fd', async (dir) => {
      const dev = await FileDevice.open(join(dir, 'disk.img'), {
        blockSize: 512,
        sizeBytes: 1 << 20,
        writebackBytes: 64 << 10,
      });
      const fh = (dev as unknown as { fh: { datasync(): Promise<void> } }).fh;
      let calls = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      fh.datasync = async () => {
        calls++;
        await gate;
        throw new Error('EIO');
      };
      await dev.write(0, new Uint8Array(32 << 10));
      assert.equal(calls, 0, 'below the threshold');
      await dev.write(64, new Uint8Array(32 << 10));
      assert.equal(calls, 1, 'threshold reached: one write-back started');
      await dev.write(128, new Uint8Array(128 << 10));
      assert.equal(calls, 1, 'never two at once');
      release();
      await assert.rejects(dev.flush(), /background write-back failed \(EIO\)/);
      await assert.rejects(dev.flush(), /background write-back failed/, 'still failing: the lost data is not back');
      await dev.close();
    });
  },
);

test('FileDevice: a background write-back that fails while a flush runs fails that flush', async () => {
  await inTempDir('fd', async (dir) => {
    const dev = await FileDevice.open(join(dir, 'disk.img'), {
      blockSize: 512,
      sizeBytes: 1 << 20,
      writebackBytes: 64 << 10,
    });
    const fh = (dev as unknown as { fh: { datasync(): Promise<void> } }).fh;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    fh.datasync = async () => {
      calls++;
      if (calls === 1) return gate; // the flush's own: succeeds, late
      throw new Error('EIO'); // the background one took the error (Linux reports it once)
    };
    const flushed = dev.flush();
    await new Promise((r) => setImmediate(r));
    await dev.write(0, new Uint8Array(64 << 10)); // starts the background write-back
    assert.equal(calls, 2);
    release();
    await assert.rejects(flushed, /background write-back failed \(EIO\)/);
    await dev.close();
  });
});

test('FileDevice: a failed fdatasync fails that flush and every later one (the kernel reports it once)', async () => {
  await inTempDir('blk', async (dir) => {
    const dev = await FileDevice.open(join(dir, 'd.img'), { blockSize: 512, sizeBytes: 64 * 512 });
    const fh = (dev as unknown as { fh: { datasync: () => Promise<void> } }).fh;
    const orig = fh.datasync.bind(fh);
    let fail = true;
    fh.datasync = () => {
      if (!fail) return orig();
      fail = false; // only this once: the next fdatasync would succeed without the lost pages
      return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    };
    try {
      await dev.write(0, new Uint8Array(512).fill(1));
      await assert.rejects(dev.flush(), /d\.img: an fdatasync failed \(EIO/);
      await dev.write(1, new Uint8Array(512).fill(2));
      await assert.rejects(dev.flush(), /an fdatasync failed/, 'a later flush must not report the data durable');
    } finally {
      fh.datasync = orig;
      await dev.close();
    }
  });
});
