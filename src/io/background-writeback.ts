/**
 * One background fdatasync per `intervalBytes` written, never two at once, as a drive or an
 * array destages its write cache: dirty pages stay bounded and the next explicit sync has
 * little left to do.
 *
 * Linux reports a write-back error to one fsync of a file description only (fsync(2) EIO;
 * errseq_t, Linux 4.13): the next one succeeds although the pages were lost. So the first
 * failure of each kind is kept, the background one in `error`, an explicit one in
 * `explicitSyncError`, and every later `syncWith` fails. Each failure also goes to `onError`.
 */
export class BackgroundWriteback {
  private readonly file: { datasync(): Promise<void> };
  private readonly intervalBytes: number;
  private readonly onError?: (e: Error) => void;
  private unsynced = 0;
  private running?: Promise<void>;
  /** The first background write-back failure: data written before it may be lost. */
  error?: Error;
  /** The first failure of an explicit sync (`syncWith`'s `syncNow`): every later one rethrows it. */
  private explicitSyncError?: Error;

  constructor(file: { datasync(): Promise<void> }, intervalBytes: number, onError?: (e: Error) => void) {
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
      .catch((e: Error) => {
        this.error ??= e;
        this.onError?.(e);
      })
      .finally(() => (this.running = undefined));
  }

  /** Resolves when the write-back in progress, if any, has finished (it never rejects). */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /**
   * The owner's explicit sync: after the write-back in progress, with the checks (a failed
   * explicit sync, then `check`, which throws over a failure) before and after it. A sync that
   * overlapped `syncNow`, in the background or another caller's, may have taken the error Linux
   * reports once, so the second checks wait for it too.
   */
  async syncWith(syncNow: () => Promise<void>, check: () => void | Promise<void>): Promise<void> {
    const failed = async (): Promise<void> => {
      if (this.explicitSyncError) throw this.explicitSyncError;
      await check();
    };
    await this.settled();
    await failed();
    await syncNow().catch((e: Error) => {
      this.explicitSyncError ??= e;
      this.onError?.(e);
      throw this.explicitSyncError;
    });
    await this.settled();
    await failed();
  }
}
