// Test support only: sample records, a raw record builder and fast-check arbitraries.
import fc from 'fast-check';
import { ByteWriter } from '../util/byte-writer.ts';
import { crc32c } from '../util/crc32c.ts';
import type { Extent, SetHeader, SetTrailer, VolumeLabel } from './records.ts';

export const sampleLabel = (tapeBlockBytes = 512): VolumeLabel => ({
  kind: 'label',
  cartridgeUuid: '0f8e4a52-3c1d-4b6e-9a7f-2d5c8b1e6a30',
  barcode: 'FER001L9',
  pool: 'weekly',
  formatVersion: 1,
  createdAt: '2024-05-01T12:00:00.000Z',
  tapeBlockBytes,
});

/** Extents packed contiguously from stream offset 0. */
export function packExtents(runs: Array<[lba: number, blocks: number]>, diskBlockBytes: number): Extent[] {
  let streamOffset = 0;
  return runs.map(([lba, blocks]) => {
    const e = { lba, blocks, streamOffset };
    streamOffset += blocks * diskBlockBytes;
    return e;
  });
}

export const sampleHeader = (over: Partial<SetHeader> = {}): SetHeader => ({
  kind: 'header',
  setId: 42,
  setUuid: '6a1f0c3e-8b2d-4e5f-9a6b-7c8d9e0f1a2b',
  jobId: 7,
  sequence: 1,
  volume: { name: 'ws-017 C:', designator: '6001405f3e2a1b9c0d4e5f6a7b8c9d0e' },
  snapshot: { id: 'snap-0042', takenAt: '2024-05-01T12:01:00.000Z' },
  mode: 'used',
  level: 'full',
  baseSetId: null,
  baseSetUuid: null,
  diskBlockBytes: 512,
  volumeBlocks: 1 << 20,
  tapeBlockBytes: 512,
  extents: packExtents(
    [
      [100, 3],
      [500, 6],
      [20, 2],
    ],
    512,
  ),
  piece: { streamStart: 0, dataBlockId: 3 },
  startedAt: '2024-05-01T12:01:05.000Z',
  ...over,
});

export const sampleTrailer = (over: Partial<SetTrailer> = {}): SetTrailer => ({
  kind: 'trailer',
  setId: 42,
  setUuid: '6a1f0c3e-8b2d-4e5f-9a6b-7c8d9e0f1a2b',
  sequence: 1,
  piece: { streamStart: 0, streamEnd: 5632, dataBlocks: 11 },
  streamBytes: 5632,
  complete: true,
  endedAt: '2024-05-01T12:03:00.000Z',
  digests: { sha256: 'ab'.repeat(32) },
  ...over,
});

/**
 * A record built by hand from the documented layout (docs/on-tape-format.md "Record prefix"),
 * independent of encodeRecord, so tests can make records the encoder refuses to.
 */
export function rawRecord(
  magic: Uint8Array,
  body: string | Uint8Array,
  opts: { version?: number; prefixBytes?: number; tapeBlockBytes?: number } = {},
): Uint8Array {
  const json = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const b = opts.tapeBlockBytes ?? 512;
  const out = new Uint8Array(Math.ceil((24 + json.length) / b) * b);
  const w = new ByteWriter(out)
    .bytes(magic)
    .u16(opts.version ?? 1)
    .u16(opts.prefixBytes ?? 24);
  w.u32(json.length).u32(crc32c(json)).u32(0);
  w.setU32(20, crc32c(out.subarray(0, 20)));
  out.set(json, 24);
  return out;
}

// --- fast-check arbitraries for valid records ---

/** fc.record with plain prototypes, so decoded records compare deep-equal. */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;

const iso = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((a) => Buffer.from(a).toString('hex'));
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const anyText = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
export const arbTapeBlockBytes = fc.oneof(
  fc.constantFrom(512, 4096, 262144),
  fc.integer({ min: 1, max: 128 }).map((n) => n * 512),
);

export const arbLabel: fc.Arbitrary<VolumeLabel> = rec({
  kind: fc.constant('label' as const),
  cartridgeUuid: fc.uuid(),
  barcode: fc.string({ unit: printable, minLength: 1, maxLength: 32 }),
  pool: anyText,
  formatVersion: fc.constant(1),
  createdAt: iso,
  tapeBlockBytes: arbTapeBlockBytes,
});

export const arbHeader: fc.Arbitrary<SetHeader> = fc
  .record({
    setId: fc.maxSafeNat(),
    setUuid: fc.uuid(),
    jobId: fc.maxSafeNat(),
    volume: rec({ name: anyText, designator: fc.oneof(hex(8), hex(16)) }),
    snapshot: rec({ id: anyText, takenAt: iso }),
    mode: fc.constantFrom('image' as const, 'used' as const, 'files' as const),
    base: fc.option(fc.tuple(fc.maxSafeNat(), fc.uuid()), { nil: null }),
    diskBlockBytes: fc.constantFrom(512, 4096),
    runs: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 20 })), {
      maxLength: 60,
    }),
    spare: fc.integer({ min: 0, max: 1000 }),
    tapeBlockBytes: arbTapeBlockBytes,
    continuation: fc.option(fc.tuple(fc.integer({ min: 2, max: 50 }), fc.double({ min: 0, max: 1, noNaN: true }))),
    dataBlockId: fc.integer({ min: 0, max: 2 ** 40 }),
    startedAt: iso,
    reason: fc.option(anyText, { nil: undefined }),
  })
  .map((a) => {
    const extents = packExtents(a.runs, a.diskBlockBytes);
    const totalBlocks = a.runs.reduce((n, [, b]) => n + b, 0);
    const volumeBlocks = a.runs.reduce((m, [lba, b]) => Math.max(m, lba + b), 0) + a.spare;
    const [sequence, at] = a.continuation ?? [1, 0];
    const h: SetHeader = {
      kind: 'header',
      setId: a.setId,
      setUuid: a.setUuid,
      jobId: a.jobId,
      sequence,
      volume: a.volume,
      snapshot: a.snapshot,
      mode: a.mode,
      level: a.base ? 'incremental' : 'full',
      baseSetId: a.base ? a.base[0] : null,
      baseSetUuid: a.base ? a.base[1] : null,
      diskBlockBytes: a.diskBlockBytes,
      volumeBlocks,
      tapeBlockBytes: a.tapeBlockBytes,
      extents,
      piece: { streamStart: Math.floor(at * totalBlocks) * a.diskBlockBytes, dataBlockId: a.dataBlockId },
      startedAt: a.startedAt,
    };
    return a.reason === undefined ? h : { ...h, reason: a.reason };
  });

export const arbTrailer: fc.Arbitrary<SetTrailer> = fc
  .record({
    setId: fc.maxSafeNat(),
    setUuid: fc.uuid(),
    sequence: fc.integer({ min: 1, max: 50 }),
    cuts: fc.tuple(fc.nat(), fc.nat(), fc.nat()).map((c) => c.sort((x, y) => x - y)),
    complete: fc.boolean(),
    endedAt: iso,
    sha256: fc.option(hex(32), { nil: null }),
    blockBytes: arbTapeBlockBytes,
  })
  .map((a) => {
    const [s, e, total] = a.cuts;
    const streamStart = a.sequence === 1 ? 0 : s;
    const streamBytes = a.complete ? e : total;
    return {
      kind: 'trailer',
      setId: a.setId,
      setUuid: a.setUuid,
      sequence: a.sequence,
      piece: { streamStart, streamEnd: e, dataBlocks: Math.ceil((e - streamStart) / a.blockBytes) },
      streamBytes,
      complete: a.complete,
      endedAt: a.endedAt,
      digests: { sha256: a.sha256 },
    };
  });
