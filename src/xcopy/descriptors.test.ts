import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SenseError, SenseKey } from '../scsi/sense.ts';
import {
  DEFAULT_LIMITS,
  decodeXcopyParameterList,
  encodeXcopyParameterList,
  type SegmentInput,
  type XcopyParameterListInput,
} from './descriptors.ts';

const naa = new Uint8Array([0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
const disk = {
  peripheralDeviceType: 0,
  codeSet: 1,
  association: 0,
  designatorType: 3,
  designator: naa,
  pad: false,
  fixed: false,
  blockLength: 512,
};
const tape = { ...disk, peripheralDeviceType: 1, pad: true, fixed: true, blockLength: 65536 };
const header = { listId: 7, str: false, listIdUsage: 0, priority: 0 };

const allSegments: SegmentInput[] = [
  { type: 0x05, cat: true, destination: 1, streamTransferLength: 1, data: new Uint8Array([1, 2, 3, 4, 5]) },
  { type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: 4, blockCount: 300, lba: 2 ** 40 },
  { type: 0x01, cat: true, source: 1, destination: 0, streamTransferLength: 2, blockCount: 65535, lba: 12345 },
  { type: 0x02, cat: false, dc: true, source: 0, destination: 0xffff, blockCount: 9, sourceLba: 1, destinationLba: 2 },
  { type: 0x04, cat: false, destination: 1, streamTransferLength: 3, inlineOffset: 4, byteCount: 8 },
  { type: 0x06, cat: true, source: 1, streamTransferLength: 5, byteCount: 77 },
  { type: 0x07, cat: false, source: 0, tur: true },
  { type: 0x10, cat: false, destination: 1, immed: true, count: 3 },
  { type: 0x11, cat: false, destination: 1, code: 1, count: -2 },
  { type: 0x12, cat: false, destination: 1, objectId: 0xdeadbeef },
];

function input(over: Partial<XcopyParameterListInput> = {}): XcopyParameterListInput {
  return { header, cscds: [disk, tape], segments: allSegments, inline: new Uint8Array(16).fill(0xab), ...over };
}

function senseOf(fn: () => unknown): { key: number; asc: number; ascq: number; field?: number } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SenseError, `expected SenseError, got ${String(e)}`);
    return { key: e.key, asc: e.asc, ascq: e.ascq, field: e.opts.fieldPointer?.field };
  }
  assert.fail('expected a SenseError');
}

test('encode → decode round-trips every supported descriptor', () => {
  const bytes = encodeXcopyParameterList(input());
  const p = decodeXcopyParameterList(bytes);
  assert.deepEqual(p.header, header);
  assert.equal(p.cscds.length, 2);
  assert.deepEqual(
    { ...p.cscds[1], designator: [...p.cscds[1].designator] },
    {
      ...tape,
      designator: [...naa],
      index: 1,
      offset: 48,
      type: 0xe4,
      luIdType: 0,
      relativeInitiatorPort: 0,
    },
  );
  assert.equal(p.segments.length, allSegments.length);
  for (const [i, s] of p.segments.entries()) {
    const { index, offset, ...rest } = s;
    assert.equal(index, i);
    assert.ok(offset >= 16 + 64);
    assert.deepEqual(rest, allSegments[i]);
  }
  assert.deepEqual([...p.inline], new Array(16).fill(0xab));
  // Re-encoding the decoded list gives the same bytes.
  assert.deepEqual(
    encodeXcopyParameterList({ header: p.header, cscds: p.cscds, segments: p.segments, inline: p.inline }),
    bytes,
  );
});

test('embedded data is padded to 4 bytes and its length is the data length', () => {
  const bytes = encodeXcopyParameterList(input({ segments: [allSegments[0]] }));
  const off = 16 + 64;
  assert.equal(bytes[off], 0x05);
  assert.equal((bytes[off + 2] << 8) | bytes[off + 3], 12 + 8); // 16 + 8 padded − 4
  assert.equal((bytes[off + 12] << 8) | bytes[off + 13], 5);
});

test('libiscsi ParamHdr: a list shorter than its header says → 1A/00', () => {
  const bytes = encodeXcopyParameterList(input({ cscds: [disk], segments: [allSegments[3]], inline: undefined }));
  assert.equal(bytes.length, 76);
  for (const pll of [15, 47, 75]) {
    assert.deepEqual(
      senseOf(() => decodeXcopyParameterList(bytes.subarray(0, pll))),
      { key: 5, asc: 0x1a, ascq: 0, field: undefined },
    );
  }
});

test('descriptor list longer than the maximum, or too much inline data → 1A/00', () => {
  const many = Array.from({ length: 17 }, () => disk);
  const segs = Array.from({ length: 300 }, () => allSegments[3]);
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(encodeXcopyParameterList(input({ cscds: many, segments: segs })))),
    {
      key: 5,
      asc: 0x1a,
      ascq: 0,
      field: undefined,
    },
  );
  const inline = new Uint8Array(DEFAULT_LIMITS.maxInlineDataLength + 4);
  assert.equal(senseOf(() => decodeXcopyParameterList(encodeXcopyParameterList(input({ inline })))).asc, 0x1a);
});

test('CSCD walk: unsupported type 26/07 pointing at it, too many 26/06', () => {
  const bytes = encodeXcopyParameterList(input());
  bytes[48] = 0xe0;
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(bytes)),
    { key: 5, asc: 0x26, ascq: 0x07, field: 48 },
  );
  const many = Array.from({ length: 17 }, () => disk);
  assert.deepEqual(
    senseOf(() =>
      decodeXcopyParameterList(encodeXcopyParameterList(input({ cscds: many, segments: [allSegments[3]] }))),
    ),
    {
      key: 5,
      asc: 0x26,
      ascq: 0x06,
      field: 16 + 16 * 32,
    },
  );
});

test('segment walk: unknown (incl. 03h) 26/09, wrong length 26/00, too many 26/08', () => {
  const one = encodeXcopyParameterList(input({ segments: [allSegments[3]] }));
  const s = 16 + 64;
  for (const t of [0x03, 0x08, 0x0b, 0x14, 0xbe]) {
    const b = one.slice();
    b[s] = t;
    assert.deepEqual(
      senseOf(() => decodeXcopyParameterList(b)),
      { key: 5, asc: 0x26, ascq: 0x09, field: s },
    );
  }
  const b = one.slice();
  b[s + 3] = 0x14; // 02h needs 18h
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(b)),
    { key: 5, asc: 0x26, ascq: 0x00, field: s + 2 },
  );
  const segs = Array.from({ length: 257 }, () => allSegments[3]);
  const e = senseOf(() => decodeXcopyParameterList(encodeXcopyParameterList(input({ cscds: [disk], segments: segs }))));
  assert.deepEqual([e.key, e.asc, e.ascq], [5, 0x26, 0x08]);
});

test('LIST ID USAGE: 01b reserved and 11b with a list id → 26/00', () => {
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(encodeXcopyParameterList(input({ header: { ...header, listIdUsage: 1 } })))),
    {
      key: 5,
      asc: 0x26,
      ascq: 0,
      field: 1,
    },
  );
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(encodeXcopyParameterList(input({ header: { ...header, listIdUsage: 3 } })))),
    {
      key: 5,
      asc: 0x26,
      ascq: 0,
      field: 0,
    },
  );
  const ok = decodeXcopyParameterList(
    encodeXcopyParameterList(input({ header: { ...header, listId: 0, listIdUsage: 3 } })),
  );
  assert.equal(ok.header.listIdUsage, 3);
});

test('CSCD fields: designator > 20 bytes, FIXED without a block length, reserved PDT → 26/00', () => {
  const bytes = encodeXcopyParameterList(input());
  const b1 = bytes.slice();
  b1[16 + 7] = 21;
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(b1)),
    { key: 5, asc: 0x26, ascq: 0, field: 23 },
  );
  const b2 = encodeXcopyParameterList(input({ cscds: [disk, { ...tape, blockLength: 0 }] }));
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(b2)),
    { key: 5, asc: 0x26, ascq: 0, field: 48 + 29 },
  );
  const b3 = encodeXcopyParameterList(input({ cscds: [disk, { ...tape, fixed: false }] }));
  assert.equal(senseOf(() => decodeXcopyParameterList(b3)).asc, 0x26);
  const b4 = bytes.slice();
  b4[17] = 0x08; // PDT 08h (changer) has no CSCD parameters
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(b4)),
    { key: 5, asc: 0x26, ascq: 0, field: 17 },
  );
});

test('LU ID TYPE 10b and the obsolete NUL bit are ignored in E4h (libiscsi ValidTgtDescr)', () => {
  const bytes = encodeXcopyParameterList(input());
  bytes[17] |= 0x80 | 0x20;
  const p = decodeXcopyParameterList(bytes);
  assert.equal(p.cscds[0].luIdType, 2);
  assert.equal(p.cscds[0].peripheralDeviceType, 0);
});

test('embedded byte count larger than the descriptor, inline offset not a multiple of 4 → 26/00', () => {
  const b = encodeXcopyParameterList(input({ segments: [allSegments[0]] }));
  b[16 + 64 + 13] = 9; // 9 > 8 bytes of room
  assert.deepEqual(
    senseOf(() => decodeXcopyParameterList(b)),
    { key: 5, asc: 0x26, ascq: 0, field: 16 + 64 + 12 },
  );
  const b2 = encodeXcopyParameterList(input({ segments: [{ ...allSegments[4], inlineOffset: 2 } as SegmentInput] }));
  assert.equal(senseOf(() => decodeXcopyParameterList(b2)).asc, 0x26);
  assert.equal(SenseKey.ILLEGAL_REQUEST, 5);
});
