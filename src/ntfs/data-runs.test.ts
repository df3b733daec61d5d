import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRunlist, findRun, HOLE, type Run } from './data-runs.ts';
import { NtfsFormatError } from './errors.ts';

const where = { record: 3, byteOffset: 1000 };

/** Test-only encoder: minimal byte counts, signed deltas, holes without delta bytes. */
function encode(runs: { length: number; lcn: number }[]): Uint8Array {
  const out: number[] = [];
  let prev = 0;
  const le = (v: number, signed: boolean): number[] => {
    const bytes: number[] = [];
    let x = BigInt(v);
    for (;;) {
      const b = Number(x & 0xffn);
      bytes.push(b);
      x >>= 8n;
      if (signed ? (x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80) : x === 0n) break;
    }
    return bytes;
  };
  for (const r of runs) {
    const len = le(r.length, false);
    const delta = r.lcn === HOLE ? [] : le(r.lcn - prev, true);
    if (r.lcn !== HOLE) prev = r.lcn;
    out.push((delta.length << 4) | len.length, ...len, ...delta);
  }
  out.push(0);
  return new Uint8Array(out);
}

test('decodes lengths, positive and negative deltas, holes and a zero delta', () => {
  // 0x21 0x18 0x34 0x56: 0x18 clusters at LCN 0x5634; 0x11 0x10 0xF0: 16 clusters 16 back; 0x01 0x08: hole; 0x11 0x02
  // 0x00: zero delta
  const buf = new Uint8Array([0x21, 0x18, 0x34, 0x56, 0x11, 0x10, 0xf0, 0x01, 0x08, 0x11, 0x02, 0x00, 0x00]);
  assert.deepEqual(decodeRunlist(buf, 0, buf.length, 0, 1 << 20, where), [
    { vcn: 0, lcn: 0x5634, length: 0x18 },
    { vcn: 0x18, lcn: 0x5624, length: 0x10 },
    { vcn: 0x28, lcn: HOLE, length: 8 },
    { vcn: 0x30, lcn: 0x5624, length: 2 },
  ]);
});

test('an extent starts at its own lowest VCN and LCN 0', () => {
  const buf = encode([{ length: 4, lcn: 100 }]);
  assert.deepEqual(decodeRunlist(buf, 0, buf.length, 500, 1000, where), [{ vcn: 500, lcn: 100, length: 4 }]);
});

test('malformed runlists are refused with the record and offset', () => {
  const bad = (bytes: number[], re: RegExp, clusters = 1000): void => {
    assert.throws(
      () => decodeRunlist(new Uint8Array(bytes), 0, bytes.length, 0, clusters, where),
      (e: unknown) =>
        e instanceof NtfsFormatError &&
        e.record === 3 &&
        e.byteOffset !== undefined &&
        e.byteOffset >= 1000 &&
        re.test(e.message),
    );
  };
  bad([0x11, 0x05], /past its attribute/); // delta byte missing
  bad([0x11, 0x05, 0x10], /past its attribute/); // no terminator
  bad([0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], /run header/); // 9 length bytes
  bad([0x11, 0x00, 0x10, 0x00], /run length/); // zero length
  bad([0x11, 0x05, 0xf0, 0x00], /outside the volume/); // LCN -16
  bad([0x21, 0x05, 0x00, 0x10, 0x00], /outside the volume/, 100); // LCN 4096 on 100 clusters
  bad([0x81, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0x7f, 0x00], /outside the volume/); // huge delta
});

test('round-trips random runlists (property)', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          length: fc.integer({ min: 1, max: 70000 }),
          lcn: fc.oneof(fc.constant(HOLE), fc.integer({ min: 0, max: 2 ** 40 })),
        }),
        { maxLength: 40 },
      ),
      (runs) => {
        const decoded = decodeRunlist(encode(runs), 0, 1 << 16, 7, 2 ** 41, where);
        let vcn = 7;
        const want: Run[] = runs.map((r) => {
          const x = { vcn, lcn: r.lcn, length: r.length };
          vcn += r.length;
          return x;
        });
        assert.deepEqual(decoded, want);
        for (const r of want) assert.equal(findRun(decoded, r.vcn + r.length - 1), want.indexOf(r));
        assert.equal(findRun(decoded, vcn), -1);
      },
    ),
  );
});
