// Migration 4: change ids (issue 17). A backup's snapshot is deleted once its set is complete;
// the volume keeps only the change id of that snapshot's instant for its next incremental. The
// snapshot ids already kept stay valid: a storage node answers for them as change ids.
import type { Migration } from '../migrate.ts';

export const m0004ChangeIds: Migration = {
  version: 4,
  name: 'change-ids',
  up: ['ALTER TABLE volumes RENAME COLUMN kept_snapshot_id TO kept_change_id'],
};
