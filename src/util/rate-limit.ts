import { setTimeout as sleep } from 'node:timers/promises';

/** The clock a RateLimit waits on (a fake one in tests). */
export interface RateClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const REAL_CLOCK: RateClock = { now: () => performance.now(), sleep: (ms, signal) => sleep(ms, undefined, { signal }) };

/**
 * A bandwidth cap shared by every copy of a data mover (`ferry mover --max-rate`): each read
 * takes its bytes' share of time, in order; bursts come only from idle time (up to one second's).
 */
export class RateLimit {
  readonly bytesPerSecond: number;
  private readonly clock: RateClock;
  /** When (clock ms) the bytes taken so far have all had their time at the rate. */
  private until = -Infinity;

  constructor(bytesPerSecond: number, clock: RateClock = REAL_CLOCK) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate limit of ${bytesPerSecond} bytes/s is not positive`);
    this.bytesPerSecond = bytesPerSecond;
    this.clock = clock;
  }

  /**
   * Wait until `bytes` may go: their turn starts when the bytes before them have had their time.
   * Turns are handed out in call order, but the waits may END out of it: a call whose turn has
   * already come returns at once, ahead of an earlier one whose timer is due but has not fired
   * (the event loop was busy). A caller whose I/O must start in call order chains its takes.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    const start = Math.max(this.until, now - 1000);
    this.until = start + (bytes / this.bytesPerSecond) * 1000;
    if (start > now) await this.clock.sleep(start - now, signal);
  }
}
