// Benchmark: browsing a files set of 1,000,000 files (1,000 directories of 1,000) in the SQLite
// catalog: one directory through the (set, directory, name) key, against the same rows found by
// scanning the set's file rows (what a table without the directory key would do), same run.
//   node --import tsx bench/catalog-ls.ts [--dirs 1000] [--per-dir 1000] [--runs 9]
// The insert (one transaction, as a backup or rebuild writes it) is timed too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCatalog } from '../src/catalog/db.ts';
import { upsertCartridge } from '../src/catalog/queries/cartridges.ts';
import { findEntry, listDirectory, listSetFiles } from '../src/catalog/queries/files.ts';
import { completeSet } from '../src/catalog/queries/sets.ts';
import { upsertVolume } from '../src/catalog/queries/volumes.ts';
import { fakeFileIndex, fakePiece, fakeSet } from '../src/catalog/testing.ts';

const { values } = parseArgs({
  options: {
    dirs: { type: 'string', default: '1000' },
    'per-dir': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '9' },
  },
});
const DIRS = Number(values.dirs);
const PER_DIR = Number(values['per-dir']);
const RUNS = Number(values.runs);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-catalog-'));
const cat = await openCatalog(join(dir, 'catalog.db'));
try {
  const db = cat.db;
  await upsertVolume(db, {
    node: 'store',
    lun: 0,
    designator: '600140500000000000000000000000a0',
    diskBlockBytes: 512,
    volumeBlocks: 2 ** 31,
  });
  await upsertCartridge(db, { barcode: 'FER001L8', pool: 'daily', state: 'append', labeled: true, endBlock: 1 });
  const index = fakeFileIndex(DIRS, PER_DIR);
  let t = performance.now();
  await completeSet(db, {
    set: fakeSet(1, { mode: 'files' }),
    pieces: [fakePiece(1, 'FER001L8')],
    cartridges: [],
    files: index,
  });
  const insertMs = performance.now() - t;
  console.log(
    `${index.files.length} files inserted in one transaction: ${(insertMs / 1000).toFixed(1)} s ` +
      `(${Math.round(index.files.length / (insertMs / 1000))} files/s)`,
  );
  const keyed: number[] = [];
  const scanned: number[] = [];
  const one: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const d = `/d${(i * 97) % DIRS}`;
    t = performance.now();
    const a = await listDirectory(db, 1, d);
    keyed.push(performance.now() - t);
    t = performance.now();
    const b = (await listSetFiles(db, 1)).filter((e) => e.path.slice(0, e.path.lastIndexOf('/')) === d);
    scanned.push(performance.now() - t);
    if (a.length !== PER_DIR || b.length !== PER_DIR)
      throw new Error(`listed ${a.length} and ${b.length} entries of ${d}, expected ${PER_DIR}`);
    t = performance.now();
    if (!(await findEntry(db, 1, `${d}/f${i}`))) throw new Error(`${d}/f${i} not found`);
    one.push(performance.now() - t);
  }
  console.log(
    `one directory of ${PER_DIR}: ${median(keyed).toFixed(1)} ms by the directory key, ${median(scanned).toFixed(0)} ` +
      `ms by scanning the set (median of ${RUNS}); ratio ${(median(scanned) / median(keyed)).toFixed(0)}x`,
  );
  console.log(`one file by path: ${median(one).toFixed(2)} ms`);
} finally {
  await cat.close();
  rmSync(dir, { recursive: true, force: true });
}
