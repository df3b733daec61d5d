import type { BlockDevice } from '../block/block-device.ts';
import { checkRange, checkWhole } from '../block/block-device.ts';
import type { InitiatorSession } from './session.ts';
import { buildRead16, buildReadCapacity16, buildSynchronizeCache10, buildWrite16 } from '../scsi/cdb/sbc.ts';
import { decodeReadCapacity16Data } from '../scsi/read-capacity.ts';

/**
 * Wait for every command, then throw the first failure: the caller's buffer is in use until
 * the last of them has finished (Promise.all would hand it back early).
 */
async function settleAll(jobs: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** Largest single READ/WRITE the remote device issues. */
const MAX_TRANSFER_BYTES = 1 << 20;

/**
 * A disk LU on any iSCSI target, as a BlockDevice (DESIGN.md "Key seams"). Large I/Os are
 * split into 1 MiB commands kept in flight together (bounded by the target's CmdSN window).
 */
export class RemoteBlockDevice implements BlockDevice {
  readonly session: InitiatorSession;
  readonly lun: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly: boolean;

  private constructor(
    session: InitiatorSession,
    lun: number,
    blockSize: number,
    blockCount: number,
    readOnly: boolean,
  ) {
    this.session = session;
    this.lun = lun;
    this.blockSize = blockSize;
    this.blockCount = blockCount;
    this.readOnly = readOnly;
  }

  static async open(
    session: InitiatorSession,
    lun: number,
    opts: { readOnly?: boolean } = {},
  ): Promise<RemoteBlockDevice> {
    const cap = decodeReadCapacity16Data((await session.command(lun, buildReadCapacity16(), { inLength: 32 })).data);
    return new RemoteBlockDevice(session, lun, cap.blockSize, cap.lastLba + 1, opts.readOnly ?? false);
  }

  async read(lba: number, blockCount: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(blockCount * this.blockSize);
    await this.readInto(lba, buf);
    return buf;
  }

  async readInto(lba: number, target: Uint8Array): Promise<void> {
    checkRange(this, lba, checkWhole(this, target.length));
    const per = MAX_TRANSFER_BYTES / this.blockSize;
    const jobs: Promise<unknown>[] = [];
    for (let off = 0; off < target.length; off += MAX_TRANSFER_BYTES) {
      const n = Math.min(MAX_TRANSFER_BYTES, target.length - off);
      jobs.push(
        this.session.command(this.lun, buildRead16(lba + (off / MAX_TRANSFER_BYTES) * per, n / this.blockSize), {
          into: target.subarray(off, off + n),
        }),
      );
    }
    await settleAll(jobs);
  }

  async write(lba: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error('remote device opened read-only');
    checkRange(this, lba, checkWhole(this, data.length));
    const per = MAX_TRANSFER_BYTES / this.blockSize;
    const jobs: Promise<unknown>[] = [];
    for (let off = 0; off < data.length; off += MAX_TRANSFER_BYTES) {
      const n = Math.min(MAX_TRANSFER_BYTES, data.length - off);
      jobs.push(
        this.session.command(this.lun, buildWrite16(lba + (off / MAX_TRANSFER_BYTES) * per, n / this.blockSize), {
          dataOut: data.subarray(off, off + n),
        }),
      );
    }
    await settleAll(jobs);
  }

  async flush(): Promise<void> {
    await this.session.command(this.lun, buildSynchronizeCache10());
  }

  async close(): Promise<void> {}
}
