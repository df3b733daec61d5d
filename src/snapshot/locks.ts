/** Small async locks for the snapshottable device. No timers, FIFO. */

/** One mutex per numeric key (a chunk). Lock keys in ascending order to avoid deadlock. */
export class KeyedMutex {
  private readonly tails = new Map<number, Promise<void>>();

  async lock(key: number): Promise<() => void> {
    const prev = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev ? prev.then(() => mine) : mine;
    this.tails.set(key, tail);
    if (prev) await prev;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** Lock every key (sorted ascending here); the returned function releases them all. */
  async lockAll(keys: readonly number[]): Promise<() => void> {
    const sorted = [...keys].sort((a, b) => a - b);
    const releases: Array<() => void> = [];
    for (const k of sorted) releases.push(await this.lock(k));
    return () => {
      for (const r of releases) r();
    };
  }
}

/** A readers-writer lock; a waiting writer blocks new readers. */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ write: boolean; go: () => void }> = [];

  /** Take a read lock now if no writer holds or waits for it; else undefined (then `read()`). */
  tryRead(): (() => void) | undefined {
    if (this.writer || this.waiting.some((w) => w.write)) return undefined;
    this.readers++;
    return () => {
      this.readers--;
      this.pump();
    };
  }

  async read(): Promise<() => void> {
    if (this.writer || this.waiting.some((w) => w.write))
      await new Promise<void>((go) => this.waiting.push({ write: false, go }));
    else this.readers++;
    return () => {
      this.readers--;
      this.pump();
    };
  }

  async write(): Promise<() => void> {
    if (this.writer || this.readers > 0 || this.waiting.length > 0)
      await new Promise<void>((go) => this.waiting.push({ write: true, go }));
    else this.writer = true;
    return () => {
      this.writer = false;
      this.pump();
    };
  }

  private pump(): void {
    while (this.waiting.length > 0 && !this.writer) {
      const next = this.waiting[0];
      if (next.write) {
        if (this.readers > 0) return;
        this.waiting.shift();
        this.writer = true;
        next.go();
        return;
      }
      this.waiting.shift();
      this.readers++;
      next.go();
    }
  }
}
