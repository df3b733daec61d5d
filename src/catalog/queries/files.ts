// The file index of files sets: directory paths once (file_paths), a row per name (set_files).
// Listing a directory is one range of the (set_id, dir_id, name) key; a subtree is a range of paths.
import type { Selectable, Transaction } from 'kysely';
import type { FileIndex, IndexAttribute } from '../../tapeformat/records.ts';
import { joinPath, namedPaths, type ListEntry } from '../../ntfs/tree.ts';
import { AttrType } from '../../ntfs/record.ts';
import { SystemRecord } from '../../ntfs/volume.ts';
import type { Database, SetFilesTable } from '../schema.ts';
import { fromJson, num, numOrNull, toJson, type Db } from './common.ts';
import { FerryError } from '../../util/errors.ts';

/** Records below this are NTFS system files, listed only on request (as `ferry ntfs ls --system`). */
const FIRST_USER_RECORD = SystemRecord.FIRST_USER;
const BATCH = 400;

/** One row of `ferry ls --json`: the fields of `ferry ntfs ls --json`, and the set that holds the file's data. */
export interface FileEntry extends ListEntry {
  fileAttributes: number;
  set: number;
}

/** A file with what a restore needs: its $DATA attributes as the tape index has them. */
export interface FileContent extends FileEntry {
  modifiedMs: number | null;
  data: IndexAttribute[];
}

/** `/a//b/` → `/a/b`; the root is `/`. */
export function normalizePath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return `/${parts.join('/')}`;
}

function splitPath(p: string): { dir: string; name: string } {
  const n = normalizePath(p);
  const at = n.lastIndexOf('/');
  return { dir: at === 0 ? '/' : n.slice(0, at), name: n.slice(at + 1) };
}

const isoOf = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Insert a files set's index inside the caller's transaction (the set row exists). Returns the rows written. */
export async function insertSetFiles(trx: Transaction<Database>, setId: number, index: FileIndex): Promise<number> {
  const rows: Array<Omit<SetFilesTable, 'dir_id'> & { dir: string }> = [];
  for (const { file: f, dir, name, links } of namedPaths(index.files)) {
    const data = f.attributes.filter((a) => a.type === AttrType.DATA);
    const main = data.find((a) => a.name === '');
    rows.push({
      set_id: setId,
      data_set_id: f.dataSet ?? setId,
      dir,
      name,
      record: f.record,
      type: f.type,
      size: f.type === 'dir' ? 0 : (main?.size ?? 0),
      links,
      resident: main?.resident ? 1 : 0,
      file_attributes: f.fileAttributes,
      security_id: f.securityId,
      owner_sid: f.owner ?? null,
      group_sid: f.group ?? null,
      created_ms: f.createdMs,
      modified_ms: f.modifiedMs,
      changed_ms: f.changedMs,
      accessed_ms: f.accessedMs,
      streams: toJson(data.filter((a) => a.name !== '').map((a) => ({ name: a.name, size: a.size }))),
      content: toJson(data),
    });
  }
  await trx
    .insertInto('set_file_indexes')
    .values({
      set_id: setId,
      cluster_bytes: index.clusterSize,
      sector_bytes: index.sectorSize,
      cluster_count: index.clusterCount,
      serial: index.serial,
      files: index.files.length,
      skipped: toJson(index.skipped),
      deleted: toJson(index.deleted ?? []),
    })
    .execute();
  const ids = await pathIds(trx, [...new Set(rows.map((r) => r.dir))].sort());
  for (let i = 0; i < rows.length; i += BATCH) {
    // Two records naming one (directory, name), as a crash-consistent snapshot can show mid-rename: the first stays.
    await trx
      .insertInto('set_files')
      .values(rows.slice(i, i + BATCH).map(({ dir, ...r }) => ({ ...r, dir_id: ids.get(dir) as number })))
      .onConflict((oc) => oc.columns(['set_id', 'dir_id', 'name']).doNothing())
      .execute();
  }
  return rows.length;
}

export interface FileIndexInfo {
  clusterSize: number;
  sectorSize: number;
  clusterCount: number;
  serial: string;
  /** MFT base records indexed. */
  files: number;
  skipped: FileIndex['skipped'];
  /** Incremental sets: paths gone since the base set. */
  deleted: string[];
}

/** The index's geometry and skipped records; undefined for a set without a file index. */
export async function fileIndexInfo(db: Db, setId: number): Promise<FileIndexInfo | undefined> {
  const r = await db.selectFrom('set_file_indexes').selectAll().where('set_id', '=', setId).executeTakeFirst();
  if (!r) return undefined;
  return {
    clusterSize: num(r.cluster_bytes),
    sectorSize: num(r.sector_bytes),
    clusterCount: num(r.cluster_count),
    serial: r.serial,
    files: num(r.files),
    skipped: fromJson(r.skipped) as FileIndex['skipped'],
    deleted: fromJson(r.deleted) as string[],
  };
}

/** Ids of `paths` in file_paths, adding the missing ones. */
async function pathIds(trx: Transaction<Database>, paths: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < paths.length; i += BATCH) {
    const part = paths.slice(i, i + BATCH);
    await trx
      .insertInto('file_paths')
      .values(part.map((path) => ({ path })))
      .onConflict((oc) => oc.column('path').doNothing())
      .execute();
    for (const r of await trx.selectFrom('file_paths').select(['id', 'path']).where('path', 'in', part).execute())
      out.set(r.path, num(r.id));
  }
  return out;
}

type Row = Selectable<SetFilesTable> & { path: string };

function toEntry(r: Row): FileEntry {
  const e: FileEntry = {
    path: joinPath(r.path, r.name),
    type: r.type as FileEntry['type'],
    size: num(r.size),
    record: num(r.record),
    links: num(r.links),
    streams: fromJson(r.streams) as FileEntry['streams'],
    resident: num(r.resident) === 1,
    created: isoOf(numOrNull(r.created_ms)),
    modified: isoOf(numOrNull(r.modified_ms)),
    changed: isoOf(numOrNull(r.changed_ms)),
    accessed: isoOf(numOrNull(r.accessed_ms)),
    fileAttributes: num(r.file_attributes),
    set: num(r.data_set_id),
  };
  const sid = numOrNull(r.security_id);
  if (sid !== null) e.securityId = sid;
  if (r.owner_sid !== null) e.owner = r.owner_sid;
  if (r.group_sid !== null) e.group = r.group_sid;
  return e;
}

function toContent(r: Row): FileContent {
  return { ...toEntry(r), modifiedMs: numOrNull(r.modified_ms), data: fromJson(r.content) as IndexAttribute[] };
}

function rowsOf(db: Db, setId: number) {
  return db
    .selectFrom('set_files')
    .innerJoin('file_paths', 'file_paths.id', 'set_files.dir_id')
    .selectAll('set_files')
    .select('file_paths.path')
    .where('set_files.set_id', '=', setId);
}

/**
 * The entry at `path` (exact name, else the one name that matches ignoring case); the root is a directory with no row.
 */
export async function findEntry(db: Db, setId: number, path: string): Promise<FileContent | 'root' | undefined> {
  const n = normalizePath(path);
  if (n === '/') return 'root';
  const { dir, name } = splitPath(n);
  const exact = await rowsOf(db, setId)
    .where('file_paths.path', '=', dir)
    .where('set_files.name', '=', name)
    .executeTakeFirst();
  if (exact) return toContent(exact as Row);
  // As Windows resolves: each component by its exact name, else the one name equal without case.
  let at = '/';
  let found: Row | undefined;
  for (const part of n.split('/').slice(1)) {
    const names = (await rowsOf(db, setId).where('file_paths.path', '=', at).execute()) as Row[];
    found =
      names.find((r) => r.name === part) ?? oneOf(names.filter((r) => r.name.toUpperCase() === part.toUpperCase()));
    if (!found) return undefined;
    at = joinPath(at, found.name);
  }
  return found ? toContent(found) : undefined;
}

function oneOf<T>(xs: T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined;
}

/** Entries under directory `dir` (with `recursive`, the whole subtree), ordered by directory then name. */
export async function listDirectory(
  db: Db,
  setId: number,
  dir: string,
  o: { recursive?: boolean; system?: boolean } = {},
): Promise<FileEntry[]> {
  return (await subtree(db, setId, dir, o)).map(toEntry);
}

/**
 * Every file at or under `path` with its content, for a restore. A subtree leaves system files out
 * (as `ls -R` does) unless `path` is one, or lies under one ($Extend).
 */
export async function filesForRestore(db: Db, setId: number, path: string): Promise<FileContent[] | undefined> {
  const at = await findEntry(db, setId, path);
  if (at === undefined) return undefined;
  if (at !== 'root' && at.type !== 'dir') return [at];
  const dir = at === 'root' ? '/' : at.path;
  const system = at !== 'root' && (at.record < FIRST_USER_RECORD || (await isUnderSystem(db, setId, at.path)));
  const under = (await subtree(db, setId, dir, { recursive: true, system })).map(toContent);
  return at === 'root' ? under : [at, ...under];
}

/** Does `path` lie under a system directory ($Extend)? */
async function isUnderSystem(db: Db, setId: number, path: string): Promise<boolean> {
  const parts = normalizePath(path).split('/').slice(1, -1);
  for (let i = 1; i <= parts.length; i++) {
    const e = await findEntry(db, setId, `/${parts.slice(0, i).join('/')}`);
    if (e !== undefined && e !== 'root' && e.record < FIRST_USER_RECORD) return true;
  }
  return false;
}

async function subtree(
  db: Db,
  setId: number,
  dir: string,
  o: { recursive?: boolean; system?: boolean },
): Promise<Row[]> {
  const d = normalizePath(dir);
  let q = rowsOf(db, setId);
  let rows: Row[];
  if (o.recursive && d !== '/') {
    // The directories: d and the paths that start with `d/`, compared exactly (no LIKE: SQLite's
    // ignores case; no range: PostgreSQL's order follows the collation). file_paths holds
    // directories only; then each one's rows through the (set, directory, name) key.
    const prefix = `${d}/`;
    const dirs = await db
      .selectFrom('file_paths')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('path', '=', d),
          eb(eb.fn<string>('substr', ['path', eb.val(1), eb.val([...prefix].length)]), '=', prefix),
        ]),
      )
      .execute();
    rows = [];
    const idList = dirs.map((r) => num(r.id));
    for (let i = 0; i < idList.length; i += BATCH)
      rows.push(...((await q.where('set_files.dir_id', 'in', idList.slice(i, i + BATCH)).execute()) as Row[]));
    rows.sort((a, b) => (a.path === b.path ? (a.name < b.name ? -1 : 1) : a.path < b.path ? -1 : 1));
  } else {
    if (!o.recursive) q = q.where('file_paths.path', '=', d);
    rows = (await q.orderBy('file_paths.path').orderBy('set_files.name').execute()) as Row[];
  }
  if (o.system) return rows;
  // As `ferry ntfs ls`: system files (and what lies under them, $Extend's) only on request.
  const hidden = rows.filter((r) => num(r.record) < FIRST_USER_RECORD).map((r) => joinPath(r.path, r.name));
  return rows.filter(
    (r) => num(r.record) >= FIRST_USER_RECORD && !hidden.some((h) => r.path === h || r.path.startsWith(`${h}/`)),
  );
}

/** Every name of the set, in path order: a scan (find, and the benchmark's baseline). */
export async function listSetFiles(db: Db, setId: number): Promise<FileEntry[]> {
  return ((await rowsOf(db, setId).orderBy('file_paths.path').orderBy('set_files.name').execute()) as Row[]).map(
    toEntry,
  );
}

/** Entries whose name (or, for a pattern with `/`, whose path) matches a glob: `*`, `?`, `[…]`. */
export async function findFiles(db: Db, setId: number, pattern: string): Promise<FileEntry[]> {
  let re: RegExp;
  try {
    re = globToRegExp(pattern);
  } catch (e) {
    throw new FerryError(
      'ERR_BAD_REQUEST',
      `pattern ${JSON.stringify(pattern)} is not a glob: ${(e as Error).message}`,
    );
  }
  const byPath = pattern.includes('/');
  return (await listSetFiles(db, setId)).filter((e) =>
    re.test(byPath ? e.path : e.path.slice(e.path.lastIndexOf('/') + 1)),
  );
}

/** A glob as an anchored, case-insensitive RegExp (NTFS names compare without case in Windows). */
export function globToRegExp(glob: string): RegExp {
  let s = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') s += '[^/]*';
    else if (c === '?') s += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) s += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        s += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else s += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${s}$`, 'i');
}
