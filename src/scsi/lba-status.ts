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

const ZERO = new Uint8Array(65536);

/** True when `buf` holds only zero bytes (memcmp against a zero page, no per-byte JS loop). */
export function isZero(buf: Uint8Array): boolean {
  for (let at = 0; at < buf.length; at += ZERO.length) {
    const n = Math.min(ZERO.length, buf.length - at);
    if (Buffer.compare(Buffer.from(buf.buffer, buf.byteOffset + at, n), Buffer.from(ZERO.buffer, 0, n)) !== 0)
      return false;
  }
  return true;
}

/**
 * Scan from `lba` and return provisioning extents: at most `maxExtents`, reading at most
 * `scanBlocks` blocks (the last extent ends where the scan stopped). SBC-3 5.5
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
  const chunkBlocks = Math.max(1, Math.floor((4 << 20) / bs));
  const end = Math.min(dev.blockCount, lba + scanBlocks);
  const buf = new Uint8Array(chunkBlocks * bs);
  let at = lba;
  while (at < end) {
    signal?.throwIfAborted();
    const n = Math.min(chunkBlocks, end - at);
    const view = buf.subarray(0, n * bs);
    await dev.readInto(at, view);
    // Fast path: the whole chunk has one status.
    const whole = isZero(view) ? ProvisioningStatus.DEALLOCATED : undefined;
    for (let i = 0; i < n;) {
      let status: number;
      let run: number;
      if (whole !== undefined) {
        status = whole;
        run = n;
      } else {
        status = isZero(view.subarray(i * bs, (i + 1) * bs))
          ? ProvisioningStatus.DEALLOCATED
          : ProvisioningStatus.MAPPED;
        run = 1;
      }
      const last = out[out.length - 1];
      if (last && last.status === status && last.lba + last.blockCount === at + i) last.blockCount += run;
      else {
        if (out.length === maxExtents) return out;
        out.push({ lba: at + i, blockCount: run, status });
      }
      i += run;
    }
    at += n;
  }
  return out;
}
