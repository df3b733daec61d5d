import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDemoSize, MAX_DEMO_BYTES, TAPE_RECORD_BYTES } from './demo.ts';

test('demo sizes: whole tape records, at most one list of 16 MiB segments', () => {
  checkDemoSize(TAPE_RECORD_BYTES);
  checkDemoSize(MAX_DEMO_BYTES);
  for (const bad of [0, -TAPE_RECORD_BYTES, TAPE_RECORD_BYTES + 512, MAX_DEMO_BYTES + TAPE_RECORD_BYTES, 1.5]) {
    assert.throws(() => checkDemoSize(bad), (e: Error & { code?: string }) => e.code === 'ERR_USAGE', String(bad));
  }
});
