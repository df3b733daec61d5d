import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { openLibrary } from '../storage-node/tape-library.ts';
import { runCdb } from '../../test/helpers/tape.ts';
import { listVtl, type CartridgeListing } from './vtl.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { ObjectKind } from '../tape/cartridge-format.ts';
import { buildTestUnitReady } from '../scsi/cdb/spc.ts';
import { buildWrite6, buildWriteFilemarks6 } from '../scsi/cdb/ssc.ts';

test('ferry vtl ls: every slot barcode, blank until loaded, then use, files and label', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-vtl-ls-'));
  try {
    const lib = await openLibrary(dir, { drives: 1, slots: 3, cartridgeSizeBytes: 1 << 20 });
    await lib.changer.move(0x1002, 0x100);
    const d = lib.drives[0];
    await runCdb(d, buildTestUnitReady());
    const label = new TextEncoder().encode('FERRY-VOL1 FER003L8 2026-11-24');
    await runCdb(d, buildWrite6(label.length), { dataOut: label });
    await runCdb(d, buildWriteFilemarks6(1));
    await runCdb(d, buildWrite6(4096), { dataOut: new Uint8Array(4096) });
    await runCdb(d, buildWriteFilemarks6(1));
    await lib.close();
    const rows = await listVtl(dir);
    assert.deepEqual(
      rows.map((r) => [r.barcode, r.location, r.created]),
      [
        ['FER003L8', 'drive 0', true],
        ['FER001L8', 'slot 0', false],
        ['FER002L8', 'slot 1', false],
      ],
    );
    assert.deepEqual(
      [rows[0].usedBytes, rows[0].files, rows[0].objects, rows[0].loadCount, rows[0].label],
      [label.length + 4096, 2, 4, 1, 'FERRY-VOL1 FER003L8 2026-11-24'],
    );
    const out = execFileSync(process.execPath, ['bin/ferry.mjs', 'vtl', 'ls', dir, '--json'], { encoding: 'utf8' });
    const json = JSON.parse(out) as CartridgeListing[];
    assert.equal(json.length, 3);
    assert.equal(json[0].label, rows[0].label);
    const text = execFileSync(process.execPath, ['bin/ferry.mjs', 'vtl', 'ls', dir], { encoding: 'utf8' });
    assert.match(text, /^BARCODE\s+LOCATION/);
    assert.match(text, /FER001L8\s+slot 0\s+blank/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ferry vtl ls on a directory of loose cartridges (no library.json)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-vtl-ls-'));
  try {
    const c = await Cartridge.create(join(dir, 'one.cart'), {
      barcode: 'ONE',
      capacityBytes: 1 << 20,
      writeProtected: true,
    });
    await c.close();
    const d = await Cartridge.open(join(dir, 'one.cart'));
    await d.updateLabel({ writeProtected: false });
    await d.append(ObjectKind.DATA, 2, 512, new Uint8Array(1024));
    await d.close();
    const rows = await listVtl(dir);
    assert.deepEqual(
      rows.map((r) => [r.barcode, r.location, r.elementAddress, r.usedBytes, r.objects, r.writeProtected, r.label]),
      [['ONE', '', null, 1024, 2, false, '']],
    );
    await assert.rejects(listVtl(join(dir, 'missing')), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
