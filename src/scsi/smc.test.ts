import { test } from 'node:test';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLibrary, openStandaloneDrive, openTapeLuns } from '../storage-node/tape-library.ts';
import { runCdb, type RunResult } from '../../test/helpers/tape.ts';
import { SenseKey } from './sense.ts';
import { ScsiStatus } from './task.ts';
import { ElementBase } from '../tape/library.ts';
import { ElementType, buildMoveMedium, buildReadElementStatus } from './cdb/smc.ts';
import { buildInquiry, buildModeSense6, buildPreventAllow, buildReadAttribute, buildTestUnitReady } from './cdb/spc.ts';
import { buildLoadUnload, buildRead6, buildRewind, buildWrite6, buildWriteFilemarks6 } from './cdb/ssc.ts';

const GOOD = ScsiStatus.GOOD;

function expectSense(r: RunResult, key: number, asc: number, ascq: number): void {
  assert.equal(r.status, ScsiStatus.CHECK_CONDITION);
  assert.deepEqual([r.decoded!.key, r.decoded!.asc, r.decoded!.ascq], [key, asc, ascq]);
}

interface ParsedElement {
  type: number;
  address: number;
  full: boolean;
  source?: number;
  barcode?: string;
  dvcid?: string;
}

/** Parse READ ELEMENT STATUS data (SMC-3 6.10) independently of the encoder. */
function parseElementStatus(d: Uint8Array): { count: number; elements: ParsedElement[] } {
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const count = dv.getUint16(2);
  const total = (d[5] << 16) | dv.getUint16(6);
  const out: ParsedElement[] = [];
  let p = 8;
  while (p < 8 + total) {
    const type = d[p];
    const pvoltag = !!(d[p + 1] & 0x80);
    const descLen = dv.getUint16(p + 2);
    const bytes = (d[p + 5] << 16) | dv.getUint16(p + 6);
    for (let q = p + 8; q < p + 8 + bytes; q += descLen) {
      const e: ParsedElement = { type, address: dv.getUint16(q), full: !!(d[q + 2] & 1) };
      if (d[q + 9] & 0x80) e.source = dv.getUint16(q + 10);
      let r = q + 12;
      if (pvoltag) {
        e.barcode = new TextDecoder().decode(d.subarray(r, r + 32)).replace(/[\s\0]+$/, '');
        r += 36;
      }
      if (r < q + descLen && d[r + 3] > 0) e.dvcid = new TextDecoder().decode(d.subarray(r + 4, r + 4 + d[r + 3]));
      out.push(e);
    }
    p += 8 + bytes;
  }
  return { count, elements: out };
}

test(
  'library: element status with volume tags and DVCID, address assignment page, move/load/unload cycle, inventory ' +
    'survives restart',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-vtl-'));
    try {
      let lib = await openLibrary(dir, { drives: 2, slots: 5, cartridgeSizeBytes: 1 << 20 });
      const { changer } = lib;
      assert.ok(existsSync(join(dir, 'library.json')));
      assert.ok(!existsSync(join(dir, 'FER001L8.cart')), 'cartridge files are created lazily');
      await runCdb(changer, buildTestUnitReady()); // power-on UA
      assert.equal(changer.deviceType, 8);
      const inq = await runCdb(changer, buildInquiry(96));
      assert.equal(inq.dataIn![0], 0x08);

      const ms = await runCdb(changer, buildModeSense6(0x1d, { dbd: true }));
      const pg = ms.dataIn!.subarray(4);
      assert.deepEqual([pg[0], pg[1]], [0x1d, 0x12]);
      const u16 = (at: number): number => (pg[at] << 8) | pg[at + 1];
      assert.deepEqual(
        [u16(2), u16(4), u16(6), u16(8), u16(10), u16(12), u16(14), u16(16)],
        [0, 1, 0x1000, 5, 0x10, 1, 0x100, 2],
      );

      let st = parseElementStatus(
        (await runCdb(changer, buildReadElementStatus({ voltag: true, dvcid: true }))).dataIn!,
      );
      assert.equal(st.count, 1 + 1 + 2 + 5);
      const slots = st.elements.filter((e) => e.type === ElementType.STORAGE);
      assert.deepEqual(
        slots.map((e) => e.barcode),
        ['FER001L8', 'FER002L8', 'FER003L8', 'FER004L8', 'FER005L8'],
      );
      const drives = st.elements.filter((e) => e.type === ElementType.DATA_TRANSFER);
      assert.deepEqual(
        drives.map((e) => e.full),
        [false, false],
      );
      assert.ok(drives[0].dvcid?.includes(lib.drives[0].serial), 'DVCID names the drive serial');
      // Only the drives, from the second one.
      st = parseElementStatus(
        (await runCdb(changer, buildReadElementStatus({ type: ElementType.DATA_TRANSFER, start: 0x101 }))).dataIn!,
      );
      assert.deepEqual(
        st.elements.map((e) => e.address),
        [0x101],
      );

      // Load FER002L8 into drive 0 and write to it.
      const drive = lib.drives[0];
      expectSense(await runCdb(drive, buildTestUnitReady()), SenseKey.UNIT_ATTENTION, 0x29, 0x00);
      expectSense(await runCdb(drive, buildTestUnitReady()), SenseKey.NOT_READY, 0x3a, 0x00);
      assert.equal((await runCdb(changer, buildMoveMedium(0, 0x1001, 0x100))).status, GOOD);
      expectSense(await runCdb(drive, buildTestUnitReady()), SenseKey.UNIT_ATTENTION, 0x28, 0x00);
      const data = new Uint8Array(1000).fill(42);
      assert.equal((await runCdb(drive, buildWrite6(1000), { dataOut: data })).status, GOOD);
      assert.equal((await runCdb(drive, buildWriteFilemarks6(1))).status, GOOD);
      st = parseElementStatus((await runCdb(changer, buildReadElementStatus({ voltag: true }))).dataIn!);
      const d0 = st.elements.find((e) => e.address === 0x100)!;
      assert.deepEqual([d0.full, d0.barcode, d0.source], [true, 'FER002L8', 0x1001]);
      assert.equal(st.elements.find((e) => e.address === 0x1001)!.full, false);

      // Impossible moves.
      expectSense(await runCdb(changer, buildMoveMedium(0, 0x1001, 0x101)), SenseKey.ILLEGAL_REQUEST, 0x3b, 0x0e);
      expectSense(await runCdb(changer, buildMoveMedium(0, 0x100, 0x1000)), SenseKey.ILLEGAL_REQUEST, 0x3b, 0x0d);
      expectSense(await runCdb(changer, buildMoveMedium(0, 0x1000, 0x2000)), SenseKey.ILLEGAL_REQUEST, 0x21, 0x01);
      expectSense(await runCdb(changer, buildMoveMedium(0x55, 0x1000, 0x1001)), SenseKey.ILLEGAL_REQUEST, 0x21, 0x01);
      expectSense(await runCdb(changer, buildReadElementStatus({ type: 7 })), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
      // Deliberately malformed: MOVE MEDIUM cut to 3 bytes.
      expectSense(await runCdb(changer, Uint8Array.of(0xa5, 0, 0)), SenseKey.ILLEGAL_REQUEST, 0x24, 0x00);
      // The drive prevents removal.
      await runCdb(drive, buildPreventAllow(true));
      expectSense(await runCdb(changer, buildMoveMedium(0, 0x100, 0x1001)), SenseKey.ILLEGAL_REQUEST, 0x53, 0x02);
      await runCdb(drive, buildPreventAllow(false));

      // Restart with the cartridge in the drive: inventory and data are still there.
      await lib.close();
      lib = await openLibrary(dir, { drives: 2, slots: 5 });
      const inv = JSON.parse(readFileSync(join(dir, 'library.json'), 'utf8'));
      assert.equal(inv.contents[String(0x100)].barcode, 'FER002L8');
      const d = lib.drives[0];
      await runCdb(d, buildTestUnitReady());
      await runCdb(d, buildTestUnitReady());
      await runCdb(d, buildRewind());
      const r = await runCdb(d, buildRead6(1000));
      assert.equal(r.status, GOOD);
      assert.deepEqual(new Uint8Array(r.dataIn!), data);

      // Unload, export through the mail slot, bring it back into drive 1.
      assert.equal((await runCdb(d, buildLoadUnload(false))).status, GOOD);
      expectSense(await runCdb(lib.changer, buildTestUnitReady()), SenseKey.UNIT_ATTENTION, 0x29, 0x00);
      assert.equal((await runCdb(lib.changer, buildMoveMedium(0, 0x100, ElementBase.IMPORT_EXPORT))).status, GOOD);
      expectSense(await runCdb(d, buildTestUnitReady()), SenseKey.NOT_READY, 0x3a, 0x00);
      assert.equal((await runCdb(lib.changer, buildMoveMedium(0, ElementBase.IMPORT_EXPORT, 0x101))).status, GOOD);
      const d1 = lib.drives[1];
      await runCdb(d1, buildTestUnitReady());
      await runCdb(d1, buildTestUnitReady());
      const r1 = await runCdb(d1, buildRead6(1000));
      assert.deepEqual(new Uint8Array(r1.dataIn!), data);
      const lc = await runCdb(d1, buildReadAttribute(0, 0x0003));
      assert.equal(lc.dataIn![4 + 5 + 7], 3, 'load count: first load, reload after restart, load in drive 1');
      assert.equal((await runCdb(lib.changer, buildMoveMedium(0, 0x101, 0x1001))).status, GOOD);
      await lib.close();
      await assert.rejects(openLibrary(dir, { drives: 3 }), /has 2 drives/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('stand-alone drive: creates the cartridge when missing and keeps data across reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-vtl-'));
  try {
    const path = join(dir, 'one.cart');
    let lu = await openStandaloneDrive(path, { createSizeBytes: 1 << 20 });
    await runCdb(lu, buildTestUnitReady());
    assert.equal((await runCdb(lu, buildTestUnitReady())).status, GOOD);
    await runCdb(lu, buildWrite6(3), { dataOut: Uint8Array.of(1, 2, 3) });
    await lu.close();
    lu = await openStandaloneDrive(path);
    await runCdb(lu, buildTestUnitReady());
    const r = await runCdb(lu, buildRead6(3));
    assert.deepEqual([...r.dataIn!], [1, 2, 3]);
    const ra = await runCdb(lu, buildReadAttribute(0, 0x0806));
    assert.equal(new TextDecoder().decode(ra.dataIn!.subarray(9, 12)), 'ONE');
    await lu.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('property: random MOVE MEDIUM sequences (valid and impossible) and restarts match a model inventory', async () => {
  const addrs = [0x0000, 0x0010, 0x0100, 0x0101, 0x1000, 0x1001, 0x1002, 0x0500];
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.record({ src: fc.constantFrom(...addrs), dst: fc.constantFrom(...addrs) }),
          fc.constant('restart' as const),
        ),
        { maxLength: 25 },
      ),
      async (ops) => {
        const dir = mkdtempSync(join(tmpdir(), `ferry-vtl-p${n++}-`));
        try {
          let lib = await openLibrary(dir, { drives: 2, slots: 3, cartridgeSizeBytes: 1 << 16 });
          await runCdb(lib.changer, buildTestUnitReady());
          const model = new Map<number, string>([
            [0x1000, 'FER001L8'],
            [0x1001, 'FER002L8'],
            [0x1002, 'FER003L8'],
          ]);
          const valid = (a: number): boolean => [0x0010, 0x0100, 0x0101, 0x1000, 0x1001, 0x1002].includes(a);
          for (const op of ops) {
            if (op === 'restart') {
              await lib.close();
              lib = await openLibrary(dir);
              await runCdb(lib.changer, buildTestUnitReady());
              continue;
            }
            const r = await runCdb(lib.changer, buildMoveMedium(0, op.src, op.dst));
            let want = 'GOOD';
            if (!valid(op.src) || !valid(op.dst)) want = '5/21/01';
            else if (!model.has(op.src)) want = '5/3b/0e';
            else if (op.src !== op.dst && model.has(op.dst)) want = '5/3b/0d';
            const got =
              r.status === GOOD
                ? 'GOOD'
                : [
                    r.decoded!.key.toString(16),
                    r.decoded!.asc.toString(16),
                    r.decoded!.ascq.toString(16).padStart(2, '0'),
                  ].join('/');
            assert.equal(got, want, `move ${op.src.toString(16)} → ${op.dst.toString(16)}`);
            if (want === 'GOOD' && op.src !== op.dst) {
              model.set(op.dst, model.get(op.src)!);
              model.delete(op.src);
            }
            // Drives hold exactly what the model says, threaded.
            for (const [i, a] of [0x0100, 0x0101].entries()) {
              assert.equal(lib.drives[i].drive.cartridge?.label.barcode ?? null, model.get(a) ?? null, `drive ${i}`);
            }
          }
          const d = parseElementStatus((await runCdb(lib.changer, buildReadElementStatus({ voltag: true }))).dataIn!);
          const seen = new Map(d.elements.filter((e) => e.full).map((e) => [e.address, e.barcode!]));
          assert.deepEqual([...seen].sort(), [...model].sort());
          await lib.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 40 },
  );
});

test(
  'openTapeLuns: changer at the first LUN, drives after it, then a stand-alone drive; flag errors are usage ' +
    'errors',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-vtl-'));
    try {
      const t = await openTapeLuns({
        library: join(dir, 'vtl'),
        drives: '2',
        slots: '3',
        cartridgeSize: '4M',
        tape: join(dir, 'one.cart'),
      });
      assert.deepEqual(
        t.luns.map(([l, lu]) => [l, lu.deviceType]),
        [
          [0, 8],
          [1, 1],
          [2, 1],
          [3, 1],
        ],
      );
      assert.equal(t.library!.inventory.cartridgeSizeBytes, 4 << 20);
      await t.close();
      await assert.rejects(openTapeLuns({ drives: 2 }), /need --library/);
      await assert.rejects(openTapeLuns({ library: join(dir, 'x'), drives: 'two' }), /--drives must be/);
      await assert.rejects(openTapeLuns({ tape: join(dir, 'y.cart'), cartridgeSize: '1K' }), /at least 1M/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
