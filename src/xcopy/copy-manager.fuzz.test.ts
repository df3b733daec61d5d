import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryDevice } from '../block/memory-device.ts';
import { ScsiStatus, type ScsiResult } from '../scsi/task.ts';
import {
  decodeXcopyParameterList,
  encodeXcopyParameterList,
  type SegmentInput,
  type XcopyParameterList,
} from './descriptors.ts';
import { MemoryTape } from './testing/memory-tape.ts';
import { TestLu, targetOf, xcopy } from './testing/harness.ts';

// Thousands of generated and then mutated EXTENDED COPY parameter lists against a target with
// two disks and two tapes. Every one must end in GOOD or a well-formed CHECK CONDITION (never
// the 04/44/00 a bug becomes), and no disk block outside what the list's segments name may change.

const BLOCKS = 320;
const DISK_A = 0;
const DISK_B = 1;
const TAPE_V = 2;
const TAPE_F = 3;

function world(seed: number) {
  const a = new MemoryDevice(512, BLOCKS);
  const b = new MemoryDevice(512, BLOCKS);
  let x = seed | 1;
  for (const d of [a, b]) {
    for (let i = 0; i < d.bytes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      d.bytes[i] = x & 0xff;
    }
  }
  const tv = new MemoryTape(0);
  const tf = new MemoryTape(512);
  for (let i = 0; i < 12; i++) tv.objects.push(i % 5 === 4 ? 'FM' : new Uint8Array(256 * (1 + (i % 4))).fill(i));
  for (let i = 0; i < 40; i++) tf.objects.push(i % 13 === 12 ? 'FM' : new Uint8Array(512).fill(100 + i));
  const lus = [
    new TestLu({ block: a }, 1),
    new TestLu({ block: b }, 2),
    new TestLu({ tape: tv }, 3),
    new TestLu({ tape: tf }, 4),
  ];
  return { a, b, lus, target: targetOf(lus) };
}

const id = (n: number) => fc.constantFrom(n, 0xffff, 0, 1, 2, 3, 4);
const lba = fc.integer({ min: 0, max: BLOCKS + 8 });
const segment: fc.Arbitrary<SegmentInput> = fc.oneof(
  fc.record({
    type: fc.constant(0x02 as const),
    cat: fc.boolean(),
    dc: fc.boolean(),
    source: id(DISK_A),
    destination: id(DISK_B),
    blockCount: fc.integer({ min: 0, max: 200 }),
    sourceLba: lba,
    destinationLba: lba,
  }),
  fc.record({
    type: fc.constant(0x00 as const),
    cat: fc.boolean(),
    source: id(DISK_A),
    destination: id(TAPE_V),
    streamTransferLength: fc.constantFrom(1, 2, 256, 512, 1024),
    blockCount: fc.integer({ min: 0, max: 20 }),
    lba,
  }),
  fc.record({
    type: fc.constant(0x01 as const),
    cat: fc.boolean(),
    source: id(TAPE_F),
    destination: id(DISK_B),
    streamTransferLength: fc.constantFrom(1, 2, 256, 512, 1024),
    blockCount: fc.integer({ min: 0, max: 6 }),
    lba,
  }),
  fc.record({
    type: fc.constant(0x04 as const),
    cat: fc.boolean(),
    destination: id(TAPE_V),
    streamTransferLength: fc.integer({ min: 1, max: 64 }),
    inlineOffset: fc.integer({ min: 0, max: 8 }).map((n) => n * 4),
    byteCount: fc.integer({ min: 0, max: 48 }),
  }),
  fc.record({
    type: fc.constant(0x05 as const),
    cat: fc.boolean(),
    destination: id(TAPE_V),
    streamTransferLength: fc.integer({ min: 1, max: 64 }),
    data: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.record({
    type: fc.constant(0x06 as const),
    cat: fc.boolean(),
    source: id(TAPE_V),
    streamTransferLength: fc.constantFrom(1, 256, 512, 768),
    byteCount: fc.integer({ min: 0, max: 3000 }),
  }),
  fc.record({ type: fc.constant(0x07 as const), cat: fc.boolean(), source: id(DISK_A), tur: fc.boolean() }),
  fc.record({
    type: fc.constant(0x10 as const),
    cat: fc.constant(false),
    destination: id(TAPE_V),
    immed: fc.boolean(),
    count: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    type: fc.constant(0x11 as const),
    cat: fc.constant(false),
    destination: id(TAPE_F),
    code: fc.constantFrom(0, 1, 3, 2),
    count: fc.integer({ min: -5, max: 5 }),
  }),
  fc.record({
    type: fc.constant(0x12 as const),
    cat: fc.constant(false),
    destination: id(TAPE_F),
    objectId: fc.integer({ min: 0, max: 50 }),
  }),
);

const mutation = fc.record({
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  kind: fc.constantFrom('set', 'xor', 'set', 'truncate', 'none'),
});

const input = fc.record({
  listId: fc.integer({ min: 0, max: 255 }),
  usage: fc.constantFrom(0, 2, 3, 1),
  pads: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  segments: fc.array(segment, { minLength: 1, maxLength: 6 }),
  inline: fc.uint8Array({ maxLength: 64 }),
  mutations: fc.array(mutation, { maxLength: 4 }),
  lun: fc.integer({ min: 0, max: 3 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

function wellFormed(r: ScsiResult, segments: number | undefined): void {
  if (r.status === ScsiStatus.GOOD) return;
  assert.equal(r.status, ScsiStatus.CHECK_CONDITION, `status ${r.status}`);
  const s = r.sense!;
  assert.ok(s.length >= 18 && s.length <= 252, `sense length ${s.length}`);
  assert.equal(s[0] & 0x7f, 0x70);
  assert.equal(s[7], s.length - 8, 'ADDITIONAL SENSE LENGTH');
  const key = s[2] & 0x0f;
  assert.ok([0x05, 0x0a, 0x0b].includes(key), `sense key ${key.toString(16)}`);
  assert.ok(!(s[12] === 0x44 && s[13] === 0x00), 'internal error (a bug) reached the initiator');
  if (key === 0x0a) {
    assert.ok(segments !== undefined, 'COPY ABORTED for a list that does not decode');
    const segNo = (s[10] << 8) | s[11];
    assert.ok(segNo < segments, `segment number ${segNo} of ${segments}`);
    const srcOff = s[8];
    const dstOff = s[9];
    for (const off of [srcOff, dstOff]) if (off) assert.ok(off === 18 && s.length > 19, 'forwarded sense offset');
  }
}

/** Blocks each disk may have written, from the segments alone (generous for residual data). */
function allowedWrites(list: XcopyParameterList, lun: number): Map<number, Array<[number, number]>> {
  const out = new Map<number, Array<[number, number]>>([
    [DISK_A, []],
    [DISK_B, []],
  ]);
  const cscdLu = (cid: number): number | undefined => {
    if (cid === 0xffff) return lun;
    const c = list.cscds[cid];
    if (!c) return undefined;
    const seed = (c.designator[14] << 8) | c.designator[15];
    const ok =
      c.designator.length === 16 &&
      c.designator[0] === 0x60 &&
      c.designator[1] === 0x01 &&
      c.designator[2] === 0x40 &&
      c.designator[3] === 0x50;
    return ok && seed >= 1 && seed <= 4 ? seed - 1 : undefined;
  };
  // Residual destination data is less than one destination unit of an earlier segment.
  let maxUnit = 512;
  for (const s of list.segments)
    if ('streamTransferLength' in s) maxUnit = Math.max(maxUnit, s.streamTransferLength * 512);
  const slack = Math.ceil(maxUnit / 512) + 1;
  for (const s of list.segments) {
    if (s.type !== 0x01 && s.type !== 0x02) continue;
    const d = cscdLu(s.destination);
    if (d === undefined || !out.has(d)) continue;
    const start = 'destinationLba' in s ? s.destinationLba : s.lba;
    const exact = !('dc' in s) || s.dc;
    out.get(d)!.push([start, start + s.blockCount + (exact ? 0 : slack)]);
  }
  return out;
}

test('mutated EXTENDED COPY lists: well-formed status, nothing written outside the named blocks', async () => {
  await fc.assert(
    fc.asyncProperty(input, async (inp) => {
      const w = world(inp.seed);
      const cscds = w.lus.map((lu, i) => lu.cscd({ pad: inp.pads[i] }));
      let bytes = encodeXcopyParameterList({
        header: { listId: inp.listId, str: false, listIdUsage: inp.usage, priority: 0 },
        cscds,
        segments: inp.segments,
        inline: inp.inline,
      });
      let pll = bytes.length;
      for (const m of inp.mutations) {
        if (m.kind === 'none') continue;
        if (m.kind === 'truncate') {
          pll = m.at % (bytes.length + 1);
          continue;
        }
        // Bias mutations toward the header and descriptors, where the decisions are.
        const at = m.at % Math.min(bytes.length, 16 + 32 * 4 + 64);
        bytes = bytes.slice();
        bytes[at] = m.kind === 'set' ? m.value : bytes[at] ^ (1 << (m.value % 8));
      }
      const sent = bytes.subarray(0, pll);
      let decoded: XcopyParameterList | undefined;
      try {
        decoded = decodeXcopyParameterList(sent);
      } catch {
        decoded = undefined;
      }
      const before = [w.a.bytes.slice(), w.b.bytes.slice()];
      const r = await xcopy(w.target, sent, { lun: inp.lun });
      wellFormed(r, decoded?.segments.length);
      if (r.status === ScsiStatus.GOOD && pll >= 16) assert.ok(decoded, 'GOOD for a list that does not decode');
      const allowed = decoded ? allowedWrites(decoded, inp.lun) : new Map<number, Array<[number, number]>>();
      for (const [disk, dev] of [
        [DISK_A, w.a],
        [DISK_B, w.b],
      ] as const) {
        const old = before[disk];
        for (let blk = 0; blk < BLOCKS; blk++) {
          const o = blk * 512;
          let same = true;
          for (let i = 0; i < 512; i++) {
            if (dev.bytes[o + i] !== old[o + i]) {
              same = false;
              break;
            }
          }
          if (same) continue;
          const ranges = allowed.get(disk) ?? [];
          assert.ok(
            ranges.some(([s, e]) => blk >= s && blk < e),
            `disk ${disk} block ${blk} changed outside ${JSON.stringify(ranges)}`,
          );
        }
      }
    }),
    { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? 0x5eed), endOnFailure: true },
  );
});
