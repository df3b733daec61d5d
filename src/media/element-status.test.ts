import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeElementStatus } from '../scsi/smc.ts';
import { DecodeError, FerryError } from '../util/errors.ts';

// SMC-3 6.10 READ ELEMENT STATUS data built by hand: header, pages, descriptors with and
// without volume tags, a drive's device identifier, exceptions, and data cut short.

interface Desc {
  address: number;
  flags?: number;
  asc?: number;
  ascq?: number;
  source?: number;
  tag?: string;
  id?: { codeSet: number; type: number; assoc: number; bytes: number[] };
}

function descriptor(d: Desc, len: number, pvoltag: boolean, dvcid: boolean): number[] {
  const b = new Array<number>(len).fill(0);
  b[0] = d.address >> 8;
  b[1] = d.address & 0xff;
  b[2] = d.flags ?? 0;
  b[4] = d.asc ?? 0;
  b[5] = d.ascq ?? 0;
  if (d.source !== undefined) {
    b[9] = 0x80;
    b[10] = d.source >> 8;
    b[11] = d.source & 0xff;
  }
  let at = 12;
  if (pvoltag) {
    const tag = (d.tag ?? '').padEnd(32, ' ');
    for (let i = 0; i < 32; i++) b[at + i] = tag.charCodeAt(i);
    at += 36;
  }
  if (dvcid && d.id) {
    b[at] = d.id.codeSet;
    b[at + 1] = (d.id.assoc << 4) | d.id.type;
    b[at + 3] = d.id.bytes.length;
    d.id.bytes.forEach((v, i) => (b[at + 4 + i] = v));
  }
  return b;
}

const u24 = (n: number): number[] => [n >> 16, (n >> 8) & 0xff, n & 0xff];

function page(type: number, descs: Desc[], opts: { pvoltag: boolean; dvcidLen?: number }): number[] {
  const len = 12 + (opts.pvoltag ? 36 : 0) + (opts.dvcidLen !== undefined ? 4 + opts.dvcidLen : 0);
  const body = descs.flatMap((d) => descriptor(d, len, opts.pvoltag, opts.dvcidLen !== undefined));
  return [type, opts.pvoltag ? 0x80 : 0, len >> 8, len & 0xff, 0, ...u24(body.length), ...body];
}

function report(pages: number[][], first: number, count: number): Uint8Array {
  const body = pages.flat();
  return Uint8Array.from([first >> 8, first & 0xff, count >> 8, count & 0xff, 0, ...u24(body.length), ...body]);
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

const T10_ID = { codeSet: 2, type: 1, assoc: 0, bytes: ascii('FERRY   TAPE            ABC123') };

const SAMPLE = report(
  [
    page(1, [{ address: 0 }], { pvoltag: true }),
    page(4, [{ address: 0x100, flags: 0x09, source: 0x1001, tag: 'FER002L8', id: T10_ID }], {
      pvoltag: true,
      dvcidLen: 32,
    }),
    page(
      2,
      [
        { address: 0x1000, flags: 0x09, tag: 'FER001L8 ' },
        { address: 0x1001, flags: 0x08 },
        { address: 0x1002, flags: 0x0c, asc: 0x30, ascq: 0x03 },
      ],
      { pvoltag: true },
    ),
  ],
  0,
  5,
);

test('decodeElementStatus: pages, volume tags, DVCID, SVALID, EXCEPT', () => {
  const d = decodeElementStatus(SAMPLE);
  assert.equal(d.truncated, false);
  assert.equal(d.bytesAvailable, SAMPLE.length);
  assert.equal(d.elementsAvailable, 5);
  assert.deepEqual(
    d.elements.map((e) => [e.type, e.address, e.full, e.access, e.barcode, e.sourceAddress]),
    [
      ['transport', 0, false, false, undefined, undefined],
      ['drive', 0x100, true, true, 'FER002L8', 0x1001],
      ['slot', 0x1000, true, true, 'FER001L8', undefined],
      ['slot', 0x1001, false, true, undefined, undefined],
      ['slot', 0x1002, false, true, undefined, undefined],
    ],
  );
  const drive = d.elements[1];
  const id = drive.designator;
  assert.deepEqual(id && { ...id, designator: new TextDecoder().decode(id.designator) }, {
    codeSet: 2,
    designatorType: 1,
    association: 0,
    designator: 'FERRY   TAPE            ABC123',
  });
  assert.deepEqual(d.elements[4].exception, { asc: 0x30, ascq: 0x03 });
  assert.equal(d.elements[3].exception, undefined);
});

test('decodeElementStatus: without PVOLTAG the drive identifier follows byte 11', () => {
  const naa = [0x60, 1, 2, 3, 4, 5, 6, 7];
  const id = { codeSet: 1, type: 3, assoc: 0, bytes: naa };
  const data = report([page(4, [{ address: 0x101, flags: 0x08, id }], { pvoltag: false, dvcidLen: 8 })], 0x101, 1);
  const [e] = decodeElementStatus(data).elements;
  assert.equal(e.barcode, undefined);
  assert.equal(e.full, false);
  assert.deepEqual(e.designator, { codeSet: 1, designatorType: 3, association: 0, designator: Uint8Array.from(naa) });
  // A drive page without DVCID: no designator.
  const plain = decodeElementStatus(report([page(4, [{ address: 0x101 }], { pvoltag: false })], 0x101, 1));
  assert.equal(plain.elements[0].designator, undefined);
});

test('decodeElementStatus: data cut by the allocation length gives the whole descriptors and truncated', () => {
  // Cut inside the third slot descriptor, then inside a page header, then inside the header.
  const slotPageStart = SAMPLE.length - 3 * 48 - 8;
  for (const [cut, count] of [
    [SAMPLE.length - 10, 4],
    [slotPageStart + 8 + 48 + 5, 3],
    [slotPageStart + 4, 2],
    [8, 0],
  ] as const) {
    const d = decodeElementStatus(SAMPLE.subarray(0, cut));
    assert.equal(d.truncated, true, `cut at ${cut}`);
    assert.equal(d.elements.length, count, `cut at ${cut}`);
    assert.equal(d.bytesAvailable, SAMPLE.length);
  }
  assert.throws(() => decodeElementStatus(SAMPLE.subarray(0, 7)), DecodeError);
});

test('decodeElementStatus: contradictory lengths and unknown element types are DecodeErrors', () => {
  const bad = Uint8Array.from(SAMPLE);
  bad[8] = 7; // element type code 7
  assert.throws(() => decodeElementStatus(bad), /element type code 7/);
  const short = Uint8Array.from(SAMPLE);
  short[8 + 2] = 0;
  short[8 + 3] = 11; // descriptor length below 12 + 36
  assert.throws(() => decodeElementStatus(short), DecodeError);
  const over = Uint8Array.from(SAMPLE);
  over[8 + 5] = 0x7f; // page byte count beyond the report
  assert.throws(() => decodeElementStatus(over), /overrun/);
});

test('decodeElementStatus: junk either decodes or throws a FerryError, never anything else', () => {
  const isFerry = (e: unknown): boolean => e instanceof FerryError && typeof e.code === 'string';
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (junk) => {
      try {
        decodeElementStatus(junk);
      } catch (e) {
        assert.ok(isFerry(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
  // Mutations of real data reach deeper than random bytes.
  const edits = fc.array(fc.tuple(fc.nat(SAMPLE.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(edits, fc.nat(SAMPLE.length), (edits, cut) => {
      const b = Uint8Array.from(SAMPLE);
      for (const [at, v] of edits) b[at] = v;
      try {
        const d = decodeElementStatus(b.subarray(0, cut));
        for (const e of d.elements) assert.ok(['transport', 'slot', 'ie', 'drive'].includes(e.type));
      } catch (e) {
        assert.ok(isFerry(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
