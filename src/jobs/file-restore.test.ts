import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { inside, openNoLink, refuseLinks } from './file-restore.ts';

test('a file restore writes only under --out: names that lead outside are refused', () => {
  assert.equal(inside('/srv/out', '/docs/a.txt'), '/srv/out/docs/a.txt');
  assert.equal(inside('/srv/out', '/ads:big'), '/srv/out/ads:big');
  for (const bad of ['/..', '/docs/../../etc/passwd', '/a:../../x', '/./a']) {
    assert.throws(() => inside('/srv/out', bad), /would lead outside \/srv\/out/, bad);
  }
});

test('a file restore with --force does not write through a symbolic link in the output directory', async () => {
  await inTempDir('ferry-restore-', async (dir) => {
    const out = join(dir, 'out');
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(join(out, 'docs'), { recursive: true });
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'keep.txt'), 'mine');
    await symlink(elsewhere, join(out, 'Users'));
    await symlink(join(elsewhere, 'keep.txt'), join(out, 'docs', 'a.txt'));

    const checked = new Set<string>();
    await assert.rejects(refuseLinks(out, join(out, 'Users', 'bob'), checked), {
      code: 'ERR_RESTORE_SYMLINK',
      message: new RegExp(`^${join(out, 'Users')} is a symbolic link: a restore does not write through links`),
    });
    await refuseLinks(out, join(out, 'docs', 'new', 'deeper'), checked);
    assert.deepEqual([...checked], [join(out, 'docs')], 'a real directory is checked once; new ones are made');
    await assert.rejects(openNoLink(join(out, 'docs', 'a.txt')), { code: 'ERR_RESTORE_SYMLINK' });
    const fh = await openNoLink(join(out, 'docs', 'b.txt'));
    await fh.close();
    assert.equal(await readFile(join(elsewhere, 'keep.txt'), 'utf8'), 'mine', 'the link target is untouched');
    assert.deepEqual((await readdir(elsewhere)).sort(), ['keep.txt']);
  });
});
