import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { decodeSense } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { encodeXcopyParameterList, type SegmentInput } from './descriptors.ts';
import { BoundedBufferPool } from './copy-buffers.ts';
import { TestLu, targetOf, xcopy } from './testing/harness.ts';

// The segment engine's pipeline across segments (engine.ts, source.ts BlockReads): no wall clock,
// only the order in which the devices see commands.

const BS = 512;
const CHUNK = 8 * BS; // the pool's buffer: 8 blocks per READ and per WRITE

/** A disk that logs every READ and WRITE it is given (`seq` orders both devices' events). */
class LoggingDevice extends MemoryDevice {
  static seq = 0;
  readonly reads: Array<{ lba: number; at: number }> = [];
  readonly writes: Array<{ lba: number; at: number }> = [];
  failReadAt = -1;
  /** Turns a write takes to complete: the destination is the slower side. */
  writeTurns = 0;
  override async readInto(lba: number, target: Uint8Array): Promise<void> {
    this.reads.push({ lba, at: LoggingDevice.seq++ });
    if (lba === this.failReadAt) throw new Error('unrecovered read error');
    return super.readInto(lba, target);
  }
  override async write(lba: number, data: Uint8Array): Promise<void> {
    this.writes.push({ lba, at: LoggingDevice.seq++ });
    for (let i = 0; i < this.writeTurns; i++) await new Promise((r) => setImmediate(r));
    return super.write(lba, data);
  }
}

function filled(blocks: number, seed: number): LoggingDevice {
  const d = new LoggingDevice(BS, blocks);
  for (let i = 0; i < d.bytes.length; i++) d.bytes[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return d;
}

const b2b = (blockCount: number, lba: number): SegmentInput => ({
  type: 0x02,
  cat: false,
  dc: false,
  source: 0,
  destination: 1,
  blockCount,
  sourceLba: lba,
  destinationLba: lba,
});

function copyList(segments: SegmentInput[], src: TestLu, dst: TestLu): Uint8Array {
  return encodeXcopyParameterList({
    header: { listId: 1, str: false, listIdUsage: 0, priority: 0 },
    cscds: [src.cscd(), dst.cscd()],
    segments,
  });
}

test("the next segment's reads start while the current one still has writes to issue (no drain between)", async () => {
  const srcDev = filled(192, 1);
  const dstDev = new LoggingDevice(BS, 192);
  dstDev.writeTurns = 10;
  const pool = new BoundedBufferPool(CHUNK, 16);
  const src = new TestLu({ block: srcDev }, 61, { pool, readsInFlight: 4 });
  const dst = new TestLu({ block: dstDev }, 62);
  const r = await xcopy(targetOf([src, dst]), copyList([b2b(96, 0), b2b(96, 96)], src, dst));
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual(dstDev.bytes, srcDev.bytes);
  const firstReadOf1 = srcDev.reads.find((x) => x.lba >= 96)!.at;
  const lastWriteOf0 = Math.max(...dstDev.writes.filter((x) => x.lba < 96).map((x) => x.at));
  assert.ok(
    firstReadOf1 < lastWriteOf0,
    `segment 1 was first read at event ${firstReadOf1}, after segment 0's last write was issued (${lastWriteOf0})`,
  );
  // Never more than readsInFlight reads ahead of the writes, whatever the segments.
  assert.equal(srcDev.reads.length, 24);
});

test('a read that fails in the next segment is reported for that segment once the current one is written', async () => {
  const srcDev = filled(192, 2);
  srcDev.failReadAt = 96 + 2 * 8; // segment 1's third READ
  const dstDev = new LoggingDevice(BS, 192);
  dstDev.writeTurns = 10;
  const pool = new BoundedBufferPool(CHUNK, 16);
  const src = new TestLu({ block: srcDev }, 63, { pool, readsInFlight: 4 });
  const dst = new TestLu({ block: dstDev }, 64);
  const r = await xcopy(targetOf([src, dst]), copyList([b2b(96, 0), b2b(96, 96)], src, dst));
  assert.equal(r.status, ScsiStatus.CHECK_CONDITION);
  const s = decodeSense(r.sense!);
  assert.deepEqual([s.key, s.asc], [0x0a, 0x0d], 'COPY ABORTED');
  assert.equal(s.commandSpecific! & 0xffff, 1, 'segment 1 failed');
  // Segment 0 whole, then segment 1's two READs that succeeded: the residual counts the rest.
  assert.deepEqual(dstDev.bytes.subarray(0, 112 * BS), srcDev.bytes.subarray(0, 112 * BS));
  assert.equal(s.info, 96 - 16, 'blocks of segment 1 not written');
  // Every buffer is back in the pool.
  const back = Array.from({ length: pool.max }, () => pool.tryAcquire());
  assert.ok(
    back.every((b) => b !== undefined),
    'a buffer was not returned',
  );
});
