import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { openStandaloneDrive } from '../storage-node/tape-library.ts';
import { makeTask, outcome, targetOf } from '../../test/helpers/scsi.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { attachCopyManager } from './attach.ts';
import { encodeXcopyParameterList } from './descriptors.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';

import { CopyManagerStatus, decodeCopyStatus } from './copy-results.ts';
import { decodeShortPosition } from '../scsi/read-position.ts';
import { buildExtendedCopy, buildReceiveCopyResults, buildInquiry, buildTestUnitReady } from '../scsi/cdb/spc.ts';
import { buildReadPosition, buildRewind } from '../scsi/cdb/ssc.ts';

/** READ POSITION short form (SSC-3 7.7.1): the first block location. */
async function blockId(drive: LogicalUnit, target: ReturnType<typeof targetOf>): Promise<number> {
  const r = await drive.execute(makeTask(buildReadPosition(), { target }));
  assert.equal(outcome(r), 'GOOD');
  return decodeShortPosition(r.dataIn!).blockId;
}

// The copy manager inside a Ferry tape drive LU: EXTENDED COPY sent to the drive copies a disk
// LU of the same target onto the drive's own cartridge (CSCD FFFFh), and back to another disk.

test('a tape drive LU is a copy manager: disk → own tape (FFFFh) → disk, bit-exact', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-tape-'));
  const drive = await openStandaloneDrive(join(dir, 't.cart'), { createSizeBytes: 64 << 20 });
  try {
    attachCopyManager(drive);
    const src = new MemoryDevice(512, 8192);
    for (let i = 0; i < src.bytes.length; i++) src.bytes[i] = (i * 7 + (i >> 9)) & 0xff;
    const dst = new MemoryDevice(512, 8192);
    const a = new DiskLu(src, { identity: luIdentity('tape-cm-a') });
    const b = new DiskLu(dst, { identity: luIdentity('tape-cm-b') });
    const luns = new Map<number, LogicalUnit>([
      [0, drive],
      [1, a],
      [2, b],
    ]);
    const target = targetOf(luns);
    // power-on UAs
    for (const lun of [0, 1, 2]) await luns.get(lun)!.execute(makeTask(buildTestUnitReady(), { target, lun }));
    const std = await drive.execute(makeTask(buildInquiry(96), { target }));
    assert.equal(std.dataIn![5] & 0x08, 0x08, '3PC');
    const naa = async (lun: number) => {
      const r = await luns.get(lun)!.execute(makeTask(buildInquiry(0x1000, 0x83), { target, lun }));
      return decodeDeviceIdentificationPage(r.dataIn!).find((d) => d.designatorType === 3)!;
    };
    const disk = async (lun: number) => ({
      ...(await naa(lun)),
      peripheralDeviceType: 0,
      pad: false,
      fixed: false,
      blockLength: 512,
    });
    const header = { str: false, listIdUsage: 0, priority: 0 };
    const backup = encodeXcopyParameterList({
      header: { ...header, listId: 1 },
      cscds: [await disk(1)],
      segments: [
        {
          type: 0x00,
          cat: false,
          source: 0,
          destination: 0xffff,
          streamTransferLength: 65536,
          blockCount: 8192,
          lba: 0,
        },
        { type: 0x10, cat: false, destination: 0xffff, immed: false, count: 1 },
      ],
    });
    const r1 = await drive.execute(makeTask(buildExtendedCopy(backup.length), { target, dataOut: backup }));
    assert.equal(outcome(r1), 'GOOD');
    // Written several records per append, but still one 64 KiB record each: 64 + the filemark.
    assert.equal(await blockId(drive, target), 65);
    const st = await drive.execute(makeTask(buildReceiveCopyResults(0, 1, 1024), { target }));
    assert.equal(decodeCopyStatus(st.dataIn!).status, CopyManagerStatus.GOOD);
    // REWIND
    assert.equal(outcome(await drive.execute(makeTask(buildRewind(), { target }))), 'GOOD');
    const restore = encodeXcopyParameterList({
      header: { ...header, listId: 2 },
      cscds: [await disk(2)],
      segments: [
        {
          type: 0x01,
          cat: false,
          source: 0xffff,
          destination: 0,
          streamTransferLength: 65536,
          blockCount: 8192,
          lba: 0,
        },
      ],
    });
    const r2 = await drive.execute(makeTask(buildExtendedCopy(restore.length), { target, dataOut: restore }));
    assert.equal(outcome(r2), 'GOOD');
    assert.deepEqual(dst.bytes, src.bytes);
  } finally {
    await drive.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'end of medium in the middle of a multi-record write: COPY ABORTED, and the residual counts only what is on ' +
    'tape',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-xcopy-eom-'));
    const drive = await openStandaloneDrive(join(dir, 't.cart'), { createSizeBytes: (3 << 19) + 1000 });
    try {
      attachCopyManager(drive);
      const src = new MemoryDevice(512, 8192); // 4 MiB: does not fit
      const a = new DiskLu(src, { identity: luIdentity('tape-eom-a') });
      const luns = new Map<number, LogicalUnit>([
        [0, drive],
        [1, a],
      ]);
      const target = targetOf(luns);
      for (const lun of [0, 1]) await luns.get(lun)!.execute(makeTask(buildTestUnitReady(), { target, lun }));
      const vpd = await a.execute(makeTask(buildInquiry(0x1000, 0x83), { target, lun: 1 }));
      const d = decodeDeviceIdentificationPage(vpd.dataIn!).find((x) => x.designatorType === 3)!;
      const list = encodeXcopyParameterList({
        header: { str: false, listIdUsage: 0, priority: 0, listId: 3 },
        cscds: [{ ...d, peripheralDeviceType: 0, pad: false, fixed: false, blockLength: 512 }],
        segments: [
          {
            type: 0x00,
            cat: false,
            source: 0,
            destination: 0xffff,
            streamTransferLength: 65536,
            blockCount: 8192,
            lba: 0,
          },
        ],
      });
      const r = await drive.execute(makeTask(buildExtendedCopy(list.length), { target, dataOut: list }));
      assert.match(outcome(r), /^a\//, 'COPY ABORTED');
      const sense = Buffer.from(r.sense!);
      const onTape = await blockId(drive, target);
      assert.equal(
        onTape,
        24,
        'whole 64 KiB records that fit in 1.5 MiB + 1000 bytes: 16 + 8 of the second 16-record write',
      );
      assert.equal(sense[0] & 0x80, 0x80, 'INFORMATION valid');
      assert.equal(sense.readUInt32BE(3), (4 << 20) - onTape * 65536, 'residual bytes = planned − written');
    } finally {
      await drive.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
