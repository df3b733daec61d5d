import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDeviceIdentificationPage, encodeDesignator, scsiNameString } from './device-identification.ts';

/** A VPD 83h page around descriptors. */
function page(...descriptors: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(descriptors);
  const p = new Uint8Array(4 + body.length);
  p[1] = 0x83;
  new DataView(p.buffer).setUint16(2, body.length);
  p.set(body, 4);
  return p;
}

test(
  'VPD 83h: designators decode as encoded; a cut page gives its whole descriptors only; another page gives ' + 'none',
  () => {
    const naa = Uint8Array.from([0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const name = scsiNameString('iqn.2026-11.dev.ferry:x');
    assert.equal(name.length % 4, 0);
    assert.equal(name.at(-1), 0, 'null-terminated');
    const p = page(encodeDesignator(1, false, 0, 3, naa), encodeDesignator(3, true, 2, 8, name));
    assert.deepEqual(decodeDeviceIdentificationPage(p), [
      { codeSet: 1, association: 0, designatorType: 3, designator: naa },
      { codeSet: 3, association: 2, designatorType: 8, designator: name },
    ]);
    assert.equal(p[4 + 20] & 0xf0, 0x50, 'PIV: protocol identifier iSCSI');
    assert.deepEqual(
      decodeDeviceIdentificationPage(p.subarray(0, 4 + 20 + 6)).length,
      1,
      'the second descriptor is cut: left out',
    );
    const other = page(encodeDesignator(1, false, 0, 3, naa));
    other[1] = 0x80;
    assert.deepEqual(decodeDeviceIdentificationPage(other), []);
    assert.deepEqual(decodeDeviceIdentificationPage(new Uint8Array(2)), []);
  },
);
