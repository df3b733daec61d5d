import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SenseError, SenseKey, Asc, decodeSense } from '../scsi/sense.ts';
import { DEFAULT_LIMITS } from './descriptors.ts';
import {
  decodeCopyStatus,
  decodeFailedSegmentDetails,
  decodeOperatingParameters,
  encodeCopyStatus,
  encodeFailedSegmentDetails,
  encodeOperatingParameters,
} from './copy-results.ts';

test('COPY STATUS (SPC-4 6.18.2): status, segments processed, transfer count scaled by its units', () => {
  // AVAILABLE DATA 8; status 01h (completed, good); 5 segments; units 02h (MiB); count 3.
  const d = decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0x01, 0x00, 0x05, 0x02, 0, 0, 0, 3));
  assert.deepEqual(d, { status: 1, heldDataDiscarded: false, segmentsProcessed: 5, transferBytes: 3 << 20 });
  const hdd = decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0x80, 0x01, 0x00, 0x00, 0, 1, 0, 0));
  assert.deepEqual([hdd.status, hdd.heldDataDiscarded], [0, true], 'HDD bit is not part of the status');
  assert.equal(decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0)).transferBytes, 65536);
  assert.throws(() => decodeCopyStatus(Uint8Array.of(0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0, 1)), /UNITS 7/);
  assert.throws(() => decodeCopyStatus(new Uint8Array(8)));
});

test('COPY STATUS round trip: counts up to 2^53 keep their value to within the units chosen', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('running', 'done', 'failed') as fc.Arbitrary<'running' | 'done' | 'failed'>,
      fc.integer({ min: 0, max: 0xffff }),
      fc.maxSafeNat(),
      (state, segs, bytes) => {
        const d = decodeCopyStatus(encodeCopyStatus({ state, segmentsProcessed: segs, bytesWritten: bytes }));
        assert.equal(d.status, { running: 0, done: 1, failed: 2 }[state]);
        assert.equal(d.segmentsProcessed, segs);
        assert.ok(d.transferBytes <= bytes && bytes - d.transferBytes < Math.max(1, d.transferBytes / 2 ** 31) * 1024);
      },
    ),
  );
});

test('OPERATING PARAMETERS round trip', () => {
  const p = decodeOperatingParameters(encodeOperatingParameters(DEFAULT_LIMITS, [0x00, 0x01, 0xe4]));
  const { supportsNoListId, implementedDescriptorCodes, ...limits } = p;
  assert.deepEqual(limits, DEFAULT_LIMITS);
  assert.deepEqual([supportsNoListId, implementedDescriptorCodes], [true, [0x00, 0x01, 0xe4]]);
});

test('FAILED SEGMENT DETAILS: nothing held → no status; a failure → CHECK CONDITION and its sense', () => {
  assert.deepEqual(decodeFailedSegmentDetails(encodeFailedSegmentDetails(undefined, 'fixed')), {
    rawSense: new Uint8Array(0),
  });
  for (const format of ['fixed', 'descriptor'] as const) {
    const d = decodeFailedSegmentDetails(
      encodeFailedSegmentDetails(new SenseError(SenseKey.COPY_ABORTED, Asc.UNREACHABLE_COPY_TARGET), format),
    );
    assert.equal(d.commandStatus, 0x02);
    assert.deepEqual([d.sense?.key, d.sense?.asc, d.sense?.ascq], [0x0a, 0x08, 0x04]);
    assert.deepEqual(d.sense, decodeSense(d.rawSense));
  }
  const bytes = encodeFailedSegmentDetails(new SenseError(SenseKey.COPY_ABORTED, Asc.UNREACHABLE_COPY_TARGET), 'fixed');
  assert.throws(() => decodeFailedSegmentDetails(bytes.subarray(0, bytes.length - 2)), /truncated/);
});
