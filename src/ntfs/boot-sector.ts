import { ByteReader } from '../util/byte-reader.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

/** Volume geometry from the NTFS boot sector (BPB). */
export interface Geometry {
  bytesPerSector: number;
  clusterSize: number;
  /** Sectors in the volume, not counting the backup boot sector that follows them. */
  totalSectors: number;
  clusterCount: number;
  mftLcn: number;
  mftMirrLcn: number;
  recordSize: number;
  indexBlockSize: number;
  serial: string;
}

// Boot sector layout (ntfs-3g layout.h NTFS_BOOT_SECTOR):
//  0x03 "NTFS    "   0x0B u16 bytes/sector   0x0D u8 sectors/cluster (>128: 2^(256-v))
//  0x28 u64 sectors  0x30 u64 $MFT LCN  0x38 u64 $MFTMirr LCN
//  0x40 i8 clusters per MFT record  0x44 i8 clusters per index block (<=0: 2^-v bytes)
//  0x48 u64 serial   0x1FE 55 AA
const OEM = [0x4e, 0x54, 0x46, 0x53, 0x20, 0x20, 0x20, 0x20];
const MAX_CLUSTER = 2 * 1024 * 1024;

function perUnit(v: number, clusterSize: number, what: string): number {
  const s = v > 127 ? v - 256 : v;
  const size = s > 0 ? s * clusterSize : s <= -9 && s >= -31 ? 2 ** -s : 0;
  if (size < 512 || size > 65536 || (size & (size - 1)) !== 0) {
    throw new NtfsFormatError(
      NtfsErrorCode.BOOT,
      `${what} size ${size} from byte ${v} is not a power of two in 512..65536`,
      {
        byteOffset: what === 'MFT record' ? 0x40 : 0x44,
      },
    );
  }
  return size;
}

export function decodeBootSector(buf: Uint8Array): Geometry {
  if (buf.length < 512)
    throw new NtfsFormatError(NtfsErrorCode.BOOT, 'boot sector shorter than 512 bytes', {
      byteOffset: 0,
      expected: 512,
      actual: buf.length,
    });
  const r = new ByteReader(buf);
  for (let i = 0; i < 8; i++) {
    if (buf[3 + i] !== OEM[i])
      throw new NtfsFormatError(NtfsErrorCode.BOOT, 'no NTFS signature', {
        byteOffset: 3,
        expected: '"NTFS    "',
        actual: JSON.stringify(String.fromCharCode(...buf.subarray(3, 11))),
      });
  }
  if (r.u16le(0x1fe) !== 0xaa55)
    throw new NtfsFormatError(NtfsErrorCode.BOOT, 'bad boot signature', {
      byteOffset: 0x1fe,
      expected: '0xaa55',
      actual: `0x${r.u16le(0x1fe).toString(16)}`,
    });
  const bytesPerSector = r.u16le(0x0b);
  if (bytesPerSector < 256 || bytesPerSector > 4096 || (bytesPerSector & (bytesPerSector - 1)) !== 0) {
    throw new NtfsFormatError(NtfsErrorCode.BOOT, 'bytes per sector not a power of two in 256..4096', {
      byteOffset: 0x0b,
      actual: bytesPerSector,
    });
  }
  const spcByte = r.u8(0x0d);
  const spc = spcByte <= 128 ? spcByte : 2 ** (256 - spcByte);
  const clusterSize = spc * bytesPerSector;
  if (spc === 0 || (spc & (spc - 1)) !== 0 || clusterSize > MAX_CLUSTER) {
    throw new NtfsFormatError(NtfsErrorCode.BOOT, `absurd cluster size (${spc} sectors per cluster)`, {
      byteOffset: 0x0d,
      actual: spcByte,
    });
  }
  let totalSectors: number;
  let mftLcn: number;
  let mftMirrLcn: number;
  try {
    totalSectors = r.u64le(0x28);
    mftLcn = r.u64le(0x30);
    mftMirrLcn = r.u64le(0x38);
  } catch {
    throw new NtfsFormatError(NtfsErrorCode.BOOT, 'sector count or $MFT location above 2^53', { byteOffset: 0x28 });
  }
  const clusterCount = Math.floor((totalSectors * bytesPerSector) / clusterSize);
  if (clusterCount < 1)
    throw new NtfsFormatError(NtfsErrorCode.BOOT, 'volume has no clusters', { byteOffset: 0x28, actual: totalSectors });
  if (mftLcn >= clusterCount)
    throw new NtfsFormatError(NtfsErrorCode.BOOT, '$MFT LCN beyond the volume', {
      byteOffset: 0x30,
      expected: `< ${clusterCount}`,
      actual: mftLcn,
    });
  if (mftMirrLcn >= clusterCount)
    throw new NtfsFormatError(NtfsErrorCode.BOOT, '$MFTMirr LCN beyond the volume', {
      byteOffset: 0x38,
      expected: `< ${clusterCount}`,
      actual: mftMirrLcn,
    });
  const recordSize = perUnit(r.u8(0x40), clusterSize, 'MFT record');
  const indexBlockSize = perUnit(r.u8(0x44), clusterSize, 'index block');
  const serial = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    .getBigUint64(0x48, true)
    .toString(16)
    .padStart(16, '0');
  return {
    bytesPerSector,
    clusterSize,
    totalSectors,
    clusterCount,
    mftLcn,
    mftMirrLcn,
    recordSize,
    indexBlockSize,
    serial,
  };
}
