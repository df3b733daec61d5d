// Migration 1: the first catalog schema. Portable DDL (SQLite and PostgreSQL); `{{auto_id}}` is the one
// dialect-specific phrase and migrate.ts spells it per dialect. Never edit a shipped migration: add the next one.
import type { Migration } from '../migrate.ts';

export const m0001Initial: Migration = {
  version: 1,
  name: 'initial',
  up: [
    `CREATE TABLE volumes (
      id TEXT PRIMARY KEY,
      node TEXT NOT NULL,
      lun INTEGER NOT NULL,
      designator TEXT NOT NULL,
      disk_block_bytes INTEGER NOT NULL,
      volume_blocks BIGINT NOT NULL,
      kept_snapshot_id TEXT,
      kept_set_id INTEGER,
      updated_at TEXT NOT NULL
    )`,
    // volume_id and set_id carry no foreign key: a job may name a LUN not yet registered, and its set id
    // is claimed before the set row exists.
    `CREATE TABLE jobs (
      id {{auto_id}},
      type TEXT NOT NULL CHECK (type IN ('backup', 'restore', 'verify', 'rebuild')),
      volume_id TEXT,
      state TEXT NOT NULL,
      waiting_for TEXT,
      params TEXT NOT NULL,
      created_at TEXT NOT NULL,
      started_at TEXT,
      ended_at TEXT,
      bytes_done BIGINT NOT NULL DEFAULT 0,
      bytes_total BIGINT NOT NULL DEFAULT 0,
      set_id INTEGER,
      mover TEXT,
      drive TEXT,
      cartridge TEXT,
      error_code TEXT,
      error TEXT,
      result TEXT
    )`,
    'CREATE INDEX jobs_state ON jobs (state)',
    'CREATE INDEX jobs_volume ON jobs (volume_id, id)',
    `CREATE TABLE job_events (
      id {{auto_id}},
      job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
      at TEXT NOT NULL,
      kind TEXT NOT NULL,
      state TEXT,
      message TEXT NOT NULL,
      data TEXT
    )`,
    'CREATE INDEX job_events_job ON job_events (job_id, id)',
    `CREATE TABLE cartridges (
      barcode TEXT PRIMARY KEY,
      uuid TEXT UNIQUE,
      pool TEXT,
      library TEXT,
      state TEXT NOT NULL CHECK (state IN ('blank', 'append', 'full', 'error')),
      labeled INTEGER NOT NULL DEFAULT 0 CHECK (labeled IN (0, 1)),
      end_block BIGINT NOT NULL DEFAULT 0,
      bytes_used BIGINT NOT NULL DEFAULT 0,
      last_written_at TEXT,
      error TEXT
    )`,
    'CREATE INDEX cartridges_pool ON cartridges (pool, state)',
    // id is explicit (claimed before the copy, or read back by a rebuild), never generated.
    `CREATE TABLE sets (
      id INTEGER PRIMARY KEY,
      uuid TEXT NOT NULL UNIQUE,
      volume_id TEXT NOT NULL REFERENCES volumes (id),
      job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
      pool TEXT NOT NULL,
      mode TEXT NOT NULL CHECK (mode IN ('image', 'used', 'files')),
      level TEXT NOT NULL CHECK (level IN ('full', 'incremental')),
      base_set_id INTEGER REFERENCES sets (id),
      snapshot_id TEXT NOT NULL,
      snapshot_at TEXT NOT NULL,
      disk_block_bytes INTEGER NOT NULL,
      volume_blocks BIGINT NOT NULL,
      tape_block_bytes INTEGER NOT NULL,
      extents TEXT NOT NULL,
      stream_bytes BIGINT NOT NULL,
      sha256 TEXT,
      reason TEXT,
      started_at TEXT NOT NULL,
      ended_at TEXT NOT NULL,
      CHECK ((level = 'full' AND base_set_id IS NULL) OR (level = 'incremental' AND base_set_id IS NOT NULL))
    )`,
    'CREATE INDEX sets_volume ON sets (volume_id, id)',
    'CREATE INDEX sets_base ON sets (base_set_id)',
    `CREATE TABLE set_pieces (
      set_id INTEGER NOT NULL REFERENCES sets (id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      cartridge TEXT NOT NULL REFERENCES cartridges (barcode),
      header_block BIGINT NOT NULL,
      data_block BIGINT NOT NULL,
      data_blocks BIGINT NOT NULL,
      trailer_block BIGINT NOT NULL,
      end_block BIGINT NOT NULL,
      stream_start BIGINT NOT NULL,
      stream_end BIGINT NOT NULL,
      PRIMARY KEY (set_id, seq)
    )`,
    'CREATE INDEX set_pieces_cartridge ON set_pieces (cartridge)',
    `CREATE TABLE reservations (
      resource TEXT PRIMARY KEY,
      job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
      at TEXT NOT NULL
    )`,
    'CREATE INDEX reservations_job ON reservations (job_id)',
  ],
};
