import { createHash } from 'node:crypto';
import { getSet, type SetWithPieces } from '../catalog/queries/sets.ts';
import type { PoolConfig, ServerConfig, TapeApi } from '../server/config.ts';
import { TapeNodeClient } from '../storage-node/tape-digest-api.ts';
import type { TapeDigestPiece } from '../tape/digest.ts';
import { readTokenFile } from '../util/bearer-token.ts';
import { FerryError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { acquireCartridges, acquireDrive, parseVolume } from './resources.ts';
import { Copier, diskCscd, diskDevice, driveDevice, readRecordCheaply } from './tape-io.ts';
import { ServiceError, type StartVerify } from './types.ts';

/**
 * A verify job (DESIGN.md "Verify where the data lives"): the catalog keeps the SHA-256 of a
 * set's data stream that the storage node computed from the snapshot at backup time; this job
 * has the same digest computed where the tape data lives and compares the two. The data never
 * comes to the server:
 *
 * - `tape-node`: the pool's library (or stand-alone drive) is a Ferry node with a management
 *   API (`api` + `tokenFile` in the config). One POST /v1/tapes/digest names every piece of the
 *   set in order; the node reads the cartridge files and hashes the stream (on-tape-format.md
 *   "Verify"). Nothing is loaded: the cartridges stay where they are, reserved by this job.
 * - `scratch-lun`: any other tape target. A copy manager restores the set's stream into a scratch
 *   LUN on the set's storage node, the stream's extents mapped to consecutive LBAs from 0; the
 *   node digests [0, stream bytes); the scratch LUN is deleted, whatever happened.
 *
 * States: mounting → verifying → done (a spanning set through `scratch-lun` goes back to
 * mounting for each cartridge). A mismatch fails the job with ERR_VERIFY_MISMATCH.
 */

export type VerifyMethod = 'tape-node' | 'scratch-lun';

export interface VerifyResult {
  ok: boolean;
  set: number;
  /** The catalog's digest: the storage node's, over the snapshot, at backup time. */
  expected: string;
  /** The digest of what the tape holds. */
  found: string;
  method: VerifyMethod;
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** The tape node API a pool's tapes can be digested through, if its library or drive config names one. */
export function tapeApiOf(
  config: ServerConfig,
  pool: PoolConfig,
):
  | (Required<TapeApi> & { name: string; ref: (barcode: string) => Pick<TapeDigestPiece, 'barcode' | 'lun'> })
  | undefined {
  if (pool.library !== undefined) {
    const l = config.libraries.find((x) => x.name === pool.library);
    if (l?.api !== undefined && l.tokenFile !== undefined)
      return { name: `library ${l.name}`, api: l.api, tokenFile: l.tokenFile, ref: (barcode) => ({ barcode }) };
  }
  if (pool.drive !== undefined) {
    const d = config.drives.find((x) => x.name === pool.drive);
    // A stand-alone drive's set lies on whatever cartridge the drive holds (the catalog names the drive).
    if (d?.api !== undefined && d.tokenFile !== undefined)
      return { name: `drive ${d.name}`, api: d.api, tokenFile: d.tokenFile, ref: () => ({ lun: d.lun }) };
  }
  return undefined;
}

export interface VerifyOptions {
  /** The copy manager for `scratch-lun` (default as for a restore). */
  mover?: string;
  /** Verifying the set the same job just wrote (`ferry backup --verify`): it holds the drive and has its mover. */
  inBackup?: boolean;
}

/**
 * Verify set `req.set`. Resolves with the result and the bytes the data mover moved when the
 * digests match; throws ERR_VERIFY_MISMATCH, naming the set, its cartridges and both digests,
 * when they differ.
 */
export async function runVerify(
  ctx: JobContext,
  req: StartVerify,
  o: VerifyOptions = {},
): Promise<{ result: VerifyResult; bytes: number }> {
  const set = await getSet(ctx.db, req.set);
  if (!set) throw new ServiceError('ERR_NOT_FOUND', `no set ${req.set} in the catalog (see \`ferry sets\`)`);
  if (!set.sha256)
    throw new FerryError(
      'ERR_VERIFY_NO_DIGEST',
      `set ${set.id} has no digest in the catalog to compare with: it cannot be verified`,
    );
  const pool = ctx.site.pool(set.pool);
  const api = tapeApiOf(ctx.site.config, pool);
  ctx.update({ bytesTotal: set.streamBytes, bytesDone: 0 });
  const found = api ? await viaTapeNode(ctx, set, api) : await viaScratchLun(ctx, set, pool, o);
  const method: VerifyMethod = api ? 'tape-node' : 'scratch-lun';
  const ok = found.sha256 === set.sha256 && found.bytes === set.streamBytes;
  const result: VerifyResult = { ok, set: set.id, expected: set.sha256, found: found.sha256, method };
  const carts = [...new Set(set.pieces.map((p) => p.cartridge))].join(', ');
  if (!ok) {
    const where = api ? `read on ${api.name}` : 'restored into a scratch LUN';
    const short = found.bytes === set.streamBytes ? '' : ` over ${found.bytes} bytes instead of ${set.streamBytes}`;
    throw new FerryError(
      'ERR_VERIFY_MISMATCH',
      `set ${set.id} did not verify: the digests on tape and disk differ: the storage node digested sha256 ` +
        `${set.sha256} from the snapshot at backup time, ` +
        `cartridge${set.pieces.length > 1 ? 's' : ''} ${carts} (${where}) give sha256 ${found.sha256}${short}`,
    );
  }
  await ctx.log(
    `set ${set.id} verified (${method}): cartridge${set.pieces.length > 1 ? 's' : ''} ${carts} hold sha256 ` +
      `${found.sha256}, as the storage node digested at backup time`,
  );
  return { result, bytes: found.moved };
}

/** `ferry backup --verify`: the backup job, its set complete, moves to verifying and verifies it. */
export async function verifyNewSet(
  ctx: JobContext,
  set: number,
  mover?: string,
): Promise<{ result: VerifyResult; bytes: number }> {
  await ctx.to('verifying', `verifying set ${set}`);
  return runVerify(ctx, { set }, { mover, inBackup: true });
}

interface Found {
  sha256: string;
  bytes: number;
  /** Bytes the data mover moved for it. */
  moved: number;
}

async function viaTapeNode(
  ctx: JobContext,
  set: SetWithPieces,
  api: NonNullable<ReturnType<typeof tapeApiOf>>,
): Promise<Found> {
  const carts = await acquireCartridges(
    ctx,
    set.pieces.map((p) => p.cartridge),
  );
  if (ctx.state !== 'verifying') {
    await ctx.to('mounting', `cartridges ${carts.join(', ')} stay where they are: ${api.name} reads them itself`, {
      data: { cartridges: carts },
    });
  }
  ctx.update({ cartridge: carts[0] ?? null });
  await ctx.to(
    'verifying',
    `digesting set ${set.id} on ${api.name} (${set.pieces.length} piece${set.pieces.length > 1 ? 's' : ''} on ` +
      `${carts.join(', ')})`,
  );
  const client = new TapeNodeClient(api.api, await readTokenFile(api.tokenFile));
  const pieces = set.pieces.map((p) => ({
    ...api.ref(p.cartridge),
    fromBlock: p.dataBlock,
    blocks: p.dataBlocks,
    bytes: p.streamEnd - p.streamStart,
  }));
  const d = await client.tapeDigest({ pieces, blockBytes: set.tapeBlockBytes });
  ctx.update({ bytesDone: set.streamBytes });
  return { sha256: d.sha256, bytes: d.bytes, moved: 0 };
}

async function viaScratchLun(ctx: JobContext, set: SetWithPieces, pool: PoolConfig, o: VerifyOptions): Promise<Found> {
  const { node } = parseVolume(set.volumeId);
  const dbb = set.diskBlockBytes;
  const blocks = Math.ceil(set.streamBytes / dbb);
  if (blocks === 0) {
    if (ctx.state !== 'verifying') await ctx.to('mounting', `set ${set.id} holds no data: no cartridge to load`);
    await ctx.to('verifying', `set ${set.id} holds no data: its digest is that of nothing`);
    return { sha256: EMPTY_SHA256, bytes: 0, moved: 0 };
  }
  const control = await ctx.site.nodeControl(node);
  const driveName = await acquireDrive(ctx, pool);
  await acquireCartridges(
    ctx,
    set.pieces.map((p) => p.cartridge),
  );
  const scratch = await control.createLun({ sizeBytes: blocks * dbb, blockSize: dbb });
  const to = `${node}:${scratch.lun}`;
  await ctx.log(`created scratch LUN ${to} (${blocks * dbb} bytes) to restore set ${set.id}'s data stream into`);
  try {
    const disk = diskCscd(scratch.designator, dbb);
    // The stream's extents, mapped to consecutive LBAs from 0: the scratch LUN holds the stream.
    const extents = [{ lba: 0, blocks, streamOffset: 0 }];
    let copier: Copier | undefined;
    for (const p of set.pieces) {
      await ctx.to(
        'mounting',
        `loading cartridge ${p.cartridge} (set ${set.id}, piece ${p.seq}) into drive ${driveName}`,
        { data: { cartridge: p.cartridge, drive: driveName } },
      );
      ctx.update({ cartridge: p.cartridge });
      const drive = await ctx.site.mount(pool, driveName, p.cartridge);
      copier ??= await Copier.forJob(ctx, o.mover, drive, { announce: !o.inBackup });
      await drive.drive.setFixedBlock(set.tapeBlockBytes);
      const h = await readRecordCheaply(drive, p.headerBlock, set.tapeBlockBytes);
      if (h.kind !== 'header' || h.setUuid !== set.uuid || h.sequence !== p.seq) {
        throw new ServiceError(
          'ERR_CONFLICT',
          `cartridge ${p.cartridge} does not hold piece ${p.seq} of set ${set.id} at block ${p.headerBlock} (found ` +
            `${h.kind}): the catalog and the tape disagree; run \`ferry catalog rebuild\``,
        );
      }
      await drive.drive.locate(p.dataBlock);
      await ctx.to('verifying', `restoring set ${set.id} piece ${p.seq} from ${p.cartridge} into scratch LUN ${to}`);
      await copier.readPiece({
        drive,
        disk,
        tapeBlockBytes: set.tapeBlockBytes,
        diskBlockBytes: dbb,
        extents,
        streamStart: p.streamStart,
        streamEnd: p.streamEnd,
        dataBlock: p.dataBlock,
        what: `verify of set ${set.id} into scratch LUN ${to}`,
        devices: [driveDevice(ctx, drive), diskDevice(ctx, node, scratch.lun)],
        onStream: (at) => ctx.update({ bytesDone: at }),
      });
      ctx.update({ bytesDone: p.streamEnd });
    }
    await ctx.log(`digesting scratch LUN ${to} on ${node}`);
    // A set's stream is a whole number of disk blocks: the scratch LUN holds exactly the stream.
    const d = await control.digest(scratch.lun, [{ lba: 0, blocks }]);
    return { sha256: d.sha256, bytes: d.bytes, moved: copier?.movedBytes ?? 0 };
  } finally {
    await control.deleteLun(scratch.lun).then(
      () => ctx.log(`deleted scratch LUN ${to}`),
      (e: Error) =>
        ctx.log(
          `could not delete scratch LUN ${to}: ${e.message}; delete it with the node's API (DELETE ` +
            `/v1/luns/${scratch.lun})`,
        ),
    );
  }
}
