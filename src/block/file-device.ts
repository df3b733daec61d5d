import { open, type FileHandle } from 'node:fs/promises';
import { type BlockDevice, checkRange, checkWhole } from './block-device.ts';
import { BackgroundWriteback } from '../io/background-writeback.ts';

export interface FileDeviceOptions {
  blockSize: number;
  /** Create the file if missing and grow it (sparse) to this many bytes. Never shrinks. */
  sizeBytes?: number;
  readOnly?: boolean;
  /**
   * Start a background fdatasync after this many bytes written (default 32 MiB; 0 = never), as
   * an array destages its write cache: dirty data stays bounded and a flush has little left.
   */
  writebackBytes?: number;
}

const DEFAULT_WRITEBACK_BYTES = 32 << 20;

/** A BlockDevice over a (sparse) file. One positioned read or write per call. */
export class FileDevice implements BlockDevice {
  readonly path: string;
  readonly blockSize: number;
  readonly readOnly: boolean;
  blockCount: number;
  private fh: FileHandle;
  /** Runs the flush's fdatasync: a failed one, or a failed write-back, fails every later flush. */
  private readonly writeback: BackgroundWriteback;

  private constructor(
    path: string,
    fh: FileHandle,
    blockSize: number,
    blockCount: number,
    readOnly: boolean,
    writebackBytes: number,
  ) {
    this.path = path;
    this.fh = fh;
    this.blockSize = blockSize;
    this.blockCount = blockCount;
    this.readOnly = readOnly;
    this.writeback = new BackgroundWriteback(fh, writebackBytes);
  }

  static async open(path: string, opts: FileDeviceOptions): Promise<FileDevice> {
    const { blockSize } = opts;
    if (![512, 1024, 2048, 4096].includes(blockSize))
      throw new RangeError(`block size ${blockSize} must be 512, 1024, 2048 or 4096`);
    const readOnly = opts.readOnly ?? false;
    const fh = await open(path, readOnly ? 'r' : opts.sizeBytes !== undefined ? 'a+' : 'r+').catch(
      async (e: NodeJS.ErrnoException) => {
        throw Object.assign(new Error(`cannot open ${path}: ${e.message}`), { code: e.code });
      },
    );
    // 'a+' appends on write on Linux; reopen r+ once the file exists.
    let handle = fh;
    if (!readOnly && opts.sizeBytes !== undefined) {
      await fh.close();
      handle = await open(path, 'r+');
    }
    let size = (await handle.stat()).size;
    if (opts.sizeBytes !== undefined && size < opts.sizeBytes) {
      await handle.truncate(opts.sizeBytes);
      size = opts.sizeBytes;
    }
    return new FileDevice(
      path,
      handle,
      blockSize,
      Math.floor(size / blockSize),
      readOnly,
      opts.writebackBytes ?? DEFAULT_WRITEBACK_BYTES,
    );
  }

  async read(lba: number, blockCount: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(blockCount * this.blockSize);
    await this.readInto(lba, buf);
    return buf;
  }

  async readInto(lba: number, target: Uint8Array): Promise<void> {
    let pos = checkRange(this, lba, checkWhole(this, target.length));
    let off = 0;
    while (off < target.length) {
      const { bytesRead } = await this.fh.read(target, off, target.length - off, pos);
      if (bytesRead === 0) {
        target.fill(0, off); // past EOF of a sparse file that was grown elsewhere
        return;
      }
      off += bytesRead;
      pos += bytesRead;
    }
  }

  async write(lba: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error(`${this.path} is read-only`);
    let pos = checkRange(this, lba, checkWhole(this, data.length));
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.fh.write(data, off, data.length - off, pos);
      off += bytesWritten;
      pos += bytesWritten;
    }
    this.writeback.wrote(data.length);
  }

  async flush(): Promise<void> {
    await this.writeback.syncWith(
      () =>
        this.fh.datasync().catch((e: Error) => {
          throw new Error(`${this.path}: an fdatasync failed (${e.message}); written data may be lost`, { cause: e });
        }),
      () => {
        const e = this.writeback.error;
        if (e)
          throw new Error(`${this.path}: a background write-back failed (${e.message}); written data may be lost`, {
            cause: e,
          });
      },
    );
  }

  async close(): Promise<void> {
    await this.writeback.settled(); // never close the fd under a running fdatasync
    await this.fh.close();
  }
}
