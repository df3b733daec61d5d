/**
 * The seam every layer shares: disk LUNs, snapshots, remote LUNs over iSCSI, the copy
 * manager, the NTFS parser and tests. Addresses are in logical blocks of `blockSize` bytes.
 */
export interface BlockDevice {
  readonly blockSize: number;
  readonly blockCount: number;
  /** Writes throw when true (snapshots). */
  readonly readOnly: boolean;
  /** Read `blockCount` blocks into a new buffer. */
  read(lba: number, blockCount: number): Promise<Uint8Array>;
  /** Read `target.length / blockSize` blocks into `target` (no allocation: the hot path). */
  readInto(lba: number, target: Uint8Array): Promise<void>;
  /** Write whole blocks; `data.length` is a multiple of `blockSize`. */
  write(lba: number, data: Uint8Array): Promise<void>;
  /** Durable when this resolves: everything acknowledged before it is on stable storage. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Check that [lba, lba+blockCount) lies inside the device; returns the byte offset. */
export function checkRange(
  dev: Pick<BlockDevice, 'blockCount' | 'blockSize'>,
  lba: number,
  blockCount: number,
): number {
  if (
    !Number.isSafeInteger(lba) ||
    !Number.isSafeInteger(blockCount) ||
    lba < 0 ||
    blockCount < 0 ||
    lba + blockCount > dev.blockCount
  ) {
    throw new RangeError(`blocks [${lba}, ${lba + blockCount}) outside device of ${dev.blockCount} blocks`);
  }
  return lba * dev.blockSize;
}

export function checkWhole(dev: Pick<BlockDevice, 'blockSize'>, byteLength: number): number {
  if (byteLength % dev.blockSize !== 0)
    throw new RangeError(`${byteLength} bytes is not a whole number of ${dev.blockSize}-byte blocks`);
  return byteLength / dev.blockSize;
}
