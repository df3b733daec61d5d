// Migration 3: retention (issue 14). A set can be protected from pruning, and is expired rather
// than deleted (history stays; its file index goes). A cartridge whose sets have all expired
// returns to scratch: `recycled_at` says so until it is relabeled for its next pool.
import type { Migration } from '../migrate.ts';

export const m0003Retention: Migration = {
  version: 3,
  name: 'retention',
  up: [
    'ALTER TABLE sets ADD COLUMN protected INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE sets ADD COLUMN expired_at TEXT',
    'CREATE INDEX sets_pool ON sets (pool, expired_at)',
    'ALTER TABLE cartridges ADD COLUMN recycled_at TEXT',
  ],
};
