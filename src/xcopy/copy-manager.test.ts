import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { decodeSense } from '../scsi/sense.ts';
import { ScsiStatus, type ScsiResult } from '../scsi/task.ts';
import { encodeXcopyParameterList, type CscdInput, type SegmentInput } from './descriptors.ts';
import { operatingParameters, thirdPartyCopyVpdPage } from './copy-manager.ts';
import { MemoryTape } from './testing/memory-tape.ts';
import { TestLu, nexus, send, targetOf, xcopy } from './testing/harness.ts';
import { buildExtendedCopy, buildReceiveCopyResults } from '../scsi/cdb/spc.ts';
import { CopyManagerStatus, decodeCopyStatus } from './copy-results.ts';
import { RateLimit } from '../util/rate-limit.ts';

const header = (listId = 1, listIdUsage = 0) => ({ listId, str: false, listIdUsage, priority: 0 });

function list(
  cscds: CscdInput[],
  segments: SegmentInput[],
  opts: { listId?: number; usage?: number; inline?: Uint8Array } = {},
) {
  return encodeXcopyParameterList({
    header: header(opts.listId ?? 1, opts.usage ?? 0),
    cscds,
    segments,
    inline: opts.inline,
  });
}

function expectSense(r: ScsiResult, key: number, asc: number, ascq: number) {
  assert.equal(r.status, ScsiStatus.CHECK_CONDITION, `expected CHECK CONDITION, got ${r.status}`);
  const s = decodeSense(r.sense!);
  assert.deepEqual(
    [s.key, s.asc, s.ascq],
    [key, asc, ascq],
    `sense ${s.key.toString(16)}/${s.asc.toString(16)}/${s.ascq.toString(16)}`,
  );
  return s;
}

function random(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function disk(blocks: number, seed: number, fill = true) {
  const dev = new MemoryDevice(512, blocks);
  if (fill) dev.bytes.set(random(dev.bytes.length, seed));
  return new TestLu({ block: dev }, seed);
}

const b2b = (o: Partial<Extract<SegmentInput, { type: 0x02 }>> = {}): SegmentInput => ({
  type: 0x02,
  cat: false,
  dc: false,
  source: 0,
  destination: 0,
  blockCount: 16,
  sourceLba: 0,
  destinationLba: 100,
  ...o,
});

test('libiscsi Simple: block → block within the LU (source = destination = CSCD 0)', async () => {
  const lu = disk(4096, 1);
  const t = targetOf([lu]);
  const dev = lu.blockDevice as MemoryDevice;
  const before = dev.bytes.slice();
  const r = await xcopy(
    t,
    list([lu.cscd()], [b2b({ blockCount: 2048, sourceLba: 0, destinationLba: 4096 - 2048 })], { usage: 2 }),
  );
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual(dev.bytes.subarray(2048 * 512), before.subarray(0, 2048 * 512));
  assert.deepEqual(dev.bytes.subarray(0, 2048 * 512), before.subarray(0, 2048 * 512));
});

test('overlapping copy forward within one device behaves like memmove', async () => {
  const lu = disk(4096, 2);
  const t = targetOf([lu]);
  const dev = lu.blockDevice as MemoryDevice;
  const before = dev.bytes.slice();
  const r = await xcopy(t, list([lu.cscd()], [b2b({ blockCount: 3000, sourceLba: 10, destinationLba: 13 })]));
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual(dev.bytes.subarray(13 * 512, 3013 * 512), before.subarray(10 * 512, 3010 * 512));
  assert.deepEqual(dev.bytes.subarray(3013 * 512), before.subarray(3013 * 512));
});

/** Writes land several turns after they are issued; reads are immediate. */
class SlowWriteDevice extends MemoryDevice {
  override async write(lba: number, data: Uint8Array): Promise<void> {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    return super.write(lba, data);
  }
}

/** Reads complete several turns after they are issued; writes are immediate. */
class SlowReadDevice extends MemoryDevice {
  override async readInto(lba: number, target: Uint8Array): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    return super.readInto(lba, target);
  }
}

/** A MemoryDevice whose reads and writes complete on a later turn, in random order. */
class ShuffledDevice extends MemoryDevice {
  private seed = 7;
  private later(): Promise<void> {
    this.seed = (this.seed * 1103515245 + 12345) >>> 0;
    const turns = this.seed % 4;
    let p = Promise.resolve();
    for (let i = 0; i < turns; i++) p = p.then(() => new Promise((r) => setImmediate(r)));
    return p;
  }
  override async readInto(lba: number, target: Uint8Array): Promise<void> {
    await this.later();
    return super.readInto(lba, target);
  }
  override async write(lba: number, data: Uint8Array): Promise<void> {
    await this.later();
    return super.write(lba, data);
  }
}

test(
  'overlapping moves by more than a buffer behave like memmove, both ways, with I/O completing out of ' + 'order',
  async () => {
    for (const [from, to] of [
      [0, 40],
      [40, 0],
      [5, 6],
    ]) {
      const dev = new ShuffledDevice(512, 256);
      dev.bytes.set(random(dev.bytes.length, 41));
      const lu = new TestLu({ block: dev }, 42, { chunkBytes: 4096 }); // 8 blocks per buffer
      const before = dev.bytes.slice();
      const r = await xcopy(
        targetOf([lu]),
        list([lu.cscd()], [b2b({ blockCount: 100, sourceLba: from, destinationLba: to })]),
      );
      assert.equal(r.status, ScsiStatus.GOOD);
      assert.deepEqual(
        dev.bytes.subarray(to * 512, (to + 100) * 512),
        before.subarray(from * 512, (from + 100) * 512),
        `${from} → ${to}`,
      );
      const untouched = (a: number, b: number) =>
        assert.deepEqual(dev.bytes.subarray(a * 512, b * 512), before.subarray(a * 512, b * 512));
      untouched(0, Math.min(from, to));
      untouched(Math.max(from, to) + 100, 256);
    }
  },
);

test(
  'a move within one device that carries a source residual (CAT) behaves like memmove, also onto its own ' + 'LBAs',
  async () => {
    for (const [to, dev] of [
      [1, new SlowReadDevice(512, 256)],
      [0, new SlowReadDevice(512, 256)],
      [1, new ShuffledDevice(512, 256)],
    ] as const) {
      dev.bytes.set(random(dev.bytes.length, 48));
      const tapeDev = new MemoryTape();
      const rec = random(512, 49);
      await tapeDev.write(rec);
      await tapeDev.rewind();
      const lu = new TestLu({ block: dev }, 50, { chunkBytes: 4096 });
      const tape = new TestLu({ tape: tapeDev }, 51);
      const before = dev.bytes.slice();
      const r = await xcopy(
        targetOf([lu, tape]),
        list(
          [lu.cscd(), tape.cscd()],
          [
            // 412 bytes of source residual
            { type: 0x06, cat: true, source: 1, streamTransferLength: 512, byteCount: 100 },
            b2b({ cat: true, blockCount: 100, sourceLba: 0, destinationLba: to }),
          ],
        ),
      );
      assert.equal(r.status, ScsiStatus.GOOD, r.sense && JSON.stringify(decodeSense(r.sense)));
      // The destination gets the residual, then the source blocks: every byte moves up by 412 (+ a block).
      const expected = new Uint8Array(100 * 512);
      expected.set(rec.subarray(100), 0);
      expected.set(before.subarray(0, 100 * 512 - 412), 412);
      assert.deepEqual(dev.bytes.subarray(to * 512, (to + 100) * 512), expected, `to LBA ${to}`);
      assert.deepEqual(
        dev.bytes.subarray((to + 100) * 512),
        before.subarray((to + 100) * 512),
        'nothing written past the segment',
      );
    }
  },
);

/** Reads of LBA 0 fail. */
class BadFirstBlock extends MemoryDevice {
  override async readInto(lba: number, target: Uint8Array): Promise<void> {
    if (lba === 0) throw new Error('medium error');
    return super.readInto(lba, target);
  }
}

test(
  'a read failure in a move within one device still counts the earlier segment, whose writes were in ' + 'flight',
  async () => {
    const a = disk(64, 52);
    const b = new TestLu({ block: new SlowWriteDevice(512, 64) }, 53, { chunkBytes: 4096 });
    const c = new TestLu({ block: new BadFirstBlock(512, 128) }, 54, { chunkBytes: 4096 });
    const t = targetOf([a, b, c]);
    const r = await xcopy(
      t,
      list(
        [a.cscd(), b.cscd(), c.cscd()],
        [
          b2b({ source: 0, destination: 1, blockCount: 8, sourceLba: 0, destinationLba: 0 }),
          b2b({ source: 2, destination: 2, blockCount: 32, sourceLba: 0, destinationLba: 8 }),
        ],
        { usage: 2 },
      ),
    );
    const s = expectSense(r, 0x0a, 0x0d, 0x02);
    assert.equal(s.commandSpecific! & 0xffff, 1, 'segment 1 failed');
    const st = (await send(t, buildReceiveCopyResults(0, 1, 1024))).dataIn!;
    assert.equal((st[5] << 8) | st[6], 1, 'segment 0 processed');
    assert.ok(new DataView(st.buffer, st.byteOffset).getUint32(8) >= 8 * 512, 'its bytes counted');
    assert.deepEqual(
      (b.blockDevice as MemoryDevice).bytes.subarray(0, 8 * 512),
      (a.blockDevice as MemoryDevice).bytes.subarray(0, 8 * 512),
    );
  },
);

test('PLL 0 is GOOD; SA ≠ 0 is 24/00', async () => {
  const lu = disk(64, 3);
  const t = targetOf([lu]);
  assert.equal((await xcopy(t, new Uint8Array(0))).status, ScsiStatus.GOOD);
  const cdb = buildExtendedCopy(0);
  cdb[1] = 0x01; // SERVICE ACTION 01h: EXTENDED COPY(LID4), which Ferry does not serve
  expectSense(await send(t, cdb), 5, 0x24, 0);
});

test(
  'libiscsi ValidSegDescr: bad CSCD index → 0A/08/04; LBA beyond the end → 0A/0D/02 with the LU sense ' + 'forwarded',
  async () => {
    const lu = disk(4096, 4);
    const t = targetOf([lu]);
    const dev = lu.blockDevice as MemoryDevice;
    const before = dev.bytes.slice();
    const s1 = expectSense(await xcopy(t, list([lu.cscd()], [b2b({ destination: 1 })])), 0x0a, 0x08, 0x04);
    assert.equal(s1.commandSpecific! & 0xffff, 0);
    assert.deepEqual([...s1.senseKeySpecific!], [0xa0, 0, 6]); // SKSV, SD=1, field 6 (destination id)
    const segs = [b2b({ blockCount: 1, destinationLba: 10 }), b2b({ blockCount: 2048, destinationLba: 4095 })];
    const r = await xcopy(t, list([lu.cscd()], segs));
    const s2 = expectSense(r, 0x0a, 0x0d, 0x02);
    assert.equal(s2.commandSpecific! & 0xffff, 1, 'segment number 1');
    assert.equal(s2.commandSpecific! >>> 16, 18, 'destination sense at byte 18');
    const fwd = r.sense!.subarray(18);
    assert.equal(fwd[0], ScsiStatus.CHECK_CONDITION);
    const inner = decodeSense(fwd.subarray(1));
    assert.deepEqual([inner.key, inner.asc], [5, 0x21]);
    assert.deepEqual(dev.bytes, before, 'validated before any I/O: nothing written');
  },
);

test('a designator not mapped to this session is unreachable (no global lookup)', async () => {
  const a = disk(64, 5);
  const b = disk(64, 6);
  const t = targetOf([a]); // b exists but is not mapped to this session
  expectSense(
    await xcopy(t, list([a.cscd(), b.cscd()], [b2b({ destination: 1, blockCount: 1, destinationLba: 0 })])),
    0x0a,
    0x08,
    0x04,
  );
  const t2 = targetOf([a, b]);
  assert.equal(
    (await xcopy(t2, list([a.cscd(), b.cscd()], [b2b({ destination: 1, blockCount: 8, destinationLba: 0 })]))).status,
    ScsiStatus.GOOD,
  );
  assert.deepEqual(
    (b.blockDevice as MemoryDevice).bytes.subarray(0, 4096),
    (a.blockDevice as MemoryDevice).bytes.subarray(0, 4096),
  );
});

test('CSCD FFFFh is the LU the command was sent to; INQUIRY resolution works for LUs without an accessor', async () => {
  const a = disk(64, 7);
  const tapeDev = new MemoryTape();
  const tape = new TestLu({ tape: tapeDev }, 8);
  const t = targetOf([a, tape]);
  const r = await xcopy(
    t,
    list(
      [tape.cscd()],
      [{ type: 0x00, cat: false, source: 0xffff, destination: 0, streamTransferLength: 4096, blockCount: 64, lba: 0 }],
    ),
  );
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual(tapeDev.data(), (a.blockDevice as MemoryDevice).bytes);
  assert.equal(tapeDev.objects.length, 8);
});

test('block → stream with an embedded header first, then stream → block restore: bit-exact', async () => {
  const src = disk(2048, 9);
  const dst = disk(2048, 10, false);
  const tapeDev = new MemoryTape();
  const tape = new TestLu({ tape: tapeDev }, 11);
  const t = targetOf([src, dst, tape]);
  const hdr = new TextEncoder().encode('FERRY backup set 1, 2048 blocks\n');
  const backup = list(
    [src.cscd(), tape.cscd({ pad: true })],
    [
      { type: 0x05, cat: false, destination: 1, streamTransferLength: 64, data: hdr }, // padded to one 64-byte record
      { type: 0x10, cat: false, destination: 1, immed: false, count: 1 },
      { type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: 262144, blockCount: 1024, lba: 0 },
      { type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: 262144, blockCount: 1024, lba: 1024 },
      { type: 0x10, cat: false, destination: 1, immed: false, count: 1 },
    ],
  );
  assert.equal((await xcopy(t, backup, { lun: 2 })).status, ScsiStatus.GOOD);
  assert.equal(tapeDev.objects[0] instanceof Uint8Array && tapeDev.objects[0].length, 64);
  assert.deepEqual((tapeDev.objects[0] as Uint8Array).subarray(0, hdr.length), hdr);
  assert.equal(tapeDev.objects[1], 'FM');
  assert.equal(tapeDev.objects.length, 1 + 1 + 4 + 1);
  // Restore: locate past the header and filemark, read 4 records into the fresh LUN.
  const restore = list(
    [tape.cscd(), dst.cscd()],
    [
      { type: 0x12, cat: false, destination: 0, objectId: 2 },
      { type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: 262144, blockCount: 2048, lba: 0 },
    ],
    { listId: 2 },
  );
  const r = await xcopy(t, restore, { lun: 1 });
  assert.equal(r.status, ScsiStatus.GOOD, r.sense && JSON.stringify(decodeSense(r.sense)));
  assert.deepEqual((dst.blockDevice as MemoryDevice).bytes, (src.blockDevice as MemoryDevice).bytes);
});

/** A tape that keeps several commands in flight in order (as RemoteTapeDevice does with ORDERED). */
class PipelinedTape extends MemoryTape {
  readonly ordersWrites = true;
  readonly ordersReads = true;
  inFlight = 0;
  maxInFlight = 0;
  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const r = await fn(); // runs at call time: order is issue order
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    return r;
  }
  override write(record: Uint8Array) {
    return this.track(() => super.write(record));
  }
  override read(target: Uint8Array) {
    return this.track(() => super.read(target));
  }
}

test(
  'tape writes and reads pipelined on a device that keeps order: bit-exact, in flight across read ' + 'buffers',
  async () => {
    const src = disk(8192, 31);
    const dst = disk(8192, 32, false);
    const tapeDev = new PipelinedTape();
    const tape = new TestLu({ tape: tapeDev }, 33);
    const t = targetOf([src, dst, tape]);
    const r1 = await xcopy(
      t,
      list(
        [src.cscd(), tape.cscd()],
        [{ type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: 65536, blockCount: 8192, lba: 0 }],
      ),
    );
    assert.equal(r1.status, ScsiStatus.GOOD);
    // 16 records fill one 1 MiB read buffer: writes stay in flight across buffers.
    assert.ok(tapeDev.maxInFlight > 16, `writes in flight: ${tapeDev.maxInFlight}`);
    await tapeDev.rewind();
    tapeDev.maxInFlight = 0;
    const r2 = await xcopy(
      t,
      list(
        [tape.cscd(), dst.cscd()],
        [{ type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: 65536, blockCount: 8192, lba: 0 }],
        { listId: 2 },
      ),
    );
    assert.equal(r2.status, ScsiStatus.GOOD);
    assert.ok(tapeDev.maxInFlight > 16, `reads in flight: ${tapeDev.maxInFlight}`);
    assert.deepEqual((dst.blockDevice as MemoryDevice).bytes, (src.blockDevice as MemoryDevice).bytes);
  },
);

/**
 * A mover's --max-rate whose waits end out of call order, as RateLimit's can: a read whose turn
 * has already come waits for nothing and goes ahead of an earlier one whose timer is due but has
 * not fired yet (the event loop was busy). Here every other wait takes a few turns of the loop.
 */
class OutOfOrderRate extends RateLimit {
  private calls = 0;
  override async take(): Promise<void> {
    if (this.calls++ % 2 === 0) for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
}

test('tape reads pipelined under a rate limit whose waits end out of order are issued in order', async () => {
  // 8 transfers of 256 KiB: a READ issued out of turn puts another transfer's bytes in its place, bit-exact or not.
  const want = random(4096 * 512, 41);
  const tapeDev = new PipelinedTape();
  for (let i = 0; i < 8; i++) tapeDev.objects.push(want.slice(i * 262144, (i + 1) * 262144));
  const dst = new TestLu({ block: new MemoryDevice(512, 4096) }, 42, { rate: new OutOfOrderRate(1) });
  const tape = new TestLu({ tape: tapeDev }, 43);
  const r = await xcopy(
    targetOf([dst, tape]),
    list(
      [tape.cscd(), dst.cscd()],
      [{ type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: 262144, blockCount: 4096, lba: 0 }],
    ),
  );
  assert.equal(r.status, ScsiStatus.GOOD, r.sense && JSON.stringify(decodeSense(r.sense)));
  assert.ok(tapeDev.maxInFlight > 1, `reads in flight: ${tapeDev.maxInFlight}`);
  const got = (dst.blockDevice as MemoryDevice).bytes;
  const wrong = Array.from({ length: 8 }, (_, i) => i).filter(
    (i) => !Buffer.from(got.subarray(i * 262144, (i + 1) * 262144)).equals(want.subarray(i * 262144, (i + 1) * 262144)),
  );
  assert.deepEqual(wrong, [], 'transfers restored with the wrong tape data');
});

/** A pipelined tape whose `failAt`-th write (1-based) fails after it was accepted, as a medium error would. */
class FailingTape extends PipelinedTape {
  private n = 0;
  failAt: number;
  constructor(failAt: number) {
    super();
    this.failAt = failAt;
  }
  override async write(record: Uint8Array) {
    const mine = ++this.n;
    const r = await super.write(record);
    if (mine === this.failAt) throw new Error('medium error');
    return r;
  }
}

test('segments overlap in flight: a failed write is reported for its own segment, with its residual', async () => {
  const src = disk(4096, 34);
  const tapeDev = new FailingTape(16); // the last record of segment 0
  const tape = new TestLu({ tape: tapeDev }, 35);
  const t = targetOf([src, tape]);
  const seg = (lba: number): SegmentInput => ({
    type: 0x00,
    cat: false,
    source: 0,
    destination: 1,
    streamTransferLength: 65536,
    blockCount: 2048,
    lba,
  });
  const r = await xcopy(t, list([src.cscd(), tape.cscd()], [seg(0), seg(2048)]));
  const s = expectSense(r, 0x0a, 0x0d, 0x02);
  assert.equal(s.commandSpecific! & 0xffff, 0, 'segment 0 failed');
  assert.equal(s.info, 65536, 'one 64 KiB record of segment 0 not written');
  assert.ok(tapeDev.writes > 16, `segment 1 had started (${tapeDev.writes} writes)`);
  const st = await send(t, buildReceiveCopyResults(0, 1, 1024));
  assert.equal(decodeCopyStatus(st.dataIn!).segmentsProcessed, 0, 'no segment processed');
});

test('a segment that reads what the previous one writes waits for those writes', async () => {
  const a = disk(2048, 36);
  const bDev = new SlowWriteDevice(512, 2048);
  const b = new TestLu({ block: bDev }, 37);
  const c = disk(2048, 38, false);
  const t = targetOf([a, b, c]);
  const r = await xcopy(
    t,
    list(
      [a.cscd(), b.cscd(), c.cscd()],
      [
        b2b({ source: 0, destination: 1, blockCount: 2048, sourceLba: 0, destinationLba: 0 }),
        b2b({ source: 1, destination: 2, blockCount: 2048, sourceLba: 0, destinationLba: 0 }),
      ],
    ),
  );
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual((c.blockDevice as MemoryDevice).bytes, (a.blockDevice as MemoryDevice).bytes);
});

test(
  'two CSCDs naming one remote LU get one device: a segment reading what the previous one writes there ' + 'waits',
  async () => {
    const a = disk(2048, 43);
    const c = disk(2048, 44, false);
    const remoteBytes = new Uint8Array(2048 * 512);
    // Like PortalCopyTargets: every lookup opens a new device object over the same LU.
    const naa1 = new Uint8Array([0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 45]);
    const naa2 = new Uint8Array([0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 46]);
    let opened = 0;
    const remote = {
      async find(d: { designator: Uint8Array }) {
        if (d.designator[15] !== 45 && d.designator[15] !== 46) return undefined;
        opened++;
        return {
          kind: 'block' as const,
          device: new SlowWriteDevice(512, remoteBytes),
          lu: 'iqn.2026-01.test:remote#0',
        };
      },
    };
    const lu = new TestLu({ block: a.blockDevice }, 47, { remote });
    const t = targetOf([lu, c]);
    const remoteCscd = (designator: Uint8Array): CscdInput => ({ ...lu.cscd(), designator });
    const r = await xcopy(
      t,
      list(
        [lu.cscd(), remoteCscd(naa1), remoteCscd(naa2), c.cscd()],
        [
          b2b({ source: 0, destination: 1, blockCount: 2048, sourceLba: 0, destinationLba: 0 }),
          b2b({ source: 2, destination: 3, blockCount: 2048, sourceLba: 0, destinationLba: 0 }),
        ],
      ),
    );
    assert.equal(r.status, ScsiStatus.GOOD);
    assert.equal(opened, 2, 'each CSCD was looked up');
    assert.deepEqual((c.blockDevice as MemoryDevice).bytes, (a.blockDevice as MemoryDevice).bytes);
  },
);

test('inline data → stream, stream → discard, space, and fixed-block tape', async () => {
  const tapeDev = new MemoryTape(512);
  const tape = new TestLu({ tape: tapeDev }, 12);
  const lu = disk(64, 13);
  const t = targetOf([lu, tape]);
  const inline = random(2048, 14);
  const r = await xcopy(
    t,
    list(
      [tape.cscd()],
      [
        { type: 0x04, cat: false, destination: 0, streamTransferLength: 2, inlineOffset: 512, byteCount: 1024 },
        { type: 0x00, cat: false, source: 0xffff, destination: 0, streamTransferLength: 8, blockCount: 20, lba: 4 },
      ],
      { inline },
    ),
  );
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.equal(tapeDev.objects.length, 2 + 20);
  assert.deepEqual(tapeDev.data().subarray(0, 1024), inline.subarray(512, 1536));
  assert.deepEqual(tapeDev.data().subarray(1024), (lu.blockDevice as MemoryDevice).bytes.subarray(4 * 512, 24 * 512));
  // Rewind by spacing back, discard the inline part, restore the rest to LBA 40.
  const r2 = await xcopy(
    t,
    list(
      [tape.cscd(), lu.cscd()],
      [
        { type: 0x11, cat: false, destination: 0, code: 0, count: -22 },
        { type: 0x06, cat: false, source: 0, streamTransferLength: 2, byteCount: 1024 },
        { type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: 5, blockCount: 20, lba: 40 },
      ],
      { listId: 3 },
    ),
  );
  assert.equal(r2.status, ScsiStatus.GOOD, r2.sense && JSON.stringify(decodeSense(r2.sense)));
  const bytes = (lu.blockDevice as MemoryDevice).bytes;
  assert.deepEqual(bytes.subarray(40 * 512, 60 * 512), bytes.subarray(4 * 512, 24 * 512));
});

test('CAT carries a partial record into the next segment; PAD pads the last; neither → 0A/26/0A', async () => {
  const tapeDev = new MemoryTape();
  const tape = new TestLu({ tape: tapeDev }, 15);
  const t = targetOf([tape]);
  const seg = (data: Uint8Array, cat: boolean): SegmentInput => ({
    type: 0x05,
    cat,
    destination: 0,
    streamTransferLength: 8,
    data,
  });
  const r = await xcopy(
    t,
    list(
      [tape.cscd({ pad: true })],
      [seg(new Uint8Array([1, 2, 3, 4, 5]), true), seg(new Uint8Array([6, 7, 8, 9, 10, 11, 12]), false)],
    ),
  );
  assert.equal(r.status, ScsiStatus.GOOD);
  assert.deepEqual(tapeDev.objects, [
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
    new Uint8Array([9, 10, 11, 12, 0, 0, 0, 0]),
  ]);
  const r2 = await xcopy(t, list([tape.cscd({ pad: false })], [seg(new Uint8Array([1, 2, 3]), false)], { listId: 2 }));
  const s = expectSense(r2, 0x0a, 0x26, 0x0a);
  assert.equal(s.commandSpecific! & 0xffff, 0);
  assert.equal(tapeDev.objects.length, 2, 'inexact segment rejected before any write');
});

test('inline data beyond INLINE DATA LENGTH → 0A/26/0B; a block op on a tape → 0A/26/0C', async () => {
  const tape = new TestLu({ tape: new MemoryTape() }, 16);
  const lu = disk(64, 17);
  const t = targetOf([lu, tape]);
  expectSense(
    await xcopy(
      t,
      list(
        [tape.cscd()],
        [{ type: 0x04, cat: true, destination: 0, streamTransferLength: 4, inlineOffset: 4, byteCount: 8 }],
        { inline: new Uint8Array(8) },
      ),
    ),
    0x0a,
    0x26,
    0x0b,
  );
  expectSense(await xcopy(t, list([tape.cscd()], [b2b({ blockCount: 1 })])), 0x0a, 0x26, 0x0c);
  expectSense(
    await xcopy(t, list([lu.cscd()], [{ type: 0x10, cat: false, destination: 0, immed: false, count: 1 }])),
    0x0a,
    0x26,
    0x0c,
  );
});

test(
  'a short tape record during restore → COPY ABORTED underrun with the tape sense forwarded from the ' + 'source',
  async () => {
    const tapeDev = new MemoryTape();
    await tapeDev.write(new Uint8Array(4096));
    await tapeDev.write(new Uint8Array(1000));
    await tapeDev.rewind();
    const tape = new TestLu({ tape: tapeDev }, 18);
    const lu = disk(64, 19);
    const t = targetOf([lu, tape]);
    const r = await xcopy(
      t,
      list(
        [tape.cscd(), lu.cscd()],
        [{ type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: 4096, blockCount: 16, lba: 0 }],
      ),
    );
    const s = expectSense(r, 0x0a, 0x0d, 0x04);
    assert.equal(s.commandSpecific! >>> 24, 18, 'source sense offset');
    const inner = decodeSense(r.sense!.subarray(19));
    assert.equal(inner.ili, true);
    assert.equal(inner.info, 4096 - 1000);
    assert.equal(s.info, 8, 'residual: 8 of 16 destination blocks not written');
  },
);

test('libiscsi CopyStatus and held status per I_T nexus', async () => {
  const lu = disk(4096, 20);
  const t = targetOf([lu]);
  const n1 = nexus('400000000001');
  const n2 = nexus('400000000002');
  expectSense(await send(t, buildReceiveCopyResults(0, 1, 1024), undefined, { nexus: n1 }), 5, 0x24, 0);
  assert.equal((await xcopy(t, list([lu.cscd()], [b2b()]), { nexus: n1 })).status, ScsiStatus.GOOD);
  // The other nexus sees nothing.
  expectSense(await send(t, buildReceiveCopyResults(0, 1, 1024), undefined, { nexus: n2 }), 5, 0x24, 0);
  const r = await send(t, buildReceiveCopyResults(0, 1, 1024), undefined, { nexus: n1 });
  assert.equal(r.status, ScsiStatus.GOOD);
  const d = r.dataIn!;
  assert.equal(d.length, 12);
  assert.equal(new DataView(d.buffer, d.byteOffset).getUint32(0), 8);
  assert.equal(d[4], 0x01); // completed without errors
  assert.equal((d[5] << 8) | d[6], 1);
  assert.equal(d[7], 0);
  assert.equal(new DataView(d.buffer, d.byteOffset).getUint32(8), 16 * 512);
  // Reported once.
  expectSense(await send(t, buildReceiveCopyResults(0, 1, 1024), undefined, { nexus: n1 }), 5, 0x24, 0);
});

test('failed copies keep FAILED SEGMENT DETAILS with the sense; nexus loss and reset drop held state', async () => {
  const lu = disk(64, 21);
  const t = targetOf([lu]);
  const n1 = nexus('400000000003');
  const r = await xcopy(t, list([lu.cscd()], [b2b({ destinationLba: 60 })], { listId: 9 }), { nexus: n1 });
  expectSense(r, 0x0a, 0x0d, 0x02);
  const st = await send(t, buildReceiveCopyResults(0, 9, 1024), undefined, { nexus: n1 });
  assert.equal(decodeCopyStatus(st.dataIn!).status, CopyManagerStatus.ERROR);
  const fd = await send(t, buildReceiveCopyResults(4, 9, 1024), undefined, { nexus: n1 });
  assert.equal(fd.status, ScsiStatus.GOOD);
  const d = fd.dataIn!;
  assert.equal(d[56], ScsiStatus.CHECK_CONDITION);
  const len = (d[58] << 8) | d[59];
  assert.deepEqual(d.subarray(60, 60 + len), r.sense);
  // Held again, then the nexus goes away.
  await xcopy(t, list([lu.cscd()], [b2b({ destinationLba: 60 })], { listId: 10 }), { nexus: n1 });
  lu.nexusLost(n1);
  expectSense(await send(t, buildReceiveCopyResults(0, 10, 1024), undefined, { nexus: n1 }), 5, 0x24, 0);
  await xcopy(t, list([lu.cscd()], [b2b({ destinationLba: 60 })], { listId: 11 }), { nexus: n1 });
  lu.reset();
  expectSense(await send(t, buildReceiveCopyResults(0, 11, 1024), undefined, { nexus: n1 }), 5, 0x24, 0);
});

/** A device whose writes wait until released: lets a test look at a copy in flight. */
class GatedDevice extends MemoryDevice {
  gate: Promise<void> = Promise.resolve();
  writesSeen = 0;
  override async write(lba: number, data: Uint8Array): Promise<void> {
    this.writesSeen++;
    await this.gate;
    return super.write(lba, data);
  }
}

test(
  'progress is visible while running; a duplicate list id gets OPERATION IN PROGRESS; abort stops the ' + 'copy',
  async () => {
    const dev = new GatedDevice(512, 8192);
    dev.bytes.set(random(dev.bytes.length, 22));
    const lu = new TestLu({ block: dev }, 23, { chunkBytes: 64 * 1024 });
    const t = targetOf([lu]);
    let open!: () => void;
    dev.gate = new Promise((r) => (open = r));
    const ac = new AbortController();
    const running = xcopy(
      t,
      list([lu.cscd()], [b2b({ blockCount: 4096, sourceLba: 0, destinationLba: 4096 })], { listId: 5 }),
      { signal: ac.signal },
    );
    while (dev.writesSeen === 0) await new Promise((r) => setImmediate(r));
    const st = await send(t, buildReceiveCopyResults(0, 5, 1024));
    assert.equal(decodeCopyStatus(st.dataIn!).status, CopyManagerStatus.IN_PROGRESS, 'in progress');
    expectSense(await xcopy(t, list([lu.cscd()], [b2b()], { listId: 5 })), 5, 0x00, 0x16);
    ac.abort(new Error('ABORT TASK'));
    open();
    const r = await running;
    expectSense(r, 0x0b, 0, 0);
    assert.equal(lu.copyManager.activeCopies, 0);
    const written = dev.writesSeen;
    assert.ok(written < 4096 / 128, `stopped early (${written} writes)`);
  },
);

test('libiscsi OpParams/DescrLimits: RCR 03h and the limits it reports hold', async () => {
  const lu = disk(4096, 24);
  const t = targetOf([lu]);
  const r = await send(t, buildReceiveCopyResults(3, 0, 1024));
  assert.equal(r.status, ScsiStatus.GOOD);
  const d = r.dataIn!;
  const dv = new DataView(d.buffer, d.byteOffset);
  assert.ok(dv.getUint32(0) >= 40);
  assert.equal(dv.getUint32(0), d.length - 4);
  assert.deepEqual(d, operatingParameters(lu.copyManager.limits));
  const maxCscd = dv.getUint16(8);
  const maxSeg = dv.getUint16(10);
  const maxList = dv.getUint32(12);
  const tooManyCscds = list(
    Array.from({ length: maxCscd + 1 }, () => lu.cscd()),
    [b2b()],
  );
  expectSense(await xcopy(t, tooManyCscds), 5, 0x26, 0x06);
  const tooManySegs = list(
    [lu.cscd()],
    Array.from({ length: maxSeg + 1 }, () => b2b()),
  );
  expectSense(await xcopy(t, tooManySegs), 5, 0x26, 0x08);
  const segsNeeded = Math.ceil((maxList - (maxCscd + 1) * 32) / 28) + 1;
  const tooLong = list(
    Array.from({ length: maxCscd + 1 }, () => lu.cscd()),
    Array.from({ length: segsNeeded }, () => b2b()),
  );
  expectSense(await xcopy(t, tooLong), 5, 0x1a, 0x00);
  // DescrType (b): a bare 03h header.
  const bare = list([lu.cscd()], [b2b()]);
  bare[16 + 32] = 0x03;
  expectSense(await xcopy(t, bare), 5, 0x26, 0x09);
});

test('VPD 8Fh: descriptors 0001h, 0004h, 0008h, 000Ch, 8001h, 9101h, C001h, each padded to 4', () => {
  const p = thirdPartyCopyVpdPage(0);
  assert.equal(p[1], 0x8f);
  const dv = new DataView(p.buffer);
  assert.equal(dv.getUint16(2), p.length - 4);
  const types: number[] = [];
  for (let off = 4; off < p.length;) {
    const len = dv.getUint16(off + 2);
    assert.equal((4 + len) % 4, 0);
    types.push(dv.getUint16(off));
    if (dv.getUint16(off) === 0x0001) {
      const body = p.subarray(off + 5, off + 5 + p[off + 4]);
      assert.deepEqual([...body], [0x83, 1, 0, 0x84, 4, 0, 1, 3, 4]);
    }
    if (dv.getUint16(off) === 0x0004) assert.equal(len, 0x1c);
    if (dv.getUint16(off) === 0x8001) assert.equal(len, 0x20);
    off += 4 + len;
  }
  assert.deepEqual(types, [0x0001, 0x0004, 0x0008, 0x000c, 0x8001, 0x9101, 0xc001]);
});

test('held results nobody reads expire after heldForMs', async () => {
  let now = 1_000_000;
  const dev = new MemoryDevice(512, 64);
  const lu = new TestLu({ block: dev }, 40, { heldForMs: 60_000, now: () => now });
  const t = targetOf([lu]);
  const failing = list([lu.cscd()], [b2b({ destinationLba: 60 })], { listId: 12 });
  expectSense(await xcopy(t, failing), 0x0a, 0x0d, 0x02);
  now += 59_000;
  assert.equal((await send(t, buildReceiveCopyResults(0, 12, 1024))).status, ScsiStatus.GOOD, 'still held');
  now += 2_000;
  expectSense(await send(t, buildReceiveCopyResults(0, 12, 1024)), 5, 0x24, 0);
});
