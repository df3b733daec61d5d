import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { applyFixups, RecordMagic } from './fixup.ts';
import { AttrType, decodeRef, type FileRef } from './record.ts';
import { readContent } from './stream.ts';
import { FILE_NAME_NAME_OFFSET, decodeFileName, type FileName } from './values.ts';
import { attrValue, findAttr, type NtfsFile, type Volume } from './volume.ts';

export interface DirEntry {
  ref: FileRef;
  fileName: FileName;
}

const I30 = '$I30';
const MAX_DEPTH = 64;

// $INDEX_ROOT value: 0x00 u32 indexed type  0x04 collation  0x08 u32 block size  0x0C u8 clusters per block
//   0x10 index node header.
// Index node header: 0x00 u32 entries offset (from the header)  0x04 u32 used  0x08 u32 allocated  0x0C flags.
// INDX block: multi-sector header, 0x10 u64 own VCN, 0x18 node header.
// Entry: 0x00 ref  0x08 u16 length  0x0A u16 key length  0x0C u32 flags (1 subnode, 2 last)  0x10 key;
//   subnode VCN in the last 8 bytes.

/**
 * Every entry of a directory's $I30 index, in collation order: a depth-first walk from
 * $INDEX_ROOT through live INDX blocks. A subnode pointing at a block already visited
 * (an index loop), at a free block, or at a block whose own VCN differs is an error.
 */
export async function readDirectory(vol: Volume, dir: NtfsFile): Promise<DirEntry[]> {
  const root = findAttr(dir, AttrType.INDEX_ROOT, I30);
  if (!root?.value)
    throw new NtfsFormatError(NtfsErrorCode.INDEX, 'directory has no resident $INDEX_ROOT:$I30', {
      record: dir.record,
    });
  const rv = root.value;
  if (rv.length < 0x20)
    throw new NtfsFormatError(NtfsErrorCode.INDEX, '$INDEX_ROOT too short', {
      record: dir.record,
      expected: '>= 32',
      actual: rv.length,
    });
  const rview = new DataView(rv.buffer, rv.byteOffset, rv.byteLength);
  const blockSize = rview.getUint32(0x08, true);
  if (blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    throw new NtfsFormatError(NtfsErrorCode.INDEX, 'index block size not a power of two in 512..65536', {
      record: dir.record,
      byteOffset: 0x08,
      actual: blockSize,
    });
  }
  const alloc = findAttr(dir, AttrType.INDEX_ALLOCATION, I30);
  const bitmapAttr = findAttr(dir, AttrType.BITMAP, I30);
  const bitmap = alloc && bitmapAttr ? await attrValue(vol, bitmapAttr) : undefined;
  // VCNs count clusters when a block is at least a cluster, else 512-byte units (64K clusters).
  const vcnUnit = blockSize >= vol.geo.clusterSize ? vol.geo.clusterSize : 512;
  const out: DirEntry[] = [];
  const visited = new Set<number>();

  const walkNode = async (
    buf: Uint8Array,
    header: number,
    where: string,
    byteBase: number,
    depth: number,
  ): Promise<void> => {
    if (depth > MAX_DEPTH)
      throw new NtfsFormatError(NtfsErrorCode.INDEX, `index deeper than ${MAX_DEPTH} levels`, { record: dir.record });
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const fail = (msg: string, at: number, expected?: string | number, actual?: string | number): never => {
      throw new NtfsFormatError(NtfsErrorCode.INDEX, `${where}: ${msg}`, {
        record: dir.record,
        byteOffset: byteBase + at,
        expected,
        actual,
      });
    };
    if (header + 16 > buf.length) fail('index node header past the end', header);
    let at = header + view.getUint32(header, true);
    const end = header + view.getUint32(header + 4, true);
    if (end > buf.length || at > end)
      fail('index entries past the end of the node', header + 4, `<= ${buf.length}`, end);
    for (;;) {
      if (at + 16 > end) fail('index node not terminated by a last entry', at);
      const len = view.getUint16(at + 8, true);
      const keyLen = view.getUint16(at + 10, true);
      const flags = view.getUint32(at + 12, true);
      if (len < 16 || len & 7 || at + len > end || 16 + keyLen > len)
        fail('bad index entry length', at + 8, `8-aligned, 16..${end - at}`, len);
      if (flags & 1) {
        if (len < 24) fail('subnode entry too short', at + 8, '>= 24', len);
        const vcn = view.getBigInt64(at + len - 8, true);
        if (vcn < 0n || vcn > BigInt(Number.MAX_SAFE_INTEGER))
          fail('bad subnode VCN', at + len - 8, '>= 0', vcn.toString());
        await walkBlock(Number(vcn), depth + 1);
      }
      if (flags & 2) break;
      if (keyLen < FILE_NAME_NAME_OFFSET)
        fail('index key shorter than a $FILE_NAME', at + 10, `>= ${FILE_NAME_NAME_OFFSET}`, keyLen);
      out.push({
        ref: decodeRef(view, at),
        fileName: decodeFileName(buf.subarray(at + 16, at + 16 + keyLen), dir.record),
      });
      at += len;
    }
  };

  const walkBlock = async (vcn: number, depth: number): Promise<void> => {
    if (!alloc)
      throw new NtfsFormatError(NtfsErrorCode.INDEX, 'subnode without $INDEX_ALLOCATION:$I30', { record: dir.record });
    const byteOff = vcn * vcnUnit;
    const blockNo = Math.floor(byteOff / blockSize);
    if (visited.has(vcn))
      throw new NtfsFormatError(NtfsErrorCode.INDEX, `index loop: INDX block at VCN ${vcn} reached twice`, {
        record: dir.record,
      });
    visited.add(vcn);
    if (byteOff % blockSize !== 0 || byteOff + blockSize > alloc.dataSize) {
      throw new NtfsFormatError(NtfsErrorCode.INDEX, `subnode VCN ${vcn} outside $INDEX_ALLOCATION`, {
        record: dir.record,
        expected: `< ${alloc.dataSize / vcnUnit}`,
        actual: vcn,
      });
    }
    if (bitmap && !(bitmap[blockNo >> 3] & (1 << (blockNo & 7)))) {
      throw new NtfsFormatError(NtfsErrorCode.INDEX, `subnode VCN ${vcn} points at a free INDX block`, {
        record: dir.record,
      });
    }
    const buf = await readContent(vol, alloc, byteOff, blockSize);
    applyFixups(buf, RecordMagic.INDX, { record: dir.record, byteOffset: byteOff });
    const own = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(0x10, true);
    if (own !== BigInt(vcn))
      throw new NtfsFormatError(NtfsErrorCode.INDEX, 'INDX block has the wrong own VCN', {
        record: dir.record,
        byteOffset: byteOff + 0x10,
        expected: vcn,
        actual: own.toString(),
      });
    await walkNode(buf, 0x18, `INDX VCN ${vcn}`, byteOff, depth);
  };

  await walkNode(rv, 0x10, '$INDEX_ROOT', 0, 0);
  return out;
}
