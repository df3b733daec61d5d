import type { BlockDevice } from '../block/block-device.ts';

/**
 * Thin provisioning without fallocate (SBC-3 4.7): a logical block is *deallocated* exactly
 * when all its bytes are zero, and *mapped* otherwise. UNMAP and WRITE SAME with UNMAP write
 * zeros, so GET LBA STATUS (which scans the data) always tells the truth, the image needs no
 * side file, and the state survives a crash with the data itself. LBPRZ=1: a deallocated block
 * reads as zeros, which it does. The cost is that unmapped ranges still occupy space in the
 * image file and that GET LBA STATUS reads what it reports on.
 */

export const ProvisioningStatus = { MAPPED: 0, DEALLOCATED: 1, ANCHORED: 2 } as const;

export interface LbaExtent {
  lba: number;
  blockCount: number;
  status: number;
}

const ZERO = Buffer.alloc(65536);

/** True when `buf` holds only zero bytes (memcmp against a zero page, no per-byte JS loop). */
export function isZero(buf: Uint8Array): boolean {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  return zeroBytes(b, 0, b.length);
}

/** True when b[start, end) is all zero; compares in place (no view allocated). */
function zeroBytes(b: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at += ZERO.length) {
    const n = Math.min(ZERO.length, end - at);
    if (b.compare(ZERO, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}

/** First read of a scan; each later read doubles, up to MAX_READ_BYTES. */
const FIRST_READ_BYTES = 64 << 10;
const MAX_READ_BYTES = 4 << 20;

/**
 * Scan from `lba` and return provisioning extents: at most `maxExtents`, reading at most
 * `scanBlocks` blocks (the last extent ends where the scan stopped). SBC-3 5.5
 *
 * Reads start small and double: a GET LBA STATUS with room for one descriptor usually ends
 * within a few blocks of its starting LBA, and only a long extent needs the large reads.
 */
export async function scanLbaStatus(
  dev: BlockDevice,
  lba: number,
  maxExtents: number,
  scanBlocks: number,
  signal?: AbortSignal,
): Promise<LbaExtent[]> {
  const out: LbaExtent[] = [];
  const bs = dev.blockSize;
  const maxChunkBlocks = Math.max(1, Math.floor(MAX_READ_BYTES / bs));
  let chunkBlocks = Math.max(1, Math.floor(FIRST_READ_BYTES / bs));
  const end = Math.min(dev.blockCount, lba + scanBlocks);
  const buf = Buffer.allocUnsafe(Math.min(maxChunkBlocks, Math.max(1, end - lba)) * bs);
  let at = lba;
  while (at < end) {
    signal?.throwIfAborted();
    const n = Math.min(chunkBlocks, end - at);
    await dev.readInto(at, buf.subarray(0, n * bs));
    for (let i = 0; i < n;) {
      // The status of block i; with every extent taken, a change of status ends the scan before
      // the run is measured. The run: all of the rest when it is all zero (one memcmp), else
      // block by block.
      const zero = zeroBytes(buf, i * bs, (i + 1) * bs);
      const status = zero ? ProvisioningStatus.DEALLOCATED : ProvisioningStatus.MAPPED;
      const last = out[out.length - 1];
      const extend = last !== undefined && last.status === status && last.lba + last.blockCount === at + i;
      if (!extend && out.length === maxExtents) return out;
      let run = 1;
      if (zero && zeroBytes(buf, (i + 1) * bs, n * bs)) run = n - i;
      else while (i + run < n && zeroBytes(buf, (i + run) * bs, (i + run + 1) * bs) === zero) run++;
      if (extend) last.blockCount += run;
      else out.push({ lba: at + i, blockCount: run, status });
      i += run;
    }
    at += n;
    chunkBlocks = Math.min(maxChunkBlocks, chunkBlocks * 2);
  }
  return out;
}
