// Migration 5: snapshots the server owes a node a delete for. A backup deletes its snapshot when
// it ends; when the node cannot be reached then, the snapshot would live on, and every first
// write to the volume would pay its copy. The delete is recorded here and retried at the next
// backup on that node and at server start, until the node confirms it.
import type { Migration } from '../migrate.ts';

export const m0005OwedSnapshots: Migration = {
  version: 5,
  name: 'owed-snapshots',
  up: [
    `CREATE TABLE owed_snapshot_deletes (
      node TEXT NOT NULL,
      snapshot_id TEXT NOT NULL,
      volume_id TEXT NOT NULL,
      job_id INTEGER REFERENCES jobs (id),
      error TEXT NOT NULL,
      since TEXT NOT NULL,
      tries INTEGER NOT NULL DEFAULT 1,
      PRIMARY KEY (node, snapshot_id)
    )`,
  ],
};
