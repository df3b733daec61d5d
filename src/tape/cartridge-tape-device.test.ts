import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cartridge } from './cartridge.ts';
import { CartridgeTapeDevice } from './cartridge-tape-device.ts';
import { DriveError } from './drive.ts';

test(
  'CartridgeTapeDevice: fixed blocks, a filemark after partial data is not lost, positioning, end of ' + 'medium',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-ctd-'));
    try {
      const path = join(dir, 'a.cart');
      await (
        await Cartridge.create(path, { barcode: 'A', capacityBytes: 64 * 1024, earlyWarningBytes: 16 * 1024 })
      ).close();
      const dev = await CartridgeTapeDevice.open(path, { blockLength: 4096 });
      const blocks = new Uint8Array(3 * 4096).map((_, i) => (i >> 12) + 1);
      assert.deepEqual(await dev.write(blocks), { earlyWarning: false });
      await dev.writeFilemarks(1);
      await dev.write(blocks.subarray(0, 4096));
      assert.deepEqual(await dev.position(), { blockId: 5, fileNumber: 1, bop: false, eow: false });
      await dev.rewind();
      const buf = new Uint8Array(8 * 4096);
      assert.deepEqual(await dev.read(buf), { kind: 'data', bytes: 3 * 4096, recordLength: 4096 });
      assert.deepEqual(buf.subarray(0, 3 * 4096), blocks);
      assert.deepEqual(await dev.read(buf), { kind: 'filemark' });
      assert.deepEqual(await dev.read(buf), { kind: 'data', bytes: 4096, recordLength: 4096 });
      assert.deepEqual(await dev.read(buf), { kind: 'eod' });
      await dev.locate(1);
      assert.equal((await dev.position()).blockId, 1);
      await dev.space('filemarks', 1);
      assert.equal((await dev.position()).blockId, 4);
      await dev.space('eod', 0);
      await assert.rejects(dev.locate(9), DriveError);
      // Fill up: early warning, then end of medium throws.
      let warned = false;
      let full = false;
      for (let i = 0; i < 20 && !full; i++) {
        try {
          const { earlyWarning } = await dev.write(blocks.subarray(0, 4096));
          warned = warned || earlyWarning;
        } catch (e) {
          assert.ok(e instanceof DriveError);
          full = true;
        }
      }
      assert.deepEqual({ warned, full }, { warned: true, full: true });
      await dev.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
