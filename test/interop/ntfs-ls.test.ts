// `ferry ntfs ls -R --json` against ntfsls, and `ferry ntfs used --json` against partclone.ntfs -D,
// on every image the script makes (reference ntfs.md §5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ferry, IMAGES, ntfsImages, ntfsls, partcloneUsed } from './ntfs-images.ts';

interface LsRow {
  path: string;
  type: string;
  size: number;
  record: number;
  links: number;
  streams: { name: string; size: number }[];
  resident: boolean;
  created: string | null;
  modified: string | null;
  changed: string | null;
  accessed: string | null;
}

const key = (r: { path: string; size: number; record: number }): string => `${r.path}\t${r.size}\t${r.record}`;

test('ferry ntfs ls -R --json lists the same paths, sizes and records as ntfsls', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  for (const name of IMAGES) {
    await t.test(name, () => {
      const { stdout, stderr } = ferry(['ntfs', 'ls', imgs[name], '/', '-R', '--json']);
      const rows = JSON.parse(stdout.toString('utf8')) as LsRow[];
      const ours = rows.map(key).sort();
      const theirs = ntfsls(imgs[name]).map(key).sort();
      assert.deepEqual(ours, theirs);
      for (const r of rows) {
        assert.ok(r.path.startsWith('/'));
        assert.ok(['file', 'dir', 'symlink', 'reparse'].includes(r.type));
        for (const ts of [r.created, r.modified, r.changed, r.accessed])
          assert.match(ts ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
      if (name === 'corrupt') assert.match(stderr, /record \d+, byte offset \d+: torn FILE record/);
      else assert.equal(stderr, '');
    });
  }
});

test('ls --json reports links, named streams, residency and types on the main image', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const rows = JSON.parse(ferry(['ntfs', 'ls', imgs.main, '/', '-R', '--json']).stdout.toString('utf8')) as LsRow[];
  const by = new Map(rows.map((r) => [r.path, r]));
  const get = (p: string): LsRow => {
    const r = by.get(p);
    assert.ok(r, `missing ${p}`);
    return r;
  };
  assert.equal(get('/linked').links, 2);
  assert.equal(get('/linked').record, get('/res/linked-too').record);
  assert.equal(get('/manylinks').links, 41);
  assert.deepEqual(
    get('/ads')
      .streams.map((s) => [s.name, s.size])
      .sort(),
    [
      ['big', 100000],
      ['empty', 0],
      ['s1', 2],
    ],
  );
  assert.equal(get('/ads60').streams.length, 60);
  assert.equal(get('/res/r656').resident, true);
  assert.equal(get('/res/r664').resident, false);
  assert.equal(get('/symlink').type, 'symlink');
  assert.equal(get('/reparse').type, 'symlink');
  assert.equal(get('/many').type, 'dir');
  assert.equal(get('/many').size, 0);
  assert.equal(rows.filter((r) => r.path.startsWith('/many/')).length, 3000);
  assert.ok(!rows.some((r) => r.path.startsWith('/gone')), 'deleted files must not be listed');
  assert.ok(!rows.some((r) => r.path.includes('~')), 'DOS aliases are not separate entries');
  // a single directory without -R, and a file path
  const top = JSON.parse(ferry(['ntfs', 'ls', imgs.main, '/res', '--json']).stdout.toString('utf8')) as LsRow[];
  assert.equal(top.length, 12);
  const one = JSON.parse(ferry(['ntfs', 'ls', imgs.main, '/res/r5', '--json']).stdout.toString('utf8')) as LsRow[];
  assert.deepEqual(
    one.map((r) => [r.path, r.size]),
    [['/res/r5', 5]],
  );
});

test('ferry ntfs used --json equals partclone.ntfs -D used ranges', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ntfs-used-'));
  try {
    for (const name of IMAGES) {
      await t.test(name, () => {
        const used = JSON.parse(ferry(['ntfs', 'used', imgs[name], '--json']).stdout.toString('utf8')) as {
          clusterSize: number;
          ranges: [number, number][];
        };
        const ours = used.ranges.map(([s, n]) => [s * used.clusterSize, n * used.clusterSize]);
        assert.deepEqual(ours, partcloneUsed(imgs[name], join(dir, `${name}.log`)));
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bin/ferry.mjs has the ntfs command group', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const rows = JSON.parse(ferry(['ntfs', 'ls', imgs.corrupt, '--json'], true).stdout.toString('utf8')) as LsRow[];
  assert.deepEqual(rows.map((r) => r.path).sort(), ['/good1', '/good2']);
});
