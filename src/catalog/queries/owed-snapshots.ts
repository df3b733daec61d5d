// Snapshot deletes the server owes storage nodes: recorded when a node could not be reached at
// the end of a backup, retried until the node confirms (migration 5).
import { iso, num, numOrNull, type Db, type Instant } from './common.ts';

export interface OwedSnapshotDelete {
  node: string;
  snapshotId: string;
  /** `NODE:LUN` the snapshot was taken of. */
  volumeId: string;
  jobId: number | null;
  /** Why the last try failed. */
  error: string;
  since: string;
  tries: number;
}

/** Record (or count another failed try of) a delete the node has not done. */
export async function oweSnapshotDelete(
  db: Db,
  o: { node: string; snapshotId: string; volumeId: string; jobId: number | null; error: string; at?: Instant },
): Promise<void> {
  await db
    .insertInto('owed_snapshot_deletes')
    .values({
      node: o.node,
      snapshot_id: o.snapshotId,
      volume_id: o.volumeId,
      job_id: o.jobId,
      error: o.error,
      since: iso(o.at),
      tries: 1,
    })
    .onConflict((oc) =>
      oc.columns(['node', 'snapshot_id']).doUpdateSet((eb) => ({
        error: eb.ref('excluded.error'),
        tries: eb('owed_snapshot_deletes.tries', '+', 1),
      })),
    )
    .execute();
}

/** The deletes still owed, oldest first; of one node when `node` is given. */
export async function owedSnapshotDeletes(db: Db, node?: string): Promise<OwedSnapshotDelete[]> {
  let q = db.selectFrom('owed_snapshot_deletes').selectAll();
  if (node !== undefined) q = q.where('node', '=', node);
  const rows = await q.orderBy('since').orderBy('snapshot_id').execute();
  return rows.map((r) => ({
    node: r.node,
    snapshotId: r.snapshot_id,
    volumeId: r.volume_id,
    jobId: numOrNull(r.job_id),
    error: r.error,
    since: r.since,
    tries: num(r.tries),
  }));
}

/** The node has deleted it (or no longer has it). */
export async function snapshotDeleted(db: Db, node: string, snapshotId: string): Promise<void> {
  await db.deleteFrom('owed_snapshot_deletes').where('node', '=', node).where('snapshot_id', '=', snapshotId).execute();
}
