// Migration 2: the file index of files sets (issue 13), shaped as Bareos's Path and File tables: a
// directory path is stored once and each file row points at its directory, so listing one directory
// is one index range, however many files the set holds.
import type { Migration } from '../migrate.ts';

export const m0002Files: Migration = {
  version: 2,
  name: 'files',
  up: [
    // The volume's geometry as the file index gives it, and the MFT records the backup skipped.
    `CREATE TABLE set_file_indexes (
      set_id INTEGER PRIMARY KEY REFERENCES sets (id) ON DELETE CASCADE,
      cluster_bytes INTEGER NOT NULL,
      sector_bytes INTEGER NOT NULL,
      cluster_count BIGINT NOT NULL,
      serial TEXT NOT NULL,
      files BIGINT NOT NULL,
      skipped TEXT NOT NULL,
      deleted TEXT NOT NULL
    )`,
    `CREATE TABLE file_paths (
      id {{auto_id}},
      path TEXT NOT NULL UNIQUE
    )`,
    // One row per name (a hard link is a row per link). content: JSON of the $DATA attributes as the
    // tape's file index has them (resident bytes, or runs and their tape positions). data_set_id: the
    // set whose blocks hold the file's data (an earlier set of the chain for an unchanged file).
    `CREATE TABLE set_files (
      set_id INTEGER NOT NULL REFERENCES sets (id) ON DELETE CASCADE,
      data_set_id INTEGER NOT NULL,
      dir_id INTEGER NOT NULL REFERENCES file_paths (id),
      name TEXT NOT NULL,
      record BIGINT NOT NULL,
      type TEXT NOT NULL,
      size BIGINT NOT NULL,
      links INTEGER NOT NULL,
      resident INTEGER NOT NULL,
      file_attributes BIGINT NOT NULL,
      security_id BIGINT,
      owner_sid TEXT,
      group_sid TEXT,
      created_ms BIGINT,
      modified_ms BIGINT,
      changed_ms BIGINT,
      accessed_ms BIGINT,
      streams TEXT NOT NULL,
      content TEXT NOT NULL,
      PRIMARY KEY (set_id, dir_id, name)
    )`,
  ],
};
