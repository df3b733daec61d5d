// Test fixture for snapshottable-device.test.ts: take three snapshots with writes between them,
// then first writes (and rewrites) at random until SIGKILLed.
// stdout: `S <snapshotId> <sha256 of the LUN at the snapshot>` per snapshot, then a `W` line per
// write acknowledged (progress only). The record is `<dir>/acks.log`, written with writeSync:
// `I <writer> <lba> <blocks> <fill>` before a write is issued, `A <writer>` once it is acknowledged.
// Four writers, each on its own quarter of the LUN, one write in flight each.
import { createHash } from 'node:crypto';
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FileDevice } from '../block/file-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';

const [dir, seedText] = process.argv.slice(2);
const BS = 512;
const dev = await SnapshottableDevice.open(
  await FileDevice.open(join(dir, 'lun.img'), { blockSize: BS, sizeBytes: 4 << 20 }),
  { dir: join(dir, 'lun.img.snapshots'), chunkBytes: 16 * BS },
);
let s = Number(seedText) >>> 0 || 1;
const rand = (): number => {
  s = (s * 1664525 + 1013904223) >>> 0;
  return s / 2 ** 32;
};
const quarter = dev.blockCount / 4;
const randomWrite = async (w: number): Promise<[number, number, number]> => {
  const blocks = 1 + Math.floor(rand() * 40);
  const lba = w * quarter + Math.floor(rand() * (quarter - blocks));
  const fill = 1 + Math.floor(rand() * 254);
  return [lba, blocks, fill];
};
for (let k = 0; k < 3; k++) {
  for (let n = 0; n < 100; n++) {
    const [lba, blocks, fill] = await randomWrite(n % 4);
    await dev.write(lba, Buffer.alloc(blocks * BS, fill));
  }
  if (k === 1) await dev.flush(); // some layers' entries committed, others only in the page cache
  const snap = await dev.createSnapshot();
  const digest = createHash('sha256')
    .update(await dev.openSnapshot(snap.id).read(0, dev.blockCount))
    .digest('hex');
  process.stdout.write(`S ${snap.id} ${digest}\n`);
}
const log = openSync(join(dir, 'acks.log'), 'w');
async function writer(w: number): Promise<never> {
  while (true) {
    const [lba, blocks, fill] = await randomWrite(w);
    writeSync(log, `I ${w} ${lba} ${blocks} ${fill}\n`);
    await dev.write(lba, Buffer.alloc(blocks * BS, fill));
    writeSync(log, `A ${w}\n`);
    process.stdout.write(`W\n`);
  }
}
await Promise.all([0, 1, 2, 3].map(writer));
