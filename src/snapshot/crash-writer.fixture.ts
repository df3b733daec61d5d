// Test fixture for cbt.test.ts: snapshot a LUN, then write at random until SIGKILLed.
// stdout: `S <snapshotId> <sha256 of the LUN at the snapshot>`, then a `W` line per write (progress
// only: a pipe write may be queued). The record of writes is `<dir>/writes-<seed>.log`, one
// `W <lba> <blockCount>` line written with writeSync before each write is issued.
import { createHash } from 'node:crypto';
import { openSync, writeSync } from 'node:fs';
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
const log = openSync(join(dir, `writes-${seedText}.log`), 'w');
let s = Number(seedText) >>> 0 || 1;
const rand = (): number => {
  s = (s * 1664525 + 1013904223) >>> 0;
  return s / 2 ** 32;
};
async function writer(): Promise<never> {
  while (true) {
    const blocks = 1 + Math.floor(rand() * 24);
    const lba = Math.floor(rand() * (dev.blockCount - blocks));
    writeSync(log, `W ${lba} ${blocks}\n`);
    process.stdout.write(`W\n`);
    await dev.write(lba, Buffer.alloc(blocks * BS, Math.floor(rand() * 255) + 1));
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
