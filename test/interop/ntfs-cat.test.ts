// Content: the MD5 of files and named streams read by Ferry equals ntfscat's, on every image, and
// `ferry ntfs cat` (the CLI) on a sample of each image. ntfscat costs one process per file: every
// file outside directories of more than 300 entries is checked, plus every 20th entry of those
// (mftfrag's 18,000 would take minutes on a loaded 2-core box). Extraction: ntfs-extract.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FileDevice } from '../../src/block/file-device.ts';
import { AttrType } from '../../src/ntfs/record.ts';
import { resolvePath, walk, type ListEntry, type SkippedRecord } from '../../src/ntfs/tree.ts';
import { findAttr, openVolume, streamAttr, type NtfsFile, type Volume } from '../../src/ntfs/volume.ts';
import { ferry, IMAGES, ntfscat, ntfsImages, type ImageName } from './ntfs-images.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

async function md5Attr(vol: Volume, f: NtfsFile, stream: string): Promise<string> {
  const a = findAttr(f, AttrType.DATA, stream);
  assert.ok(a, `record ${f.record} has no $DATA:${stream}`);
  const h = createHash('md5');
  let n = 0;
  for await (const c of streamAttr(vol, a)) {
    h.update(c);
    n += c.length;
  }
  assert.equal(n, a.dataSize);
  return h.digest('hex');
}

async function listAll(
  img: string,
): Promise<{ vol: Volume; dev: FileDevice; rows: { entry: ListEntry; file: NtfsFile }[]; skipped: SkippedRecord[] }> {
  const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
  const vol = await openVolume(dev);
  const rows: { entry: ListEntry; file: NtfsFile }[] = [];
  const skipped: SkippedRecord[] = [];
  for await (const r of walk(vol, await resolvePath(vol, '/'), '/', {
    recursive: true,
    onError: (s) => skipped.push(s),
  }))
    rows.push(r);
  return { vol, dev, rows, skipped };
}

const oracle = new Map<string, string | null>();
function theirs(img: string, path: string, stream = ''): string | null {
  const k = `${img}\0${path}\0${stream}`;
  if (!oracle.has(k)) {
    const out = ntfscat(img, path, stream);
    oracle.set(k, out ? md5(out) : null);
  }
  return oracle.get(k) ?? null;
}

for (const name of IMAGES) {
  test(`${name}: files and named streams have ntfscat's MD5, and so does ferry ntfs cat`, async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs) return;
    const img = imgs[name as ImageName];
    const { vol, dev, rows, skipped } = await listAll(img);
    try {
      const seen = new Set<number>();
      const perDir = new Map<string, number>();
      const dirOf = (p: string): string => p.slice(0, p.lastIndexOf('/'));
      for (const { entry } of rows) perDir.set(dirOf(entry.path), (perDir.get(dirOf(entry.path)) ?? 0) + 1);
      let checked = 0;
      let index = 0;
      for (const { entry, file } of rows) {
        if (entry.type === 'dir') continue;
        const sampled = (perDir.get(dirOf(entry.path)) ?? 0) <= 300 || index++ % 20 === 0;
        if (!sampled || seen.has(file.record)) continue;
        seen.add(file.record);
        assert.equal(await md5Attr(vol, file, ''), theirs(img, entry.path), entry.path);
        for (const s of entry.streams)
          assert.equal(await md5Attr(vol, file, s.name), theirs(img, entry.path, s.name), `${entry.path}:${s.name}`);
        checked++;
      }
      assert.ok(checked > 0);
      if (name === 'corrupt') {
        assert.equal(skipped.length, 1);
        assert.equal(theirs(img, '/victim'), null, 'ntfscat refuses the torn record too');
      } else {
        assert.deepEqual(skipped, []);
      }

      // The CLI (one process each, ~0.5 s): the first file, then one compressed, sparse, grown and
      // fragmented file and one named stream where the image has them.
      const files = rows.filter((r) => r.entry.type !== 'dir');
      const sample = [files[0]];
      for (const re of [/comp\/text/, /sparse/, /grown/, /^\/A$/, /^\/big/]) {
        const hit = files.find((r) => re.test(r.entry.path));
        if (hit) sample.push(hit);
      }
      for (const { entry } of sample)
        assert.equal(md5(ferry(['ntfs', 'cat', img, entry.path]).stdout), theirs(img, entry.path), `cat ${entry.path}`);
      const withStream = files.find((r) => r.entry.streams.some((s) => s.size > 0));
      if (withStream) {
        const s = withStream.entry.streams.find((x) => x.size > 0)?.name ?? '';
        assert.equal(
          md5(ferry(['ntfs', 'cat', img, `${withStream.entry.path}:${s}`]).stdout),
          theirs(img, withStream.entry.path, s),
        );
      }
    } finally {
      await dev.close();
    }
  });
}

test('cat of a missing path, a missing stream or the torn record fails with a clear error', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  assert.throws(() => ferry(['ntfs', 'cat', imgs.main, '/no/such/file']), /no such file: \/no/);
  assert.throws(() => ferry(['ntfs', 'cat', imgs.main, '/ads:nope']), /has no stream "nope"/);
  assert.throws(() => ferry(['ntfs', 'cat', imgs.corrupt, '/victim']), /record \d+, byte offset \d+: torn FILE record/);
  assert.throws(() => ferry(['ntfs', 'ls', 'iscsi://127.0.0.1:1/iqn.x/0']), /cannot connect to 127.0.0.1:1/);
  assert.throws(() => ferry(['ntfs', 'ls', 'iscsi://nohost']), /not an iSCSI URL/);
});
