import { getChain, getSet } from '../catalog/queries/sets.ts';
import { FerryError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { acquireCartridges, acquireDrive, diskLun, parseVolume } from './resources.ts';
import { Copier, diskCscd, diskDevice, driveDevice, readRecordCheaply } from './tape-io.ts';
import { ServiceError, type StartRestore } from './types.ts';

/**
 * A restore job: the set's chain (the full, then each incremental) from tape to a LUN through a
 * copy manager, stream → block, piece by piece in cartridge order. Each piece's header is read
 * back first, so a cartridge that does not hold the set is refused before anything is written.
 */
export async function runRestore(
  ctx: JobContext,
  req: StartRestore,
): Promise<{ bytes: number; lun: number; volume: string }> {
  const set = await getSet(ctx.db, req.set);
  if (!set) throw new ServiceError('ERR_NOT_FOUND', `no set ${req.set} in the catalog (see \`ferry sets\`)`);
  const chain = await getChain(ctx.db, set.id);
  const m = /^([A-Za-z0-9][A-Za-z0-9_-]*):new$/.exec(req.to);
  const { node, lun: wanted } = m ? { node: m[1], lun: -1 } : parseVolume(req.to);
  const control = await ctx.site.nodeControl(node);
  const sizeBytes = set.volumeBlocks * set.diskBlockBytes;
  const target = m
    ? await control.createLun({ sizeBytes, blockSize: set.diskBlockBytes })
    : await diskLun(control, node, wanted);
  try {
    const to = `${node}:${target.lun}`;
    if (m) await ctx.log(`created LUN ${target.lun} on ${node} (${sizeBytes} bytes) to restore into`);
    if (target.blockSize !== set.diskBlockBytes)
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        `${to} has ${target.blockSize}-byte blocks, set ${set.id} has ${set.diskBlockBytes}-byte blocks: restore ` +
          `to a ` +
          `LUN with the same block size or to ${node}:new`,
      );
    if (target.sizeBytes < sizeBytes)
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        `${to} holds ${target.sizeBytes} bytes but set ${set.id} needs ${sizeBytes}: restore to a larger LUN or to ` +
          `${node}:new`,
      );
    const sources = new Set(chain.map((s) => s.volumeId));
    if (sources.has(to) && !req.force)
      throw new ServiceError(
        'ERR_CONFLICT',
        `${to} is the source of set ${set.id}'s chain: restoring over it would overwrite the live volume; pass ` +
          `--force if that is what you want`,
      );

    const full = await Promise.all(chain.map((s) => getSet(ctx.db, s.id)));
    const total = chain.reduce((n, s) => n + s.streamBytes, 0);
    ctx.update({ bytesTotal: total, bytesDone: 0 });
    const pool = ctx.site.pool(set.pool);
    const driveName = await acquireDrive(ctx, pool);
    await acquireCartridges(
      ctx,
      full.flatMap((s) => s?.pieces.map((p) => p.cartridge) ?? []),
    );
    let done = 0;
    let copier: Copier | undefined;
    const disk = diskCscd(target.designator, target.blockSize);
    for (const s of full) {
      if (!s) throw new FerryError('ERR_CATALOG_SET', 'a set of the chain vanished from the catalog');
      for (const p of s.pieces) {
        await ctx.to(
          'mounting',
          `loading cartridge ${p.cartridge} (set ${s.id}, piece ${p.seq}) into drive ${driveName}`,
          { data: { cartridge: p.cartridge, drive: driveName } },
        );
        ctx.update({ cartridge: p.cartridge });
        const drive = await ctx.site.mount(pool, driveName, p.cartridge);
        copier ??= await Copier.forJob(ctx, req.mover, drive);
        await drive.drive.setFixedBlock(s.tapeBlockBytes);
        // Only the header's head crosses the wire, where the drive sends no more than asked (not tgtd).
        const h = await readRecordCheaply(drive, p.headerBlock, s.tapeBlockBytes);
        if (h.kind !== 'header' || h.setUuid !== s.uuid || h.sequence !== p.seq) {
          throw new ServiceError(
            'ERR_CONFLICT',
            `cartridge ${p.cartridge} does not hold piece ${p.seq} of set ${s.id} at block ${p.headerBlock} (found ` +
              `${h.kind}): the catalog and the tape disagree; run \`ferry catalog rebuild\``,
          );
        }
        await drive.drive.locate(p.dataBlock);
        await ctx.to('copying', `restoring set ${s.id} piece ${p.seq} from ${p.cartridge} to ${to}`);
        const base = done - p.streamStart;
        await copier.readPiece({
          drive,
          disk,
          tapeBlockBytes: s.tapeBlockBytes,
          diskBlockBytes: s.diskBlockBytes,
          extents: s.extents,
          streamStart: p.streamStart,
          streamEnd: p.streamEnd,
          dataBlock: p.dataBlock,
          what: `restore of set ${s.id} to ${to}`,
          devices: [driveDevice(ctx, drive), diskDevice(ctx, node, target.lun)],
          onStream: (at) => ctx.update({ bytesDone: base + at }),
        });
        done += p.streamEnd - p.streamStart;
        ctx.update({ bytesDone: done });
      }
    }
    return { bytes: copier?.movedBytes ?? 0, lun: target.lun, volume: to };
  } catch (e) {
    // A LUN this job created for the restore goes with the failed job: nothing is left changed.
    if (m) await control.deleteLun(target.lun).catch(() => undefined);
    throw e;
  }
}
