import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { ProvisioningStatus, isZero, scanLbaStatus, type LbaExtent } from './lba-status.ts';

const BS = 512;

/** The definition, block by block: a block is deallocated exactly when it is all zeros. */
function blockStatus(dev: MemoryDevice): number[] {
  const bs = dev.blockSize;
  const status: number[] = [];
  for (let b = 0; b < dev.blockCount; b++)
    status.push(
      dev.bytes.subarray(b * bs, (b + 1) * bs).every((v) => v === 0)
        ? ProvisioningStatus.DEALLOCATED
        : ProvisioningStatus.MAPPED,
    );
  return status;
}

function reference(status: number[], lba: number, maxExtents: number, scanBlocks: number): LbaExtent[] {
  const out: LbaExtent[] = [];
  const end = Math.min(status.length, lba + scanBlocks);
  for (let b = lba; b < end; b++) {
    const last = out[out.length - 1];
    if (last && last.status === status[b]) last.blockCount++;
    else {
      if (out.length === maxExtents) break;
      out.push({ lba: b, blockCount: 1, status: status[b] });
    }
  }
  return out;
}

/** A small deterministic PRNG (xorshift32), so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test('isZero: a single non-zero byte anywhere, past the 64 KiB compare page too', () => {
  const buf = new Uint8Array(200_000);
  assert.equal(isZero(buf), true);
  for (const at of [0, 511, 65_535, 65_536, 199_999]) {
    buf[at] = 1;
    assert.equal(isZero(buf), false, `byte ${at}`);
    assert.equal(isZero(buf.subarray(at + 1)), true, `after byte ${at}`);
    buf[at] = 0;
  }
});

test('scanLbaStatus matches the block-by-block definition across read sizes and limits', async () => {
  // 10 MiB: longer than the largest read, so extents cross every read boundary of the doubling.
  const dev = new MemoryDevice(BS, 20_480);
  const rand = rng(0x5eed);
  // Runs of mapped and zero blocks, short and long; a mapped block may hold a single non-zero
  // byte at its last offset (a zero-page compare must look at every byte).
  for (let b = 0; b < dev.blockCount;) {
    const len = rand() < 0.7 ? 1 + Math.floor(rand() * 8) : 1 + Math.floor(rand() * 6000);
    const mapped = rand() < 0.5;
    for (let i = b; i < Math.min(dev.blockCount, b + len); i++)
      if (mapped) dev.bytes[i * BS + (rand() < 0.5 ? BS - 1 : Math.floor(rand() * BS))] = 1 + (i & 0x7f);
    b += len;
  }
  const status = blockStatus(dev);
  const starts = [0, 1, 127, 128, 129, 8191, 8192, 12_000, 20_479];
  for (let k = 0; k < 12; k++) starts.push(Math.floor(rand() * dev.blockCount));
  for (const lba of starts) {
    for (const [maxExtents, scanBlocks] of [
      [1, dev.blockCount],
      [3, dev.blockCount],
      [4096, dev.blockCount],
      [4096, 300],
      [2, 1],
    ]) {
      assert.deepEqual(
        await scanLbaStatus(dev, lba, maxExtents, scanBlocks),
        reference(status, lba, maxExtents, scanBlocks),
        `lba ${lba}, ${maxExtents} extents, ${scanBlocks} blocks`,
      );
    }
  }
});

test('scanLbaStatus: an all-zero and an all-mapped device are one extent each', async () => {
  const dev = new MemoryDevice(4096, 3000);
  assert.deepEqual(await scanLbaStatus(dev, 5, 1, 1 << 20), [
    { lba: 5, blockCount: 2995, status: ProvisioningStatus.DEALLOCATED },
  ]);
  dev.bytes.fill(0xff);
  assert.deepEqual(await scanLbaStatus(dev, 0, 4, 1 << 20), [
    { lba: 0, blockCount: 3000, status: ProvisioningStatus.MAPPED },
  ]);
});
