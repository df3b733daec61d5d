import { randomUUID } from 'node:crypto';
import { getCartridge, upsertCartridge, type Cartridge } from '../catalog/queries/cartridges.ts';
import { listSets } from '../catalog/queries/sets.ts';
import type { PoolConfig } from '../server/config.ts';
import { encodeRecord } from '../tapeformat/codec.ts';
import { FORMAT_VERSION } from '../tapeformat/magic.ts';
import { readRecord } from '../tapeformat/read-record.ts';
import type { JobContext } from './context.ts';
import { acquireCartridge, acquireDrive } from './resources.ts';
import type { MountedDrive } from './site.ts';
import { Copier, diskCscd, driveDevice, readRecordCheaply, type JobDevice } from './tape-io.ts';
import { ServiceError, type StartLabel } from './types.ts';

/**
 * Cartridge labels (on-tape-format.md "Label"): checking that the cartridge in the drive is the
 * one the catalog knows before anything is written after its label, and writing a new label
 * through the copy manager, at a backup's first use of a cartridge or by `ferry cartridges label`.
 */

/** The cartridge in the drive starts with the label the catalog has for it, or throw (nothing written). */
export async function checkLabel(
  drive: MountedDrive,
  cart: Cartridge,
  tapeBlockBytes: number,
  poolName: string,
): Promise<void> {
  const label = await readRecordCheaply(drive, 0, tapeBlockBytes).catch((e: Error) => ({
    kind: 'junk' as const,
    why: e.message,
  }));
  if (label.kind === 'label' && label.cartridgeUuid === cart.uuid) return;
  const what =
    label.kind === 'label'
      ? `the label of another cartridge (uuid ${label.cartridgeUuid}, pool ${label.pool})`
      : label.kind === 'junk'
        ? `data that is not a Ferry label (${label.why})`
        : `a ${label.kind}`;
  throw new ServiceError(
    'ERR_CONFLICT',
    `cartridge ${cart.barcode} starts with ${what}, not the label the catalog has (uuid ${cart.uuid}): nothing was ` +
      `written; run \`ferry catalog rebuild\` if the cartridge was relabeled, or take it out of pool ${poolName}`,
  );
}

/** A cartridge the catalog calls blank really is, or throw. */
export async function checkBlank(drive: MountedDrive, cart: Cartridge, tapeBlockBytes: number): Promise<void> {
  // isBlank: a fixed-block read at end of data is BLANK CHECK on SSC-3 drives but MEDIUM ERROR on tgtd.
  if (await drive.drive.isBlank()) return;
  await drive.drive.rewind();
  const found = await readRecord(drive.drive.device, tapeBlockBytes).catch((e: Error) => ({
    kind: 'junk' as const,
    why: e.message,
  }));
  const what =
    found.kind === 'label'
      ? `a Ferry label (pool ${found.pool})`
      : found.kind === 'junk'
        ? `data that is not a Ferry label (${found.why})`
        : `a ${found.kind}`;
  throw new ServiceError(
    'ERR_CONFLICT',
    `cartridge ${cart.barcode} is blank in the catalog but starts with ${what}: run \`ferry catalog rebuild\` or ` +
      `erase it before use`,
  );
}

/**
 * Write a new label (a new uuid, for `pool`) and a filemark at block 0, which ends whatever was
 * on the cartridge; the catalog then has it appendable in the pool. The block after the filemark.
 */
export async function writeLabel(
  ctx: JobContext,
  drive: MountedDrive,
  pool: PoolConfig,
  barcode: string,
  copier: Copier,
  devices: readonly JobDevice[],
): Promise<number> {
  const B = pool.tapeBlockBytes;
  await drive.drive.rewind();
  const uuid = randomUUID();
  const label = encodeRecord(
    {
      kind: 'label',
      cartridgeUuid: uuid,
      barcode,
      pool: pool.name,
      formatVersion: FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      tapeBlockBytes: B,
    },
    B,
  );
  const disk = diskCscd('00', 512); // unused: a label list has no data segments
  await copier.writeRecords(
    () =>
      copier.lists({
        direction: 'backup',
        disk,
        drive,
        tapeBlockBytes: B,
        diskBlockBytes: 512,
        extents: [],
        streamStart: 0,
        streamEnd: 0,
        before: label,
        filemark: true,
      }),
    drive,
    0,
    `label of ${barcode}`,
    devices,
  );
  const endBlock = label.length / B + 1;
  await upsertCartridge(ctx.db, {
    barcode,
    uuid,
    pool: pool.name,
    labeled: true,
    state: 'append',
    endBlock,
    bytesUsed: endBlock * B,
    lastWrittenAt: new Date(),
    recycledAt: null,
  });
  await ctx.log(`labeled cartridge ${barcode} for pool ${pool.name}`, { cartridge: barcode, uuid });
  return endBlock;
}

/** The cartridge, when a new label for `pool` would lose nothing; else why not. */
async function labelable(ctx: JobContext, barcode: string, pool: PoolConfig): Promise<Cartridge> {
  const cart = await getCartridge(ctx.db, barcode);
  if (!cart)
    throw new ServiceError('ERR_NOT_FOUND', `no cartridge ${barcode} in the catalog (see \`ferry cartridges\`)`);
  const home = pool.library ?? pool.drive;
  if (cart.library !== home)
    throw new ServiceError(
      'ERR_BAD_REQUEST',
      `cartridge ${barcode} is in ${cart.library ?? 'no library'}, and pool ${pool.name} uses ${home}: pick a ` +
        `pool of ` +
        `that library`,
    );
  const kept = (await listSets(ctx.db)).filter((s) => s.cartridges.includes(barcode)).map((s) => s.id);
  if (kept.length)
    throw new ServiceError(
      'ERR_CONFLICT',
      `cartridge ${barcode} holds set${kept.length > 1 ? 's' : ''} ${kept.join(', ')}: a new label would end ` +
        `${kept.length > 1 ? 'them' : 'it'}; expire ${kept.length > 1 ? 'them' : 'it'} first (\`ferry prune\`) or ` +
        `label another cartridge`,
    );
  if (cart.labeled && !cart.recycledAt && cart.pool === pool.name)
    throw new ServiceError('ERR_CONFLICT', `cartridge ${barcode} is labeled for pool ${pool.name} already`);
  return cart;
}

/**
 * `ferry cartridges label BARCODE --pool P`: label a blank cartridge, one back from scratch, or
 * an empty one of another pool, now rather than at its first backup. A cartridge with kept sets
 * is refused (its sets would end).
 */
export async function runLabel(ctx: JobContext, req: StartLabel): Promise<{ cartridge: string; pool: string }> {
  const pool = ctx.site.pool(req.pool);
  await labelable(ctx, req.barcode, pool);
  const driveName = await acquireDrive(ctx, pool);
  await acquireCartridge(ctx, req.barcode);
  // Again, now that no other job can write to it: a backup may have appended a set while this one waited.
  const cart = await labelable(ctx, req.barcode, pool);
  await ctx.to('mounting', `loading cartridge ${req.barcode} into drive ${driveName}`, {
    data: { cartridge: req.barcode, drive: driveName },
  });
  ctx.update({ cartridge: req.barcode });
  const drive = await ctx.site.mount(pool, driveName, req.barcode);
  const copier = await Copier.forJob(ctx, req.mover, drive);
  await drive.drive.setFixedBlock(pool.tapeBlockBytes);
  if (await drive.drive.writeProtected())
    throw new ServiceError(
      'ERR_CONFLICT',
      `cartridge ${req.barcode} is write-protected: clear its write protection first`,
    );
  if (cart.labeled) await checkLabel(drive, cart, pool.tapeBlockBytes, pool.name);
  else await checkBlank(drive, cart, pool.tapeBlockBytes);
  await ctx.to('copying', `writing the label of ${req.barcode} for pool ${pool.name}`);
  // The label goes through the copy manager like every write to tape; no disk is read.
  await writeLabel(ctx, drive, pool, req.barcode, copier, [driveDevice(ctx, drive)]);
  return { cartridge: req.barcode, pool: pool.name };
}
