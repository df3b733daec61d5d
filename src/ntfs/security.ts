import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { AttrType, le16, le32 } from './record.ts';
import { attrValue, findAttr, loadFile, SystemRecord, type NtfsFile, type Volume } from './volume.ts';

// Security descriptors: self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6), kept either in a
// file's own $SECURITY_DESCRIPTOR attribute (0x50, NTFS 1.x and ntfs-3g without $Secure) or
// shared in $Secure (record 9, NTFS 3.x) and named by the security id of $STANDARD_INFORMATION.

/** SECURITY_DESCRIPTOR control bits (MS-DTYP 2.4.6). */
export const SdControl = {
  OWNER_DEFAULTED: 0x0001,
  GROUP_DEFAULTED: 0x0002,
  DACL_PRESENT: 0x0004,
  DACL_DEFAULTED: 0x0008,
  SACL_PRESENT: 0x0010,
  SACL_DEFAULTED: 0x0020,
  DACL_AUTO_INHERITED: 0x0400,
  SACL_AUTO_INHERITED: 0x0800,
  DACL_PROTECTED: 0x1000,
  SACL_PROTECTED: 0x2000,
  SELF_RELATIVE: 0x8000,
} as const;

/** ACE types (MS-DTYP 2.4.4.1) whose mask is followed by object GUIDs before the SID. */
const OBJECT_ACE_TYPES = new Set([0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c, 0x0f, 0x10]);
const ACCESS_ALLOWED_COMPOUND = 0x04;

export interface Ace {
  type: number;
  flags: number;
  mask: number;
  /** The trustee (absent for a compound ACE). */
  sid?: string;
}

export interface Acl {
  revision: number;
  aces: Ace[];
}

export interface SecurityDescriptor {
  control: number;
  owner?: string;
  group?: string;
  /** Present when SE_DACL_PRESENT is set and the DACL offset is not 0 (a null DACL otherwise). */
  dacl?: Acl;
  sacl?: Acl;
}

interface Where {
  record?: number;
  byteOffset?: number;
}

function bad(msg: string, where: Where, at: number, expected?: string | number, actual?: string | number): never {
  throw new NtfsFormatError(NtfsErrorCode.SECURITY, msg, {
    record: where.record,
    byteOffset: (where.byteOffset ?? 0) + at,
    expected,
    actual,
  });
}

// SID (MS-DTYP 2.4.2): u8 revision (1), u8 sub-authority count (<= 15), 6-byte big-endian
// identifier authority, u32 LE sub-authorities. String form 2.4.2.1: S-1-<authority>-<sub>...
/** The SID at `at` (bounded by `end`) in its S-1-… string form. */
export function sidString(b: Uint8Array, at: number, end: number, where: Where): string {
  if (at + 8 > end) bad('SID past the end of the descriptor', where, at, `<= ${end}`, at + 8);
  const count = b[at + 1];
  if (b[at] !== 1 || count > 15)
    bad('bad SID revision or sub-authority count', where, at, 'revision 1, <= 15', `${b[at]}, ${count}`);
  if (at + 8 + 4 * count > end)
    bad('SID sub-authorities past the end of the descriptor', where, at, `<= ${end}`, at + 8 + 4 * count);
  let authority = 0;
  for (let i = 0; i < 6; i++) authority = authority * 256 + b[at + 2 + i];
  let s = `S-1-${authority < 2 ** 32 ? authority : `0x${authority.toString(16).padStart(12, '0').toUpperCase()}`}`;
  for (let i = 0; i < count; i++) s += `-${le32(b, at + 8 + 4 * i)}`;
  return s;
}

// ACL (MS-DTYP 2.4.5): u8 revision, u8 sbz1, u16 size, u16 ACE count, u16 sbz2, ACEs.
// ACE header (2.4.4.1): u8 type, u8 flags, u16 size; then u32 mask; object ACEs add u32 flags
// and up to two GUIDs (2.4.4.3) before the SID; the others have the SID right after the mask.
function decodeAcl(b: Uint8Array, at: number, end: number, where: Where): Acl {
  if (at + 8 > end) bad('ACL header past the end of the descriptor', where, at);
  const size = le16(b, at + 2);
  const count = le16(b, at + 4);
  if (size < 8 || at + size > end) bad('bad ACL size', where, at + 2, `8..${end - at}`, size);
  const aclEnd = at + size;
  const aces: Ace[] = [];
  let p = at + 8;
  for (let i = 0; i < count; i++) {
    if (p + 8 > aclEnd) bad(`ACE ${i} past the end of the ACL`, where, p, `<= ${aclEnd}`, p + 8);
    const type = b[p];
    const aceSize = le16(b, p + 2);
    if (aceSize < 8 || aceSize & 3 || p + aceSize > aclEnd)
      bad(`bad size of ACE ${i}`, where, p + 2, `4-aligned, 8..${aclEnd - p}`, aceSize);
    const ace: Ace = { type, flags: b[p + 1], mask: le32(b, p + 4) };
    let sidAt = p + 8;
    if (OBJECT_ACE_TYPES.has(type)) {
      if (p + 12 > p + aceSize) bad(`object ACE ${i} too short`, where, p + 2);
      const objFlags = le32(b, p + 8);
      sidAt = p + 12 + (objFlags & 1 ? 16 : 0) + (objFlags & 2 ? 16 : 0);
    }
    if (type !== ACCESS_ALLOWED_COMPOUND) ace.sid = sidString(b, sidAt, p + aceSize, where);
    aces.push(ace);
    p += aceSize;
  }
  return { revision: b[at], aces };
}

// Self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6): u8 revision (1), u8 sbz1, u16 control,
// u32 offsets of owner, group, SACL, DACL (0 = absent), relative to the descriptor.
/** Decode a self-relative security descriptor. `where` names it in errors. */
export function decodeSecurityDescriptor(b: Uint8Array, where: Where = {}): SecurityDescriptor {
  if (b.length < 20) bad('security descriptor shorter than its header', where, 0, '>= 20', b.length);
  const control = le16(b, 2);
  if (b[0] !== 1) bad('security descriptor revision not 1', where, 0, 1, b[0]);
  if (!(control & SdControl.SELF_RELATIVE))
    bad('security descriptor not self-relative', where, 2, 'SE_SELF_RELATIVE', `0x${control.toString(16)}`);
  const offset = (at: number): number => {
    const o = le32(b, at);
    if (o !== 0 && (o < 20 || o >= b.length))
      bad('security descriptor offset out of range', where, at, `0 or 20..${b.length - 1}`, o);
    return o;
  };
  const [owner, group, sacl, dacl] = [offset(4), offset(8), offset(12), offset(16)];
  const sd: SecurityDescriptor = { control };
  if (owner) sd.owner = sidString(b, owner, b.length, where);
  if (group) sd.group = sidString(b, group, b.length, where);
  if (control & SdControl.DACL_PRESENT && dacl) sd.dacl = decodeAcl(b, dacl, b.length, where);
  if (control & SdControl.SACL_PRESENT && sacl) sd.sacl = decodeAcl(b, sacl, b.length, where);
  return sd;
}

/** ntfs-3g security.c ntfs_security_hash: over the descriptor's u32 words, h = word + rotl(h, 3). */
export function securityHash(b: Uint8Array): number {
  let h = 0;
  for (let i = 0; i + 4 <= b.length; i += 4) h = (le32(b, i) + ((h << 3) | (h >>> 29))) >>> 0;
  return h;
}

/** One $SDS entry: a descriptor and its id. */
export interface SdsEntry {
  id: number;
  hash: number;
  /** Offset of the entry in $SDS. */
  offset: number;
  /** The self-relative descriptor bytes. */
  bytes: Uint8Array;
}

// $SDS entry (ntfs-3g layout.h SECURITY_DESCRIPTOR_HEADER): 0x00 u32 hash  0x04 u32 security id
//  0x08 u64 own offset in $SDS  0x10 u32 length (header + descriptor), descriptor at 0x14.
// Entries are 16-byte aligned inside 256 KiB blocks; each block is followed by its mirror copy.
const SDS_BLOCK = 0x40000;
const SDS_HEADER = 0x14;

/** The descriptors of $Secure:$SDS by security id, decoded once per volume. */
export class SecureStore {
  readonly entries = new Map<number, SdsEntry>();
  /** Entries that could not be used (bad header, hash, duplicate id), each named by its $SDS offset. */
  readonly problems: NtfsFormatError[] = [];
  private readonly decoded = new Map<number, SecurityDescriptor | NtfsFormatError>();

  get(id: number): SdsEntry | undefined {
    return this.entries.get(id);
  }

  /** The decoded descriptor of `id` (cached); throws NtfsFormatError if it does not decode. */
  descriptor(id: number): SecurityDescriptor | undefined {
    let d = this.decoded.get(id);
    if (d === undefined) {
      const e = this.entries.get(id);
      if (!e) return undefined;
      try {
        d = decodeSecurityDescriptor(e.bytes, { record: SystemRecord.SECURE, byteOffset: e.offset + SDS_HEADER });
      } catch (err) {
        if (!(err instanceof NtfsFormatError)) throw err;
        d = err;
      }
      this.decoded.set(id, d);
    }
    if (d instanceof NtfsFormatError) throw d;
    return d;
  }
}

/** Check the entry at `pos` of $SDS: its descriptor bytes, or a reason it is unusable. */
function sdsEntryAt(
  sds: Uint8Array,
  pos: number,
  blockEnd: number,
): { id: number; hash: number; length: number; bytes: Uint8Array } | string {
  if (pos + SDS_HEADER > blockEnd) return 'entry header past the end of its block';
  const length = le32(sds, pos + 0x10);
  const own = le32(sds, pos + 8) + le32(sds, pos + 12) * 0x1_0000_0000;
  if (own !== pos) return `entry names offset ${own}`;
  if (length < SDS_HEADER + 20 || pos + length > blockEnd) return `bad entry length ${length}`;
  const bytes = sds.subarray(pos + SDS_HEADER, pos + length);
  const hash = le32(sds, pos);
  if (securityHash(bytes) !== hash)
    return `descriptor hash 0x${securityHash(bytes).toString(16)} is not the entry's 0x${hash.toString(16)}`;
  return { id: le32(sds, pos + 4), hash, length, bytes };
}

/** Hash, security id and length all zero: no entry starts here. */
function zeroHeader(sds: Uint8Array, pos: number): boolean {
  return le32(sds, pos) === 0 && le32(sds, pos + 4) === 0 && le32(sds, pos + 0x10) === 0;
}

/**
 * Index the entries of a $SDS stream. A damaged entry is read from its mirror (256 KiB on) when
 * that one is whole; otherwise it is reported and the scan resynchronises on the next 16 bytes.
 */
export function indexSds(sds: Uint8Array): SecureStore {
  const store = new SecureStore();
  const problem = (pos: number, msg: string): void => {
    store.problems.push(
      new NtfsFormatError(NtfsErrorCode.SECURITY, `$SDS entry at ${pos}: ${msg}`, {
        record: SystemRecord.SECURE,
        byteOffset: pos,
      }),
    );
  };
  for (let block = 0; block < sds.length; block += 2 * SDS_BLOCK) {
    const end = Math.min(block + SDS_BLOCK, sds.length);
    let resyncing = false; // after a bad entry, until the next good one: report once
    for (let pos = block; pos + SDS_HEADER <= end;) {
      if (zeroHeader(sds, pos)) {
        // Unused space, unless the mirror holds an entry here: then the primary was wiped.
        const m = pos + SDS_BLOCK;
        if (m + SDS_HEADER > sds.length || zeroHeader(sds, m)) {
          pos += 16;
          continue;
        }
      }
      let e = sdsEntryAt(sds, pos, end);
      if (typeof e === 'string') {
        const mirror =
          pos + SDS_BLOCK + SDS_HEADER <= sds.length
            ? sdsEntryAt(sds.subarray(SDS_BLOCK), pos, Math.min(end, sds.length - SDS_BLOCK))
            : e;
        if (typeof mirror === 'string') {
          if (!resyncing) problem(pos, `${e}; skipped`);
          resyncing = true;
          pos += 16;
          continue;
        }
        problem(pos, `${e}; its mirror is used`);
        e = mirror;
      }
      resyncing = false;
      if (store.entries.has(e.id)) problem(pos, `security id ${e.id} already seen; the first entry is kept`);
      else store.entries.set(e.id, { id: e.id, hash: e.hash, offset: pos, bytes: e.bytes });
      pos += (e.length + 15) & ~15;
    }
  }
  return store;
}

const stores = new WeakMap<Volume, Promise<SecureStore | undefined>>();

/** $Secure's descriptors (read and indexed once per volume); undefined without $Secure:$SDS. */
export function secureStore(vol: Volume): Promise<SecureStore | undefined> {
  let p = stores.get(vol);
  if (!p) {
    p = (async () => {
      const secure = await loadFile(vol, SystemRecord.SECURE);
      const sds = findAttr(secure, AttrType.DATA, '$SDS');
      return sds ? indexSds(await attrValue(vol, sds)) : undefined;
    })();
    stores.set(vol, p);
  }
  return p;
}

export interface FileSecurity {
  /** The $STANDARD_INFORMATION security id (NTFS 3.x), when it has one. */
  securityId?: number;
  /** Where the descriptor came from: the file's own attribute or $Secure. */
  source: 'attribute' | 'secure';
  bytes: Uint8Array;
  descriptor: SecurityDescriptor;
}

/**
 * A file's security descriptor: its own $SECURITY_DESCRIPTOR attribute, else its security id
 * looked up in $Secure. Undefined when it has neither; throws NtfsFormatError when the
 * descriptor is damaged or the id is not in $Secure.
 */
export async function fileSecurity(vol: Volume, f: NtfsFile): Promise<FileSecurity | undefined> {
  const securityId = f.si?.securityId;
  const own = findAttr(f, AttrType.SECURITY_DESCRIPTOR);
  if (own) {
    const bytes = await attrValue(vol, own);
    return {
      securityId,
      source: 'attribute',
      bytes,
      descriptor: decodeSecurityDescriptor(bytes, { record: f.record }),
    };
  }
  if (!securityId) return undefined;
  const store = await secureStore(vol);
  const e = store?.get(securityId);
  if (!store || !e)
    throw new NtfsFormatError(NtfsErrorCode.SECURITY, `security id ${securityId} is not in $Secure`, {
      record: f.record,
      actual: securityId,
    });
  return {
    securityId,
    source: 'secure',
    bytes: e.bytes,
    descriptor: store.descriptor(securityId) as SecurityDescriptor,
  };
}
