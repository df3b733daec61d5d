/**
 * One background fdatasync per `intervalBytes` written, never two at once, as a drive or an
 * array destages its write cache: dirty pages stay bounded and the next explicit sync has
 * little left to do. Linux reports a write-back error to one fsync only, so a failure goes to
 * `onError` (the owner keeps it and fails its later syncs) instead of being lost.
 */
export class BackgroundWriteback {
  private readonly file: { datasync(): Promise<void> };
  private readonly intervalBytes: number;
  private readonly onError: (e: Error) => void;
  private unsynced = 0;
  private running?: Promise<void>;

  constructor(file: { datasync(): Promise<void> }, intervalBytes: number, onError: (e: Error) => void) {
    this.file = file;
    this.intervalBytes = intervalBytes;
    this.onError = onError;
  }

  /** Count `n` bytes written; start a write-back when the interval is reached and none runs. */
  wrote(n: number): void {
    this.unsynced += n;
    if (this.intervalBytes <= 0 || this.unsynced < this.intervalBytes || this.running) return;
    this.unsynced = 0;
    this.running = this.file
      .datasync()
      .catch((e: Error) => this.onError(e))
      .finally(() => (this.running = undefined));
  }

  /** Resolves when the write-back in progress, if any, has finished (it never rejects). */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
