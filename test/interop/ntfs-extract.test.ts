// `ferry ntfs extract` reproduces every file of every image: each extracted file has the MD5 of
// Ferry's reader (checked against ntfscat in ntfs-cat.test.ts) and, for every 25th file, of ntfscat itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDevice } from '../../src/block/file-device.ts';
import { AttrType } from '../../src/ntfs/record.ts';
import { resolvePath, walk } from '../../src/ntfs/tree.ts';
import { findAttr, openVolume, streamAttr } from '../../src/ntfs/volume.ts';
import { ferry, IMAGES, ntfscatAsync, ntfsImages } from './ntfs-images.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

for (const name of IMAGES) {
  test(`${name}: ferry ntfs extract writes every file and directory`, async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs) return;
    const img = imgs[name];
    const out = await mkdtemp(join(tmpdir(), 'ferry-ntfs-x-'));
    const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
    try {
      ferry(['ntfs', 'extract', img, out]);
      const vol = await openVolume(dev);
      let files = 0;
      // The ntfscat comparisons run as child processes beside the walk, a few at a time.
      const vsNtfscat: Array<Promise<void>> = [];
      const compare = async (path: string, got: string): Promise<void> => {
        assert.equal(got, md5((await ntfscatAsync(img, path)) ?? new Uint8Array(1)), `${path} vs ntfscat`);
      };
      for await (const { entry, file } of walk(vol, await resolvePath(vol, '/'), '/', {
        recursive: true,
        onError: () => undefined,
      })) {
        const st = await stat(join(out, entry.path));
        if (entry.type === 'dir') {
          assert.ok(st.isDirectory(), entry.path);
          continue;
        }
        const got = md5(await readFile(join(out, entry.path)));
        const h = createHash('md5');
        const data = findAttr(file, AttrType.DATA);
        if (data) for await (const c of streamAttr(vol, data)) h.update(c);
        assert.equal(got, h.digest('hex'), entry.path);
        if (files++ % 25 === 0) {
          if (vsNtfscat.length >= 4) await vsNtfscat.shift();
          const check = compare(entry.path, got);
          check.catch(() => undefined); // reported when awaited; no unhandled rejection meanwhile
          vsNtfscat.push(check);
        }
        if (entry.modified) assert.equal(st.mtime.toISOString(), entry.modified, `${entry.path} mtime`);
      }
      await Promise.all(vsNtfscat);
      assert.ok(files > 0);
    } finally {
      await dev.close();
      await rm(out, { recursive: true, force: true });
    }
  });
}
