import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeLongPosition,
  decodeShortPosition,
  encodeExtendedPosition,
  encodeLongPosition,
  encodeShortPosition,
} from './read-position.ts';

test(
  'READ POSITION data: short and long forms decode as encoded; past 32 bits the short form says so; LOLU and a cut ' +
    'reply read as unknown',
  () => {
    const f = { bop: false, eop: true, bpew: true };
    assert.deepEqual(decodeShortPosition(encodeShortPosition(f, 1234)), {
      ...f,
      unknown: false,
      overflow: false,
      blockId: 1234,
    });
    assert.deepEqual(decodeShortPosition(encodeShortPosition({ bop: true, eop: false, bpew: false }, 0)), {
      bop: true,
      eop: false,
      bpew: false,
      unknown: false,
      overflow: false,
      blockId: 0,
    });
    const far = 2 ** 33 + 5;
    const short = decodeShortPosition(encodeShortPosition(f, far));
    assert.deepEqual([short.overflow, short.blockId], [true, 0xffffffff], 'PERR: the long form has it');
    assert.deepEqual(decodeLongPosition(encodeLongPosition(f, far, 7)), { ...f, blockId: far, fileNumber: 7 });
    const ext = encodeExtendedPosition(f, 99);
    assert.deepEqual([ext.length, ext[3], ext[15]], [32, 0x1c, 99]);
    const lolu = encodeShortPosition(f, 5);
    lolu[0] |= 0x04; // tgtd's tape LUN: position unknown
    assert.equal(decodeShortPosition(lolu).unknown, true);
    assert.equal(decodeShortPosition(new Uint8Array(4)).unknown, true);
  },
);
