import { readFileSync, writeSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../util/errors.ts';
import { GroupCommit } from '../util/group-commit.ts';
import { replaceFileDurably } from '../io/durable-file.ts';
import { BackgroundWriteback } from '../io/background-writeback.ts';
import {
  BOOT_ID_BYTES,
  EntryKind,
  MAP_ENTRY_BYTES,
  MAP_HEADER_BYTES,
  decodeMapEntry,
  decodeMapHeader,
  encodeMapEntry,
  encodeMapHeader,
} from './row-format.ts';

// The redirect-on-write state on disk (docs/snapshots.md, "On-disk format"): the manifest of
// snapshots, the redirect map (map.log, format: row-format.ts) and the chunk data (chunks.dat).

export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 'ferry-snapshots';
export const MANIFEST_VERSION = 2;
export const MAP_FILE = 'map.log';
export const DATA_FILE = 'chunks.dat';

export interface ManifestEntry {
  id: string;
  createdAtMs: number;
  /** Layers below this id are its content (with the image); writes after it go to this layer or later. */
  layer: number;
  /** The change-tracking epoch its creation started. */
  changeId?: string;
  meta?: Record<string, unknown>;
}

export interface Manifest {
  format: string;
  version: number;
  blockSize: number;
  blockCount: number;
  chunkBytes: number;
  /** The id the next snapshot's layer gets (ids only grow). */
  nextLayer: number;
  /** Oldest first. */
  snapshots: ManifestEntry[];
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const m = JSON.parse(text) as Manifest;
  if (m.format !== MANIFEST_FORMAT || !Array.isArray(m.snapshots))
    throw new FerryError('ERR_SNAPSHOT_STORE', `${join(dir, MANIFEST)} is not a ${MANIFEST_FORMAT} manifest`);
  if (m.version === 1 && m.snapshots.length === 0) return { ...m, version: MANIFEST_VERSION, nextLayer: 1 };
  if (m.version === 1)
    throw new FerryError(
      'ERR_SNAPSHOT_STORE',
      `${join(dir, MANIFEST)} lists ${m.snapshots.length} snapshot(s) in the copy-on-write format (version 1), ` +
        `which this version no longer reads: delete them with the Ferry that took them, then restart`,
    );
  if (m.version !== MANIFEST_VERSION)
    throw new FerryError(
      'ERR_SNAPSHOT_STORE',
      `${join(dir, MANIFEST)} is version ${m.version}, this Ferry reads version ${MANIFEST_VERSION}`,
    );
  return m;
}

/** Replace the manifest crash-safely (docs/snapshots.md, "Crash-safety order"). */
export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await replaceFileDurably(join(dir, MANIFEST), JSON.stringify(m, null, 2) + '\n');
}

/** The chunks first written after a snapshot, until the next one: chunk → slot in chunks.dat. */
export interface Layer {
  readonly id: number;
  readonly chunks: Map<number, number>;
}

export interface RedirectGeometry {
  chunkBytes: number;
  blockSize: number;
  blockCount: number;
}

/** Start a background fdatasync of chunks.dat after this many bytes, as FileDevice does. */
const WRITEBACK_BYTES = 32 << 20;
/**
 * Uncommitted entries count after a restart in the same boot only. A COMMIT follows them within
 * this time even without a flush, so a node killed and a host rebooted before it restarts loses
 * at most this much of its unflushed first writes, near the kernel's own dirty-page writeback.
 */
const COMMIT_AFTER_MS = 5000;
/** chunks.dat grows sparse this far ahead of the slots written: a write then never extends the file. */
const GROW_BYTES = 64 << 20;

/**
 * The redirect map of a LUN with snapshots: which chunks live in chunks.dat instead of the
 * image, by layer, kept in memory and journaled in map.log.
 *
 * Crash safety without an fdatasync per first write: a MAP entry is appended (to the page
 * cache, which survives SIGKILL) only after its chunk's data is written, and the write is
 * acknowledged after that. A COMMIT entry, appended by `commit()` after chunks.dat was
 * fdatasync'ed, vouches for the entries before it. On open, if the kernel has not rebooted
 * since the entries were appended (same boot id), every valid entry counts; after a reboot,
 * only the committed ones, so a chunk first written after the last flush reads its old data,
 * never unwritten slot bytes.
 */
export class RedirectMap {
  readonly geometry: RedirectGeometry;
  /** Ascending by id. */
  readonly layers: Layer[] = [];
  private readonly dir: string;
  /** map.log, open once `compact()` has rewritten it. */
  private journal: FileHandle | undefined;
  private readonly data: FileHandle;
  /**
   * chunks.dat's background write-back, and map.log's fdatasyncs (none in the background): each
   * keeps its file's first failed fdatasync, so every later commit fails instead of vouching for
   * pages the kernel may have dropped.
   */
  private readonly writeback: BackgroundWriteback;
  private readonly journalSyncs: BackgroundWriteback;
  private readonly commits: GroupCommit<null>;
  /** Entries in map.log (the next one's index). */
  private entries = 0;
  /**
   * Chunks mapped by entries that the open replayed although no COMMIT vouched for them (same
   * boot: the page cache survived). `compact()` commits them, so their change marks, written
   * without an fdatasync (markWritten), must be made durable before it.
   */
  recovered: number[];
  private nextSlot = 0;
  private readonly free: number[] = [];
  /** chunks.dat's size once the growth queued in `grown` is done, and its size now. */
  private dataBytes = 0;
  private grownBytes = 0;
  private grown: Promise<void> = Promise.resolve();
  private entryBuf = Buffer.alloc(64 * MAP_ENTRY_BYTES);
  /** Entries appended or slots written since the last commit started. */
  private dirty = false;
  /** MAP and UNMAP entries appended since the last commit started. */
  private uncommitted = 0;
  /** This kernel boot's id (undefined: unknown). */
  private readonly bootId: Buffer | undefined;
  /** Without a boot id a reopen cannot tell SIGKILL from power loss: commit every MAP then. */
  readonly commitEachMap: boolean;
  /** A COMMIT follows new entries within this many ms (0: only on flush). */
  private readonly commitAfterMs: number;
  private commitTimer: NodeJS.Timeout | undefined;
  /** Made durable with chunks.dat before each COMMIT: the change marks of the mapped chunks. */
  beforeCommit: () => Promise<void> = () => Promise.resolve();

  private constructor(
    dir: string,
    geometry: RedirectGeometry,
    data: FileHandle,
    bootId: Buffer | undefined,
    recovered: number[],
    commitAfterMs: number,
  ) {
    this.dir = dir;
    this.bootId = bootId;
    this.geometry = geometry;
    this.data = data;
    this.recovered = recovered;
    this.commitAfterMs = commitAfterMs;
    this.writeback = new BackgroundWriteback(data, WRITEBACK_BYTES);
    this.journalSyncs = new BackgroundWriteback({ datasync: () => (this.journal as FileHandle).datasync() }, 0);
    this.commits = new GroupCommit<null>(() => this.commitNow());
    this.commitEachMap = bootId === undefined;
  }

  /**
   * Open (or create) the map and data files and replay map.log into memory. Nothing is written
   * until `compact()`, which must come before any write: the caller first makes the change
   * marks of `recovered` durable, since the compaction commits their entries.
   */
  static async open(
    dir: string,
    g: RedirectGeometry,
    opts: { mustExist: boolean; bootId: Buffer | undefined; commitAfterMs?: number },
  ): Promise<RedirectMap> {
    const { mustExist, bootId } = opts;
    const path = join(dir, MAP_FILE);
    let bytes: Buffer | undefined;
    try {
      bytes = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (mustExist)
        throw new FerryError('ERR_SNAPSHOT_STORE', `${path} is missing: the snapshots' redirect map is lost`);
    }
    const data = await open(join(dir, DATA_FILE), 'a+').then(async (f) => {
      await f.close();
      return open(join(dir, DATA_FILE), 'r+'); // 'a+' appends on write on Linux
    });
    const layers = new Map<number, Map<number, number>>();
    let recovered: number[] = [];
    if (bytes) {
      try {
        recovered = replay(bytes, g, bootId, layers);
      } catch (e) {
        await data.close();
        throw new FerryError('ERR_SNAPSHOT_STORE', `${path}: ${(e as Error).message}`);
      }
    }
    const map = new RedirectMap(dir, g, data, bootId, recovered, opts.commitAfterMs ?? COMMIT_AFTER_MS);
    const used = new Set<number>();
    for (const id of [...layers.keys()].sort((a, b) => a - b)) {
      const chunks = layers.get(id) as Map<number, number>;
      if (chunks.size === 0) continue;
      map.layers.push({ id, chunks });
      for (const s of chunks.values()) used.add(s);
    }
    for (const s of used) map.nextSlot = Math.max(map.nextSlot, s + 1);
    map.dataBytes = map.grownBytes = (await data.stat()).size;
    if ((map.nextSlot - 1) * g.chunkBytes >= map.dataBytes && map.nextSlot > 0) {
      await map.close();
      throw new FerryError(
        'ERR_SNAPSHOT_STORE',
        `${join(dir, DATA_FILE)} is ${map.dataBytes} bytes, ${path} maps slot ${map.nextSlot - 1} past its end`,
      );
    }
    for (let s = map.nextSlot - 1; s >= 0; s--) if (!used.has(s)) map.free.push(s);
    return map;
  }

  /**
   * Rewrite map.log compactly: every mapping replayed, committed, under this boot's id. The
   * data of entries replayed from this boot may still be only in the page cache, so chunks.dat
   * is made durable first.
   */
  async compact(): Promise<void> {
    if (this.journal) throw new Error('redirect map compacted twice');
    await this.data.datasync();
    const body: Array<[number, number, number]> = [];
    for (const l of this.layers) for (const [c, s] of l.chunks) body.push([l.id, c, s]);
    const buf = Buffer.alloc(MAP_HEADER_BYTES + (body.length + 1) * MAP_ENTRY_BYTES);
    buf.set(encodeMapHeader({ ...this.geometry, bootId: this.bootId ?? new Uint8Array(BOOT_ID_BYTES) }));
    body.forEach(([layer, chunk, slot], i) =>
      encodeMapEntry(buf, MAP_HEADER_BYTES + i * MAP_ENTRY_BYTES, { kind: EntryKind.MAP, layer, chunk, slot }),
    );
    encodeMapEntry(buf, MAP_HEADER_BYTES + body.length * MAP_ENTRY_BYTES, {
      kind: EntryKind.COMMIT,
      layer: 0,
      chunk: body.length,
      slot: 0,
    });
    const path = join(this.dir, MAP_FILE);
    await replaceFileDurably(path, buf);
    this.journal = await open(path, 'r+');
    this.entries = body.length + 1;
    this.recovered = [];
  }

  get mappedChunks(): number {
    let n = 0;
    for (const l of this.layers) n += l.chunks.size;
    return n;
  }

  /** The newest layer with an id below `below` that holds `chunk`. */
  find(chunk: number, below = Infinity): Layer | undefined {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i];
      if (l.id < below && l.chunks.has(chunk)) return l;
    }
    return undefined;
  }

  /** Take `n` free slots into `out`: consecutive ones when no freed slot waits for reuse. */
  allocate(n: number, out: number[]): void {
    for (let k = 0; k < n; k++) out.push(this.free.length > 0 ? (this.free.pop() as number) : this.nextSlot++);
  }

  /** Give back slots that were allocated but never mapped (a failed write). */
  unallocate(slots: readonly number[]): void {
    for (const s of slots) this.free.push(s);
  }

  async readSlot(slot: number, target: Uint8Array, byteInChunk: number): Promise<void> {
    const pos = slot * this.geometry.chunkBytes + byteInChunk;
    let off = 0;
    while (off < target.length) {
      const { bytesRead } = await this.data.read(target, off, target.length - off, pos + off);
      if (bytesRead === 0) {
        target.fill(0, off); // past the end of a chunk the LUN's end cuts short
        return;
      }
      off += bytesRead;
    }
  }

  /** Write into consecutive slots from `firstSlot` on, at `byteInChunk` of the first. */
  async writeSlots(firstSlot: number, data: Uint8Array, byteInChunk = 0): Promise<void> {
    const pos = firstSlot * this.geometry.chunkBytes + byteInChunk;
    const end = pos + data.length;
    if (end > this.dataBytes) {
      // Growths run in order and only grow: none can cut off a write that landed past the old end.
      // One that fails fails the writes waiting for it, not later ones: the next write grows again.
      const size = (this.dataBytes = Math.max(end, this.dataBytes + GROW_BYTES));
      this.grown = this.grown
        .catch(() => undefined)
        .then(async () => {
          if (size <= this.grownBytes) return;
          try {
            await this.data.truncate(size);
          } catch (e) {
            if (this.dataBytes === size) this.dataBytes = this.grownBytes;
            throw e;
          }
          this.grownBytes = size;
        });
    }
    if (end > this.grownBytes) await this.grown;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.data.write(data, off, data.length - off, pos + off);
      off += bytesWritten;
    }
    this.writeback.wrote(data.length);
    this.dirty = true;
  }

  /**
   * Journal and apply MAP entries: call once the slots' data is written. Appended with one
   * synchronous pwrite of at most a few hundred bytes to the page cache: no await between
   * the entries landing in the file and the write being acknowledged.
   */
  map(layerId: number, chunks: readonly number[], slots: number[]): void {
    // If map.log took only some entries (ENOSPC), those are in the journal for good: they are
    // mapped here too and their slots taken from `slots` (a slot a valid entry names must never
    // go back to the free list). The caller gives back the rest.
    const { landed, error } = this.append(EntryKind.MAP, layerId, chunks, slots);
    if (landed > 0) {
      const l = this.layer(layerId);
      for (let k = 0; k < landed; k++) l.chunks.set(chunks[k], slots[k]);
    }
    if (error !== undefined) {
      slots.splice(0, landed);
      throw error;
    }
  }

  /**
   * Journal UNMAP entries and drop the chunks from the layer. Their slots are returned, to be
   * freed only after `commit()`: until then a reopen after power loss may still map them.
   */
  unmap(layerId: number, chunks: readonly number[]): number[] {
    // As in map(): the entries that landed count (their slots are never freed: a leak, not a risk).
    const { landed, error } = this.append(EntryKind.UNMAP, layerId, chunks, undefined);
    const i = this.layers.findIndex((x) => x.id === layerId);
    const l = this.layers[i];
    const done = chunks.slice(0, landed);
    const slots = done.map((c) => l.chunks.get(c) as number);
    for (const c of done) l.chunks.delete(c);
    if (l.chunks.size === 0) this.layers.splice(i, 1);
    if (error !== undefined) throw error;
    return slots;
  }

  release(slots: readonly number[]): void {
    for (const s of slots) this.free.push(s);
  }

  /** Make every entry so far durable with its data (concurrent callers share one). */
  commit(): Promise<void> {
    return this.commits.add(null);
  }

  /**
   * With no layer left: start map.log afresh (a new file renamed over the old one) and reuse
   * chunks.dat from its first slot. Its blocks stay allocated, up to `keepBytes`, so the next
   * snapshot's first writes overwrite allocated (and often cached) blocks instead of growing a
   * file. Only when nothing maps a slot, so no reader can need the data.
   */
  async reset(keepBytes: number): Promise<void> {
    if (this.layers.length > 0) throw new Error('redirect map reset while chunks are still mapped');
    const buf = Buffer.alloc(MAP_HEADER_BYTES);
    buf.set(encodeMapHeader({ ...this.geometry, bootId: this.bootId ?? new Uint8Array(BOOT_ID_BYTES) }));
    await this.journal?.close();
    await replaceFileDurably(join(this.dir, MAP_FILE), buf);
    this.journal = await open(join(this.dir, MAP_FILE), 'r+');
    this.entries = 0;
    this.nextSlot = 0;
    this.free.length = 0;
    const keep = Math.floor(keepBytes / this.geometry.chunkBytes) * this.geometry.chunkBytes;
    await this.grown.catch(() => undefined); // a failed growth failed its writes already
    if (this.dataBytes > keep) {
      await this.writeback.settled();
      await this.data.truncate(keep);
      this.dataBytes = this.grownBytes = keep;
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    await this.writeback.settled();
    await this.data.close();
    await this.journal?.close();
  }

  private layer(id: number): Layer {
    let i = this.layers.length - 1;
    if (i >= 0 && this.layers[i].id === id) return this.layers[i];
    while (i >= 0 && this.layers[i].id > id) i--;
    if (i >= 0 && this.layers[i].id === id) return this.layers[i];
    const l: Layer = { id, chunks: new Map() };
    this.layers.splice(i + 1, 0, l);
    return l;
  }

  private append(
    kind: EntryKind,
    layer: number,
    chunks: readonly number[],
    slots: readonly number[] | undefined,
  ): Appended {
    const bytes = chunks.length * MAP_ENTRY_BYTES;
    if (this.entryBuf.length < bytes) this.entryBuf = Buffer.alloc(bytes);
    for (let k = 0; k < chunks.length; k++)
      encodeMapEntry(this.entryBuf, k * MAP_ENTRY_BYTES, { kind, layer, chunk: chunks[k], slot: slots?.[k] ?? 0 });
    return this.appendRaw(bytes);
  }

  /**
   * Append `bytes` of entries from entryBuf. If the file takes only part of them (ENOSPC), the
   * whole entries that landed stay appended, and the error is returned with their count: a later
   * append must not land after stale valid entries, which a same-boot replay would count.
   */
  private appendRaw(bytes: number, dirties = true): Appended {
    if (!this.journal) throw new Error('redirect map written before compact()');
    const at = MAP_HEADER_BYTES + this.entries * MAP_ENTRY_BYTES;
    let off = 0;
    let error: unknown;
    try {
      while (off < bytes) off += writeSync(this.journal.fd, this.entryBuf, off, bytes - off, at + off);
    } catch (e) {
      error = e;
    }
    const landed = Math.floor(off / MAP_ENTRY_BYTES);
    this.entries += landed;
    if (dirties && landed > 0) {
      this.dirty = true;
      this.uncommitted += landed;
    }
    if (dirties) {
      if (this.commitAfterMs > 0 && !this.commitTimer) {
        this.commitTimer = setTimeout(() => {
          this.commitTimer = undefined;
          this.commit().catch(() => undefined); // a failed sync fails the next flush too
        }, this.commitAfterMs).unref();
      }
    }
    return error === undefined ? { landed } : { landed, error };
  }

  /** fdatasync map.log; a failed one fails every later call. */
  private syncJournal(journal: FileHandle): Promise<void> {
    return this.journalSyncs.syncWith(
      () => datasyncNamed(MAP_FILE, journal),
      () => undefined,
    );
  }

  private async commitNow(): Promise<void> {
    // After a failure `dirty` stays set (see the catch): the next commit reaches the failed sync again.
    if (!this.dirty) return;
    this.dirty = false;
    // Only entries appended before chunks.dat's fdatasync started are vouched for. With none
    // new (only slots rewritten in place), syncing chunks.dat is all a commit has to do.
    const covered = this.entries;
    const entries = this.uncommitted;
    this.uncommitted = 0;
    const journal = this.journal as FileHandle;
    try {
      // The entries a COMMIT vouches for are durable before it is appended: an fdatasync may
      // write map.log's pages in any order, and a power loss during the one after the COMMIT
      // must not leave a COMMIT over a lost page of MAP or UNMAP entries.
      await Promise.all([
        this.writeback.syncWith(
          () => datasyncNamed(DATA_FILE, this.data),
          () => {
            const e = this.writeback.error;
            if (e) throw new Error(`${DATA_FILE}: a background write-back failed (${e.message})`, { cause: e });
          },
        ),
        entries > 0 ? this.beforeCommit() : undefined,
        entries > 0 ? this.syncJournal(journal) : undefined,
      ]);
      if (entries === 0) return;
      if (this.entryBuf.length < MAP_ENTRY_BYTES) this.entryBuf = Buffer.alloc(MAP_ENTRY_BYTES);
      encodeMapEntry(this.entryBuf, 0, { kind: EntryKind.COMMIT, layer: 0, chunk: covered, slot: 0 });
      const { error } = this.appendRaw(MAP_ENTRY_BYTES, false);
      if (error !== undefined) throw error;
      await this.syncJournal(journal);
    } catch (e) {
      // The next commit does it all again.
      this.dirty = true;
      this.uncommitted += entries;
      throw e;
    }
  }
}

/** fdatasync `fh`, its failure named after `file`. */
function datasyncNamed(file: string, fh: FileHandle): Promise<void> {
  return fh.datasync().catch((e: Error) => {
    throw new Error(`${file}: an fdatasync failed (${e.message}); data written before it may be lost`, { cause: e });
  });
}

/** What an append put in map.log: every entry, or `landed` of them and the error that cut it short. */
interface Appended {
  landed: number;
  error?: unknown;
}

/**
 * Apply map.log's entries to `layers`. Same boot as the appends: every valid entry (the page
 * cache survived). Otherwise: the valid entries the last COMMIT vouches for. Returns the chunks
 * of MAP entries applied past that COMMIT.
 */
function replay(
  bytes: Buffer,
  g: RedirectGeometry,
  bootId: Buffer | undefined,
  layers: Map<number, Map<number, number>>,
): number[] {
  const h = decodeMapHeader(bytes);
  if (h.chunkBytes !== g.chunkBytes || h.blockSize !== g.blockSize || h.blockCount !== g.blockCount)
    throw new Error(
      `made for ${h.blockCount} blocks of ${h.blockSize} bytes in ${h.chunkBytes}-byte chunks, the LUN has ` +
        `${g.blockCount} of ${g.blockSize} in ${g.chunkBytes}-byte chunks`,
    );
  const count = Math.floor((bytes.length - MAP_HEADER_BYTES) / MAP_ENTRY_BYTES);
  const sameBoot = bootId !== undefined && Buffer.from(h.bootId).equals(bootId);
  let committed = 0;
  for (let i = count - 1; i >= 0; i--) {
    const e = decodeMapEntry(bytes, MAP_HEADER_BYTES + i * MAP_ENTRY_BYTES);
    if (e?.kind === EntryKind.COMMIT) {
      committed = Math.min(e.chunk, i);
      break;
    }
  }
  const upTo = sameBoot ? count : committed;
  const recovered: number[] = [];
  const chunkCount = Math.ceil(g.blockCount / (g.chunkBytes / g.blockSize));
  for (let i = 0; i < upTo; i++) {
    const e = decodeMapEntry(bytes, MAP_HEADER_BYTES + i * MAP_ENTRY_BYTES);
    if (!e || e.kind === EntryKind.COMMIT) continue;
    if (e.chunk >= chunkCount) throw new Error(`entry ${i} names chunk ${e.chunk}, the LUN has ${chunkCount}`);
    let m = layers.get(e.layer);
    if (!m) layers.set(e.layer, (m = new Map()));
    if (e.kind === EntryKind.MAP) m.set(e.chunk, e.slot);
    else m.delete(e.chunk);
    if (e.kind === EntryKind.MAP && i >= committed) recovered.push(e.chunk);
  }
  return recovered;
}

/** /proc/sys/kernel/random/boot_id as 16 bytes; undefined off Linux. */
export function readBootId(): Buffer | undefined {
  try {
    const text = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8');
    const hex = text.trim().replace(/-/g, '');
    return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  } catch {
    return undefined;
  }
}
