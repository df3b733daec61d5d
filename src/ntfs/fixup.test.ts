import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyFixups, RecordMagic } from './fixup.ts';
import { NtfsFormatError } from './errors.ts';

/** Protect a record the way a writer does: save each stride's last u16 in the array, write the USN there. */
function protect(buf: Uint8Array, magic: number, usn: number, usaOfs = 0x30): Uint8Array {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = buf.length / 512 + 1;
  v.setUint32(0, magic, true);
  v.setUint16(4, usaOfs, true);
  v.setUint16(6, count, true);
  v.setUint16(usaOfs, usn, true);
  for (let i = 1; i < count; i++) {
    v.setUint16(usaOfs + 2 * i, v.getUint16(i * 512 - 2, true), true);
    v.setUint16(i * 512 - 2, usn, true);
  }
  return buf;
}

test('undoes the fixups of a 1 KiB and a 4 KiB record', () => {
  for (const size of [1024, 4096]) {
    const orig = new Uint8Array(size).map((_, i) => (i * 13 + 5) & 0xff);
    orig.fill(0, 4, 0x48); // header area holds the USA
    const rec = protect(new Uint8Array(orig), RecordMagic.FILE, 0x1234);
    applyFixups(rec, RecordMagic.FILE, { record: 7, byteOffset: 8192 });
    for (let i = 1; i <= size / 512; i++)
      assert.deepEqual([rec[i * 512 - 2], rec[i * 512 - 1]], [orig[i * 512 - 2], orig[i * 512 - 1]]);
    assert.deepEqual(rec.subarray(0x48), orig.subarray(0x48));
  }
});

test('a torn sector is reported with the record, the byte offset and both values', () => {
  const rec = protect(new Uint8Array(1024), RecordMagic.FILE, 5);
  rec[1022] = 0xee;
  assert.throws(
    () => applyFixups(rec, RecordMagic.FILE, { record: 65, byteOffset: 100000 }),
    (e: unknown) =>
      e instanceof NtfsFormatError &&
      e.code === 'ERR_NTFS_FIXUP' &&
      e.record === 65 &&
      e.byteOffset === 100000 + 1022 &&
      e.expected === '0x5' &&
      e.actual === '0xee' &&
      /sector 1/.test(e.message),
  );
});

test('wrong magic, wrong count and an array past the record are errors', () => {
  const indx = protect(new Uint8Array(4096), RecordMagic.INDX, 9);
  assert.throws(() => applyFixups(indx, RecordMagic.FILE, { byteOffset: 0 }), /no FILE magic/);
  const badCount = protect(new Uint8Array(1024), RecordMagic.FILE, 9);
  new DataView(badCount.buffer).setUint16(6, 9, true);
  assert.throws(() => applyFixups(badCount, RecordMagic.FILE, { byteOffset: 0 }), /update sequence array/);
  const farUsa = protect(new Uint8Array(1024), RecordMagic.FILE, 9);
  new DataView(farUsa.buffer).setUint16(4, 1020, true);
  assert.throws(() => applyFixups(farUsa, RecordMagic.FILE, { byteOffset: 0 }), /update sequence array/);
});
