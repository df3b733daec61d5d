import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkPiece,
  dataBlocksFor,
  DEFAULT_TAPE_BLOCK_BYTES,
  extentPositions,
  streamBytesOf,
  tapePosition,
} from './geometry.ts';
import { TapeFormatError } from './errors.ts';
import type { SetTrailer } from './records.ts';
import { arbHeader, packExtents, sampleHeader, sampleTrailer } from './testing.ts';

test('dataBlocksFor rounds up to whole tape blocks and checks the block size', () => {
  const b = DEFAULT_TAPE_BLOCK_BYTES;
  assert.equal(b, 262144);
  assert.deepEqual(
    [0, 1, b - 1, b, b + 1, 10 * b].map((n) => dataBlocksFor(n, b)),
    [0, 1, 1, 1, 2, 10],
  );
  assert.throws(() => dataBlocksFor(1, 1000), TapeFormatError);
  assert.throws(() => dataBlocksFor(1, 0), TapeFormatError);
  assert.throws(() => dataBlocksFor(-1, 512), RangeError);
});

test('tapePosition: first piece and a continuation piece', () => {
  const b = 2048;
  const first = { streamStart: 0, dataBlockId: 3 };
  assert.deepEqual(tapePosition(first, 0, b), { blockId: 3, offset: 0 });
  assert.deepEqual(tapePosition(first, b - 1, b), { blockId: 3, offset: b - 1 });
  assert.deepEqual(tapePosition(first, b, b), { blockId: 4, offset: 0 });
  assert.deepEqual(tapePosition(first, 5 * b + 7, b), { blockId: 8, offset: 7 });
  // Piece 2 on another cartridge: label 0, filemark 1, header 2, data from block 3 = stream byte 4096.
  const second = { streamStart: 4096, dataBlockId: 3 };
  assert.deepEqual(tapePosition(second, 4096, b), { blockId: 3, offset: 0 });
  assert.deepEqual(tapePosition(second, 4608, b), { blockId: 3, offset: 512 });
  assert.deepEqual(tapePosition(second, 4096 + 2 * b + 1, b), { blockId: 5, offset: 1 });
  assert.throws(() => tapePosition(second, 4095, b), RangeError);
});

test('extentPositions: a set split after two tape blocks, then its continuation', () => {
  // 512-byte disk blocks, 2048-byte tape blocks; stream: [100,+3) @0, [500,+6) @1536, [20,+2) @4608.
  const base = { diskBlockBytes: 512, tapeBlockBytes: 2048 };
  const extents = packExtents(
    [
      [100, 3],
      [500, 6],
      [20, 2],
    ],
    512,
  );
  const h1 = sampleHeader({ ...base, extents, piece: { streamStart: 0, dataBlockId: 3 } });
  assert.deepEqual(extentPositions(h1), [
    { lba: 100, blocks: 3, streamOffset: 0, blockId: 3, offset: 0 },
    { lba: 500, blocks: 6, streamOffset: 1536, blockId: 3, offset: 1536 },
    { lba: 20, blocks: 2, streamOffset: 4608, blockId: 5, offset: 512 },
  ]);
  // The first cartridge filled after 2 tape blocks: its trailer says streamEnd 4096.
  assert.deepEqual(extentPositions(h1, 4096), [
    { lba: 100, blocks: 3, streamOffset: 0, blockId: 3, offset: 0 },
    { lba: 500, blocks: 5, streamOffset: 1536, blockId: 3, offset: 1536 },
  ]);
  const h2 = sampleHeader({ ...base, extents, sequence: 2, piece: { streamStart: 4096, dataBlockId: 3 } });
  assert.deepEqual(extentPositions(h2), [
    { lba: 505, blocks: 1, streamOffset: 4096, blockId: 3, offset: 0 },
    { lba: 20, blocks: 2, streamOffset: 4608, blockId: 3, offset: 512 },
  ]);
  assert.throws(() => extentPositions(h1, 4000), RangeError);
});

test('property: the pieces of a split set hold every disk block once, where tapePosition says', () => {
  fc.assert(
    fc.property(arbHeader, fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(999), fc.nat(999), (h0, at, id1, id2) => {
      const dbb = h0.diskBlockBytes;
      const total = h0.extents.reduce((n, e) => n + e.blocks, 0) * dbb;
      const split = Math.floor((at * total) / dbb) * dbb;
      const h1 = { ...h0, sequence: 1, piece: { streamStart: 0, dataBlockId: id1 } };
      const h2 = { ...h0, sequence: 2, piece: { streamStart: split, dataBlockId: id2 } };
      const parts = [...extentPositions(h1, split), ...extentPositions(h2)];
      // Re-joined parts give back the extents' blocks in stream order, with no gap or overlap.
      let stream = 0;
      for (const p of parts) {
        assert.equal(p.streamOffset, stream);
        const e = h0.extents.find((x) => x.streamOffset <= stream && stream < x.streamOffset + x.blocks * dbb);
        assert.ok(e, `no extent holds stream byte ${stream}`);
        assert.equal(p.lba, e.lba + (stream - e.streamOffset) / dbb);
        const piece = stream < split ? h1.piece : h2.piece;
        const rel = stream - piece.streamStart;
        assert.equal(p.blockId * h0.tapeBlockBytes + p.offset, piece.dataBlockId * h0.tapeBlockBytes + rel);
        stream += p.blocks * dbb;
      }
      assert.equal(stream, total);
    }),
    { numRuns: 300 },
  );
});

test('checkPiece: a trailer must close the piece its header opened', () => {
  const h = sampleHeader({ tapeBlockBytes: 2048 });
  const streamBytes = streamBytesOf(h);
  assert.equal(streamBytes, 11 * 512);
  const t = sampleTrailer({ piece: { streamStart: 0, streamEnd: streamBytes, dataBlocks: 3 }, streamBytes });
  checkPiece(h, t);
  const bad = (over: Partial<SetTrailer>, field: string) =>
    assert.throws(
      () => checkPiece(h, { ...t, ...over }),
      (e) => e instanceof TapeFormatError && e.problem === 'piece-mismatch' && e.field === field,
    );
  bad({ setUuid: '00000000-0000-4000-8000-000000000000' }, 'setUuid');
  bad({ sequence: 2 }, 'sequence');
  bad({ streamBytes: streamBytes + 512 }, 'streamBytes');
  bad({ piece: { streamStart: 0, streamEnd: streamBytes, dataBlocks: 2 } }, 'piece.dataBlocks');
  bad({ piece: { streamStart: 0, streamEnd: 4000, dataBlocks: 2 } }, 'piece.streamEnd');
  // A continuation piece that holds the last 1536 bytes.
  const h2 = { ...h, sequence: 2, piece: { streamStart: 4096, dataBlockId: 3 } };
  checkPiece(h2, { ...t, sequence: 2, piece: { streamStart: 4096, streamEnd: streamBytes, dataBlocks: 1 } });
});
