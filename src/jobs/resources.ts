import type { NodeControl } from '../storage-node/node-control.ts';
import type { LunInfo } from '../storage-node/lun-registry.ts';
import {
  cartridgeResource,
  driveResource,
  getCartridge,
  listReservations,
  ReservedError,
  reserve,
  volumeResource,
} from '../catalog/queries/cartridges.ts';
import type { PoolConfig } from '../server/config.ts';
import type { FerryError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { ServiceError } from './types.ts';

/** What every kind of job asks for first: a volume by name, its disk LUN, a drive of a pool. */

export function parseVolume(v: string): { node: string; lun: number } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_-]*):(\d+)$/.exec(v);
  if (!m) throw new ServiceError('ERR_BAD_REQUEST', `volume "${v}" is not NODE:LUN, e.g. store:0`);
  return { node: m[1], lun: Number(m[2]) };
}

export async function diskLun(control: NodeControl, node: string, lun: number): Promise<LunInfo> {
  const info = (await control.listLuns()).find((l) => l.lun === lun);
  if (!info || info.kind !== 'disk')
    throw new ServiceError(
      'ERR_NOT_FOUND',
      `unknown volume ${node}:${lun}: node ${node} has no disk LUN ${lun} (see \`ferry snapshot ls\` or the node's ` +
        `/v1/luns)`,
    );
  return info;
}

/** A drive of the pool for this job, waiting while all are reserved by other jobs. */
export async function acquireDrive(ctx: JobContext, pool: PoolConfig): Promise<string> {
  const names = await ctx.site.drivesOf(pool);
  // A job that holds a drive of the pool already (a backup that verifies) keeps to it.
  const mine = new Set((await listReservations(ctx.db)).filter((r) => r.jobId === ctx.id).map((r) => r.resource));
  const held = names.find((n) => mine.has(driveResource(n)));
  if (held) return held;
  for (let waited = false; ; waited = true) {
    for (const n of names) {
      try {
        await reserve(ctx.db, driveResource(n), ctx.id);
        return n;
      } catch (e) {
        if ((e as FerryError).code !== 'ERR_RESERVED') throw e;
      }
    }
    if (!waited)
      await ctx.to('waiting-drive', `every drive of pool ${pool.name} is in use`, {
        waitingFor: `a drive of pool ${pool.name}`,
      });
    await new Promise((r) => setTimeout(r, 500));
    ctx.checkCanceled();
  }
}

/**
 * Reserve the cartridges a job reads, waiting while another job holds one. All at once, in
 * barcode order, after the drive: two jobs that read never wait on each other, and a backup
 * waits for a cartridge only while it holds none, so no cycle of waits can form.
 */
export async function acquireCartridges(ctx: JobContext, barcodes: Iterable<string>): Promise<string[]> {
  const sorted = [...new Set(barcodes)].sort();
  for (const b of sorted) await acquireCartridge(ctx, b);
  return sorted;
}

/** Reserve one cartridge for this job, waiting while another job holds it. */
export async function acquireCartridge(ctx: JobContext, barcode: string): Promise<void> {
  const c = await getCartridge(ctx.db, barcode);
  if (c?.exportedAt)
    throw new ServiceError(
      'ERR_CONFLICT',
      `cartridge ${barcode} was exported on ${c.exportedAt}: put it back with \`ferry cartridges import ` +
        `${barcode}\`, ` +
        `then run the job again`,
    );
  await reserveWaiting(ctx, cartridgeResource(barcode), (holder) =>
    ctx.to('waiting-media', `cartridge ${barcode} is in use${holder}`, { waitingFor: `cartridge ${barcode}` }),
  );
}

/**
 * One backup of a volume at a time: the next waits, queued, for the one running. Taken before
 * anything else, so it never waits while holding a drive or a cartridge.
 */
export async function acquireVolume(ctx: JobContext, vid: string): Promise<void> {
  await reserveWaiting(ctx, volumeResource(vid), async (holder) => {
    ctx.update({ waitingFor: `the running backup of ${vid}` });
    await ctx.log(`waiting for the backup of ${vid} that is running${holder}`);
  });
}

/** Reserve `resource`, polling while another job holds it; `onWait` runs once, when the wait starts. */
async function reserveWaiting(
  ctx: JobContext,
  resource: string,
  onWait: (holder: string) => Promise<void>,
): Promise<void> {
  for (let waited = false; ; waited = true) {
    try {
      await reserve(ctx.db, resource, ctx.id);
      return;
    } catch (e) {
      if ((e as FerryError).code !== 'ERR_RESERVED') throw e;
      if (!waited) await onWait(e instanceof ReservedError ? ` (job ${e.holderJobId})` : '');
    }
    await new Promise((r) => setTimeout(r, 500));
    ctx.checkCanceled();
  }
}
