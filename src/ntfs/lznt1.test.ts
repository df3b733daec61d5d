import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decompressLznt1 } from './lznt1.ts';
import { NtfsFormatError } from './errors.ts';

const chunk = (compressed: boolean, body: number[]): number[] => {
  const h = (compressed ? 0xb000 : 0x3000) | (body.length + 2 - 3);
  return [h & 0xff, h >> 8, ...body];
};

test('literals and an overlapping back-reference', () => {
  // "abc" then token 0x2006: lg 0 (pos 3), dist (0x2006>>12)+1 = 3, len (0x006)+3 = 9 → "abcabcabcabc"
  const src = new Uint8Array([...chunk(true, [0x08, 0x61, 0x62, 0x63, 0x06, 0x20]), 0, 0]);
  const dst = new Uint8Array(8192);
  const n = decompressLznt1(src, dst);
  assert.equal(Buffer.from(dst.subarray(0, 12)).toString(), 'abcabcabcabc');
  assert.equal(n, 4096, 'a short chunk is zero-padded to 4096');
  assert.ok(dst.subarray(12).every((b) => b === 0));
});

test('the split of a token moves with the position (lg)', () => {
  // 17 literals then at pos 17: lg = 1 (16 <= pos-1 < 32): dist = (t >> 11) + 1, len = (t & 0x7ff) + 3
  const lit = Array.from({ length: 17 }, (_, i) => 0x41 + i);
  const t = ((17 - 1) << 11) | (5 - 3); // back 17, copy 5
  const body = [0x00, ...lit.slice(0, 8), 0x00, ...lit.slice(8, 16), 0x02, lit[16], t & 0xff, t >> 8];
  const dst = new Uint8Array(4096);
  decompressLznt1(new Uint8Array(chunk(true, body)), dst);
  assert.equal(Buffer.from(dst.subarray(0, 22)).toString(), 'ABCDEFGHIJKLMNOPQABCDE');
});

test('an uncompressed chunk is copied, and chunks follow at 4096-byte steps', () => {
  const raw = Array.from({ length: 4096 }, (_, i) => i & 0xff);
  const src = new Uint8Array([...chunk(false, raw), ...chunk(true, [0x00, 0x7a]), 0, 0]);
  const dst = new Uint8Array(8192);
  assert.equal(decompressLznt1(src, dst), 8192);
  assert.deepEqual([...dst.subarray(0, 4096)], raw);
  assert.equal(dst[4096], 0x7a);
});

test('corrupt input is an error with the offset, never a read out of bounds', () => {
  const bad = (bytes: number[], re: RegExp): void => {
    assert.throws(
      () => decompressLznt1(new Uint8Array(bytes), new Uint8Array(4096), { record: 9, byteOffset: 100 }),
      (e: unknown) => e instanceof NtfsFormatError && e.record === 9 && re.test(e.message),
    );
  };
  bad(chunk(true, [0x01, 0x00, 0x10]), /start of a chunk/);
  bad(chunk(true, [0x02, 0x61, 0x00, 0x70]), /back-reference 8 bytes before a chunk position of 1/);
  bad(chunk(true, [0x02, 0x61, 0x00]), /cut short/);
  bad([0xff, 0xbf, 1, 2, 3], /past the compressed data/);
});
