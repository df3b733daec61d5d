import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangeMap } from './change-map.ts';
import { bitsToExtents } from './cbt.ts';
import { decodeChangeBitmap } from './change-format.ts';
import { inTempDir } from '../../test/helpers/temp-dir.ts';

/** 1 MiB granules: a sequential writer is marked at most 16 granules ahead. */
const G = 1 << 20;
const LOOK_AHEAD = (16 << 20) / G;

type Range = [number, number];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The granules set in a bitmap, ascending. */
function granulesIn(bits: Uint8Array): number[] {
  const out: number[] = [];
  for (let g = 0; g < bits.length * 8; g++) if (bits[g >> 3] & (1 << (g & 7))) out.push(g);
  return out;
}

function bitsOf(granules: number, set: Iterable<number>): Uint8Array {
  const b = new Uint8Array(Math.ceil(granules / 8));
  for (const g of set) b[g >> 3] |= 1 << (g & 7);
  return b;
}

const sorted = (s: Iterable<number>): number[] => [...new Set(s)].sort((a, b) => a - b);

/** Mark each range in turn, as a writer would (waiting when told to); the granules marked. */
async function markAll(map: ChangeMap, ranges: Range[]): Promise<number[]> {
  const out: number[] = [];
  for (const [first, last] of ranges) {
    await map.mark(first, last);
    for (let g = first; g <= last; g++) out.push(g);
  }
  return sorted(out);
}

async function chgFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.chg')).sort();
}

test('before any epoch nothing is tracked and no id is known', async () => {
  await inTempDir('chg', async (dir) => {
    const map = await ChangeMap.open(dir, { granuleBytes: G, granules: 64 });
    assert.equal(map.active, false);
    assert.deepEqual(map.epochs(), []);
    assert.equal(map.mark(0, 3), undefined);
    await assert.rejects(map.changed('x'), { code: 'ERR_CHANGE_ID_NOT_FOUND' });
    assert.deepEqual(await readdir(dir), [], 'an untracked LUN writes nothing');
    await map.close();
  });
});

test(
  'merging the two oldest epochs bounds the space; merged ids still answer, covering their whole epoch; also after ' +
    'reopen',
  async () => {
    await inTempDir('chg', async (dir) => {
      const opts = { granuleBytes: G, granules: 100, maxEpochs: 3 };
      let map = await ChangeMap.open(dir, opts);
      const ids: string[] = [];
      const writes: number[][] = []; // granules marked in each epoch
      for (let i = 0; i < 5; i++) {
        ids.push((await map.startEpoch(i === 2 ? 'snap-2' : undefined)).id);
        writes.push(
          await markAll(map, [
            [i * 10, i * 10 + 3],
            [95 - i, 95 - i],
          ]),
        );
      }
      const since = (i: number): number[] => sorted(writes.slice(i).flat());
      const check = async (): Promise<void> => {
        const epochs = map.epochs();
        assert.deepEqual(
          epochs.map((e) => e.id),
          [ids[0], ids[3], ids[4]],
        );
        assert.deepEqual(epochs[0].merged, [ids[1], ids[2], 'snap-2']);
        assert.equal(epochs[1].merged, undefined);
        assert.equal(map.usage().bytes, 3 * (32 + Math.ceil(100 / 8)));
        assert.deepEqual(await chgFiles(dir), [ids[0], ids[3], ids[4]].map((id) => `${id}.chg`).sort());
        // The oldest id answers exactly: the union of every write.
        const oldest = await map.changed(ids[0]);
        assert.equal(oldest.tracking, 'exact');
        assert.equal(oldest.reason, undefined);
        assert.deepEqual(granulesIn(oldest.bits), since(0));
        // A merged id answers from its epoch's start: at least its writes, and says why.
        for (const [id, i] of [
          [ids[1], 1],
          [ids[2], 2],
          ['snap-2', 2],
        ] as const) {
          const r = await map.changed(id);
          assert.equal(r.tracking, 'exact');
          assert.match(r.reason ?? '', /merged/);
          const got = new Set(granulesIn(r.bits));
          for (const g of since(i)) assert.ok(got.has(g), `${id}: granule ${g} reported`);
          assert.deepEqual(granulesIn(r.bits), since(0), `${id} covers its merged epoch whole`);
        }
        // The younger, unmerged ids answer exactly.
        for (const i of [3, 4]) {
          const r = await map.changed(ids[i]);
          assert.equal(r.reason, undefined);
          assert.deepEqual(granulesIn(r.bits), since(i));
        }
        assert.deepEqual(granulesIn((await map.changed(ids[0], ids[3])).bits), sorted(writes.slice(0, 3).flat()));
      };
      await check();
      await map.close();
      map = await ChangeMap.open(dir, opts);
      await check();
      await map.close();
    });
  },
);

test('after a crash, a writer that rewrites one granule over and over is never marked ahead', async () => {
  await inTempDir('chg', async (dir) => {
    const opts = { granuleBytes: G, granules: 400 };
    const map = await ChangeMap.open(dir, opts);
    const id = (await map.startEpoch()).id;
    // A journal: two steps to reach granule 7 (too few to look ahead), then granule 7 again and again.
    const marked = await markAll(map, [[5, 5], [6, 6], [7, 7], ...Array.from({ length: 10 }, (): Range => [7, 7])]);
    const crashed = await ChangeMap.open(dir, opts);
    assert.deepEqual(granulesIn((await crashed.changed(id)).bits), marked);
    await crashed.close();
    await map.close();
  });
});

test('after a crash the open epoch answers what its file holds: exact for a random writer', async () => {
  await inTempDir('chg', async (dir) => {
    const opts = { granuleBytes: G, granules: 400 };
    const map = await ChangeMap.open(dir, opts);
    const id = (await map.startEpoch()).id;
    // Random ranges, none starting where the previous ended: never marked ahead.
    const rand = rng(7);
    const ranges: Range[] = [];
    let end = -1;
    while (ranges.length < 60) {
      const first = Math.floor(rand() * 396);
      if (Math.abs(first - end) <= 1) continue;
      const last = first + Math.floor(rand() * 3);
      ranges.push([first, last]);
      end = last + 1;
    }
    const marked = await markAll(map, ranges);
    // A second open without closing the first: what a restart after SIGKILL sees.
    const crashed = await ChangeMap.open(dir, opts);
    assert.deepEqual(granulesIn((await crashed.changed(id)).bits), marked);
    await crashed.close();
    await map.close();
  });
});

/** A sequential writer's byte writes of uneven sizes (some sharing a granule), as granule ranges. */
function sequentialRanges(): Range[] {
  const sizes = [1.5 * G, 0.5 * G, 2 * G, 0.25 * G, 0.25 * G, 3 * G];
  const out: Range[] = [];
  let off = 0;
  for (let i = 0; off < 120 * G; i++) {
    const len = sizes[i % sizes.length];
    out.push([Math.floor(off / G), Math.floor((off + len - 1) / G)]);
    off += len;
  }
  return out;
}

test(
  'after a crash a sequential writer answers a superset, at most 16 MiB past its last mark; a clean close is ' +
    'exact',
  async () => {
    const opts = { granuleBytes: G, granules: 400 };
    const ranges = sequentialRanges();
    const lastSeq = ranges.at(-1)?.[1] ?? 0;
    await inTempDir('chg', async (dir) => {
      const map = await ChangeMap.open(dir, opts);
      const id = (await map.startEpoch()).id;
      let marked = await markAll(map, ranges);
      // A random mark far away: its commit lands after every look-ahead commit before it.
      marked = sorted([...marked, ...(await markAll(map, [[300, 300]]))]);
      const crashed = await ChangeMap.open(dir, opts);
      const got = granulesIn((await crashed.changed(id)).bits);
      const extra = got.filter((g) => !marked.includes(g));
      for (const g of marked) assert.ok(got.includes(g), `granule ${g} still reported after the crash`);
      for (const g of extra)
        assert.ok(g > lastSeq && g <= lastSeq + LOOK_AHEAD, `granule ${g} beyond the look-ahead of ${lastSeq}`);
      assert.ok(extra.length > 0, 'the look-ahead was in play');
      // The map that did not crash knows exactly.
      assert.deepEqual(granulesIn((await map.changed(id)).bits), marked);
      await crashed.close();
      await map.close();
    });
    await inTempDir('chg', async (dir) => {
      const map = await ChangeMap.open(dir, opts);
      const id = (await map.startEpoch()).id;
      const marked = await markAll(map, ranges);
      await map.close();
      const reopened = await ChangeMap.open(dir, opts);
      assert.deepEqual(granulesIn((await reopened.changed(id)).bits), marked);
      await reopened.close();
    });
  },
);

test('mark resolves once its granules are on disk, and returns undefined when they already are', async () => {
  await inTempDir('chg', async (dir) => {
    const opts = { granuleBytes: G, granules: 1000 };
    const map = await ChangeMap.open(dir, opts);
    const id = (await map.startEpoch()).id;
    const first = map.mark(10, 12);
    assert.ok(first instanceof Promise);
    await first;
    assert.equal(map.mark(10, 12), undefined);
    assert.equal(map.mark(11, 11), undefined);
    // A granule whose mark is still being written: the second writer waits for it too.
    const again = [map.mark(990, 990), map.mark(990, 990)];
    assert.ok(again[1] instanceof Promise);
    await again[1];
    assert.ok(granulesIn(decodeChangeBitmap(await readFile(join(dir, `${id}.chg`))).bits).includes(990));
    await again[0];
    // Many concurrent marks of new, scattered granules: each is in the file when it resolves.
    const targets = Array.from({ length: 60 }, (_, i) => 20 + ((i * 7) % 60) * 15);
    const onDisk = async (g: number): Promise<void> => {
      const m = decodeChangeBitmap(await readFile(join(dir, `${id}.chg`)));
      assert.ok(granulesIn(m.bits).includes(g), `granule ${g} in the file once its mark resolved`);
    };
    await Promise.all(
      targets.map((g) => {
        const p = map.mark(g, g);
        assert.ok(p instanceof Promise, `a new granule ${g} waits`);
        return p.then(() => onDisk(g));
      }),
    );
    const crashed = await ChangeMap.open(dir, opts);
    assert.deepEqual(granulesIn((await crashed.changed(id)).bits), sorted([10, 11, 12, 990, ...targets]));
    await crashed.close();
    await map.close();
  });
});

test('a directory without changes.json is seeded from legacy snapshots, once; a lost one answers lost', async () => {
  await inTempDir('chg', async (dir) => {
    let calls = 0;
    const opts = {
      granuleBytes: G,
      granules: 21, // the last bitmap byte holds 5 granules
      legacy: () => {
        calls++;
        return [
          { id: 'snap-a', startedAtMs: 1000, granules: [0, 1], lost: 'magic "XXXX"' },
          { id: 'snap-b', startedAtMs: 2000, granules: [3, 20] },
          { id: 'snap-c', startedAtMs: 3000, granules: [7] },
        ];
      },
    };
    let map = await ChangeMap.open(dir, opts);
    assert.equal(calls, 1);
    assert.equal(map.active, true);
    assert.deepEqual(
      map.epochs().map((e) => [e.id, e.snapshotId, e.startedAtMs, e.lost !== undefined]),
      [
        ['snap-a', 'snap-a', 1000, true],
        ['snap-b', 'snap-b', 2000, false],
        ['snap-c', 'snap-c', 3000, false],
      ],
    );
    const lost = await map.changed('snap-a');
    assert.equal(lost.tracking, 'lost');
    assert.match(lost.reason ?? '', /snap-a.*XXXX/);
    assert.deepEqual([...lost.bits], [0xff, 0xff, 0x1f], 'every granule, none past the last');
    assert.deepEqual(granulesIn((await map.changed('snap-b')).bits), [3, 7, 20]);
    assert.deepEqual(granulesIn((await map.changed('snap-b', 'snap-c')).bits), [3, 20]);
    // The newest legacy epoch is the open one: writes go on into it.
    await map.mark(9, 9);
    assert.deepEqual(granulesIn((await map.changed('snap-c')).bits), [7, 9]);
    await map.close();
    map = await ChangeMap.open(dir, opts);
    assert.equal(calls, 1, 'seeded once');
    assert.deepEqual(granulesIn((await map.changed('snap-b')).bits), [3, 7, 9, 20]);
    assert.equal((await map.changed('snap-a')).tracking, 'lost');
    await map.close();
  });
});

test('an unreadable changes.json is set aside and tracking starts afresh', async () => {
  await inTempDir('chg', async (dir) => {
    const opts = { granuleBytes: G, granules: 64 };
    let map = await ChangeMap.open(dir, opts);
    const old = (await map.startEpoch()).id;
    await map.mark(1, 2);
    await map.close();
    await writeFile(join(dir, 'changes.json'), 'not json {');
    map = await ChangeMap.open(dir, opts);
    const names = await readdir(dir);
    assert.ok(
      names.some((n) => /^changes\.json\.unreadable-\d+$/.test(n)),
      names.join(' '),
    );
    assert.equal(map.active, false);
    assert.deepEqual(map.epochs(), []);
    assert.deepEqual(await chgFiles(dir), [], "the old epochs' bitmaps are removed");
    await assert.rejects(map.changed(old), { code: 'ERR_CHANGE_ID_NOT_FOUND' });
    const fresh = (await map.startEpoch()).id;
    await map.mark(5, 5);
    assert.deepEqual(granulesIn((await map.changed(fresh)).bits), [5]);
    await map.close();
  });
});

test('bitsToExtents merges adjacent granules and clips the last short granule', () => {
  // 20 granules of 8 blocks; the LUN ends 4 blocks into the last one.
  const bits = bitsOf(20, [0, 1, 2, 5, 7, 8, 9, 19]);
  assert.deepEqual(bitsToExtents(bits, 20, 8, 156), [
    [0, 24],
    [40, 8],
    [56, 24], // 7..9 across a byte boundary: one extent
    [152, 4],
  ]);
  assert.deepEqual(
    bitsToExtents(
      bitsOf(
        17,
        Array.from({ length: 17 }, (_, g) => g),
      ),
      17,
      8,
      133,
    ),
    [[0, 133]],
  );
  assert.deepEqual(bitsToExtents(bitsOf(20, []), 20, 8, 156), []);
});

test('changed(since, until) takes the epochs from since up to until; until older than since is refused', async () => {
  await inTempDir('chg', async (dir) => {
    const map = await ChangeMap.open(dir, { granuleBytes: G, granules: 64 });
    const a = (await map.startEpoch('snap-a')).id;
    const wa = await markAll(map, [[0, 1]]);
    const b = (await map.startEpoch()).id;
    const wb = await markAll(map, [[10, 10]]);
    const c = (await map.startEpoch()).id;
    const wc = await markAll(map, [[20, 22]]);
    const d = (await map.startEpoch()).id;
    const wd = await markAll(map, [[40, 40]]);
    const between = async (since: string, until?: string): Promise<number[]> =>
      granulesIn((await map.changed(since, until)).bits);
    assert.deepEqual(await between(a, c), sorted([...wa, ...wb]));
    assert.deepEqual(await between('snap-a', b), wa);
    assert.deepEqual(await between(b, d), sorted([...wb, ...wc]));
    assert.deepEqual(await between(b), sorted([...wb, ...wc, ...wd]));
    assert.deepEqual(await between(c, c), []);
    await assert.rejects(map.changed(c, a), { code: 'ERR_SNAPSHOT_ORDER' });
    await assert.rejects(map.changed(d, 'snap-a'), { code: 'ERR_SNAPSHOT_ORDER' });
    await assert.rejects(map.changed(a, 'nope'), { code: 'ERR_CHANGE_ID_NOT_FOUND' });
    await map.close();
  });
});

test('an id merged into the oldest epoch is newer than that epoch’s own id', async () => {
  await inTempDir('chg', async (dir) => {
    const map = await ChangeMap.open(dir, { granuleBytes: G, granules: 64, maxEpochs: 2 });
    const a = (await map.startEpoch()).id;
    await map.mark(1, 1);
    const b = (await map.startEpoch()).id; // merged into a when c starts
    await map.mark(2, 2);
    await map.startEpoch();
    await map.mark(3, 3);
    assert.deepEqual(map.epochs()[0].merged, [b]);
    // a .. b: the whole merged epoch, said so.
    const r = await map.changed(a, b);
    assert.match(r.reason ?? '', /merged/);
    assert.deepEqual(granulesIn(r.bits), [1, 2]);
    // b .. a is the wrong way round.
    await assert.rejects(map.changed(b, a), { code: 'ERR_SNAPSHOT_ORDER' });
    await map.close();
  });
});

test('a failed epoch start leaves the open epoch durably tracked', async () => {
  await inTempDir('chg', async (dir) => {
    const opts = { granuleBytes: G, granules: 64 };
    const map = await ChangeMap.open(dir, opts);
    const a = (await map.startEpoch()).id;
    await map.mark(1, 1);
    // changes.json cannot be replaced: the start fails after the open epoch was sealed.
    await mkdir(join(dir, 'changes.json.tmp'));
    await assert.rejects(map.startEpoch());
    await rmdir(join(dir, 'changes.json.tmp'));
    await map.mark(50, 50);
    const crashed = await ChangeMap.open(dir, opts);
    assert.deepEqual(granulesIn((await crashed.changed(a)).bits), [1, 50]);
    await crashed.close();
    await map.close();
  });
});
