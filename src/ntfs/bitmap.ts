import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { AttrType } from './record.ts';
import { findAttr, loadFile, streamAttr, SystemRecord, type Volume } from './volume.ts';

/** Used clusters as [firstCluster, clusterCount] ranges, merged and sorted. */
export interface UsedClusters {
  clusterSize: number;
  ranges: [number, number][];
}

/**
 * Allocated clusters from $Bitmap (record 6): bit i, LSB first, set = cluster i in use.
 * Bits at and past the cluster count are padding (set by ntfs-3g) and ignored.
 */
export async function usedClusters(vol: Volume): Promise<UsedClusters> {
  const file = await loadFile(vol, SystemRecord.BITMAP);
  const data = findAttr(file, AttrType.DATA);
  const total = vol.geo.clusterCount;
  if (!data || data.dataSize * 8 < total) {
    throw new NtfsFormatError(NtfsErrorCode.RECORD, '$Bitmap is missing or shorter than the volume', {
      record: SystemRecord.BITMAP,
      expected: `>= ${Math.ceil(total / 8)} bytes`,
      actual: data?.dataSize ?? 0,
    });
  }
  const ranges: [number, number][] = [];
  let start = -1;
  let bit = 0;
  for await (const chunk of streamAttr(vol, data)) {
    for (let i = 0; i < chunk.length && bit < total; i++) {
      // a whole aligned word of set bits inside a range, or of clear bits outside one: 32 at once
      if ((i & 3) === 0 && i + 4 <= chunk.length && bit + 32 <= total) {
        const w = chunk[i] | (chunk[i + 1] << 8) | (chunk[i + 2] << 16) | (chunk[i + 3] << 24);
        if ((w === -1 && start >= 0) || (w === 0 && start < 0)) {
          bit += 32;
          i += 3;
          continue;
        }
      }
      const b = chunk[i];
      if (bit + 8 > total) {
        for (let k = 0; k < 8 && bit < total; k++, bit++) {
          if (b & (1 << k)) {
            if (start < 0) start = bit;
          } else if (start >= 0) {
            ranges.push([start, bit - start]);
            start = -1;
          }
        }
      } else if (b === 0xff && start >= 0) {
        bit += 8;
      } else if (b === 0 && start < 0) {
        bit += 8;
      } else {
        for (let k = 0; k < 8; k++, bit++) {
          if (b & (1 << k)) {
            if (start < 0) start = bit;
          } else if (start >= 0) {
            ranges.push([start, bit - start]);
            start = -1;
          }
        }
      }
    }
    if (bit >= total) break;
  }
  if (start >= 0) ranges.push([start, bit - start]);
  return { clusterSize: vol.geo.clusterSize, ranges };
}
