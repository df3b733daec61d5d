import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBlockDescriptor, decodeModeParameterHeader, encodeModeParameters } from './mode-parameters.ts';

// The wire bytes are spelled out (SPC-4 7.5.5), so a codec that agrees only with itself fails.

test('MODE SENSE(6) data: header, a general block descriptor (tape: density, block length) and pages', () => {
  const d = encodeModeParameters({
    size: 6,
    deviceSpecific: 0x90,
    descriptor: { blockCount: 0x5e * 0x1000000, blockLength: 512 },
    pages: Uint8Array.of(0x10, 1, 0xaa),
  });
  assert.deepEqual([...d], [14, 0, 0x90, 8, 0x5e, 0, 0, 0, 0, 0, 0x02, 0x00, 0x10, 1, 0xaa]);
  const h = decodeModeParameterHeader(d, 6)!;
  assert.deepEqual(h, { headerLength: 4, deviceSpecific: 0x90, longLba: false, blockDescriptorLength: 8 });
  assert.deepEqual(decodeBlockDescriptor(d, h), { density: 0x5e, blockCount: 0x5e000000, blockLength: 512 });
});

test('MODE SENSE(10) data with a long LBA descriptor, and a MODE SELECT list with MODE DATA LENGTH reserved', () => {
  const d = encodeModeParameters({
    size: 10,
    deviceSpecific: 0,
    descriptor: { blockCount: 2 ** 33, blockLength: 4096 },
    longLba: true,
  });
  assert.deepEqual([...d], [0, 22, 0, 0, 1, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
  const h = decodeModeParameterHeader(d, 10)!;
  assert.deepEqual(h, { headerLength: 8, deviceSpecific: 0, longLba: true, blockDescriptorLength: 16 });
  assert.deepEqual(decodeBlockDescriptor(d, h), { density: 0, blockCount: 2 ** 33, blockLength: 4096 });
  const sel = encodeModeParameters({
    size: 6,
    select: true,
    deviceSpecific: 0x10,
    descriptor: { blockCount: 0, blockLength: 65536 },
  });
  assert.deepEqual([...sel], [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
});

test('short data: no header, or no whole descriptor', () => {
  assert.equal(decodeModeParameterHeader(Uint8Array.of(3, 0, 0), 6), undefined);
  const h = decodeModeParameterHeader(Uint8Array.of(11, 0, 0, 8, 0, 0, 0), 6)!;
  assert.equal(decodeBlockDescriptor(Uint8Array.of(11, 0, 0, 8, 0, 0, 0), h), undefined);
  assert.equal(
    decodeBlockDescriptor(Uint8Array.of(3, 0, 0x80, 0), decodeModeParameterHeader(Uint8Array.of(3, 0, 0x80, 0), 6)!),
    undefined,
  );
});
