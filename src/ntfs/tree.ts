import { NtfsErrorCode, NtfsFormatError } from './errors.ts';
import { readDirectory, type DirEntry } from './index.ts';
import { AttrType } from './record.ts';
import { readContent } from './stream.ts';
import { fileSecurity } from './security.ts';
import { FileAttr, msToIso, Namespace, ReparseTag } from './values.ts';
import { findAttr, linkNames, loadFile, SystemRecord, type NtfsFile, type Volume } from './volume.ts';

export type EntryType = 'file' | 'dir' | 'symlink' | 'reparse';

/** One row of `ferry ntfs ls --json`. */
export interface ListEntry {
  path: string;
  type: EntryType;
  /** Bytes of the unnamed $DATA (0 for directories). */
  size: number;
  record: number;
  links: number;
  streams: { name: string; size: number }[];
  resident: boolean;
  created: string | null;
  modified: string | null;
  changed: string | null;
  accessed: string | null;
  /** The $STANDARD_INFORMATION security id (NTFS 3.x), when it has one. */
  securityId?: number;
  /** Owner and group SIDs (S-1-…) of the file's security descriptor, when it resolves. */
  owner?: string;
  group?: string;
}

/** A record skipped because it is malformed; the walk carries on. */
export interface SkippedRecord {
  record?: number;
  path?: string;
  code: string;
  message: string;
}

const INTERIX_SYMLINK = [0x49, 0x6e, 0x74, 0x78, 0x4c, 0x4e, 0x4b, 0x01]; // "IntxLNK\1"

export async function entryType(vol: Volume, f: NtfsFile): Promise<EntryType> {
  if (f.reparseTag !== undefined)
    return f.reparseTag === ReparseTag.SYMLINK
      ? 'symlink'
      : f.isDirectory && f.reparseTag !== ReparseTag.MOUNT_POINT
        ? 'dir'
        : 'reparse';
  if (f.isDirectory) return 'dir';
  // ntfs-3g `ln -s` writes an Interix symlink: SYSTEM attribute, data "IntxLNK\1" + UTF-16 target.
  const data = findAttr(f, AttrType.DATA);
  if (f.si && f.si.fileAttributes & FileAttr.SYSTEM && data && data.dataSize > 8 && data.dataSize < 4096) {
    const head = await readContent(vol, data, 0, 8);
    if (INTERIX_SYMLINK.every((b, i) => head[i] === b)) return 'symlink';
  }
  return 'file';
}

/**
 * A listing row. A security descriptor that does not resolve (damaged, or an id missing from
 * $Secure) leaves out owner and group and is reported through `onError`; the row stays.
 */
export async function describe(
  vol: Volume,
  f: NtfsFile,
  path: string,
  onError?: (s: SkippedRecord) => void,
): Promise<ListEntry> {
  const data = findAttr(f, AttrType.DATA);
  const streams = f.attrs
    .filter((a) => a.type === AttrType.DATA && a.name !== '')
    .map((a) => ({ name: a.name, size: a.dataSize }));
  const entry: ListEntry = {
    path,
    type: await entryType(vol, f),
    size: f.isDirectory ? 0 : (data?.dataSize ?? 0),
    record: f.record,
    links: linkNames(f).length,
    streams,
    resident: data ? data.resident : false,
    created: f.si ? msToIso(f.si.createdMs) : null,
    modified: f.si ? msToIso(f.si.modifiedMs) : null,
    changed: f.si ? msToIso(f.si.changedMs) : null,
    accessed: f.si ? msToIso(f.si.accessedMs) : null,
  };
  if (f.si?.securityId !== undefined) entry.securityId = f.si.securityId;
  try {
    const sec = await fileSecurity(vol, f);
    if (sec?.descriptor.owner) entry.owner = sec.descriptor.owner;
    if (sec?.descriptor.group) entry.group = sec.descriptor.group;
  } catch (e) {
    if (!(e instanceof NtfsFormatError)) throw e;
    onError?.({ record: f.record, path, code: e.code, message: e.message });
  }
  return entry;
}

/**
 * Each browsable name of each file, once per (directory, name): the path of its directory (that
 * directory's own path) and the name. DOS aliases, the root's self reference and names whose
 * directory has no path (orphans) are left out. `links` counts the file's non-DOS names.
 */
export function* namedPaths<
  F extends {
    record: number;
    path: string | null;
    names: ReadonlyArray<{ parent: number; name: string; namespace: number }>;
  },
>(files: readonly F[]): Generator<{ file: F; dir: string; name: string; path: string; links: number }> {
  const dirPath = new Map<number, string>();
  for (const f of files) if (f.path !== null) dirPath.set(f.record, f.path);
  for (const f of files) {
    if (f.record === SystemRecord.ROOT) continue;
    const names = f.names.filter((n) => n.namespace !== Namespace.DOS);
    const seen = new Set<string>();
    for (const n of names) {
      const dir = dirPath.get(n.parent);
      const key = `${n.parent}/${n.name}`;
      if (dir === undefined || seen.has(key)) continue;
      seen.add(key);
      yield { file: f, dir, name: n.name, path: joinPath(dir, n.name), links: names.length };
    }
  }
}

/** Split PATH[:STREAM] at the first ':' after the last '/'. */
export function splitStream(spec: string): { path: string; stream: string } {
  const slash = spec.lastIndexOf('/');
  const colon = spec.indexOf(':', slash + 1);
  return colon < 0 ? { path: spec, stream: '' } : { path: spec.slice(0, colon), stream: spec.slice(colon + 1) };
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Entries a listing shows: no DOS-only aliases, no self reference ("." in the root), system files only on request. */
export function visibleEntries(dirRecord: number, entries: DirEntry[], system: boolean): DirEntry[] {
  return entries.filter(
    (e) =>
      e.fileName.namespace !== Namespace.DOS &&
      e.ref.record !== dirRecord &&
      (system || e.ref.record >= SystemRecord.FIRST_USER),
  );
}

/** Load the file an index entry points at; a stale entry (sequence mismatch) or a free record is an error. */
export async function loadEntry(vol: Volume, e: DirEntry): Promise<NtfsFile> {
  const f = await loadFile(vol, e.ref.record);
  if (e.ref.seq !== 0 && f.seq !== e.ref.seq) {
    throw new NtfsFormatError(NtfsErrorCode.INDEX, `stale index entry "${e.fileName.name}"`, {
      record: e.ref.record,
      expected: `seq ${e.ref.seq}`,
      actual: `seq ${f.seq}`,
    });
  }
  return f;
}

function asSkipped(e: unknown, path: string, record?: number): SkippedRecord {
  if (e instanceof NtfsFormatError) return { record: e.record ?? record, path, code: e.code, message: e.message };
  throw e;
}

/** Resolve an absolute path: exact name first, then a case-insensitive match. */
export async function resolvePath(vol: Volume, path: string): Promise<NtfsFile> {
  let f = await loadFile(vol, SystemRecord.ROOT);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i];
    if (!f.isDirectory)
      throw new NtfsFormatError(NtfsErrorCode.NOT_FOUND, `${parts.slice(0, i).join('/')} is not a directory`, {
        record: f.record,
      });
    const entries = await readDirectory(vol, f);
    const hit =
      entries.find((e) => e.fileName.name === name) ??
      entries.find((e) => e.fileName.name.toUpperCase() === name.toUpperCase());
    if (!hit) throw new NtfsFormatError(NtfsErrorCode.NOT_FOUND, `no such file: /${parts.slice(0, i + 1).join('/')}`);
    f = await loadEntry(vol, hit);
  }
  return f;
}

export interface WalkOptions {
  recursive: boolean;
  system?: boolean;
  onError(skipped: SkippedRecord): void;
}

/**
 * Walk a directory (and below with `recursive`), yielding each entry with its loaded file.
 * Malformed records and directories are reported through `onError` and skipped.
 */
export async function* walk(
  vol: Volume,
  dir: NtfsFile,
  dirPath: string,
  opts: WalkOptions,
): AsyncGenerator<{ entry: ListEntry; file: NtfsFile }> {
  const seenDirs = new Set<number>([dir.record]);
  const stack: { file: NtfsFile; path: string }[] = [{ file: dir, path: dirPath }];
  while (stack.length) {
    const { file, path } = stack.pop() as { file: NtfsFile; path: string };
    let entries: DirEntry[];
    try {
      entries = visibleEntries(file.record, await readDirectory(vol, file), opts.system ?? false);
    } catch (e) {
      opts.onError(asSkipped(e, path, file.record));
      continue;
    }
    const subdirs: { file: NtfsFile; path: string }[] = [];
    for (const e of entries) {
      const p = joinPath(path, e.fileName.name);
      let f: NtfsFile;
      let entry: ListEntry;
      try {
        f = await loadEntry(vol, e);
        entry = await describe(vol, f, p, opts.onError);
      } catch (err) {
        opts.onError(asSkipped(err, p, e.ref.record));
        continue;
      }
      yield { entry, file: f };
      if (opts.recursive && f.isDirectory && entry.type === 'dir' && !seenDirs.has(f.record)) {
        seenDirs.add(f.record);
        subdirs.push({ file: f, path: p });
      }
    }
    stack.push(...subdirs.reverse());
  }
}
