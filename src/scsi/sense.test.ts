import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDevice } from '../block/memory-device.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { DiskLu } from './disk-lu.ts';
import { TapeDriveLu } from './ssc.ts';
import { openLibrary } from '../storage-node/tape-library.ts';
import { luIdentity } from './identity.ts';
import { makeTask, nexusA, nexusB, setDSense } from '../../test/helpers/scsi.ts';
import { ScsiStatus, type LogicalUnit, type ScsiResult } from './task.ts';
import { unmappedLun } from './spc.ts';
import {
  Asc,
  SenseDataSource,
  SenseError,
  SenseKey,
  decodeSense,
  encodeDescriptorSense,
  encodeFixedSense,
  encodeSense,
  type SenseOptions,
} from './sense.ts';
import { buildRead6, buildRewind, buildWrite6, buildWriteFilemarks6 } from './cdb/ssc.ts';
import { buildRequestSense, buildTestUnitReady } from './cdb/spc.ts';
import { buildRead10 } from './cdb/sbc.ts';

// ---- an independent reading of SPC-4 4.5.2 (descriptor format), for the layout checks -----

interface RawDescriptorSense {
  responseCode: number;
  key: number;
  asc: number;
  ascq: number;
  /** Descriptors by type, each the whole descriptor (type and length bytes included). */
  descriptors: Map<number, Uint8Array[]>;
}

function readDescriptorSense(b: Uint8Array): RawDescriptorSense {
  assert.ok(b.length >= 8, 'descriptor sense has an 8-byte header');
  assert.equal(b.length, 8 + b[7], 'ADDITIONAL SENSE LENGTH covers the descriptors exactly');
  const descriptors = new Map<number, Uint8Array[]>();
  let p = 8;
  while (p < b.length) {
    const len = 2 + b[p + 1];
    assert.ok(p + len <= b.length, `descriptor ${b[p]} at ${p} runs past the end`);
    const list = descriptors.get(b[p]) ?? [];
    list.push(b.subarray(p, p + len));
    descriptors.set(b[p], list);
    p += len;
  }
  return { responseCode: b[0], key: b[1] & 0x0f, asc: b[2], ascq: b[3], descriptors };
}

function one(r: RawDescriptorSense, type: number): Uint8Array {
  const d = r.descriptors.get(type);
  assert.equal(d?.length, 1, `exactly one descriptor ${type.toString(16)}h`);
  return d[0];
}

const be64 = (d: Uint8Array, at: number): bigint => new DataView(d.buffer, d.byteOffset).getBigUint64(at);

// ---- fixed format: byte-identical to what Ferry always sent --------------------------------

test('fixed format: field pointer, INFORMATION, stream bits, byte for byte (SPC-4 4.5.3)', () => {
  const invalid = new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, {
    fieldPointer: { cd: true, field: 2, bit: 7 },
  });
  assert.deepEqual([...encodeFixedSense(invalid)], [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xcf, 0, 2]);
  const ili = new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { ili: true, info: -300 });
  assert.deepEqual(
    [...encodeFixedSense(ili)],
    [0xf0, 0, 0x20, 0xff, 0xff, 0xfe, 0xd4, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  const fm = new SenseError(SenseKey.NO_SENSE, Asc.FILEMARK_DETECTED, { filemark: true, eom: true, info: 3 });
  assert.deepEqual([...encodeFixedSense(fm)], [0xf0, 0, 0xc0, 0, 0, 0, 3, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(encodeSense(fm, 'fixed'), encodeFixedSense(fm));
  assert.equal(
    encodeFixedSense(new SenseError(SenseKey.MEDIUM_ERROR, Asc.UNRECOVERED_READ_ERROR, { deferred: true }))[0],
    0x71,
  );
});

test(
  'fixed format COPY ABORTED: segment in CSI 2–3, destination offset 18 in CSI 1, status + sense after ' + 'byte 17',
  () => {
    const inner = encodeFixedSense(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE));
    const e = new SenseError(SenseKey.COPY_ABORTED, Asc.THIRD_PARTY_DEVICE_FAILURE, {
      commandSpecific: 7,
      senseKeySpecific: Uint8Array.of(0x20, 0, 12),
      forwarded: { source: SenseDataSource.COPY_DESTINATION, status: ScsiStatus.CHECK_CONDITION, sense: inner },
    });
    const b = encodeFixedSense(e);
    assert.deepEqual(
      [...b.subarray(0, 18)],
      [0x70, 0, 0x0a, 0, 0, 0, 0, 10 + 1 + 18, 0, 18, 0, 7, 0x0d, 0x01, 0, 0xa0, 0, 12],
    );
    assert.equal(b[18], ScsiStatus.CHECK_CONDITION);
    assert.deepEqual(b.subarray(19), inner);
    const d = decodeSense(b);
    assert.equal(d.descriptor, false);
    assert.deepEqual(d.forwarded, [{ source: 2, truncated: false, status: 2, sense: inner }]);
    // From the source: offset in CSI byte 0; long forwarded sense cut at 200 bytes.
    const long = new Uint8Array(240).fill(0x5a);
    long[0] = 0x70;
    long[7] = 240 - 8;
    const s = encodeFixedSense(
      new SenseError(SenseKey.COPY_ABORTED, Asc.COPY_TARGET_DEVICE_DATA_UNDERRUN, {
        commandSpecific: 0,
        forwarded: { source: 1, status: 2, sense: long },
      }),
    );
    assert.equal(s.length, 18 + 1 + 200);
    assert.deepEqual([s[8], s[9]], [18, 0]);
    assert.equal(decodeSense(s).forwarded?.[0].truncated, true);
  },
);

// ---- descriptor format -----------------------------------------------------------------------

test('descriptor format: header, INFORMATION (00h), CSI (01h), sense-key specific (02h), stream commands (04h)', () => {
  const e = new SenseError(SenseKey.MEDIUM_ERROR, Asc.UNRECOVERED_READ_ERROR, {
    info: 0x1_2345_6789,
    commandSpecific: 0xdeadbeef,
    fieldPointer: { cd: false, field: 0x0102, bit: 3 },
    filemark: true,
    ili: true,
  });
  const b = encodeDescriptorSense(e);
  const r = readDescriptorSense(b);
  assert.deepEqual([r.responseCode, r.key, r.asc, r.ascq], [0x72, 3, 0x11, 0]);
  const info = one(r, 0x00);
  assert.equal(info[1], 0x0a);
  assert.equal(info[2] & 0x80, 0x80, 'VALID');
  assert.equal(be64(info, 4), 0x1_2345_6789n);
  const csi = one(r, 0x01);
  assert.equal(csi[1], 0x0a);
  assert.equal(be64(csi, 4), 0xdeadbeefn);
  const sks = one(r, 0x02);
  assert.deepEqual([...sks], [0x02, 0x06, 0, 0, 0x80 | 0x08 | 3, 0x01, 0x02, 0]); // SKSV, C/D=0, BPV, bit 3
  assert.deepEqual([...one(r, 0x04)], [0x04, 0x02, 0, 0xa0]); // FILEMARK, ILI
  assert.equal(r.descriptors.has(0x0c), false);
  // Nothing optional: just the 8-byte header; deferred is 73h; negative INFORMATION is 64-bit two's complement.
  assert.deepEqual(
    [...encodeSense(new SenseError(SenseKey.UNIT_ATTENTION, Asc.POWER_ON_OCCURRED), 'descriptor')],
    [0x72, 6, 0x29, 1, 0, 0, 0, 0],
  );
  assert.equal(
    encodeDescriptorSense(new SenseError(SenseKey.MEDIUM_ERROR, Asc.WRITE_ERROR, { deferred: true }))[0],
    0x73,
  );
  const neg = readDescriptorSense(
    encodeDescriptorSense(new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { ili: true, info: -300 })),
  );
  assert.equal(be64(one(neg, 0x00), 4), (1n << 64n) - 300n);
  assert.equal(
    decodeSense(encodeDescriptorSense(new SenseError(SenseKey.NO_SENSE, Asc.NO_ADDITIONAL_SENSE, { info: -300 }))).info,
    2 ** 32 - 300,
    'as fixed format decodes it',
  );
});

test(
  'descriptor format COPY ABORTED: 01h segment number, 02h segment pointer, 0Ch forwarded destination sense (SPC-4 ' +
    '4.5.2.9)',
  () => {
    const inner = encodeFixedSense(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE));
    const e = new SenseError(SenseKey.COPY_ABORTED, Asc.THIRD_PARTY_DEVICE_FAILURE, {
      commandSpecific: 1,
      senseKeySpecific: Uint8Array.of(0x20, 0, 12),
      forwarded: { source: SenseDataSource.COPY_DESTINATION, status: ScsiStatus.CHECK_CONDITION, sense: inner },
    });
    const r = readDescriptorSense(encodeDescriptorSense(e));
    assert.deepEqual([r.responseCode, r.key, r.asc, r.ascq], [0x72, 0x0a, 0x0d, 0x01]);
    assert.equal(be64(one(r, 0x01), 4), 1n, 'segment number');
    assert.deepEqual([...one(r, 0x02).subarray(4, 7)], [0xa0, 0, 12], 'SKSV, SD, field 12 of the segment');
    const f = one(r, 0x0c);
    assert.equal(f[1], 2 + inner.length);
    assert.equal(f[2], 0x02, 'FSDT 0, SENSE DATA SOURCE 2 (destination)');
    assert.equal(f[3], ScsiStatus.CHECK_CONDITION);
    assert.deepEqual(f.subarray(4), inner);
    const d = decodeSense(encodeDescriptorSense(e));
    assert.equal(d.descriptor, true);
    assert.deepEqual(d.forwarded, [{ source: 2, truncated: false, status: 2, sense: inner }]);
    assert.equal(decodeSense(d.forwarded![0].sense).asc, 0x21);
  },
);

test('descriptor format: a forwarded sense too long for 252 bytes is cut and FSDT set', () => {
  const big = new Uint8Array(300).fill(0x11);
  const e = new SenseError(SenseKey.COPY_ABORTED, Asc.THIRD_PARTY_DEVICE_FAILURE, {
    commandSpecific: 3,
    fieldPointer: { cd: false, field: 40 },
    info: 5,
    forwarded: { source: SenseDataSource.COPY_SOURCE, status: 2, sense: big },
  });
  const b = encodeDescriptorSense(e);
  assert.equal(b.length, 252);
  const f = one(readDescriptorSense(b), 0x0c);
  assert.equal(f[2], 0x80 | 0x01, 'FSDT, source 1');
  assert.equal(f.length, 252 - 8 - 12 - 12 - 8);
  assert.equal(decodeSense(b).forwarded?.[0].truncated, true);
});

const arbOpts: fc.Arbitrary<SenseOptions> = fc.record(
  {
    info: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: -0x80000000, max: -1 })),
    commandSpecific: fc.integer({ min: 0, max: 0xffff }),
    fieldPointer: fc.record({
      cd: fc.boolean(),
      field: fc.integer({ min: 0, max: 0xffff }),
      bit: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
    }),
    filemark: fc.boolean(),
    eom: fc.boolean(),
    ili: fc.boolean(),
    deferred: fc.boolean(),
    forwarded: fc.record({
      source: fc.constantFrom(1, 2),
      status: fc.constantFrom(0x02, 0x08, 0x18),
      sense: fc.uint8Array({ minLength: 8, maxLength: 40 }),
    }),
  },
  { requiredKeys: [] },
);

test('round trip: both formats decode to the same sense value (fast-check)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      arbOpts,
      (key, asc, ascq, opts) => {
        // Forwarded sense is defined for COPY ABORTED only (fixed format finds it through the CSI offsets).
        const k = opts.forwarded ? SenseKey.COPY_ABORTED : key;
        const e = new SenseError(k, [asc, ascq], opts);
        for (const format of ['fixed', 'descriptor'] as const) {
          const bytes = encodeSense(e, format);
          assert.ok(bytes.length <= 252);
          const d = decodeSense(bytes);
          assert.equal(d.descriptor, format === 'descriptor');
          assert.equal(d.deferred, !!opts.deferred);
          assert.deepEqual([d.key, d.asc, d.ascq], [k, asc, ascq]);
          assert.deepEqual([d.filemark, d.eom, d.ili], [!!opts.filemark, !!opts.eom, !!opts.ili]);
          assert.equal(d.info, opts.info === undefined ? undefined : opts.info >>> 0);
          if (opts.commandSpecific !== undefined) assert.equal(d.commandSpecific! & 0xffff, opts.commandSpecific);
          if (opts.fieldPointer) {
            const fp = opts.fieldPointer;
            const sks = d.senseKeySpecific!;
            assert.equal(sks[0], 0x80 | (fp.cd ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | fp.bit : 0));
            assert.equal((sks[1] << 8) | sks[2], fp.field);
          } else {
            assert.equal(d.senseKeySpecific, undefined);
          }
          if (opts.forwarded) {
            const f = d.forwarded?.[0];
            assert.deepEqual([f?.source, f?.status], [opts.forwarded.source, opts.forwarded.status]);
            // Fixed format takes the forwarded sense's own length byte (7) for its end.
            const want =
              format === 'fixed' ? opts.forwarded.sense.subarray(0, 8 + opts.forwarded.sense[7]) : opts.forwarded.sense;
            assert.deepEqual(f?.sense, want);
          } else {
            assert.equal(d.forwarded, undefined);
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});

// ---- D_SENSE in each LU type with a control mode page ----------------------------------------

const run = (lu: LogicalUnit, cdb: Uint8Array, dataOut?: Uint8Array, nexus = nexusA): Promise<ScsiResult> =>
  lu.execute(makeTask(cdb, { dataOut, nexus }));

/** A CDB with an unsupported opcode: 05/20/00 with a field pointer at byte 0 bit 7. */
// Deliberately invalid: FFh is no command's operation code.
const badOpcode = (): Uint8Array => Uint8Array.of(0xff, 0, 0, 0, 0, 0);

async function expectFormatFollowsDSense(lu: LogicalUnit): Promise<void> {
  await run(lu, buildTestUnitReady()); // the power-on unit attention
  await run(lu, buildTestUnitReady(), undefined, nexusB);
  const fixed = await run(lu, badOpcode());
  assert.equal(fixed.sense![0], 0x70);
  await setDSense(lu, true);
  const bad = await run(lu, badOpcode());
  assert.equal(bad.status, ScsiStatus.CHECK_CONDITION);
  const r = readDescriptorSense(bad.sense!);
  assert.deepEqual([r.responseCode, r.key, r.asc, r.ascq], [0x72, 5, 0x20, 0]);
  assert.deepEqual([...one(r, 0x02).subarray(4, 7)], [0x80 | 0x40 | 0x08 | 7, 0, 0], 'field pointer: CDB byte 0 bit 7');
  // The other nexus gets the mode-parameters-changed unit attention, in descriptor format too.
  const ua = await run(lu, buildTestUnitReady(), undefined, nexusB);
  assert.deepEqual([...ua.sense!], [0x72, 6, 0x2a, 0x01, 0, 0, 0, 0]);
  // REQUEST SENSE follows its DESC bit, not D_SENSE (SPC-4 6.39).
  assert.equal((await run(lu, buildRequestSense(252))).dataIn![0], 0x70);
  assert.equal((await run(lu, buildRequestSense(252, { desc: true }))).dataIn![0], 0x72);
  await setDSense(lu, false);
  assert.equal((await run(lu, badOpcode())).sense![0], 0x70);
}

test('D_SENSE=1 on a disk LU: CHECK CONDITION sense in descriptor format, cold reset back to fixed', async () => {
  const lu = new DiskLu(new MemoryDevice(512, 64), { identity: luIdentity('d-sense|disk') });
  await expectFormatFollowsDSense(lu);
  await setDSense(lu, true);
  const r = await run(lu, buildRead10(4096, 1)); // READ(10) LBA 4096 of 64
  const s = readDescriptorSense(r.sense!);
  assert.deepEqual([s.responseCode, s.key, s.asc], [0x72, 5, 0x21]);
  assert.equal(decodeSense(r.sense!).asc, 0x21);
  // A target cold reset restores the default (fixed).
  lu.reset('target-cold', nexusA);
  await run(lu, buildTestUnitReady());
  assert.equal((await run(lu, badOpcode())).sense![0], 0x70);
});

test(
  'D_SENSE=1 on a tape drive LU: filemark and ILI in the stream commands descriptor (04h), residue ' + 'in 00h',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-dsense-'));
    const lu = new TapeDriveLu({ identitySeed: `d-sense:${dir}` });
    try {
      await lu.insert(await Cartridge.create(join(dir, 't.cart'), { barcode: 'DSENSE01', capacityBytes: 1 << 20 }));
      await expectFormatFollowsDSense(lu);
      await setDSense(lu, true);
      assert.equal((await run(lu, buildWrite6(100), new Uint8Array(100).fill(7))).status, ScsiStatus.GOOD);
      assert.equal((await run(lu, buildWriteFilemarks6(1))).status, ScsiStatus.GOOD);
      assert.equal((await run(lu, buildRewind())).status, ScsiStatus.GOOD);
      const short = await run(lu, buildRead6(400)); // the 100-byte record, asked for 400: ILI, residue 300
      const s1 = readDescriptorSense(short.sense!);
      assert.deepEqual([s1.responseCode, s1.key], [0x72, 0]);
      assert.deepEqual([...one(s1, 0x04)], [0x04, 0x02, 0, 0x20], 'ILI');
      assert.equal(be64(one(s1, 0x00), 4), 300n);
      assert.equal(short.dataIn?.length, 100);
      const fm = await run(lu, buildRead6(400));
      const s2 = readDescriptorSense(fm.sense!);
      assert.deepEqual([s2.key, s2.asc, s2.ascq], [0, 0x00, 0x01]);
      assert.deepEqual([...one(s2, 0x04)], [0x04, 0x02, 0, 0x80], 'FILEMARK');
      const d = decodeSense(fm.sense!);
      assert.equal(d.filemark, true);
    } finally {
      await lu.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('D_SENSE=1 on a medium changer LU', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-dsense-lib-'));
  const lib = await openLibrary(dir, { drives: 1, slots: 2, cartridgeSizeBytes: 1 << 20 });
  try {
    await expectFormatFollowsDSense(lib.changer);
  } finally {
    await lib.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a SenseError thrown with D_SENSE=1 reaches the wire unchanged in meaning', () => {
  const e = new SenseError(SenseKey.NOT_READY, Asc.LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS, {
    senseKeySpecific: Uint8Array.of(0, 0x40, 0),
  });
  const d = decodeSense(encodeSense(e, 'descriptor'));
  assert.deepEqual([d.key, d.asc, d.ascq], [2, 0x04, 0x1b]);
  assert.deepEqual([...d.senseKeySpecific!], [0x80, 0x40, 0], 'progress indication with SKSV');
});

test('REQUEST SENSE to an unmapped LUN: 05/25/00 in the format its DESC bit asks for', () => {
  const fixed = unmappedLun(makeTask(buildRequestSense(252), { lun: 9 }));
  assert.deepEqual(
    [fixed.status, fixed.dataIn![0], fixed.dataIn![2], fixed.dataIn![12]],
    [ScsiStatus.GOOD, 0x70, 5, 0x25],
  );
  const desc = unmappedLun(makeTask(buildRequestSense(252, { desc: true }), { lun: 9 }));
  assert.deepEqual([...desc.dataIn!], [0x72, 5, 0x25, 0, 0, 0, 0, 0]);
});
