import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDemoSize, decodeCopyStatus, MAX_DEMO_BYTES, TAPE_RECORD_BYTES } from './demo.ts';

test('COPY STATUS (SPC-4 6.18.2): status, segments processed, transfer count scaled by its units', () => {
  // AVAILABLE DATA 8; status 01h (completed, good); 5 segments; units 02h (MiB); count 3.
  const d = decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0x01, 0x00, 0x05, 0x02, 0, 0, 0, 3));
  assert.deepEqual(d, { status: 1, segmentsProcessed: 5, transferBytes: 3 << 20 });
  assert.equal(decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0x80, 0x01, 0x00, 0x00, 0, 1, 0, 0)).status, 0, 'HDD bit is not part of the status');
  assert.equal(decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0)).transferBytes, 65536);
  assert.throws(() => decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0, 1)), /units 7/);
  assert.throws(() => decodeCopyStatus(new Uint8Array(8)));
});

test('demo sizes: whole tape records, at most one list of 16 MiB segments', () => {
  checkDemoSize(TAPE_RECORD_BYTES);
  checkDemoSize(MAX_DEMO_BYTES);
  for (const bad of [0, -TAPE_RECORD_BYTES, TAPE_RECORD_BYTES + 512, MAX_DEMO_BYTES + TAPE_RECORD_BYTES, 1.5]) {
    assert.throws(() => checkDemoSize(bad), (e: Error & { code?: string }) => e.code === 'ERR_USAGE', String(bad));
  }
});
