import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlockDevice } from '../block/block-device.ts';
import { FerryError } from '../util/errors.ts';
import {
  COW_HEADER_BYTES,
  PREALLOCATE_BYTES,
  SLOT_HEADER_BYTES,
  chunkCrc,
  decodeCowHeader,
  decodeSlotHeader,
  slotBytes,
} from './cow-format.ts';
import { GroupCommit } from '../util/group-commit.ts';
import { replaceFileDurably } from '../io/durable-file.ts';

// The copy-on-write stores on disk (format: cow-format.ts) and the manifest that lists them
// (docs/snapshots.md, "On-disk format"): open, check, append, and replace the manifest crash-safely.

export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 'ferry-snapshots';
export const MANIFEST_VERSION = 1;

export interface ManifestEntry {
  id: string;
  createdAtMs: number;
  file: string;
  /** The change-tracking epoch its creation started. */
  changeId?: string;
  meta?: Record<string, unknown>;
  /** Set when a damaged newer snapshot was deleted: this one's content is lost. */
  damaged?: string;
}

export interface Manifest {
  format: string;
  version: number;
  blockSize: number;
  blockCount: number;
  chunkBytes: number;
  /** Oldest first. */
  snapshots: ManifestEntry[];
}

/** One snapshot's store: the chunks first overwritten on the LUN after it (and before the next). */
export class CowStore {
  readonly entry: ManifestEntry;
  readonly fh: FileHandle | null;
  damaged: string | undefined;
  /** chunk → byte offset of its data in the file. */
  readonly index = new Map<number, number>();
  nextSlot = 0;
  /** File size: grown sparse ahead of the appends. */
  allocated = 0;
  /**
   * Appends wait for an fdatasync that started after they finished; concurrent appenders share
   * one (group commit) instead of queueing one each.
   */
  readonly syncs: GroupCommit<null>;

  constructor(entry: ManifestEntry, fh: FileHandle | null, damaged?: string) {
    this.entry = entry;
    this.fh = fh;
    this.damaged = damaged;
    this.syncs = new GroupCommit<null>(() => fh!.datasync());
  }

  /** Append whole slots (already encoded), fdatasync, then index them. */
  async append(chunks: number[], slots: Uint8Array, chunkBytes: number): Promise<void> {
    const fh = this.fh;
    if (!fh)
      throw new FerryError('ERR_SNAPSHOT_DAMAGED', `snapshot ${this.entry.id} store is damaged: ${this.damaged}`);
    const slot = slotBytes(chunkBytes);
    // Reserve the slots synchronously: concurrent appends land in disjoint slots.
    const base = COW_HEADER_BYTES + this.nextSlot * slot;
    this.nextSlot += chunks.length;
    const end = base + slots.length;
    if (end > this.allocated) {
      // Grow sparse well ahead, so most appends' fdatasync has no file size to commit.
      const size = Math.max(end, this.allocated + PREALLOCATE_BYTES);
      this.allocated = size;
      await fh.truncate(size);
    }
    let off = 0;
    while (off < slots.length) {
      const { bytesWritten } = await fh.write(slots, off, slots.length - off, base + off);
      off += bytesWritten;
    }
    await this.syncs.add(null);
    chunks.forEach((c, n) => this.index.set(c, base + n * slot + SLOT_HEADER_BYTES));
  }
}

export async function readFully(fh: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < target.length) {
    const { bytesRead } = await fh.read(target, off, target.length - off, position + off);
    if (bytesRead === 0)
      throw new FerryError('ERR_SNAPSHOT_DAMAGED', `short read in snapshot store at ${position + off}`);
    off += bytesRead;
  }
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
  if (m.format !== MANIFEST_FORMAT || m.version !== MANIFEST_VERSION || !Array.isArray(m.snapshots)) {
    throw new FerryError(
      'ERR_SNAPSHOT_STORE',
      `${join(dir, MANIFEST)} is not a ${MANIFEST_FORMAT} v${MANIFEST_VERSION} manifest`,
    );
  }
  return m;
}

/** Replace the manifest crash-safely (docs/snapshots.md, "Crash-safety order"). */
export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await replaceFileDurably(join(dir, MANIFEST), JSON.stringify(m, null, 2) + '\n');
}

/** Open a store and rebuild its index from the valid slots (torn appends are skipped). */
export async function loadStore(dir: string, e: ManifestEntry, m: Manifest, base: BlockDevice): Promise<CowStore> {
  let fh: FileHandle;
  try {
    fh = await open(join(dir, e.file), 'r+');
  } catch (err) {
    return new CowStore(e, null, `store file ${e.file} cannot be opened: ${(err as Error).message}`);
  }
  try {
    const head = Buffer.alloc(COW_HEADER_BYTES);
    await fh.read(head, 0, COW_HEADER_BYTES, 0);
    const h = decodeCowHeader(head);
    if (
      h.snapshotId !== e.id ||
      h.chunkBytes !== m.chunkBytes ||
      h.blockSize !== base.blockSize ||
      h.blockCount !== base.blockCount
    ) {
      throw new Error(`header (${h.snapshotId}, chunk ${h.chunkBytes}) does not match the manifest`);
    }
  } catch (err) {
    await fh.close();
    return new CowStore(e, null, `store file ${e.file}: ${(err as Error).message}`);
  }
  const store = new CowStore(e, fh, e.damaged);
  const slot = slotBytes(m.chunkBytes);
  const size = (await fh.stat()).size;
  const slots = Math.max(0, Math.ceil((size - COW_HEADER_BYTES) / slot));
  const chunkCount = Math.ceil(base.blockCount / (m.chunkBytes / base.blockSize));
  const perRead = Math.max(1, Math.floor((4 << 20) / slot));
  const buf = Buffer.alloc(perRead * slot);
  let lastValid = -1;
  for (let k = 0; k < slots; k += perRead) {
    const at = COW_HEADER_BYTES + k * slot;
    const { bytesRead } = await fh.read(buf, 0, buf.length, at);
    for (let n = 0; (n + 1) * slot <= bytesRead; n++) {
      const hdr = decodeSlotHeader(buf.subarray(n * slot, n * slot + SLOT_HEADER_BYTES));
      if (!hdr || hdr.chunk >= chunkCount || store.index.has(hdr.chunk)) continue;
      if (chunkCrc(buf.subarray(n * slot + SLOT_HEADER_BYTES, (n + 1) * slot)) !== hdr.dataCrc) continue;
      store.index.set(hdr.chunk, at + n * slot + SLOT_HEADER_BYTES);
      lastValid = k + n;
    }
  }
  // Append after the last valid slot: the rest is preallocated zeros or torn appends.
  store.nextSlot = lastValid + 1;
  store.allocated = size;
  return store;
}
