import type { BlockDevice } from '../block/block-device.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

const CHUNK = 256 * 1024;
const CACHE_CHUNKS = 64;

/**
 * Byte-addressed reads over a BlockDevice. Small reads go through an LRU of 256 KiB aligned
 * chunks (MFT records and index blocks sit close together); large reads go straight to the device.
 */
export class ByteView {
  readonly dev: BlockDevice;
  readonly size: number;
  private readonly cache = new Map<number, Uint8Array>();

  constructor(dev: BlockDevice) {
    this.dev = dev;
    this.size = dev.blockCount * dev.blockSize;
  }

  private check(byteOffset: number, length: number): void {
    if (
      !Number.isSafeInteger(byteOffset) ||
      !Number.isSafeInteger(length) ||
      byteOffset < 0 ||
      length < 0 ||
      byteOffset + length > this.size
    ) {
      throw new NtfsFormatError(
        NtfsErrorCode.TRUNCATED,
        `read of ${length} bytes past the end of the ${this.size}-byte volume`,
        { byteOffset },
      );
    }
  }

  private async chunk(index: number): Promise<Uint8Array> {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const bs = this.dev.blockSize;
    const start = index * CHUNK;
    const blocks = Math.min(CHUNK, this.size - start) / bs;
    const data = await this.dev.read(start / bs, blocks);
    this.cache.set(index, data);
    if (this.cache.size > CACHE_CHUNKS) this.cache.delete(this.cache.keys().next().value as number);
    return data;
  }

  /** Read `length` bytes at `byteOffset`; the result may be a view into the cache: copy before mutating. */
  async read(byteOffset: number, length: number): Promise<Uint8Array> {
    this.check(byteOffset, length);
    const first = Math.floor(byteOffset / CHUNK);
    const last = Math.floor((byteOffset + length - 1) / CHUNK);
    if (length === 0) return new Uint8Array(0);
    if (first === last) {
      const c = await this.chunk(first);
      const at = byteOffset - first * CHUNK;
      return c.subarray(at, at + length);
    }
    if (length > CHUNK) return this.readDirect(byteOffset, length);
    const out = new Uint8Array(length);
    let done = 0;
    for (let i = first; i <= last; i++) {
      const c = await this.chunk(i);
      const from = Math.max(byteOffset, i * CHUNK) - i * CHUNK;
      const to = Math.min(byteOffset + length, (i + 1) * CHUNK) - i * CHUNK;
      out.set(c.subarray(from, to), done);
      done += to - from;
    }
    return out;
  }

  /** Fill `target` from `byteOffset`, bypassing the cache; block-aligned ranges go straight into it. */
  async readInto(byteOffset: number, target: Uint8Array): Promise<void> {
    this.check(byteOffset, target.length);
    const bs = this.dev.blockSize;
    if (byteOffset % bs === 0 && target.length % bs === 0) await this.dev.readInto(byteOffset / bs, target);
    else target.set(await this.readDirect(byteOffset, target.length));
  }

  /** Read bypassing the cache (file data). Block-aligned reads land straight in the result. */
  async readDirect(byteOffset: number, length: number): Promise<Uint8Array> {
    this.check(byteOffset, length);
    const bs = this.dev.blockSize;
    const lba = Math.floor(byteOffset / bs);
    const end = Math.ceil((byteOffset + length) / bs);
    const data = await this.dev.read(lba, end - lba);
    const at = byteOffset - lba * bs;
    return at === 0 && data.length === length ? data : data.subarray(at, at + length);
  }
}
