import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { getChain, getSet, type Extent, type SetPiece, type SetWithPieces } from '../catalog/queries/sets.ts';
import { fileIndexInfo, filesForRestore, normalizePath, type FileContent } from '../catalog/queries/files.ts';
import { planContent } from '../ntfs/restore.ts';
import { splitStream } from '../ntfs/tree.ts';
import { streamContent, type ClusterSource } from '../ntfs/stream.ts';
import { tapePosition } from '../tapeformat/geometry.ts';
import type { IndexAttribute } from '../tapeformat/records.ts';
import { FerryError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { extentAt } from './file-index.ts';
import { acquireCartridges, acquireDrive } from './resources.ts';
import type { MountedDrive } from './site.ts';
import { readRecordCheaply } from './tape-io.ts';
import { ServiceError, type StartFileRestore } from './types.ts';

/**
 * A single-file restore (docs/file-backup.md): the named files of a files set, read from tape by
 * the server itself (LOCATE to each extent's block, READ just those blocks) in one pass in tape
 * order, rebuilt with the NTFS rules (sparse, compressed, initialized size) under `out`. The data
 * crosses the server here, by design: it lands on the server's disk.
 */
export async function runFileRestore(
  ctx: JobContext,
  req: StartFileRestore,
): Promise<{ files: number; bytes: number; tapeBytes: number; out: string }> {
  const set = await getSet(ctx.db, req.set);
  if (!set) throw new ServiceError('ERR_NOT_FOUND', `no set ${req.set} in the catalog (see \`ferry sets\`)`);
  await ctx.to(
    'planning',
    `finding ${req.files.length === 1 ? normalizePath(req.files[0]) : `${req.files.length} paths`} in set ${req.set}`,
  );
  const { found, streamsOf } = await resolveFiles(ctx, set, req.files);
  // An incremental's unchanged blocks are in earlier sets of its chain: newest first.
  const chain = (await Promise.all((await getChain(ctx.db, set.id)).map((s) => getSet(ctx.db, s.id))))
    .filter((s): s is SetWithPieces => s !== undefined)
    .reverse();
  const info = await fileIndexInfo(ctx.db, set.id);
  if (!info)
    throw new ServiceError(
      'ERR_BAD_REQUEST',
      `set ${set.id} has no file index in the catalog: run \`ferry catalog rebuild\``,
    );
  const out = resolve(req.out);
  await checkOut(out, req.force ?? false);

  // What to write: each name's unnamed $DATA at its path, named streams as PATH:STREAM.
  const jobs: Array<{ file: FileContent; attr: IndexAttribute; to: string; first: number }> = [];
  const dirs: FileContent[] = [];
  for (const f of found) {
    if (f.type === 'dir') {
      dirs.push(f);
      continue;
    }
    const to = inside(out, f.path);
    // PATH:STREAM names one stream; PATH alone the data and (unless --no-streams) every named stream.
    const only = streamsOf.get(f.path);
    const data = f.data.filter((a) => (only ? only.has(a.name) : a.name === '' || req.streams !== false));
    if (!only && !data.some((a) => a.name === '')) jobs.push({ file: f, attr: emptyData(), to, first: -1 });
    for (const a of data)
      jobs.push({
        file: f,
        attr: a,
        to: a.name === '' ? to : inside(out, `${f.path}:${a.name}`),
        first: firstTapeByte(chain, a),
      });
  }
  // One pass: resident and empty data first (no tape), then in ascending tape order.
  jobs.sort((x, y) => x.first - y.first);
  const total = jobs.reduce((n, j) => n + j.attr.size, 0);
  ctx.update({ bytesTotal: total, bytesDone: 0 });

  const made = new Set<string>();
  const mkdirOnce = async (d: string): Promise<void> => {
    if (made.has(d)) return;
    await refuseLinks(out, d, made);
    await mkdir(d, { recursive: true });
    made.add(d);
  };
  for (const d of dirs) await mkdirOnce(inside(out, d.path));
  const reader = new TapeReader(ctx, chain);
  let done = 0;
  const write = async (j: (typeof jobs)[number]): Promise<void> => {
    await mkdirOnce(dirname(j.to));
    const fh = await openNoLink(j.to);
    try {
      const content = planContent({ clusterSize: info.clusterSize, blockSize: set.diskBlockBytes }, j.file, j.attr);
      let at = 0;
      for await (const chunk of streamContent(reader.source(info.clusterSize), content)) {
        await fh.write(chunk, 0, chunk.length, at);
        at += chunk.length;
        ctx.update({ bytesDone: done + at });
        ctx.checkCanceled();
      }
    } finally {
      await fh.close();
    }
    done += j.attr.size;
    if (j.file.modifiedMs !== null)
      await utimes(j.to, new Date(j.file.accessed ?? j.file.modifiedMs), new Date(j.file.modifiedMs));
  };
  try {
    // Resident and empty streams need no tape: several at a time (file system calls, one thread each).
    const local = jobs.filter((j) => j.first < 0);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(LOCAL_WRITERS, local.length) }, async () => {
        while (next < local.length) await write(local[next++]);
      }),
    );
    // Then the tape, in one pass in tape order.
    const fromTape = jobs.filter((j) => j.first >= 0);
    if (fromTape.length) await reader.start();
    for (let i = 0; i < fromTape.length; i++) {
      reader.next = fromTape[i + 1]?.first; // read on to the next file only when it is near
      await write(fromTape[i]);
    }
    // Directory times last: writing their files changed them.
    for (const d of dirs.reverse())
      if (d.modifiedMs !== null) await utimes(inside(out, d.path), new Date(d.modifiedMs), new Date(d.modifiedMs));
  } finally {
    await reader.close();
  }
  await ctx.log(
    `restored ${found.length} entries (${done} bytes) of set ${set.id} into ${out}, reading ${reader.tapeBytes} ` +
      `bytes ` +
      `from tape`,
  );
  return { files: found.length, bytes: done, tapeBytes: reader.tapeBytes, out };
}

/** The entries the specs name (a directory brings its subtree), and the streams named with PATH:STREAM. */
async function resolveFiles(
  ctx: JobContext,
  set: SetWithPieces,
  specs: readonly string[],
): Promise<{ found: FileContent[]; streamsOf: Map<string, Set<string>> }> {
  if (set.mode !== 'files')
    throw new ServiceError(
      'ERR_BAD_REQUEST',
      `set ${set.id} is a ${set.mode} set: it has no file index; restore it to a LUN with --to NODE:LUN, or back up ` +
        `with --mode files`,
    );
  if (specs.length === 0) throw new ServiceError('ERR_BAD_REQUEST', 'name at least one file: --file PATH');
  const byPath = new Map<string, FileContent>();
  const streamsOf = new Map<string, Set<string>>();
  const whole = new Set<string>();
  for (const spec of specs) {
    const { path, stream } = splitStream(spec);
    const list = await filesForRestore(ctx.db, set.id, path);
    if (!list)
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `${normalizePath(path)} is not in set ${set.id} (see \`ferry ls ${set.id} ${dirname(normalizePath(path))}\`)`,
      );
    if (stream) {
      const f = list[0] as FileContent | undefined;
      // Stream names compare without case, as NTFS does.
      const a =
        list.length === 1
          ? f?.data.find((x) => x.name.toUpperCase() === stream.toUpperCase() && x.name !== '')
          : undefined;
      if (!f || !a) {
        const named = f?.data.filter((x) => x.name !== '').map((x) => x.name) ?? [];
        throw new ServiceError(
          'ERR_NOT_FOUND',
          `${normalizePath(path)} has no stream "${stream}" in set ${set.id} ` +
            `(${named.length ? `its streams: ${named.join(', ')}` : 'it has no named streams'})`,
        );
      }
      if (!whole.has(f.path)) streamsOf.set(f.path, (streamsOf.get(f.path) ?? new Set()).add(a.name));
    }
    for (const f of list) {
      byPath.set(f.path, f);
      if (!stream) {
        whole.add(f.path);
        streamsOf.delete(f.path);
      }
    }
  }
  return { found: [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1)), streamsOf };
}

/** `out` + the file's path, refused when a name (`..`, a stream name with `/`) would lead outside `out`. */
export function inside(out: string, path: string): string {
  const to = join(out, path);
  if (!to.startsWith(`${out}${sep}`) || path.split('/').some((p) => p === '..' || p === '.')) {
    throw new FerryError(
      'ERR_FILE_RESTORE',
      `the name ${JSON.stringify(path)} in the set would lead outside ${out}: nothing is written there; restore the ` +
        `other files by name`,
    );
  }
  return to;
}

/** The output directory must be new or empty, unless forced. */
async function checkOut(out: string, force: boolean): Promise<void> {
  const entries = await readdir(out).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    if (e.code === 'ENOTDIR') throw new ServiceError('ERR_BAD_REQUEST', `--out ${out} is a file, not a directory`);
    throw e;
  });
  if (entries.length > 0 && !force)
    throw new ServiceError(
      'ERR_CONFLICT',
      `--out ${out} is not empty: name a new or empty directory, or pass --force to write over what is there`,
    );
  await mkdir(out, { recursive: true });
}

function emptyData(): IndexAttribute {
  return { type: 0x80, name: '', resident: true, size: 0, bytes: '', valueOffset: 0 };
}

/** firstTapeByte()'s key: the set's place in the chain (oldest 0) times this, plus the stream offset. */
const SET_SPAN = 2 ** 48;

/**
 * Where the attribute's first stored byte is, as one number that sorts in the order a pass over
 * the chain reads: the oldest set's cartridges first, then stream order (-1: nothing on tape).
 */
function firstTapeByte(chain: readonly SetWithPieces[], a: IndexAttribute): number {
  // Nothing to read when no byte is initialized (a preallocated file reads as zeros).
  const run =
    a.resident || Math.min(a.initializedSize ?? a.size, a.size) === 0 ? undefined : a.runs?.find((r) => r[2] !== null);
  if (!run) return -1;
  const lba = run[2] as number;
  for (let i = 0; i < chain.length; i++) {
    const e = extentAt(chain[i].extents, lba);
    if (e) return (chain.length - 1 - i) * SET_SPAN + e.streamOffset + (lba - e.lba) * chain[i].diskBlockBytes;
  }
  return -1;
}

/** Resident streams written at once. */
const LOCAL_WRITERS = 16;

/** Furthest a READ goes on past what it needs, to reach the next file's first block in the same command. */
const READ_AHEAD_BYTES = 1 << 20;

/**
 * Disk blocks of the set read back from tape by stream offset: the cartridge of each piece is
 * mounted when first needed, LOCATE only when the next read is not where the tape stands, and the
 * last READ's blocks are kept, since one file's data often ends in the block where the next begins.
 */
class TapeReader {
  tapeBytes = 0;
  /** firstTapeByte() of the file written next, if any: a READ goes on to it when it is close. */
  next?: number;
  private drive?: MountedDrive;
  private driveName?: string;
  /** The set and piece whose cartridge is in the drive. */
  private set?: SetWithPieces;
  private piece?: SetPiece;
  /** Block id the tape stands at (undefined: unknown). */
  private at?: number;
  private last?: { blockId: number; data: Uint8Array };
  private readonly ctx: JobContext;
  /** The set and the sets it builds on, newest first. */
  private readonly chain: readonly SetWithPieces[];

  constructor(ctx: JobContext, chain: readonly SetWithPieces[]) {
    this.ctx = ctx;
    this.chain = chain;
  }

  async start(): Promise<void> {
    this.driveName = await acquireDrive(this.ctx, this.ctx.site.pool(this.chain[0].pool));
    await acquireCartridges(
      this.ctx,
      this.chain.flatMap((s) => s.pieces.map((p) => p.cartridge)),
    );
  }

  async close(): Promise<void> {
    this.drive = undefined;
  }

  source(clusterSize: number): ClusterSource {
    const dbb = this.chain[0].diskBlockBytes;
    const perCluster = clusterSize / dbb;
    return {
      clusterSize,
      readClusters: async (lcn, count) => {
        const out = new Uint8Array(count * clusterSize);
        let lba = lcn * perCluster;
        let filled = 0;
        while (filled < out.length) {
          // The newest set of the chain that holds the block.
          let set: SetWithPieces | undefined;
          let e: Extent | undefined;
          for (const s of this.chain) {
            e = extentAt(s.extents, lba);
            if (e) {
              set = s;
              break;
            }
          }
          if (!set || !e)
            throw new FerryError(
              'ERR_FILE_RESTORE',
              `set ${this.chain[0].id} and its chain do not hold disk block ${lba} (the file index and the sets' ` +
                `extents disagree)`,
            );
          const n = Math.min(e.lba + e.blocks - lba, (out.length - filled) / dbb);
          await this.readStream(set, e.streamOffset + (lba - e.lba) * dbb, out.subarray(filled, filled + n * dbb));
          filled += n * dbb;
          lba += n;
        }
        return out;
      },
    };
  }

  /** Stream bytes [s, s + into.length) of `set` into `into`, across its pieces. */
  private async readStream(set: SetWithPieces, s: number, into: Uint8Array): Promise<void> {
    const B = set.tapeBlockBytes;
    let done = 0;
    while (done < into.length) {
      const at = s + done;
      const p = set.pieces.find((x) => at >= x.streamStart && at < x.streamEnd);
      if (!p) throw new FerryError('ERR_FILE_RESTORE', `stream byte ${at} is in no piece of set ${set.id}`);
      const drive = await this.mount(set, p);
      const { blockId, offset } = tapePosition({ streamStart: p.streamStart, dataBlockId: p.dataBlock }, at, B);
      const want = Math.min(into.length - done, p.streamEnd - at);
      const blocks = Math.ceil((offset + want) / B);
      const buf = await this.blocks(drive, blockId, blocks);
      into.set(buf.subarray(offset, offset + want), done);
      done += want;
    }
  }

  /**
   * Blocks [blockId, blockId + n) of the mounted piece: those still in the last READ's buffer
   * from there, the rest by READ (LOCATE first unless the tape stands there).
   */
  private async blocks(drive: MountedDrive, blockId: number, n: number): Promise<Uint8Array> {
    const B = (this.set as SetWithPieces).tapeBlockBytes;
    const out = new Uint8Array(n * B);
    let from = blockId;
    const last = this.last;
    if (last && blockId >= last.blockId && blockId < last.blockId + last.data.length / B) {
      const kept = last.data.subarray(
        (blockId - last.blockId) * B,
        Math.min(last.data.length, (blockId - last.blockId + n) * B),
      );
      out.set(kept, 0);
      from += kept.length / B;
    }
    if (from < blockId + n) {
      const p = this.piece as SetPiece;
      const nb = this.nextBlock();
      const ahead = nb >= from && (nb - from) * B < READ_AHEAD_BYTES ? nb + 1 - from : 0;
      const count = Math.max(blockId + n - from, Math.min(ahead, p.dataBlock + p.dataBlocks - from));
      if (this.at !== from) await drive.drive.locate(from);
      const buf = new Uint8Array(count * B);
      const r = await drive.drive
        .readBlocks(count, buf)
        .catch((e: Error) => ({ kind: 'error' as const, data: new Uint8Array(0), why: e.message }));
      const got = r.kind === 'data' ? r.data.length / B : 0;
      if (got < blockId + n - from) {
        this.at = undefined;
        const what = r.kind === 'data' ? `${r.data.length} bytes` : r.kind === 'error' ? r.why : r.kind;
        throw new FerryError(
          'ERR_FILE_RESTORE',
          `cartridge ${this.piece?.cartridge}: reading ${blockId + n - from} blocks at block ${from} gave ${what}: ` +
            `the set's data is not where the catalog says; run \`ferry verify ${this.set?.id}\``,
        );
      }
      this.tapeBytes += r.data.length;
      this.at = from + got;
      out.set(buf.subarray(0, (blockId + n - from) * B), (from - blockId) * B);
      this.last = { blockId: from, data: buf.subarray(0, got * B) };
    }
    return out;
  }

  /** The tape block of the next file's first byte when it is on the mounted piece, else -1. */
  private nextBlock(): number {
    const set = this.set;
    const p = this.piece;
    if (this.next === undefined || this.next < 0 || !set || !p) return -1;
    const k = Math.floor(this.next / SET_SPAN);
    if (this.chain[this.chain.length - 1 - k] !== set) return -1;
    const s = this.next % SET_SPAN;
    if (s < p.streamStart || s >= p.streamEnd) return -1;
    return tapePosition({ streamStart: p.streamStart, dataBlockId: p.dataBlock }, s, set.tapeBlockBytes).blockId;
  }

  /** The drive with piece `p` of `set`: its cartridge loaded and its set header checked, once. */
  private async mount(set: SetWithPieces, p: SetPiece): Promise<MountedDrive> {
    if (this.drive && this.set === set && this.piece === p) return this.drive;
    const pool = this.ctx.site.pool(set.pool);
    if (!this.drive || this.piece?.cartridge !== p.cartridge) {
      await this.ctx.to(
        'mounting',
        `loading cartridge ${p.cartridge} (set ${set.id}, piece ${p.seq}) into drive ${this.driveName}`,
        { data: { cartridge: p.cartridge, drive: this.driveName } },
      );
      this.ctx.update({ cartridge: p.cartridge });
      this.drive = await this.ctx.site.mount(pool, this.driveName as string, p.cartridge);
    }
    const drive = this.drive;
    await drive.drive.setFixedBlock(set.tapeBlockBytes);
    const h = await readRecordCheaply(drive, p.headerBlock, set.tapeBlockBytes);
    if (h.kind !== 'header' || h.setUuid !== set.uuid || h.sequence !== p.seq) {
      throw new ServiceError(
        'ERR_CONFLICT',
        `cartridge ${p.cartridge} does not hold piece ${p.seq} of set ${set.id} at block ${p.headerBlock} (found ` +
          `${h.kind}): the catalog and the tape disagree; run \`ferry catalog rebuild\``,
      );
    }
    if (this.ctx.state !== 'copying')
      await this.ctx.to('copying', `reading files of set ${set.id} from ${p.cartridge}`);
    this.set = set;
    this.piece = p;
    this.at = undefined;
    this.last = undefined;
    return drive;
  }
}

/**
 * Refuse a symbolic link between `out` and `dir` (`dir` included): in a directory written over
 * with --force, a link could send the restore anywhere. `checked` holds directories already seen
 * to be real (or made by the restore), so each is looked at once.
 */
export async function refuseLinks(out: string, dir: string, checked: Set<string>): Promise<void> {
  for (let d = dir; d.startsWith(`${out}${sep}`) && !checked.has(d); d = dirname(d)) {
    const st = await lstat(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined; // the restore makes it, as a directory
      throw e;
    });
    if (st?.isSymbolicLink()) throw linkInTheWay(d);
    if (st) checked.add(d);
  }
}

/** Create or truncate `path` for writing, but never through a symbolic link at its place. */
export async function openNoLink(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o666);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw linkInTheWay(path);
    throw e;
  }
}

function linkInTheWay(path: string): FerryError {
  return new FerryError(
    'ERR_RESTORE_SYMLINK',
    `${path} is a symbolic link: a restore does not write through links; remove it, or restore to a new directory`,
  );
}
