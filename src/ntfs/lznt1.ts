import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

const CHUNK = 4096;

/**
 * LZNT1 (MS-XCA 2.5; ntfs-3g compress.c ntfs_decompress). Decompresses `src` into `dst`
 * (pre-zeroed, one compression unit) and returns the bytes produced. Chunks: u16 header,
 * size = (h & 0xFFF) + 3 including the header, bit 15 = compressed. A chunk shorter than
 * 4096 bytes out is zero-padded. Tokens: a tag byte, LSB first, 0 = literal, 1 = u16 back-reference.
 */
export function decompressLznt1(
  src: Uint8Array,
  dst: Uint8Array,
  where: { record?: number; byteOffset?: number } = {},
): number {
  const fail = (msg: string, at: number): never => {
    throw new NtfsFormatError(NtfsErrorCode.LZNT1, msg, {
      record: where.record,
      byteOffset: (where.byteOffset ?? 0) + at,
    });
  };
  let sp = 0;
  let dp = 0;
  while (sp + 2 <= src.length && dp < dst.length) {
    const h = src[sp] | (src[sp + 1] << 8);
    if (h === 0) break;
    const chunkEnd = sp + (h & 0x0fff) + 3;
    if (chunkEnd > src.length) fail('LZNT1 chunk runs past the compressed data', sp);
    const chunkStart = dp;
    const limit = Math.min(dst.length, dp + CHUNK);
    let p = sp + 2;
    if ((h & 0x8000) === 0) {
      const n = Math.min(chunkEnd - p, limit - dp);
      dst.set(src.subarray(p, p + n), dp);
      dp += n;
    } else {
      while (p < chunkEnd && dp < limit) {
        const tag = src[p++];
        for (let bit = 0; bit < 8 && p < chunkEnd && dp < limit; bit++) {
          if (((tag >> bit) & 1) === 0) {
            dst[dp++] = src[p++];
            continue;
          }
          if (p + 2 > chunkEnd) fail('LZNT1 back-reference cut short', p);
          const t = src[p] | (src[p + 1] << 8);
          p += 2;
          const pos = dp - chunkStart;
          if (pos === 0) fail('LZNT1 back-reference at the start of a chunk', p - 2);
          let lg = 0;
          for (let x = pos - 1; x >= 0x10; x >>= 1) lg++;
          const dist = (t >> (12 - lg)) + 1;
          let len = (t & (0xfff >> lg)) + 3;
          if (dist > pos) fail(`LZNT1 back-reference ${dist} bytes before a chunk position of ${pos}`, p - 2);
          if (dp + len > limit) len = limit - dp;
          for (let i = 0; i < len; i++, dp++) dst[dp] = dst[dp - dist];
        }
      }
    }
    dp = Math.max(dp, Math.min(dst.length, chunkStart + CHUNK));
    sp = chunkEnd;
  }
  return dp;
}
