// Test helpers: run a test body on a catalog in a temp-dir file and on ':memory:', and build fixtures.
import { test } from 'node:test';
import { join } from 'node:path';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { openCatalog, type Catalog } from './db.ts';
import type { BackupSet, SetPiece } from './queries/sets.ts';

/** Register `name` twice: on a catalog file in a temp dir and on ':memory:'. */
export function testBoth(name: string, fn: (cat: Catalog) => Promise<void>): void {
  test(`${name} (file)`, () =>
    inTempDir('catalog', async (dir) => {
      const cat = await openCatalog(join(dir, 'catalog.db'));
      try {
        await fn(cat);
      } finally {
        await cat.close();
      }
    }));
  test(`${name} (:memory:)`, async () => {
    const cat = await openCatalog(':memory:');
    try {
      await fn(cat);
    } finally {
      await cat.close();
    }
  });
}

export function fakeSet(id: number, over: Partial<BackupSet> = {}): BackupSet {
  return {
    id,
    uuid: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
    volumeId: 'store:0',
    jobId: null,
    pool: 'daily',
    mode: 'used',
    level: 'full',
    baseSetId: null,
    snapshotId: `snap-${id}`,
    snapshotAt: '2024-05-01T10:00:00.000Z',
    diskBlockBytes: 512,
    volumeBlocks: 2097152,
    tapeBlockBytes: 262144,
    extents: [{ lba: 0, blocks: 2048, streamOffset: 0 }],
    streamBytes: 1048576,
    sha256: null,
    reason: null,
    startedAt: '2024-05-01T10:00:01.000Z',
    endedAt: '2024-05-01T10:00:09.000Z',
    ...over,
  };
}

export function fakePiece(seq: number, cartridge: string, over: Partial<SetPiece> = {}): SetPiece {
  return {
    seq,
    cartridge,
    headerBlock: 1,
    dataBlock: 2,
    dataBlocks: 4,
    trailerBlock: 6,
    endBlock: 8,
    streamStart: 0,
    streamEnd: 1048576,
    ...over,
  };
}
