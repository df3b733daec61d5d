import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBootSector } from './boot-sector.ts';
import { NtfsFormatError } from './errors.ts';

/** A boot sector as mkntfs writes it (layout.h NTFS_BOOT_SECTOR), with overrides. */
function bootSector(
  o: { bps?: number; spc?: number; sectors?: bigint; mft?: bigint; mirr?: bigint; rec?: number; idx?: number } = {},
): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set([0xeb, 0x52, 0x90], 0);
  b.set(new TextEncoder().encode('NTFS    '), 3);
  v.setUint16(0x0b, o.bps ?? 512, true);
  b[0x0d] = o.spc ?? 8;
  v.setBigUint64(0x28, o.sectors ?? 131071n, true);
  v.setBigUint64(0x30, o.mft ?? 4n, true);
  v.setBigUint64(0x38, o.mirr ?? 8191n, true);
  b[0x40] = o.rec ?? 0xf6; // -10: 1024 bytes
  b[0x44] = o.idx ?? 1;
  v.setBigUint64(0x48, 0x1122334455667788n, true);
  v.setUint16(0x1fe, 0xaa55, true);
  return b;
}

test('decodes the geometry of a 4K-cluster volume', () => {
  const g = decodeBootSector(bootSector());
  assert.deepEqual(g, {
    bytesPerSector: 512,
    clusterSize: 4096,
    totalSectors: 131071,
    clusterCount: 16383,
    mftLcn: 4,
    mftMirrLcn: 8191,
    recordSize: 1024,
    indexBlockSize: 4096,
    serial: '1122334455667788',
  });
});

test('cluster sizes 512 B to 2 MiB, 4096-byte sectors, positive per-record counts', () => {
  assert.equal(decodeBootSector(bootSector({ spc: 1, rec: 2, idx: 8 })).recordSize, 1024);
  assert.equal(decodeBootSector(bootSector({ spc: 1, rec: 2, idx: 8 })).indexBlockSize, 4096);
  const big = decodeBootSector(bootSector({ spc: 128, idx: 0xf4, mirr: 100n }));
  assert.equal(big.clusterSize, 65536);
  assert.equal(big.indexBlockSize, 4096);
  // 2^(256-248) sectors
  assert.equal(decodeBootSector(bootSector({ spc: 0xf8, idx: 0xf4, mirr: 10n })).clusterSize, 128 * 1024);
  const k4 = decodeBootSector(bootSector({ bps: 4096, spc: 1, sectors: 16383n, rec: 0xf4 }));
  assert.equal(k4.clusterSize, 4096);
  assert.equal(k4.recordSize, 4096);
});

test('absurd geometry is refused with the offset and the value', () => {
  const bad = (b: Uint8Array, offset: number, re: RegExp): void => {
    assert.throws(
      () => decodeBootSector(b),
      (e: unknown) => e instanceof NtfsFormatError && e.byteOffset === offset && re.test(e.message),
    );
  };
  bad(bootSector({ bps: 1000 }), 0x0b, /bytes per sector/);
  bad(bootSector({ spc: 0 }), 0x0d, /cluster size/);
  bad(bootSector({ spc: 3 }), 0x0d, /cluster size/);
  bad(bootSector({ spc: 0xe0 }), 0x0d, /cluster size/); // 2^32 sectors
  bad(bootSector({ sectors: 0n }), 0x28, /no clusters/);
  bad(bootSector({ sectors: 0xffffffffffffffffn }), 0x28, /2\^53/);
  bad(bootSector({ mft: 1n << 40n }), 0x30, /\$MFT LCN beyond/);
  bad(bootSector({ rec: 0 }), 0x40, /MFT record size/);
  bad(bootSector({ rec: 0x7f }), 0x40, /MFT record size/);
  bad(bootSector({ idx: 0xe0 }), 0x44, /index block size/);
  const noMagic = bootSector();
  noMagic[3] = 0x4d;
  bad(noMagic, 3, /no NTFS signature/);
  const no55 = bootSector();
  no55[0x1fe] = 0;
  bad(no55, 0x1fe, /boot signature/);
  assert.throws(() => decodeBootSector(new Uint8Array(100)), /shorter than 512/);
});
