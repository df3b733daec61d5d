// Test helpers: run a test body on a catalog in a temp-dir file and on ':memory:', and build fixtures.
import { test } from 'node:test';
import { join } from 'node:path';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { openCatalog, type Catalog } from './db.ts';
import { completeSet, type BackupSet, type SetPiece } from './queries/sets.ts';
import { upsertCartridge } from './queries/cartridges.ts';
import { upsertVolume } from './queries/volumes.ts';
import type { Db } from './queries/common.ts';
import type { FileIndex, IndexFile } from '../tapeformat/records.ts';

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

/**
 * A file index of `dirs` directories under the root, each with `perDir` files of `size` bytes
 * (resident below 700), plus $MFT (record 0, a system file) and /$Extend/$ObjId under a system
 * directory. Directory d is record 64 + d; its files follow from record 64 + dirs on.
 */
export function fakeFileIndex(dirs: number, perDir: number, size = 1000): FileIndex {
  const t = 1_700_000_000_000;
  const file = (record: number, parent: number, name: string, type: IndexFile['type'], bytes: number): IndexFile => ({
    record,
    seq: 1,
    path: null,
    type,
    names: [{ parent, name, namespace: 1 }],
    fileAttributes: 0x20,
    securityId: 256,
    createdMs: t,
    modifiedMs: t + record,
    changedMs: t,
    accessedMs: t,
    attributes:
      type === 'dir'
        ? []
        : bytes < 700
          ? [{ type: 0x80, name: '', resident: true, size: bytes, bytes: '', valueOffset: 0 }]
          : [
              {
                type: 0x80,
                name: '',
                resident: false,
                size: bytes,
                flags: 0,
                compressionUnit: 0,
                allocatedSize: bytes,
                initializedSize: bytes,
                runs: [[0, 1, record * 8]],
                tape: [[1, 2, 0]],
              },
            ],
  });
  const files: IndexFile[] = [
    { ...file(5, 5, '.', 'dir', 0), path: '/' },
    { ...file(0, 5, '$MFT', 'file', 4096), path: '/$MFT' },
    { ...file(11, 5, '$Extend', 'dir', 0), path: '/$Extend' },
    { ...file(25, 11, '$ObjId', 'file', 0), path: '/$Extend/$ObjId' },
  ];
  for (let d = 0; d < dirs; d++) files.push({ ...file(64 + d, 5, `d${d}`, 'dir', 0), path: `/d${d}` });
  let r = 64 + dirs;
  for (let d = 0; d < dirs; d++) for (let i = 0; i < perDir; i++) files.push(file(r++, 64 + d, `f${i}`, 'file', size));
  return { clusterSize: 4096, sectorSize: 512, clusterCount: 1 << 20, serial: '0123456789abcdef', skipped: [], files };
}

/** Local time (the rules' days, weeks and months are local). */
const at = (day: number, hour = 22): string => new Date(2026, 10, day, hour).toISOString();

/**
 * November 2026, one image set of store:0 a day at 22:00: a full each Sunday (1, 8, 15, 22, 29),
 * an incremental on the day before otherwise; a second incremental on the 30th at 23:00 (set 31).
 * Cartridges hold a week each: C1 sets 1–7, C2 8–14, C3 15–21, C4 22–31. Also two sets of
 * store:1 (C4) and one files set of store:0 (C4).
 */
export async function simulatedMonth(db: Db): Promise<void> {
  for (const lun of [0, 1])
    await upsertVolume(db, {
      node: 'store',
      lun,
      designator: `60014050000000000000000000000${lun}a0`,
      diskBlockBytes: 512,
      volumeBlocks: 2097152,
    });
  for (const c of ['C1', 'C2', 'C3', 'C4'])
    await upsertCartridge(db, {
      barcode: c,
      pool: 'daily',
      library: 'vtl',
      state: 'append',
      labeled: true,
      uuid: `uuid-${c}`,
      endBlock: 100,
    });
  const add = async (id: number, o: Partial<BackupSet>, cartridge: string) => {
    const set = fakeSet(id, { pool: 'daily', mode: 'image', ...o, startedAt: o.snapshotAt!, endedAt: o.snapshotAt! });
    await completeSet(db, { set, pieces: [fakePiece(1, cartridge)], cartridges: [] });
  };
  for (let day = 1; day <= 30; day++) {
    const sunday = new Date(2026, 10, day).getDay() === 0;
    await add(
      day,
      { snapshotAt: at(day), level: sunday ? 'full' : 'incremental', baseSetId: sunday ? null : day - 1 },
      `C${Math.min(4, Math.ceil(day / 7))}`,
    );
  }
  await add(31, { snapshotAt: at(30, 23), level: 'incremental', baseSetId: 30 }, 'C4');
  await add(32, { volumeId: 'store:1', snapshotAt: at(29) }, 'C4');
  await add(33, { volumeId: 'store:1', snapshotAt: at(30) }, 'C4');
  await add(34, { mode: 'files', snapshotAt: at(2) }, 'C4');
}
