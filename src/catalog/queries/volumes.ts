// Volumes: the disk LUNs Ferry backs up, and the change id each keeps for its next incremental.
import type { Selectable } from 'kysely';
import type { VolumesTable } from '../schema.ts';
import { iso, notFound, num, numOrNull, type Db, type Instant } from './common.ts';

export interface Volume {
  /** `NODE:LUN`. */
  id: string;
  node: string;
  lun: number;
  /** NAA designator, hex. */
  designator: string;
  diskBlockBytes: number;
  volumeBlocks: number;
  /** Change id (on the volume's node) of the last set's snapshot: the next incremental is what changed since. */
  keptChangeId: string | null;
  keptSetId: number | null;
  updatedAt: string;
}

export interface VolumeInput {
  node: string;
  lun: number;
  designator: string;
  diskBlockBytes: number;
  volumeBlocks: number;
  at?: Instant;
}

export function volumeId(node: string, lun: number): string {
  return `${node}:${lun}`;
}

function toVolume(r: Selectable<VolumesTable>): Volume {
  return {
    id: r.id,
    node: r.node,
    lun: num(r.lun),
    designator: r.designator,
    diskBlockBytes: num(r.disk_block_bytes),
    volumeBlocks: num(r.volume_blocks),
    keptChangeId: r.kept_change_id,
    keptSetId: numOrNull(r.kept_set_id),
    updatedAt: r.updated_at,
  };
}

/** Insert or refresh a volume. A new designator (another disk behind the LUN) forgets the kept change id. */
export async function upsertVolume(db: Db, v: VolumeInput): Promise<Volume> {
  const row = {
    id: volumeId(v.node, v.lun),
    node: v.node,
    lun: v.lun,
    designator: v.designator,
    disk_block_bytes: v.diskBlockBytes,
    volume_blocks: v.volumeBlocks,
    kept_change_id: null,
    kept_set_id: null,
    updated_at: iso(v.at),
  };
  const out = await db
    .insertInto('volumes')
    .values(row)
    .onConflict((oc) =>
      oc.column('id').doUpdateSet((eb) => ({
        designator: eb.ref('excluded.designator'),
        disk_block_bytes: eb.ref('excluded.disk_block_bytes'),
        volume_blocks: eb.ref('excluded.volume_blocks'),
        updated_at: eb.ref('excluded.updated_at'),
        kept_change_id: eb
          .case()
          .when('volumes.designator', '=', eb.ref('excluded.designator'))
          .then(eb.ref('volumes.kept_change_id'))
          .else(null)
          .end(),
        kept_set_id: eb
          .case()
          .when('volumes.designator', '=', eb.ref('excluded.designator'))
          .then(eb.ref('volumes.kept_set_id'))
          .else(null)
          .end(),
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return toVolume(out);
}

export async function getVolume(db: Db, id: string): Promise<Volume | undefined> {
  const r = await db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toVolume(r);
}

export async function listVolumes(db: Db, filter: { node?: string } = {}): Promise<Volume[]> {
  let q = db.selectFrom('volumes').selectAll();
  if (filter.node !== undefined) q = q.where('node', '=', filter.node);
  const rows = await q.orderBy('node').orderBy('lun').execute();
  return rows.map(toVolume);
}

/** Record (or forget, with nulls) the change id kept for the next incremental and the set it builds on. */
export async function setKeptChange(
  db: Db,
  id: string,
  changeId: string | null,
  setId: number | null,
  at?: Instant,
): Promise<void> {
  const r = await db
    .updateTable('volumes')
    .set({ kept_change_id: changeId, kept_set_id: setId, updated_at: iso(at) })
    .where('id', '=', id)
    .executeTakeFirst();
  if (r.numUpdatedRows !== 1n) throw notFound('volume', id);
}
