import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDemoSize } from './demo.ts';

test('demo sizes: whole tape blocks, at least 1 MiB, at most 8 GiB', () => {
  checkDemoSize(1 << 20);
  checkDemoSize(64 << 20);
  for (const bad of [0, -(1 << 20), 512 * 1024, (1 << 20) + 512, 9 * 1024 ** 3, 1.5]) {
    assert.throws(
      () => checkDemoSize(bad),
      (e: Error & { code?: string }) => e.code === 'ERR_USAGE',
      String(bad),
    );
  }
});
