import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryDevice } from '../block/memory-device.ts';
import { DEFAULT_LIMITS, decodeXcopyParameterList, type XcopyLimits } from './descriptors.ts';
import { buildStreamLists, streamExtents, ListBuildError, type StreamListsInput } from './list-builder.ts';
import { TestLu, targetOf, xcopy, GOOD } from './testing/harness.ts';
import { MemoryTape } from './testing/memory-tape.ts';

// The lists run through a real copy manager (in process) onto a fixed-block memory tape and
// back: whatever the limits, the tape holds header, the extents packed and padded, trailer and
// a filemark, and the restore writes exactly the extents back.

const BS = 512;
const B = 4096;

function world(diskBlocks: number) {
  const src = new MemoryDevice(BS, diskBlocks);
  for (let i = 0; i < src.bytes.length; i++) src.bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  const dst = new MemoryDevice(BS, diskBlocks);
  const tape = new MemoryTape(B);
  const luns = [new TestLu({ block: src }, 1), new TestLu({ tape }, 2), new TestLu({ block: dst }, 3)];
  return { src, dst, tape, luns, target: targetOf(luns) };
}

function record(fill: number, blocks: number): Uint8Array {
  return new Uint8Array(blocks * B).fill(fill);
}

async function run(target: ReturnType<typeof targetOf>, lists: ReturnType<typeof buildStreamLists>, lun: number) {
  for (const l of lists) {
    const r = await xcopy(target, l.list, { lun });
    assert.equal(r.status ?? GOOD, GOOD, `list ${l.listId}: ${JSON.stringify(r)}`);
  }
}

async function roundTrip(
  extentsIn: Array<{ lba: number; blocks: number }>,
  limits: XcopyLimits,
  maxListBytes?: number,
  headerBlocks = 1,
) {
  const w = world(4096);
  const extents = streamExtents(extentsIn, BS);
  const streamBytes = extents.reduce((n, e) => n + e.blocks * BS, 0);
  const header = record(0xaa, headerBlocks);
  const trailer = record(0xbb, 1);
  const base: Omit<StreamListsInput, 'direction' | 'disk'> = {
    tape: w.luns[1].cscd(),
    diskBlockBytes: BS,
    tapeBlockBytes: B,
    extents,
    streamStart: 0,
    streamEnd: streamBytes,
    limits,
    maxListBytes,
    listId: (i) => (i % 200) + 1,
  };
  const backup = buildStreamLists({
    ...base,
    direction: 'backup',
    disk: w.luns[0].cscd(),
    before: header,
    after: trailer,
    filemark: true,
  });
  for (const l of backup) {
    const d = decodeXcopyParameterList(l.list, limits); // within the limits the copy manager checks
    assert.ok(d.segments.length <= limits.maxSegmentCount);
  }
  await run(w.target, backup, 1);
  // Tape: header blocks, data blocks (packed, last one padded), trailer, filemark.
  const dataBlocks = Math.ceil(streamBytes / B);
  assert.equal(w.tape.objects.length, headerBlocks + dataBlocks + 1 + 1);
  assert.equal(w.tape.objects.at(-1), 'FM');
  assert.deepEqual(w.tape.objects[0], header.subarray(0, B));
  assert.deepEqual(w.tape.objects.at(-2), trailer);
  const stream = new Uint8Array(dataBlocks * B);
  for (const e of extents) stream.set(w.src.bytes.subarray(e.lba * BS, (e.lba + e.blocks) * BS), e.streamOffset);
  const onTape = w.tape.data().subarray(headerBlocks * B, (headerBlocks + dataBlocks) * B);
  assert.deepEqual(Buffer.from(onTape), Buffer.from(stream), 'data blocks = extents back to back, zero padded');
  assert.equal(
    backup.reduce((n, l) => n + l.tapeBlocks, 0),
    headerBlocks + dataBlocks + 1,
  );

  // Restore: tape positioned at the data, the extents land at their LBAs and nothing else changes.
  await w.tape.locate(headerBlocks);
  const restore = buildStreamLists({ ...base, direction: 'restore', disk: w.luns[2].cscd() });
  await run(w.target, restore, 1);
  const expected = new Uint8Array(w.dst.bytes.length);
  for (const e of extents) expected.set(w.src.bytes.subarray(e.lba * BS, (e.lba + e.blocks) * BS), e.lba * BS);
  assert.deepEqual(Buffer.from(w.dst.bytes), Buffer.from(expected));
  return { backup, restore };
}

test('list builder: one list when the limits allow; the whole LUN as one extent', async () => {
  const { backup, restore } = await roundTrip([{ lba: 0, blocks: 4096 }], DEFAULT_LIMITS);
  assert.equal(backup.length, 1);
  assert.equal(restore.length, 1);
});

test('list builder: a 16-bit block count splits an extent into several segments', async () => {
  const limits = { ...DEFAULT_LIMITS, maxSegmentLength: 100 * BS };
  const { backup } = await roundTrip([{ lba: 0, blocks: 1000 }], limits);
  assert.ok(backup[0].segments >= 10 + 3);
});

test(
  'list builder: a long extent is cut at whole transfers (no residual to stage), else at whole tape ' + 'blocks',
  async () => {
    const cuts = (maxSegmentLength: number, blocksPerTransfer?: number) => {
      const w = world(4096);
      const lists = buildStreamLists({
        direction: 'backup',
        disk: w.luns[0].cscd(),
        tape: w.luns[1].cscd(),
        diskBlockBytes: BS,
        tapeBlockBytes: B,
        extents: streamExtents([{ lba: 0, blocks: 4000 }], BS),
        streamStart: 0,
        streamEnd: 4000 * BS,
        limits: { ...DEFAULT_LIMITS, maxSegmentLength },
        blocksPerTransfer,
        listId: (i) => i + 1,
      });
      const segs = lists.flatMap((l) => decodeXcopyParameterList(l.list, DEFAULT_LIMITS).segments);
      return segs.map((x) => (x as { blockCount: number }).blockCount);
    };
    // 4 tape blocks of 4 KiB per transfer = 32 disk blocks; the limit, 100 blocks, is cut to 96.
    const a = cuts(100 * BS, 4);
    assert.deepEqual(a.slice(0, -1), new Array(a.length - 1).fill(96));
    assert.equal(
      a.reduce((n, x) => n + x, 0),
      4000,
    );
    // A limit under one transfer (20 blocks): whole tape blocks (16).
    const b = cuts(20 * BS, 4);
    assert.deepEqual(b.slice(0, -1), new Array(b.length - 1).fill(16));
    // Under one tape block: the limit itself (lists, which end on tape blocks, cut some shorter).
    const c = cuts(5 * BS, 4);
    assert.ok(c.every((n) => n <= 5) && c.filter((n) => n === 5).length > c.length / 2, JSON.stringify(c));
    assert.equal(
      c.reduce((n, x) => n + x, 0),
      4000,
    );
  },
);

test('list builder: few segments per list and small lists: lists end on tape blocks and pack across', async () => {
  const limits = { ...DEFAULT_LIMITS, maxSegmentCount: 6, maxInlineDataLength: B };
  const extents = [
    { lba: 3, blocks: 5 },
    { lba: 100, blocks: 17 },
    { lba: 200, blocks: 1 },
    { lba: 300, blocks: 64 },
    { lba: 1000, blocks: 9 },
    { lba: 2000, blocks: 3 },
    { lba: 2100, blocks: 33 },
  ];
  const { backup } = await roundTrip(extents, limits, 2 * B, 3);
  assert.ok(backup.length > 4, `${backup.length} lists`);
  for (const l of backup.slice(0, -1)) assert.equal(l.streamEnd % B, 0, 'a list ends on a tape block');
});

test('list builder: an empty stream (an incremental with no change) writes header, trailer and filemark', async () => {
  const w = world(16);
  const lists = buildStreamLists({
    direction: 'backup',
    disk: w.luns[0].cscd(),
    tape: w.luns[1].cscd(),
    diskBlockBytes: BS,
    tapeBlockBytes: B,
    extents: [],
    streamStart: 0,
    streamEnd: 0,
    before: record(1, 1),
    after: record(2, 1),
    filemark: true,
    limits: DEFAULT_LIMITS,
    listId: () => 1,
  });
  await run(w.target, lists, 1);
  assert.deepEqual(
    w.tape.objects.map((o) => (o === 'FM' ? 'FM' : o[0])),
    [1, 2, 'FM'],
  );
});

test('list builder: any extents and limits round-trip exactly (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 40 }), blocks: fc.integer({ min: 1, max: 70 }) }), {
        minLength: 1,
        maxLength: 25,
      }),
      fc.integer({ min: 4, max: 40 }),
      fc.integer({ min: 1, max: 6 }),
      async (runs, maxSegmentCount, listBlocks) => {
        let lba = 0;
        const extents = runs.map((r) => {
          lba += r.gap;
          const e = { lba, blocks: r.blocks };
          lba += r.blocks;
          return e;
        });
        if (lba > 4096) return;
        await roundTrip(
          extents,
          { ...DEFAULT_LIMITS, maxSegmentCount, maxSegmentLength: 33 * BS, maxInlineDataLength: B },
          listBlocks * B,
        );
      },
    ),
    { numRuns: 60 },
  );
});

test('list builder: limits it cannot meet are named', () => {
  const w = world(16);
  const base = {
    direction: 'backup' as const,
    disk: w.luns[0].cscd(),
    tape: w.luns[1].cscd(),
    diskBlockBytes: BS,
    tapeBlockBytes: B,
    extents: streamExtents([{ lba: 0, blocks: 8 }], BS),
    streamStart: 0,
    streamEnd: 8 * BS,
    listId: () => 1,
  };
  assert.throws(
    () => buildStreamLists({ ...base, limits: { ...DEFAULT_LIMITS, maxInlineDataLength: 1024 }, before: record(1, 1) }),
    /inline data.*smaller tape block/,
  );
  assert.throws(
    () => buildStreamLists({ ...base, limits: DEFAULT_LIMITS, before: new Uint8Array(100) }),
    ListBuildError,
  );
  assert.throws(() => buildStreamLists({ ...base, limits: DEFAULT_LIMITS, streamStart: 512 }), /not on a tape block/);
});
