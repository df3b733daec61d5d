/**
 * Group commit: items added while a flush is in flight wait and go out together in the next
 * one, in the order they were added. At most one flush runs at a time; `add` resolves when the
 * flush holding the item is done (and rejects with its error). A failed flush fails only its
 * own items: the next batch is still flushed.
 */
export class GroupCommit<T> {
  private queue: T[] = [];
  private last?: Promise<void>;
  private readonly flush: (batch: T[]) => Promise<void>;

  constructor(flush: (batch: T[]) => Promise<void>) {
    this.flush = flush;
  }

  add(item: T): Promise<void> {
    this.queue.push(item);
    if (this.queue.length === 1) {
      // First of a new batch: it goes out when the flush in flight, if any, has finished.
      const prev = this.last ?? Promise.resolve();
      const run = (): Promise<void> => {
        const batch = this.queue;
        this.queue = [];
        return this.flush(batch);
      };
      this.last = prev.then(run, run);
    }
    return this.last!;
  }
}
