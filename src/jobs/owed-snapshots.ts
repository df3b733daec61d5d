import type { Db } from '../catalog/queries/common.ts';
import { oweSnapshotDelete, owedSnapshotDeletes, snapshotDeleted } from '../catalog/queries/owed-snapshots.ts';
import type { NodeControl } from '../storage-node/node-control.ts';
import { FerryError } from '../util/errors.ts';
import type { Site } from './site.ts';

/** A snapshot a job took, to delete on its node. */
export interface TakenSnapshot {
  node: string;
  snapshotId: string;
  /** `NODE:LUN`. */
  volumeId: string;
  jobId: number | null;
}

const gone = (e: unknown): boolean => e instanceof FerryError && e.code === 'ERR_SNAPSHOT_NOT_FOUND';

/**
 * Delete a job's snapshot on its node. When the node cannot do it now, the delete is owed: it is
 * recorded in the catalog and retried at the next backup on that node and at server start, so a
 * forgotten snapshot never keeps slowing the volume's writes. Returns what to tell the user.
 */
export async function deleteOrOwe(
  db: Db,
  control: NodeControl | undefined,
  s: TakenSnapshot,
): Promise<{ deleted: boolean; message: string }> {
  try {
    if (!control) throw new FerryError('ERR_NODE', `node ${s.node} is not reachable`);
    await control.deleteSnapshot(s.snapshotId);
    await snapshotDeleted(db, s.node, s.snapshotId);
    return { deleted: true, message: `deleted snapshot ${s.snapshotId} of ${s.volumeId}` };
  } catch (e) {
    if (gone(e)) {
      await snapshotDeleted(db, s.node, s.snapshotId);
      return { deleted: true, message: `snapshot ${s.snapshotId} of ${s.volumeId} was already gone` };
    }
    const error = (e as Error).message;
    await oweSnapshotDelete(db, { ...s, error });
    return {
      deleted: false,
      message:
        `could not delete snapshot ${s.snapshotId} of ${s.volumeId} (${error}): the server retries at the next ` +
        `backup on node ${s.node} and when it starts; \`ferry snapshot rm ${s.snapshotId}\` on the node deletes it now`,
    };
  }
}

/** Try every delete owed to `node` (every node when omitted): what happened to each, and the job that took it. */
export async function payOwedSnapshotDeletes(
  db: Db,
  site: Site,
  node?: string,
): Promise<Array<{ jobId: number | null; deleted: boolean; message: string }>> {
  const said = [];
  for (const owed of await owedSnapshotDeletes(db, node)) {
    const control = await site.nodeControl(owed.node).catch(() => undefined);
    said.push({ jobId: owed.jobId, ...(await deleteOrOwe(db, control, owed)) });
  }
  return said;
}
