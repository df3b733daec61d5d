import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { FORMAT_VERSION, MAGIC, MAGICS, magicHex } from './magic.ts';
import { decodeRecord, encodeHeaderAt, encodeRecord, PREFIX_BYTES, recordLength } from './codec.ts';
import { TapeFormatError, type TapeFormatProblem } from './errors.ts';
import type { TapeRecord } from './records.ts';
import {
  arbHeader,
  arbLabel,
  arbTrailer,
  packExtents,
  rawRecord,
  sampleHeader,
  sampleLabel,
  sampleTrailer,
} from './testing.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fails = (problem: TapeFormatProblem, field?: string) => (e: unknown) => {
  assert.ok(e instanceof TapeFormatError, `expected TapeFormatError, got ${String(e)}`);
  assert.equal(e.code, 'ERR_TAPE_FORMAT');
  assert.equal(e.problem, problem, e.message);
  if (field !== undefined) assert.equal(e.field, field, e.message);
  return true;
};

test('MAGICS: each magic is sha256(name)[0..8], one per kind, and MAGIC writes the current version', () => {
  const kinds = new Set<string>();
  for (const [h, info] of Object.entries(MAGICS)) {
    assert.equal(h, createHash('sha256').update(info.name).digest('hex').slice(0, 16), info.name);
    if (info.version === FORMAT_VERSION) kinds.add(info.kind);
  }
  assert.deepEqual([...kinds].sort(), ['header', 'label', 'trailer']);
  for (const [kind, m] of Object.entries(MAGIC)) {
    assert.deepEqual(MAGICS[magicHex(m)], { name: MAGICS[magicHex(m)].name, kind, version: FORMAT_VERSION });
  }
});

test('prefix byte fixture: a volume label in 512-byte blocks (docs "Record prefix")', () => {
  const json =
    '{"kind":"label","cartridgeUuid":"0f8e4a52-3c1d-4b6e-9a7f-2d5c8b1e6a30","barcode":"FER001L9",' +
    '"pool":"weekly","formatVersion":1,"createdAt":"2024-05-01T12:00:00.000Z","tapeBlockBytes":512}';
  const bytes = encodeRecord(sampleLabel(512), 512);
  assert.equal(bytes.length, 512);
  // magic sha256("Ferry volume label v1")[0..8] | version 1 | prefix 24 | JSON 186 | CRC32C(JSON) | CRC32C(0..19)
  // (CRCs checked independently with a bitwise CRC32C in Python.)
  assert.equal(hex(bytes.subarray(0, 24)), 'aec4e0c8e677fdd5' + '0001' + '0018' + '000000ba' + '834aeaa1' + '12b9a2df');
  assert.equal(json.length, 0xba);
  assert.equal(new TextDecoder().decode(bytes.subarray(24, 24 + 186)), json);
  assert.ok(
    bytes.subarray(24 + 186).every((b) => b === 0),
    'zero padding',
  );
  assert.deepEqual(recordLength(bytes).totalBytes, 210);
  assert.deepEqual(decodeRecord(bytes), sampleLabel(512));
});

test('round trip: label, header, trailer, in small and default blocks', () => {
  for (const b of [512, 262144]) {
    const records: TapeRecord[] = [
      sampleLabel(b),
      sampleHeader({ tapeBlockBytes: b, reason: 'scheduled' }),
      sampleHeader({
        tapeBlockBytes: b,
        sequence: 2,
        level: 'incremental',
        baseSetId: 41,
        baseSetUuid: '00000000-0000-4000-8000-000000000041',
        piece: { streamStart: 4096, dataBlockId: 3 },
      }),
      sampleTrailer(),
      sampleTrailer({ sequence: 2, complete: false, piece: { streamStart: 4096, streamEnd: 4096, dataBlocks: 0 } }),
      sampleTrailer({ digests: { sha256: null } }),
    ];
    for (const r of records) {
      const bytes = encodeRecord(r, b);
      assert.equal(bytes.length % b, 0);
      assert.deepEqual(decodeRecord(bytes), r);
    }
  }
});

test('a header with many extents spans blocks; recordLength reads its length from the first block', () => {
  const runs = Array.from({ length: 400 }, (_, i): [number, number] => [i * 10, 5]);
  const h = sampleHeader({ extents: packExtents(runs, 512), volumeBlocks: 4000 });
  const bytes = encodeRecord(h, 512);
  const blocks = bytes.length / 512;
  assert.ok(blocks > 20, `${blocks} blocks`);
  const len = recordLength(bytes.subarray(0, 512));
  assert.equal(len.kind, 'header');
  assert.equal(len.blocks(512), blocks);
  assert.equal(len.blocks(262144), 1);
  assert.ok(len.totalBytes > (blocks - 1) * 512 && len.totalBytes <= blocks * 512);
  assert.deepEqual(decodeRecord(bytes), h);
  assert.throws(() => decodeRecord(bytes.subarray(0, len.totalBytes - 1)), fails('truncated'));
});

test('encodeHeaderAt puts the data right after the header', () => {
  const runs = Array.from({ length: 40 }, (_, i): [number, number] => [i * 10, 5]);
  const h = sampleHeader({ extents: packExtents(runs, 512), volumeBlocks: 4000 });
  const { header, bytes } = encodeHeaderAt(h, 9_999_990, 512);
  assert.equal(header.piece.dataBlockId, 9_999_990 + bytes.length / 512);
  assert.deepEqual(decodeRecord(bytes), header);
});

test('corruption: each kind of damage is named', () => {
  const good = encodeRecord(sampleHeader(), 512);
  const flip = (at: number) => {
    const b = good.slice();
    b[at] ^= 0x01;
    return b;
  };
  assert.throws(() => decodeRecord(flip(0)), fails('bad-magic'));
  assert.throws(() => decodeRecord(flip(13)), fails('bad-prefix-crc')); // JSON length
  assert.throws(() => decodeRecord(flip(21)), fails('bad-prefix-crc')); // the CRC itself
  assert.throws(() => decodeRecord(flip(PREFIX_BYTES + 30)), fails('bad-crc'));
  assert.throws(() => decodeRecord(flip(17)), fails('bad-prefix-crc')); // stored JSON CRC is under the prefix CRC
  assert.throws(() => decodeRecord(good.subarray(0, 23)), fails('truncated'));
  assert.throws(() => decodeRecord(good.subarray(0, 100)), fails('truncated'));
  assert.ok(decodeRecord(flip(good.length - 1)), 'padding is not checked');
});

test('hand-built records: version, prefix length, JSON, kind and field errors', () => {
  const header = JSON.stringify(sampleHeader());
  assert.deepEqual(decodeRecord(rawRecord(MAGIC.header, header)), sampleHeader());
  assert.throws(() => decodeRecord(rawRecord(MAGIC.header, header, { version: 2 })), fails('unknown-version'));
  assert.throws(() => decodeRecord(rawRecord(MAGIC.header, header, { prefixBytes: 32 })), fails('bad-prefix'));
  assert.throws(() => decodeRecord(rawRecord(MAGIC.header, '{"kind":"header",')), fails('bad-json'));
  assert.throws(() => decodeRecord(rawRecord(MAGIC.header, Uint8Array.of(0x22, 0xff, 0x22))), fails('bad-json'));
  assert.throws(() => decodeRecord(rawRecord(MAGIC.label, header)), fails('kind-mismatch', 'kind'));
  assert.throws(() => decodeRecord(rawRecord(MAGIC.trailer, '[1,2]')), fails('kind-mismatch'));
  const h = sampleHeader();
  h.extents[1].streamOffset += 512;
  const badOffset = rawRecord(MAGIC.header, JSON.stringify(h));
  assert.throws(() => decodeRecord(badOffset), fails('bad-field', 'extents.1.streamOffset'));
  const noTime = { ...sampleTrailer(), endedAt: 'yesterday' };
  assert.throws(() => decodeRecord(rawRecord(MAGIC.trailer, JSON.stringify(noTime))), fails('bad-field', 'endedAt'));
  // Unknown members are ignored (docs "Record bodies").
  const extra = { ...sampleLabel(), future: 1 };
  assert.deepEqual(decodeRecord(rawRecord(MAGIC.label, JSON.stringify(extra))), sampleLabel());
});

test('encodeRecord refuses what decodeRecord would refuse', () => {
  assert.throws(() => encodeRecord(sampleHeader({ level: 'incremental' }), 512), fails('bad-field', 'baseSetId'));
  assert.throws(
    () => encodeRecord(sampleHeader({ sequence: 1, piece: { streamStart: 512, dataBlockId: 3 } }), 512),
    fails('bad-field', 'piece.streamStart'),
  );
  assert.throws(
    () => encodeRecord(sampleHeader({ sequence: 2, piece: { streamStart: 100, dataBlockId: 3 } }), 512),
    fails('bad-field', 'piece.streamStart'),
  );
  assert.throws(() => encodeRecord(sampleHeader({ volumeBlocks: 200 }), 512), fails('bad-field', 'extents.1.blocks'));
  assert.throws(() => encodeRecord(sampleTrailer({ streamBytes: 9999 }), 512), fails('bad-field', 'complete'));
  assert.throws(() => encodeRecord(sampleLabel(512), 1024), fails('bad-block-size'));
  assert.throws(() => encodeRecord(sampleTrailer(), 1000), fails('bad-block-size'));
  assert.throws(() => encodeRecord(sampleTrailer(), 32 * 1024 * 1024), fails('bad-block-size'));
  assert.throws(() => encodeRecord({ kind: 'index' } as unknown as TapeRecord, 512), fails('bad-field', 'kind'));
});

const onlyTapeFormatErrors = (bytes: Uint8Array) => {
  try {
    decodeRecord(bytes);
  } catch (e) {
    if (!(e instanceof TapeFormatError)) throw e;
  }
};

test('property: decodeRecord throws nothing but TapeFormatError on arbitrary bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), onlyTapeFormatErrors), { numRuns: 2000 });
  // Arbitrary bytes after a valid magic, and arbitrary JSON under a valid prefix (reaches the schema).
  const magic = fc.constantFrom(MAGIC.label, MAGIC.header, MAGIC.trailer);
  fc.assert(
    fc.property(magic, fc.uint8Array({ maxLength: 200 }), (m, rest) => {
      const b = new Uint8Array(8 + rest.length);
      b.set(m);
      b.set(rest, 8);
      onlyTapeFormatErrors(b);
    }),
  );
  fc.assert(
    fc.property(magic, fc.json(), (m, j) => onlyTapeFormatErrors(rawRecord(m, j))),
    { numRuns: 1000 },
  );
  const kinds = fc.constantFrom('label', 'header', 'trailer');
  fc.assert(
    fc.property(magic, kinds, fc.dictionary(fc.string(), fc.jsonValue()), (m, kind, o) =>
      onlyTapeFormatErrors(rawRecord(m, JSON.stringify({ ...o, kind }))),
    ),
    { numRuns: 1000 },
  );
});

test('property: corrupted valid records decode to the same record or throw TapeFormatError', () => {
  const arbRecord = fc.oneof(arbLabel, arbHeader, arbTrailer);
  fc.assert(
    fc.property(
      arbRecord,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      (r, flips, cut) => {
        const bytes = encodeRecord(r, blockBytesOf(r));
        const end = recordLength(bytes).totalBytes;
        for (const [at, x] of flips) bytes[at % end] ^= x;
        for (const b of [bytes, bytes.subarray(0, cut % (end + 1))]) {
          let back: TapeRecord;
          try {
            back = decodeRecord(b);
          } catch (e) {
            if (e instanceof TapeFormatError) continue;
            throw e;
          }
          assert.deepEqual(back, r, 'damage got through (or flips cancelled out)');
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('property: arbitrary labels, headers and trailers round-trip', () => {
  for (const arb of [arbLabel, arbHeader, arbTrailer] as fc.Arbitrary<TapeRecord>[]) {
    fc.assert(
      fc.property(arb, (r) => assert.deepEqual(decodeRecord(encodeRecord(r, blockBytesOf(r))), r)),
      { numRuns: 200 },
    );
  }
});

/** Labels and headers name their block size; trailers go in 512-byte blocks. */
const blockBytesOf = (r: TapeRecord) => ('tapeBlockBytes' in r ? r.tapeBlockBytes : 512);
