import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mergeExtents } from './plan.ts';

/** Reference: mark every block, then read the runs back. */
function naive(list: [number, number][]): [number, number][] {
  const used = new Set<number>();
  for (const [s, n] of list) for (let i = s; i < s + n; i++) used.add(i);
  const blocks = [...used].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const b of blocks) {
    const last = out[out.length - 1];
    if (last && b === last[0] + last[1]) last[1]++;
    else out.push([b, 1]);
  }
  return out;
}

test('mergeExtents joins overlapping and touching ranges, sorted', () => {
  assert.deepEqual(
    mergeExtents([
      [10, 5],
      [0, 5],
      [5, 2],
      [20, 1],
      [12, 10],
    ]),
    [
      [0, 7],
      [10, 12],
    ],
  );
  assert.deepEqual(mergeExtents([]), []);
});

test('mergeExtents equals a block-by-block union (property)', () => {
  const range = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 30 }));
  fc.assert(
    fc.property(fc.array(range, { maxLength: 40 }), (list) => {
      assert.deepEqual(mergeExtents(list.map(([s, n]): [number, number] => [s, n])), naive(list));
    }),
  );
});
