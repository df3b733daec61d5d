import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Framer, FramingError, pduPieces } from './framer.ts';
import { Opcode, type RawPdu, ittOf } from './pdu/bhs.ts';
import { encodeNop } from './pdu/nop.ts';
import { decodeKeyValues, encodeKeyValues, assertNoDuplicates, TextKeyError } from './text-keys.ts';
import {
  answerOffers,
  applyAnswers,
  defaultParams,
  DEFAULT_TARGET_LIMITS,
  initiatorOffers,
  DEFAULT_INITIATOR_OFFER,
} from './negotiation.ts';

function nop(data: number[], itt: number): RawPdu {
  return encodeNop(Opcode.NOP_OUT, {
    immediate: true,
    lun: 0,
    itt,
    ttt: 0xffffffff,
    sn: 1,
    expSN: 1,
    maxCmdSN: 0,
    data: Uint8Array.from(data),
  });
}

function wire(pdus: RawPdu[], hd: boolean, dd: boolean): Buffer {
  return Buffer.concat(pdus.flatMap((p) => pduPieces(p, hd, dd)));
}

function frameAll(chunks: Buffer[], hd: boolean, dd: boolean): Array<{ itt: number; data: number[] } | 'digest-fault'> {
  const f = new Framer({ headerDigest: hd, dataDigest: dd, maxDataSegment: 1 << 16 });
  const out: Array<{ itt: number; data: number[] } | 'digest-fault'> = [];
  for (const c of chunks)
    f.push(c, (p) => out.push('data' in p ? { itt: ittOf(p.bhs), data: [...p.data] } : 'digest-fault'));
  return out;
}

test('the framer yields the same PDUs whatever the stream is split at (with and without digests)', () => {
  const pdus = [nop([1, 2, 3, 4, 5], 1), nop([], 2), nop([9], 3)];
  for (const [hd, dd] of [
    [false, false],
    [true, true],
    [true, false],
  ] as const) {
    const bytes = wire(pdus, hd, dd);
    const expected = frameAll([bytes], hd, dd);
    assert.deepEqual(expected, [
      { itt: 1, data: [1, 2, 3, 4, 5] },
      { itt: 2, data: [] },
      { itt: 3, data: [9] },
    ]);
    for (let i = 1; i < bytes.length; i++) {
      for (const j of [i + 1, i + 7, bytes.length]) {
        if (j > bytes.length) continue;
        assert.deepEqual(
          frameAll([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)], hd, dd),
          expected,
          `split at ${i}/${j}`,
        );
      }
    }
    // one byte at a time
    assert.deepEqual(
      frameAll(
        [...bytes].map((b) => Buffer.of(b)),
        hd,
        dd,
      ),
      expected,
    );
  }
});

test('reads straight into the data destination (directTarget) frame the same PDUs as chunked pushes', () => {
  const big = Array.from({ length: 60000 }, (_, i) => (i * 13) & 0xff);
  const pdus = [nop([1, 2, 3], 1), nop(big, 2), nop([], 3), nop(big.slice(0, 4097), 4)];
  for (const [hd, dd] of [
    [false, false],
    [true, true],
  ] as const) {
    const bytes = wire(pdus, hd, dd);
    const expected = frameAll([bytes], hd, dd);
    for (const step of [1, 5, 4096, 30000]) {
      // A socket that reads at most `step` bytes at a time, into the framer's direct target
      // when it offers one, else into a scratch chunk.
      const f = new Framer({ headerDigest: hd, dataDigest: dd, maxDataSegment: 1 << 17 });
      const out: Array<{ itt: number; data: number[] } | 'digest-fault'> = [];
      const sink = (p: RawPdu | { bhs: Uint8Array }) =>
        out.push('data' in p ? { itt: ittOf(p.bhs), data: [...p.data] } : 'digest-fault');
      let direct = 0;
      for (let off = 0; off < bytes.length;) {
        const target = f.directTarget();
        const n = Math.min(step, bytes.length - off, target ? target.length : step);
        if (target) {
          target.set(bytes.subarray(off, off + n));
          f.pushedDirect(n, sink);
          direct += n;
        } else {
          f.push(Buffer.from(bytes.subarray(off, off + n)), sink);
        }
        off += n;
      }
      assert.deepEqual(out, expected, `step ${step}, digests ${hd}/${dd}`);
      assert.ok(direct > 0, `some bytes went straight to the destination (step ${step}, digests ${hd})`);
    }
  }
  const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegment: 1 << 16 });
  assert.equal(f.directTarget(), undefined, 'no data segment yet');
  assert.throws(() => f.pushedDirect(1, () => {}), FramingError);
});

test('a header digest mismatch breaks framing; a data digest mismatch is reported per PDU', () => {
  const bytes = wire([nop([1, 2, 3], 1), nop([4], 2)], true, true);
  const badHeader = Buffer.from(bytes);
  badHeader[20] ^= 1;
  assert.throws(() => frameAll([badHeader], true, true), FramingError);
  const badData = Buffer.from(bytes);
  badData[48 + 4] ^= 0xff; // first data byte
  assert.deepEqual(frameAll([badData], true, true), ['digest-fault', { itt: 2, data: [4] }]);
});

test('a data segment longer than MaxRecvDataSegmentLength is a framing error, before any allocation', () => {
  const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegment: 8192 });
  const bhs = Buffer.alloc(48);
  bhs[5] = 0xff; // 16 MiB
  assert.throws(() => f.push(bhs, () => {}), /exceeds MaxRecvDataSegmentLength/);
});

test('text keys keep order and repeats; duplicates are refused where the RFC says so', () => {
  const kv = decodeKeyValues(
    encodeKeyValues([
      ['TargetName', 'a'],
      ['TargetAddress', 'x'],
      ['TargetAddress', 'y'],
    ]),
  );
  assert.deepEqual(kv, [
    ['TargetName', 'a'],
    ['TargetAddress', 'x'],
    ['TargetAddress', 'y'],
  ]);
  assert.throws(() => assertNoDuplicates(kv), TextKeyError);
  assert.throws(() => decodeKeyValues(Buffer.from('novalue\0')), TextKeyError);
});

test('negotiation applies RFC 7143 result functions both ways', () => {
  const target = defaultParams();
  const offers = initiatorOffers({
    ...DEFAULT_INITIATOR_OFFER,
    headerDigest: true,
    maxBurstLength: 65536,
    initialR2T: true,
  });
  const answers = answerOffers(offers, target, { ...DEFAULT_TARGET_LIMITS, digests: ['CRC32C', 'None'] });
  const get = (k: string) => answers.find(([x]) => x === k)?.[1];
  assert.equal(get('HeaderDigest'), 'CRC32C');
  assert.equal(get('MaxBurstLength'), '65536', 'min');
  assert.equal(get('InitialR2T'), 'Yes', 'OR');
  assert.equal(get('ImmediateData'), 'Yes', 'AND');
  assert.equal(target.firstBurstLength, 65536, 'FirstBurstLength clamped to MaxBurstLength');
  assert.equal(target.peerMaxRecvDataSegmentLength, 262144);
  const bad = answerOffers(
    [
      ['MaxBurstLength', '12'],
      ['DataDigest', 'MD5'],
    ],
    defaultParams(),
    DEFAULT_TARGET_LIMITS,
  );
  assert.deepEqual(bad, [
    ['MaxBurstLength', 'Reject'],
    ['DataDigest', 'Reject'],
  ]);
  const init = defaultParams();
  applyAnswers(answers, init);
  assert.equal(init.headerDigest, true);
  assert.equal(init.maxBurstLength, 65536);
});

test('with a data target, a data segment spanning chunks lands in the given buffer in one copy', () => {
  const payload = Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const bytes = wire([nop(payload, 7), nop([1], 8)], false, false);
  for (const cut of [10, 48, 49, 500, 1047, 1048]) {
    const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegment: 1 << 16 });
    const sink = new Uint8Array(1000);
    f.dataTarget = (bhs) => (ittOf(bhs) === 7 ? sink : undefined);
    const got: RawPdu[] = [];
    f.push(bytes.subarray(0, cut), (p) => 'data' in p && got.push(p));
    f.push(bytes.subarray(cut), (p) => 'data' in p && got.push(p));
    assert.equal(got.length, 2, `cut ${cut}`);
    assert.deepEqual([...got[0].data], payload);
    if (cut < 1048) assert.equal(got[0].data, sink, 'delivered in the sink');
    assert.deepEqual([...sink].slice(0, cut < 1048 ? 1000 : 0), cut < 1048 ? payload : []);
    assert.deepEqual([...got[1].data], [1]);
  }
});
