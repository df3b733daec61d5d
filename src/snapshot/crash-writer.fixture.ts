// Test fixture for cbt.test.ts: snapshot a LUN, then write at random until SIGKILLed.
// stdout lines: `S <snapshotId> <sha256 of the LUN at the snapshot>`, then `W <lba> <blockCount>`
// before each write is issued (pipes are synchronous on Linux, so a line is out before the write).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';

const [dir, seedText] = process.argv.slice(2);
const BS = 512;
const dev = await SnapshottableDevice.open(await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: 2 << 20 }), {
  dir: join(dir, 'lun.img.snapshots'),
  chunkBytes: 8 * BS,
});
const snap = await dev.createSnapshot();
const digest = createHash('sha256').update(await dev.read(0, dev.blockCount)).digest('hex');
process.stdout.write(`S ${snap.id} ${digest}\n`);
let s = Number(seedText) >>> 0 || 1;
const rand = (): number => {
  s = (s * 1664525 + 1013904223) >>> 0;
  return s / 2 ** 32;
};
async function writer(): Promise<never> {
  while (true) {
    const blocks = 1 + Math.floor(rand() * 24);
    const lba = Math.floor(rand() * (dev.blockCount - blocks));
    process.stdout.write(`W ${lba} ${blocks}\n`);
    await dev.write(lba, Buffer.alloc(blocks * BS, Math.floor(rand() * 255) + 1));
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
