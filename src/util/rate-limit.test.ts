import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimit, type RateClock } from './rate-limit.ts';

/** A clock that only moves when someone sleeps on it; it records each sleep. */
function fakeClock(): RateClock & { t: number; slept: number[] } {
  const c = {
    t: 10_000,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
    },
  };
  return c;
}

test('RateLimit: reads go at the rate on average, after a burst of at most one second of idle time', async () => {
  const clock = fakeClock();
  const MB = 1 << 20;
  const limit = new RateLimit(10 * MB, clock);
  // 100 reads of 1 MiB at 10 MiB/s: a second's worth goes at once (idle credit: reads 1 to 11 start
  // by t = 0), then one starts every 100 ms, the last at 8.9 s.
  for (let i = 0; i < 100; i++) await limit.take(MB);
  const elapsed = clock.t - 10_000;
  assert.ok(Math.abs(elapsed - 8900) < 1e-6, `the 100th read starts at ${elapsed} ms`);
  assert.equal(clock.slept.length, 89);
  assert.ok(
    clock.slept.every((ms) => Math.abs(ms - 100) < 1e-6),
    'after the burst, each read waits its own 100 ms',
  );
  // Idle time earns at most one second of credit.
  clock.t += 60_000;
  clock.slept.length = 0;
  for (let i = 0; i < 11; i++) await limit.take(MB);
  assert.deepEqual(clock.slept, [], 'the reads within the second of credit go at once');
  await limit.take(MB);
  assert.equal(clock.slept.length, 1);
  assert.throws(() => new RateLimit(0), /not positive/);
});
