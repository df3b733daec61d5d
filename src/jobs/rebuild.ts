import { cartridgeResource, reserve, ReservedError } from '../catalog/queries/cartridges.ts';
import {
  applyRebuild,
  type IncompletePiece,
  type ScannedCartridge,
  type ScannedPiece,
} from '../catalog/queries/rebuild.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { decodeRecord, encodeRecord } from '../tapeformat/codec.ts';
import { checkPiece, dataBlocksFor, MAX_TAPE_BLOCK_BYTES, streamBytesOf } from '../tapeformat/geometry.ts';
import type { SetHeader, SetTrailer, TapeRecord, VolumeLabel } from '../tapeformat/records.ts';
import { FerryError } from '../util/errors.ts';
import type { PoolConfig } from '../server/config.ts';
import { acquireDrive } from './resources.ts';
import type { JobContext } from './context.ts';
import type { MountedDrive } from './site.ts';
import { readRecordCheaply } from './tape-io.ts';
import { ServiceError, type StartRebuild } from './types.ts';
import { SpaceCode, buildSpace6 } from '../scsi/cdb/ssc.ts';

/**
 * Catalog rebuild (docs/on-tape-format.md "Catalog rebuild"): load every cartridge of a library,
 * read its label, then each set piece's header and trailer, LOCATEing past the data instead of
 * reading it. The scanner yields typed records; the reconciler (catalog/queries/rebuild.ts)
 * writes the whole sets, the cartridges and the volumes in one transaction at the end.
 */

export type ScanRecord =
  | { kind: 'blank' }
  | { kind: 'error'; message: string }
  | { kind: 'label'; label: VolumeLabel; blockSize: number }
  | { kind: 'piece'; piece: ScannedPiece }
  | { kind: 'incomplete'; piece: IncompletePiece }
  | { kind: 'end'; labelEndBlock: number; lastPieceEndBlock: number };

export interface RebuildResult {
  /** Cartridges read. */
  cartridges: number;
  /** Sets written to the catalog. */
  sets: number[];
  /** Sets found in part only, or that could not be written, with why. */
  skipped: Array<{ uuid: string; why: string }>;
  /** Whole sets the catalog already held (left alone). */
  existing: number[];
}

/** Trailers are a few hundred bytes; a trailer longer than this many blocks is not looked for. */
const MAX_TRAILER_BLOCKS = 4;

type Found = TapeRecord | { kind: 'filemark' } | { kind: 'eod' };

/** Bytes of a record's first block asked for: enough for any label, header of a few hundred extents, or trailer. */
const HEAD_BYTES = 16 * 1024;

/**
 * The record at `blockId` and the block id after it. The block id is counted here from the
 * record's length, not asked of the drive (some drives cannot report their position). Only the
 * head of the first block crosses the wire where the drive allows it (readRecordCheaply).
 */
async function readAt(d: MountedDrive, blockId: number, B: number): Promise<{ rec: Found; next: number }> {
  // tgtd reads a whole block into a buffer of the expected length: ask it for whole blocks.
  const partial = (d.drive as { partialBlockReads?: boolean }).partialBlockReads !== false;
  const rec = await readRecordCheaply(d, blockId, B, partial ? HEAD_BYTES : B);
  if (rec.kind === 'eod') return { rec, next: blockId };
  if (rec.kind === 'filemark') return { rec, next: blockId + 1 };
  // Ferry writes the validated record, so re-encoding it gives its length on tape.
  return { rec, next: blockId + encodeRecord(rec, B).length / B };
}

/** SPACE one filemark forward from `from`: the block id after the filemark, or null at end of data. */
async function spaceFilemark(d: MountedDrive, from: number): Promise<number | null> {
  try {
    await d.drive.locate(from);
  } catch {
    return null;
  }
  const r = await d.drive.session.command(d.drive.lun, buildSpace6(SpaceCode.FILEMARKS, 1), {
    allowCheckCondition: true,
  });
  if (r.status !== ScsiStatus.GOOD) return null;
  return (await d.drive.position()).blockId;
}

/** A trailer at `blockId` that closes the piece `h` opened, or why not. */
async function trailerAt(
  d: MountedDrive,
  h: SetHeader,
  blockId: number,
  B: number,
): Promise<{ trailer: SetTrailer; next: number } | string> {
  let r;
  try {
    r = await readAt(d, blockId, B);
  } catch (e) {
    return `block ${blockId}: ${(e as Error).message}`;
  }
  if (r.rec.kind !== 'trailer')
    return `block ${blockId} holds ${r.rec.kind === 'eod' ? 'end of data' : `a ${r.rec.kind}`}, not a trailer`;
  try {
    checkPiece(h, r.rec);
  } catch (e) {
    return `trailer at block ${blockId}: ${(e as Error).message}`;
  }
  if (h.piece.dataBlockId + r.rec.piece.dataBlocks !== blockId) {
    return `trailer at block ${blockId} counts ${r.rec.piece.dataBlocks} data blocks from block ${h.piece.dataBlockId}`;
  }
  return { trailer: r.rec, next: r.next };
}

/**
 * The trailer of the piece whose header `h` is at `headerBlock`. First where it must be when the
 * piece holds the rest of the set; else (a piece cut short at early warning) SPACE one filemark
 * forward and look just before it. `next` is where the next file starts (null: end of data).
 */
async function findTrailer(
  d: MountedDrive,
  h: SetHeader,
  B: number,
): Promise<{ trailer: SetTrailer; trailerBlock: number; endBlock: number } | { why: string; next: number | null }> {
  const T = h.piece.dataBlockId + dataBlocksFor(streamBytesOf(h) - h.piece.streamStart, B);
  const at = await trailerAt(d, h, T, B);
  if (typeof at !== 'string') {
    const fm = await readAt(d, at.next, B).catch(() => undefined);
    if (fm?.rec.kind === 'filemark') return { trailer: at.trailer, trailerBlock: T, endBlock: fm.next };
    return { why: `the trailer at block ${T} is not followed by a filemark`, next: null };
  }
  let after: number | null;
  try {
    after = await spaceFilemark(d, h.piece.dataBlockId);
  } catch (e) {
    // A drive without READ POSITION (tgtd) cannot say where the filemark is. Such a piece is the last on its cartridge.
    return {
      why:
        `no trailer where a whole piece ends (${at}), and the drive cannot tell where the next filemark is: ` +
        `${(e as Error).message}`,
      next: null,
    };
  }
  if (after === null)
    return { why: `no trailer and no filemark before end of data (a job that did not finish; ${at})`, next: null };
  const fm = after - 1;
  let why = at;
  for (let k = 1; k <= MAX_TRAILER_BLOCKS && fm - k >= h.piece.dataBlockId; k++) {
    const t = await trailerAt(d, h, fm - k, B);
    if (typeof t === 'string') why = t;
    // (A record with members this reader does not know is longer on tape than re-encoded: at most up to the filemark.)
    else if (t.next <= fm) return { trailer: t.trailer, trailerBlock: fm - k, endBlock: after };
  }
  return { why: `no valid trailer before the filemark at block ${fm} (${why})`, next: after };
}

/** Read the volume label at block 0 with the pool's block size, or in variable mode when that fails. */
async function readLabel(
  d: MountedDrive,
  B: number,
): Promise<
  { kind: 'label'; label: VolumeLabel; next: number } | { kind: 'blank' } | { kind: 'error'; message: string }
> {
  await d.drive.setFixedBlock(B);
  let why: string;
  try {
    const r = await readAt(d, 0, B);
    if (r.rec.kind === 'eod') return { kind: 'blank' };
    if (r.rec.kind === 'label') {
      if (r.rec.tapeBlockBytes === B) return { kind: 'label', label: r.rec, next: r.next };
      why = `label says ${r.rec.tapeBlockBytes}-byte blocks`;
    } else why = `block 0 holds a ${r.rec.kind}, not a Ferry volume label`;
  } catch (e) {
    why = (e as Error).message;
  }
  // Another block size: read the first record in variable-block mode, then switch to its size.
  try {
    await d.drive.setFixedBlock(0);
    await d.drive.rewind();
    const max = Math.min((await d.drive.blockLimits()).max, MAX_TAPE_BLOCK_BYTES);
    const buf = new Uint8Array(max);
    const r = await d.drive.device.read(buf);
    if (r.kind === 'eod') return { kind: 'blank' };
    if (r.kind !== 'data') throw new FerryError('ERR_TAPE_FORMAT', `block 0 is a ${r.kind}`);
    const rec = decodeRecord(buf.subarray(0, r.bytes));
    if (rec.kind !== 'label')
      return { kind: 'error', message: `block 0 holds a ${rec.kind}, not a Ferry volume label` };
    await d.drive.setFixedBlock(rec.tapeBlockBytes);
    return { kind: 'label', label: rec, next: (await d.drive.position()).blockId };
  } catch (e) {
    await d.drive.setFixedBlock(B).catch(() => undefined);
    return {
      kind: 'error',
      message:
        `not a Ferry cartridge or unreadable: ` +
        `${why}${why.includes((e as Error).message) ? '' : `; ${(e as Error).message}`}`,
    };
  }
}

/**
 * The scanner: the records of one mounted cartridge, in tape order. Reads labels, headers and
 * trailers only; data blocks are passed by LOCATE (or SPACE to the filemark), never read.
 */
export async function* scanCartridge(
  d: MountedDrive,
  poolBlockBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<ScanRecord> {
  const l = await readLabel(d, poolBlockBytes);
  if (l.kind !== 'label') {
    yield l;
    return;
  }
  const B = l.label.tapeBlockBytes;
  yield { kind: 'label', label: l.label, blockSize: B };
  const fm = await readAt(d, l.next, B).catch((e: Error) => ({
    rec: { kind: 'error' as const, message: e.message },
    next: 0,
  }));
  if (fm.rec.kind !== 'filemark') {
    yield {
      kind: 'error',
      message: `the volume label is not followed by a filemark (found ${fm.rec.kind} at block ${l.next})`,
    };
    return;
  }
  let endBlock = fm.next;
  let at: number | null = fm.next;
  while (at !== null) {
    if (signal?.aborted) throw new FerryError('ERR_CANCELED', 'canceled');
    const H: number = at;
    const bad = (why: string, h?: SetHeader): ScanRecord => ({
      kind: 'incomplete',
      piece: {
        headerBlock: H,
        setUuid: h?.setUuid ?? null,
        setId: h?.setId ?? null,
        sequence: h?.sequence ?? null,
        why,
      },
    });
    let r;
    try {
      r = await readAt(d, H, B);
    } catch (e) {
      yield bad(`unreadable record at block ${H}: ${(e as Error).message}`);
      at = await spaceFilemark(d, H);
      continue;
    }
    if (r.rec.kind === 'eod') break;
    if (r.rec.kind === 'filemark') {
      yield bad(`an empty file (a filemark) at block ${H}`);
      at = r.next;
      continue;
    }
    if (r.rec.kind !== 'header') {
      yield bad(`block ${H} holds a ${r.rec.kind} where a set header belongs`);
      at = await spaceFilemark(d, H);
      continue;
    }
    const h = r.rec;
    if (h.tapeBlockBytes !== B || h.piece.dataBlockId < r.next) {
      yield bad(
        `the header at block ${H} says ${h.tapeBlockBytes}-byte blocks and data at block ${h.piece.dataBlockId}, the ` +
          `cartridge has ${B}-byte blocks and the header ends at block ${r.next}`,
        h,
      );
      at = await spaceFilemark(d, H);
      continue;
    }
    const t = await findTrailer(d, h, B);
    if ('why' in t) {
      yield bad(t.why, h);
      at = t.next;
      continue;
    }
    yield {
      kind: 'piece',
      piece: {
        header: h,
        trailer: t.trailer,
        headerBlock: H,
        dataBlock: h.piece.dataBlockId,
        dataBlocks: t.trailer.piece.dataBlocks,
        trailerBlock: t.trailerBlock,
        endBlock: t.endBlock,
      },
    };
    endBlock = t.endBlock;
    at = t.endBlock;
  }
  yield { kind: 'end', labelEndBlock: fm.next, lastPieceEndBlock: endBlock };
}

/** Scan one cartridge into what the reconciler takes; a cartridge that cannot be read becomes an `error` one. */
async function scanInto(
  ctx: JobContext,
  d: MountedDrive,
  pool: PoolConfig,
  barcode: string,
  library: string,
): Promise<ScannedCartridge> {
  const out: ScannedCartridge = {
    barcode,
    library,
    kind: 'error',
    label: null,
    error: null,
    pieces: [],
    incomplete: [],
    labelEndBlock: 0,
  };
  try {
    for await (const r of scanCartridge(d, pool.tapeBlockBytes, ctx.signal)) {
      switch (r.kind) {
        case 'blank':
          out.kind = 'blank';
          await ctx.log(`cartridge ${barcode} is blank`);
          break;
        case 'error':
          out.kind = 'error';
          out.error = r.message;
          await ctx.log(`cartridge ${barcode}: ${r.message}; marked error`, { cartridge: barcode });
          break;
        case 'label':
          out.kind = 'labeled';
          out.label = r.label;
          await ctx.log(
            `cartridge ${barcode}: label of pool ${r.label.pool}, ${r.blockSize}-byte ` +
              'blocks' +
              (r.blockSize !== pool.tapeBlockBytes ? ` (pool ${pool.name} uses ${pool.tapeBlockBytes}: switched)` : ''),
          );
          break;
        case 'piece': {
          const p = r.piece;
          out.pieces.push(p);
          const end = p.trailer.complete ? 'complete' : 'continues on another cartridge';
          await ctx.log(
            `cartridge ${barcode}: set ${p.header.setId} piece ${p.header.sequence} (${p.header.volume.name}, ` +
              `${p.header.level}) at blocks ${p.headerBlock}–${p.endBlock - 1}, ${end}`,
          );
          break;
        }
        case 'incomplete':
          out.incomplete.push(r.piece);
          await ctx.log(
            `cartridge ${barcode}: incomplete piece at block ` +
              String(r.piece.headerBlock) +
              (r.piece.setId !== null ? ` (set ${r.piece.setId} piece ${r.piece.sequence})` : '') +
              ': ' +
              `${r.piece.why}`,
            { cartridge: barcode, setUuid: r.piece.setUuid },
          );
          break;
        case 'end':
          out.labelEndBlock = r.labelEndBlock;
          break;
      }
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    out.kind = 'error';
    out.error = `cannot read it: ${(e as Error).message}`;
    out.pieces = [];
    await ctx.log(`cartridge ${barcode}: ${out.error}; marked error`, { cartridge: barcode });
  }
  return out;
}

/** What a rebuild reads: a library's cartridges through a pool on it, or a stand-alone drive's one cartridge. */
interface Unit {
  what: string;
  name: string;
  pool: PoolConfig | undefined;
  cartridges: () => Promise<string[]>;
}

function units(ctx: JobContext, only: string | undefined): Unit[] {
  const config = ctx.site.config;
  const out: Unit[] = [
    ...config.libraries.map((l) => ({
      what: `library ${l.name}`,
      name: l.name,
      pool: config.pools.find((p) => p.library === l.name),
      cartridges: async () => (await ctx.site.inventory(l.name)).map((c) => c.barcode),
    })),
    // A stand-alone drive holds one cartridge, known by the drive's name (as LocalJobService.inventory has it).
    ...config.drives.map((d) => ({
      what: `drive ${d.name}`,
      name: d.name,
      pool: config.pools.find((p) => p.drive === d.name),
      cartridges: async () => [d.name],
    })),
  ];
  if (only === undefined) return out;
  const named = out.filter((u) => u.name === only);
  if (!named.length) {
    throw new ServiceError(
      'ERR_NOT_FOUND',
      `no library or drive named ${only}: the config's libraries are ` +
        `${config.libraries.map((l) => l.name).join(', ') || 'none'}, its drives ` +
        `${config.drives.map((d) => d.name).join(', ') || 'none'}`,
    );
  }
  return named.slice(0, 1);
}

/** The rebuild job: every cartridge of each library (or the named one), then one reconciling transaction. */
export async function runRebuild(ctx: JobContext, req: StartRebuild): Promise<RebuildResult> {
  const todo = units(ctx, req.library);
  await ctx.to(
    'planning',
    `reading the inventory of ${todo.map((u) => u.what).join(', ') || 'nothing: no library or drive is configured'}`,
  );
  const scans: ScannedCartridge[] = [];
  for (const u of todo) {
    if (!u.pool) {
      await ctx.log(
        `${u.what} has no pool in the config: its cartridges are not read (add a pool on it to pick a drive and ` +
          `block ` +
          `size)`,
      );
      continue;
    }
    const pool = u.pool;
    const carts = await u.cartridges();
    await ctx.log(`${u.what}: ${carts.length} cartridge(s)${carts.length ? `: ${carts.join(', ')}` : ''}`);
    if (!carts.length) continue;
    const driveName = await acquireDrive(ctx, pool);
    for (const barcode of carts) {
      ctx.checkCanceled();
      await reserve(ctx.db, cartridgeResource(barcode), ctx.id).catch((e: unknown) => {
        if (!(e instanceof ReservedError)) throw e;
        throw new ServiceError(
          'ERR_CONFLICT',
          `cartridge ${barcode} is in use by job ${e.holderJobId}: run the rebuild when that job has ended (\`ferry ` +
            `job ${e.holderJobId}\`)`,
        );
      });
      await ctx.to('mounting', `loading cartridge ${barcode} into drive ${driveName}`, {
        data: { cartridge: barcode, drive: driveName },
      });
      ctx.update({ cartridge: barcode });
      const d = await ctx.site.mount(pool, driveName, barcode);
      await ctx.to('verifying', `reading the label, headers and trailers of ${barcode}`);
      scans.push(await scanInto(ctx, d, pool, barcode, u.name));
    }
  }
  ctx.checkCanceled();
  const out = await applyRebuild(ctx.db, scans);
  for (const s of out.skipped) await ctx.log(`skipped set ${s.uuid}: ${s.why}`, { setUuid: s.uuid });
  if (out.existing.length) await ctx.log(`already in the catalog, left alone: set(s) ${out.existing.join(', ')}`);
  await ctx.log(
    `rebuilt ${out.inserted.length} set(s) from ${scans.length} ` +
      `cartridge(s)${out.inserted.length ? `: ${out.inserted.join(', ')}` : ''}`,
  );
  return { cartridges: scans.length, sets: out.inserted, skipped: out.skipped, existing: out.existing };
}
