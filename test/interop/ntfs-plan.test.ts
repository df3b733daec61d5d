// The file-level plan is right: every file rebuilt from only the plan's resident bytes and the
// plan's extents (copied from the image into an otherwise zeroed device) has ntfscat's content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MemoryDevice } from '../../src/block/memory-device.ts';
import type { NtfsPlan } from '../../src/ntfs/plan-document.ts';
import { rebuildAttribute } from '../../src/ntfs/restore.ts';
import { ferry, IMAGES, ntfscat, ntfsImages } from './ntfs-images.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

function checkMerged(ext: [number, number][], blockCount: number): void {
  for (let i = 0; i < ext.length; i++) {
    assert.ok(ext[i][1] > 0 && ext[i][0] >= 0 && ext[i][0] + ext[i][1] <= blockCount);
    if (i) assert.ok(ext[i][0] > ext[i - 1][0] + ext[i - 1][1], 'extents sorted, disjoint and not adjacent');
  }
}

for (const name of IMAGES) {
  test(`${name}: files rebuilt from the plan alone match ntfscat`, async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs) return;
    const img = imgs[name];
    const plan = JSON.parse(ferry(['ntfs', 'plan', img, '--json']).stdout.toString('utf8')) as NtfsPlan;
    const image = await readFile(img);
    const blockCount = image.length / plan.blockSize;
    checkMerged(plan.extents, blockCount);
    checkMerged(plan.used.extents, blockCount);
    assert.equal(plan.skipped.length, name === 'corrupt' ? 1 : 0);

    // Only the plan's extents reach the restore device.
    const dev = new MemoryDevice(plan.blockSize, blockCount);
    for (const [lba, n] of plan.extents)
      dev.bytes.set(image.subarray(lba * plan.blockSize, (lba + n) * plan.blockSize), lba * plan.blockSize);

    const ls = JSON.parse(ferry(['ntfs', 'ls', img, '/', '-R', '--json']).stdout.toString('utf8')) as {
      path: string;
      record: number;
      type: string;
    }[];
    const lsRecords = new Set(ls.map((r) => r.record));
    const planRecords = new Set(plan.files.filter((f) => f.record >= 16).map((f) => f.record));
    assert.deepEqual([...planRecords].sort(), [...lsRecords].sort(), 'plan and ls cover the same records');

    let n = 0;
    for (const f of plan.files) {
      if (f.type === 'dir' || f.path === null) continue;
      // ntfscat is one process per file: all files, but every 40th record in images of more than 1000
      if (plan.files.length > 1000 && f.record % 40 !== 0) continue;
      for (const a of f.attributes.filter((x) => x.type === 0x80)) {
        const h = createHash('md5');
        for await (const c of rebuildAttribute(plan, dev, f, a)) h.update(c);
        const want = ntfscat(img, f.path, a.name);
        assert.ok(want, `ntfscat ${f.path}:${a.name}`);
        assert.equal(h.digest('hex'), md5(want), `${f.path}${a.name ? `:${a.name}` : ''}`);
        n++;
      }
    }
    assert.ok(n > 0);
  });
}
