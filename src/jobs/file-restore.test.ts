import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inside } from './file-restore.ts';

test('a file restore writes only under --out: names that lead outside are refused', () => {
  assert.equal(inside('/srv/out', '/docs/a.txt'), '/srv/out/docs/a.txt');
  assert.equal(inside('/srv/out', '/ads:big'), '/srv/out/ads:big');
  for (const bad of ['/..', '/docs/../../etc/passwd', '/a:../../x', '/./a']) {
    assert.throws(() => inside('/srv/out', bad), /would lead outside \/srv\/out/, bad);
  }
});
