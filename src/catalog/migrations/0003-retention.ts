// Migration 3: retention and media (issue 14). A set can be protected from pruning, and is expired
// rather than deleted (history stays; its file index goes). A cartridge whose sets have all expired
// returns to scratch: `recycled_at` says so until it is relabeled for its next pool. A cartridge
// keeps the load count its MAM reported at its last mount, and when it was exported. Jobs gain the
// type 'label'; the CHECK is widened the portable way (SQLite cannot alter a constraint): rename
// the column, add the new one with the new CHECK, copy, drop the old one with its CHECK.
import type { Migration } from '../migrate.ts';

export const m0003Retention: Migration = {
  version: 3,
  name: 'retention',
  up: [
    'ALTER TABLE sets ADD COLUMN protected INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE sets ADD COLUMN expired_at TEXT',
    'CREATE INDEX sets_pool ON sets (pool, expired_at)',
    'ALTER TABLE cartridges ADD COLUMN recycled_at TEXT',
    'ALTER TABLE cartridges ADD COLUMN load_count INTEGER',
    'ALTER TABLE cartridges ADD COLUMN exported_at TEXT',
    'ALTER TABLE jobs RENAME COLUMN type TO type_before_3',
    `ALTER TABLE jobs ADD COLUMN type TEXT NOT NULL DEFAULT 'backup' CHECK (type IN ('backup', 'restore', 'verify', ` +
      `'rebuild', 'label'))`,
    'UPDATE jobs SET type = type_before_3',
    'ALTER TABLE jobs DROP COLUMN type_before_3',
  ],
};
