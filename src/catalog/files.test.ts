import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upsertCartridge } from './queries/cartridges.ts';
import { completeSet } from './queries/sets.ts';
import { upsertVolume } from './queries/volumes.ts';
import { fileIndexInfo, filesForRestore, findEntry, findFiles, globToRegExp, listDirectory } from './queries/files.ts';
import { fakeFileIndex, fakePiece, fakeSet, testBoth } from './testing.ts';
import type { Db } from './queries/common.ts';
import type { FileIndex } from '../tapeformat/records.ts';

async function withIndex(db: Db, id: number, index: FileIndex): Promise<void> {
  await upsertVolume(db, {
    node: 'store',
    lun: 0,
    designator: '600140500000000000000000000000a0',
    diskBlockBytes: 512,
    volumeBlocks: 2097152,
  });
  await upsertCartridge(db, { barcode: 'FER001L8', pool: 'daily', state: 'append', labeled: true, endBlock: 1 });
  await completeSet(db, {
    set: fakeSet(id, { mode: 'files' }),
    pieces: [fakePiece(1, 'FER001L8')],
    cartridges: [],
    files: index,
  });
}

testBoth(
  'files index: a directory, a subtree, one entry, system files on request, hard links, restore lists',
  async ({ db }) => {
    const index = fakeFileIndex(3, 4);
    // A hard link: /d0/f0 also named /d1/link; and an orphan whose parent is not in the index.
    const f0 = index.files.find((f) => f.names[0].name === 'f0' && f.names[0].parent === 64)!;
    f0.names.push({ parent: 65, name: 'link', namespace: 1 }, { parent: 65, name: 'LINK~1', namespace: 2 });
    index.files.push({ ...f0, record: 999, names: [{ parent: 4242, name: 'orphan', namespace: 1 }] });
    await withIndex(db, 1, index);

    const top = await listDirectory(db, 1, '/');
    assert.deepEqual(
      top.map((e) => [e.path, e.type, e.size]),
      [
        ['/d0', 'dir', 0],
        ['/d1', 'dir', 0],
        ['/d2', 'dir', 0],
      ],
      'the root, no system files',
    );
    assert.deepEqual(
      (await listDirectory(db, 1, '/', { system: true })).map((e) => e.path),
      ['/$Extend', '/$MFT', '/d0', '/d1', '/d2'],
    );
    const d1 = await listDirectory(db, 1, '/d1');
    assert.deepEqual(
      d1.map((e) => e.path),
      ['/d1/f0', '/d1/f1', '/d1/f2', '/d1/f3', '/d1/link'],
      'a hard link is a row; its DOS alias is not',
    );
    assert.equal(d1.find((e) => e.path === '/d1/link')!.links, 2);
    assert.equal(d1.find((e) => e.path === '/d1/link')!.record, f0.record);
    const all = await listDirectory(db, 1, '/', { recursive: true });
    assert.equal(all.length, 3 + 12 + 1);
    assert.ok(!all.some((e) => e.path.includes('orphan') || e.path.startsWith('/$')), 'no orphans, no system files');
    assert.deepEqual(
      (await listDirectory(db, 1, '/', { recursive: true, system: true }))
        .filter((e) => e.path.startsWith('/$'))
        .map((e) => e.path),
      ['/$Extend', '/$MFT', '/$Extend/$ObjId'],
    );

    const one = await findEntry(db, 1, '/D2/F3');
    assert.ok(one && one !== 'root');
    assert.deepEqual(
      [one.path, one.size, one.resident, one.modified],
      ['/d2/f3', 1000, false, new Date(1_700_000_000_000 + one.record).toISOString()],
      'found without case',
    );
    assert.equal(one.data[0].runs?.[0][2], one.record * 8);
    assert.equal(await findEntry(db, 1, '/d9'), undefined);
    assert.equal(await findEntry(db, 1, '/'), 'root');

    assert.deepEqual(
      (await filesForRestore(db, 1, '/d2'))!.map((f) => f.path),
      ['/d2', '/d2/f0', '/d2/f1', '/d2/f2', '/d2/f3'],
    );
    assert.deepEqual(
      (await filesForRestore(db, 1, '/$Extend'))!.map((f) => f.path),
      ['/$Extend', '/$Extend/$ObjId'],
      'a system directory by name brings its files',
    );
    assert.ok(
      !(await filesForRestore(db, 1, '/'))!.some((f) => f.path.startsWith('/$')),
      'the root leaves system files out',
    );
    assert.equal(await filesForRestore(db, 1, '/nope'), undefined);

    assert.deepEqual(
      (await findFiles(db, 1, 'F3')).map((e) => e.path),
      ['/d0/f3', '/d1/f3', '/d2/f3'],
    );
    await assert.rejects(findFiles(db, 1, '[z-a]'), /pattern "\[z-a\]" is not a glob/);
    assert.deepEqual(
      (await findFiles(db, 1, '/d1/f[0-1]')).map((e) => e.path),
      ['/d1/f0', '/d1/f1'],
    );
    assert.deepEqual(await fileIndexInfo(db, 1), {
      clusterSize: 4096,
      sectorSize: 512,
      clusterCount: 1 << 20,
      serial: '0123456789abcdef',
      files: index.files.length,
      skipped: [],
      deleted: [],
    });
    assert.equal(await fileIndexInfo(db, 2), undefined);
  },
);

testBoth(
  'files index: two records with one (directory, name), as a snapshot taken mid-rename shows: the first stays',
  async ({ db }) => {
    const index = fakeFileIndex(1, 2);
    const f1 = index.files.at(-1)!;
    index.files.push({ ...f1, record: 5000 });
    await withIndex(db, 1, index);
    const d0 = await listDirectory(db, 1, '/d0');
    assert.deepEqual(
      d0.map((e) => [e.path, e.record]),
      [
        ['/d0/f0', f1.record - 1],
        ['/d0/f1', f1.record],
      ],
    );
  },
);

testBoth('files index: directory paths are shared between sets; each set lists its own', async ({ db }) => {
  await withIndex(db, 1, fakeFileIndex(2, 2));
  await completeSet(db, {
    set: fakeSet(2, { mode: 'files', uuid: '00000000-0000-4000-8000-000000000002' }),
    pieces: [fakePiece(1, 'FER001L8')],
    cartridges: [],
    files: fakeFileIndex(2, 3),
  });
  assert.equal((await listDirectory(db, 1, '/d1')).length, 2);
  assert.equal((await listDirectory(db, 2, '/d1')).length, 3);
  assert.ok((await listDirectory(db, 2, '/d1')).every((e) => e.set === 2));
});

test('globToRegExp: *, ?, [..], [!..], and the rest literal, without case', () => {
  assert.ok(globToRegExp('*.TXT').test('a.txt'));
  assert.ok(!globToRegExp('*.txt').test('a.txt.bak'));
  assert.ok(globToRegExp('f?').test('f1') && !globToRegExp('f?').test('f12'));
  assert.ok(globToRegExp('[!a]x').test('bx') && !globToRegExp('[!a]x').test('ax'));
  assert.ok(globToRegExp('a+b(c)').test('a+b(c)'), 'regex characters are literal');
  assert.ok(!globToRegExp('/d*/f1').test('/d0/sub/f1'), '* stops at /');
});
