import { AttrType, decodeRef, decodeUtf16, le16, le32, type FileRef } from './record.ts';
import { NtfsErrorCode, NtfsFormatError } from './errors.ts';

// Structured attribute values: $STANDARD_INFORMATION, $FILE_NAME, $ATTRIBUTE_LIST entries, $REPARSE_POINT.

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** Milliseconds since 1970 as ISO 8601 UTC (Hinnant's civil_from_days; Date.toISOString is ~1.5 us). */
export function msToIso(ms: number): string | null {
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  const days = Math.floor(ms / 86400000);
  let rem = ms - days * 86400000;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const hh = Math.floor(rem / 3600000);
  rem -= hh * 3600000;
  const mm = Math.floor(rem / 60000);
  rem -= mm * 60000;
  const ss = Math.floor(rem / 1000);
  const msPart = rem - ss * 1000;
  if (y < 0 || y > 9999) return new Date(ms).toISOString();
  const date = `${String(y).padStart(4, '0')}-${pad2(m)}-${pad2(d)}`;
  return `${date}T${pad2(hh)}:${pad2(mm)}:${pad2(ss)}.${String(msPart).padStart(3, '0')}Z`;
}

/** $STANDARD_INFORMATION times in ms since 1970 (UTC); format with msToIso when printing. */
export interface Times {
  createdMs: number;
  modifiedMs: number;
  changedMs: number;
  accessedMs: number;
}

/** FILETIME as ms since 1970 (a double: exact to ~2 us, plenty for ms). */
export function filetimeMs(b: Uint8Array, at: number): number {
  return Math.floor((le32(b, at + 4) * 4294967296 + le32(b, at)) / 10000) - 11644473600000;
}

export const FileAttr = {
  READONLY: 0x1,
  HIDDEN: 0x2,
  SYSTEM: 0x4,
  DIRECTORY: 0x10,
  ARCHIVE: 0x20,
  SPARSE: 0x200,
  REPARSE_POINT: 0x400,
  COMPRESSED: 0x800,
  ENCRYPTED: 0x4000,
  DUP_FILE_NAME_INDEX_PRESENT: 0x10000000,
} as const;

// $STANDARD_INFORMATION: 0x00 four FILETIMEs  0x20 u32 attributes  [0x34 u32 security id (72-byte form)]
export interface StandardInfo extends Times {
  fileAttributes: number;
  securityId?: number;
}

function short(what: string, rec: number | undefined, need: number, have: number): never {
  throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE, `${what} value too short`, {
    record: rec,
    expected: `>= ${need}`,
    actual: have,
  });
}

/** Read the $STANDARD_INFORMATION value of `len` bytes at `at` into `out`. */
export function readStandardInfo(
  b: Uint8Array,
  at: number,
  len: number,
  record: number | undefined,
  out: StandardInfo,
): void {
  if (len < 48) short('$STANDARD_INFORMATION', record, 48, len);
  out.createdMs = filetimeMs(b, at);
  out.modifiedMs = filetimeMs(b, at + 8);
  out.changedMs = filetimeMs(b, at + 16);
  out.accessedMs = filetimeMs(b, at + 24);
  out.fileAttributes = le32(b, at + 0x20);
  out.securityId = len >= 72 ? le32(b, at + 0x34) : undefined;
}

export function decodeStandardInfo(v: Uint8Array, record?: number): StandardInfo {
  const si: StandardInfo = {
    createdMs: 0,
    modifiedMs: 0,
    changedMs: 0,
    accessedMs: 0,
    fileAttributes: 0,
    securityId: undefined,
  };
  readStandardInfo(v, 0, v.length, record, si);
  return si;
}

export const Namespace = { POSIX: 0, WIN32: 1, DOS: 2, WIN32_AND_DOS: 3 } as const;

// $FILE_NAME (times not decoded: stale copies of $STANDARD_INFORMATION's): 0x00 parent ref  0x08 four FILETIMEs  0x28
// alloc  0x30 size  0x38 u32 flags
//  0x40 u8 name length (u16 units)  0x41 u8 namespace  0x42 UTF-16LE name
export interface FileName {
  parent: FileRef;
  flags: number;
  namespace: number;
  name: string;
}

/** A $FILE_NAME without its name string (the name is `nameLength` UTF-16 units at FILE_NAME_NAME_OFFSET). */
export interface FileNameHeader {
  parent: FileRef;
  flags: number;
  namespace: number;
  nameLength: number;
}

/** Where a $FILE_NAME value's name starts (ntfs.md "$FILE_NAME"): the smallest valid value is this long. */
export const FILE_NAME_NAME_OFFSET = 0x42;

/** Check and read the $FILE_NAME value of `len` bytes at `at` into `out` (its `parent` is overwritten in place). */
export function readFileName(
  v: Uint8Array,
  at: number,
  len: number,
  record: number | undefined,
  out: FileNameHeader,
): void {
  if (len < FILE_NAME_NAME_OFFSET) short('$FILE_NAME', record, FILE_NAME_NAME_OFFSET, len);
  const n = v[at + 0x40];
  if (FILE_NAME_NAME_OFFSET + n * 2 > len) short('$FILE_NAME', record, FILE_NAME_NAME_OFFSET + n * 2, len);
  out.parent.record = le32(v, at) + le16(v, at + 4) * 0x1_0000_0000;
  out.parent.seq = le16(v, at + 6);
  out.flags = le32(v, at + 0x38);
  out.namespace = v[at + 0x41];
  out.nameLength = n;
}

const nameHeader: FileNameHeader = { parent: { record: 0, seq: 0 }, flags: 0, namespace: 0, nameLength: 0 };

export function decodeFileName(v: Uint8Array, record?: number): FileName {
  readFileName(v, 0, v.length, record, nameHeader);
  const h = nameHeader;
  return {
    parent: { record: h.parent.record, seq: h.parent.seq },
    flags: h.flags,
    namespace: h.namespace,
    name: decodeUtf16(v, FILE_NAME_NAME_OFFSET, h.nameLength),
  };
}

// $ATTRIBUTE_LIST entry: 0x00 u32 type  0x04 u16 length  0x06 u8 name length  0x07 u8 name offset
//  0x08 u64 lowest VCN  0x10 ref of the record holding it  0x18 u16 attribute id
export interface AttrListEntry {
  type: number;
  name: string;
  lowestVcn: number;
  ref: FileRef;
  id: number;
}

export function decodeAttributeList(v: Uint8Array, record: number): AttrListEntry[] {
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const out: AttrListEntry[] = [];
  let at = 0;
  while (at + 0x1a <= v.length) {
    const type = view.getUint32(at, true);
    const len = view.getUint16(at + 4, true);
    const nameLen = v[at + 6];
    const nameAt = v[at + 7];
    if (type === AttrType.END) break;
    if (len < 0x1a || at + len > v.length || (nameLen && nameAt + nameLen * 2 > len)) {
      throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE_LIST, 'bad $ATTRIBUTE_LIST entry length', {
        record,
        byteOffset: at + 4,
        expected: `26..${v.length - at}`,
        actual: len,
      });
    }
    const vcn = view.getBigUint64(at + 8, true);
    if (vcn > BigInt(Number.MAX_SAFE_INTEGER))
      throw new NtfsFormatError(NtfsErrorCode.ATTRIBUTE_LIST, 'lowest VCN above 2^53', { record, byteOffset: at + 8 });
    out.push({
      type,
      name: nameLen ? decodeUtf16(v, at + nameAt, nameLen) : '',
      lowestVcn: Number(vcn),
      ref: decodeRef(view, at + 0x10),
      id: view.getUint16(at + 0x18, true),
    });
    at += len;
  }
  return out;
}

export const ReparseTag = { MOUNT_POINT: 0xa0000003, SYMLINK: 0xa000000c, WOF: 0x80000017 } as const;

/** $REPARSE_POINT: u32 tag, u16 data length, u16 reserved, data. Returns the tag of the `len`-byte value at `at`. */
export function reparseTagAt(v: Uint8Array, at: number, len: number, record?: number): number {
  if (len < 8) short('$REPARSE_POINT', record, 8, len);
  return le32(v, at);
}

export function decodeReparseTag(v: Uint8Array, record?: number): number {
  return reparseTagAt(v, 0, v.length, record);
}
