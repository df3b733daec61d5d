// Test fixture for cbt.test.ts: snapshot a LUN, then write at random until SIGKILLed.
// stdout: `S <snapshotId> <sha256 of the LUN at the snapshot> <changeId>`, then a `W` line per
// write (progress only: a pipe write may be queued). The record of writes is
// `<dir>/writes-<seed>.log`, one `W <lba> <blockCount>` line written with writeSync before each
// write is issued. With a third argument `delete`, the snapshot is deleted before the writes
// (only its change id stays) and the LUN's content at the snapshot goes to `<dir>/frozen-<seed>.img`.
import { createHash } from 'node:crypto';
import { openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';

const [dir, seedText, then] = process.argv.slice(2);
const BS = 512;
const dev = await SnapshottableDevice.open(
  await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: 2 << 20 }),
  {
    dir: join(dir, 'lun.img.snapshots'),
    chunkBytes: 8 * BS,
  },
);
const snap = await dev.createSnapshot();
const frozen = await dev.read(0, dev.blockCount);
const digest = createHash('sha256').update(frozen).digest('hex');
if (then === 'delete') {
  writeFileSync(join(dir, `frozen-${seedText}.img`), frozen);
  await dev.deleteSnapshot(snap.id);
}
process.stdout.write(`S ${snap.id} ${digest} ${snap.changeId}\n`);
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
