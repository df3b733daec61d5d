import { type BlockDevice, checkRange, checkWhole } from './block-device.ts';

/** A BlockDevice in memory: the test double, and a scratch device. */
export class MemoryDevice implements BlockDevice {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly: boolean;
  readonly bytes: Uint8Array;

  constructor(blockSize: number, blockCountOrBytes: number | Uint8Array, readOnly = false) {
    this.blockSize = blockSize;
    this.bytes =
      typeof blockCountOrBytes === 'number' ? new Uint8Array(blockCountOrBytes * blockSize) : blockCountOrBytes;
    this.blockCount = Math.floor(this.bytes.length / blockSize);
    this.readOnly = readOnly;
  }

  async read(lba: number, blockCount: number): Promise<Uint8Array> {
    const at = checkRange(this, lba, blockCount);
    return this.bytes.slice(at, at + blockCount * this.blockSize);
  }
  async readInto(lba: number, target: Uint8Array): Promise<void> {
    const at = checkRange(this, lba, checkWhole(this, target.length));
    target.set(this.bytes.subarray(at, at + target.length));
  }
  async write(lba: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error('device is read-only');
    const at = checkRange(this, lba, checkWhole(this, data.length));
    this.bytes.set(data, at);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
