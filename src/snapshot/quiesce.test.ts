import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDevice } from '../block/memory-device.ts';
import { SnapshottableDevice } from './snapshottable-device.ts';
import {
  DEFAULT_QUIESCE_TIMEOUT_MS,
  DEFAULT_QUIET_PERIOD_MS,
  QuiesceTimeoutError,
  checkQuiescePeriods,
  takeWhenQuiet,
} from './quiesce.ts';

const BS = 512;
const QUIET = 300;
const TIMEOUT = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withDevice(fn: (dev: SnapshottableDevice) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-quiesce-'));
  const dev = await SnapshottableDevice.open(new MemoryDevice(BS, 64), { dir, chunkBytes: 4 * BS });
  try {
    await fn(dev);
  } finally {
    await dev.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('the defaults are a 3 s quiet period and an 80 s timeout', async () => {
  assert.equal(DEFAULT_QUIET_PERIOD_MS, 3000);
  assert.equal(DEFAULT_QUIESCE_TIMEOUT_MS, 80_000);
  // With no options, a fake clock shows which periods are used.
  let t = 1_000_000;
  const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
  const quietSince = { writeCount: 1, lastWriteAt: t - 1000, writesInFlight: 0 };
  const r = await takeWhenQuiet(quietSince, async () => 'snap', clock);
  assert.equal(r.mode, 'quiesced');
  assert.equal(r.quietPeriodMs, 3000);
  assert.equal(r.timeoutMs, 80_000);
  assert.equal(r.takenAt, quietSince.lastWriteAt + 3000);
  // Writes every second forever: fails at 80 s of (fake) time.
  const busy = {
    writeCount: 0,
    get lastWriteAt() {
      return t - (t % 1000);
    },
    writesInFlight: 0,
  };
  const start = t;
  await assert.rejects(
    takeWhenQuiet(busy, async () => 'never', clock),
    (e: unknown) => {
      assert.ok(e instanceof QuiesceTimeoutError);
      assert.equal(e.waitedMs, t - start);
      assert.ok(t - start >= 80_000 && t - start < 81_000, `gave up after ${t - start} ms of clock`);
      return true;
    },
  );
});

test(
  'a snapshot asked for during steady writes is taken in the first pause, no earlier than the quiet period after ' +
    'the last write',
  async () => {
    await withDevice(async (dev) => {
      const issued: number[] = []; // clock time each write was issued, before it arrives
      let paused = false;
      let snapped = false;
      let seq = 0;
      const writer = (async () => {
        for (let phase = 0; phase < 2; phase++) {
          for (let i = 0; i < 12; i++) {
            issued.push(Date.now());
            await dev.write((seq % 16) * 4, new Uint8Array(4 * BS).fill(++seq));
            await sleep(40);
          }
          if (phase === 0) {
            paused = true;
            const until = Date.now() + 1500;
            while (!snapped && Date.now() < until) await sleep(10);
            paused = false;
          }
        }
      })();
      await sleep(100);
      const r = await takeWhenQuiet(dev, () => dev.createSnapshot(), { quietPeriodMs: QUIET, timeoutMs: TIMEOUT });
      snapped = true;
      const wasPaused = paused;
      await writer;
      assert.equal(r.mode, 'quiesced');
      const before = issued.filter((x) => x <= r.takenAt);
      assert.ok(before.length > 0);
      assert.ok(
        r.takenAt >= Math.max(...before) + QUIET,
        `taken ${r.takenAt - Math.max(...before)} ms after the last write`,
      );
      assert.ok(r.takenAt >= r.lastWriteAt + QUIET);
      assert.ok(r.writesWhileWaiting > 0);
      // The snapshot holds exactly the writes issued before it: ordered all-before/all-after.
      const img = await dev.openSnapshot(r.value.id).read(0, 64);
      const newest = Math.max(...Array.from({ length: 16 }, (_, k) => img[k * 4 * BS]));
      assert.equal(newest, before.length, 'snapshot holds writes 1..n, n = writes issued before it');
      // Unless the machine stalled the writer for a quiet period during the steady phase (a real
      // pause, which would rightly be taken), it is taken in the writer's pause after write 12.
      const steady = issued.slice(0, 12);
      const stalled = steady.some((t, i) => i > 0 && t - steady[i - 1] >= QUIET);
      if (!stalled) {
        assert.equal(before.length, 12, 'taken in the pause');
        assert.ok(wasPaused, 'taken while the writer was pausing');
      }
    });
  },
);

test('with writes that never pause the request fails at the timeout, says why, and leaves no snapshot', async () => {
  await withDevice(async (dev) => {
    let stop = false;
    const writer = (async () => {
      let i = 0;
      while (!stop) {
        await dev.write(i++ % 60, new Uint8Array(BS).fill(i));
        await sleep(20);
      }
    })();
    const t0 = Date.now();
    try {
      await assert.rejects(
        takeWhenQuiet(dev, () => dev.createSnapshot(), { quietPeriodMs: QUIET, timeoutMs: TIMEOUT, label: 'LUN 0' }),
        (e: unknown) => {
          assert.ok(e instanceof QuiesceTimeoutError);
          assert.equal(e.code, 'ERR_QUIESCE_TIMEOUT');
          assert.ok(e.waitedMs >= TIMEOUT, `waited ${e.waitedMs}`);
          assert.ok(Date.now() - t0 >= TIMEOUT);
          assert.ok(e.writesWhileWaiting > 10, `${e.writesWhileWaiting} writes`);
          assert.match(
            e.message,
            new RegExp(
              String.raw`LUN 0: no 300 ms pause in writes came within the 2000 ms timeout; waited \d+ ms, ` +
                String.raw`the last write came \d+ ms before giving up \(\d{4}-\d\d-\d\dT[^)]+\), ` +
                String.raw`\d+ write\(s\) arrived`,
            ),
          );
          return true;
        },
      );
    } finally {
      stop = true;
      await writer;
    }
    assert.deepEqual(dev.snapshots(), []);
  });
});

test('quiet period 0 snapshots at once (crash-consistent) and orders writes in flight before it', async () => {
  await withDevice(async (dev) => {
    const inflight = [dev.write(0, new Uint8Array(4 * BS).fill(1)), dev.write(4, new Uint8Array(4 * BS).fill(2))];
    const r = await takeWhenQuiet(dev, () => dev.createSnapshot(), { quietPeriodMs: 0 });
    const after = dev.write(0, new Uint8Array(4 * BS).fill(9));
    await Promise.all([...inflight, after]);
    assert.equal(r.mode, 'crash-consistent');
    assert.equal(r.quietPeriodMs, 0);
    const img = await dev.openSnapshot(r.value.id).read(0, 8);
    assert.equal(img[0], 1);
    assert.equal(img[4 * BS], 2);
    assert.equal((await dev.read(0, 1))[0], 9);
  });
});

test('absurd periods are refused', () => {
  for (const [q, t] of [
    [-1, 1000],
    [1.5, 1000],
    [5000, 1000],
    [0, 10 * 3_600_000],
    [Number.NaN, 1000],
  ]) {
    assert.throws(() => checkQuiescePeriods(q, t), { code: 'ERR_BAD_PERIOD' }, `${q}/${t}`);
  }
  checkQuiescePeriods(0, 0);
  checkQuiescePeriods(3000, 80_000);
});

test('an abort ends the wait for quiet writes: ERR_CANCELED, and nothing is taken', async () => {
  let t = 1_000_000;
  const ac = new AbortController();
  let sleeps = 0;
  // Writes every second; the third sleep aborts (as a canceled job would).
  const busy = {
    writeCount: 0,
    get lastWriteAt() {
      return t - (t % 1000);
    },
    writesInFlight: 0,
  };
  const clock = {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
      if (++sleeps === 3) ac.abort();
    },
  };
  let taken = 0;
  await assert.rejects(
    takeWhenQuiet(busy, async () => ++taken, {
      ...clock,
      quietPeriodMs: 3000,
      timeoutMs: 80_000,
      label: 'LUN 7',
      signal: ac.signal,
    }),
    (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_CANCELED');
      assert.match((e as Error).message, /LUN 7 canceled while waiting for quiet writes: nothing was created/);
      return true;
    },
  );
  assert.equal(sleeps, 3, 'no wait after the abort');
  assert.equal(taken, 0);
  // Already aborted: not even a crash-consistent one.
  await assert.rejects(
    takeWhenQuiet(busy, async () => ++taken, { ...clock, quietPeriodMs: 0, signal: ac.signal }),
    /canceled/,
  );
  assert.equal(taken, 0);
});
