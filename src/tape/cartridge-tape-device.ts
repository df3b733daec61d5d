import { Cartridge } from './cartridge.ts';
import { TapeDrive, DriveError } from './drive.ts';
import type { TapeDevice, TapePosition, TapeReadResult } from './tape-device.ts';

/**
 * The local TapeDevice: a cartridge file behind a TapeDrive, no SCSI in between. The copy
 * manager uses it for tapes in the same process; a remote SSC LU has its own implementation.
 * Filemark and EOD are results, not errors; write protection and a full medium throw DriveError.
 */
export class CartridgeTapeDevice implements TapeDevice {
  readonly drive: TapeDrive;
  private readonly ownsCartridge: boolean;

  constructor(drive: TapeDrive, opts: { ownsCartridge?: boolean } = {}) {
    this.drive = drive;
    this.ownsCartridge = opts.ownsCartridge ?? false;
  }

  /** Open a cartridge file and load it into a private drive. `blockLength` 0 = variable records. */
  static async open(path: string, opts: { blockLength?: number } = {}): Promise<CartridgeTapeDevice> {
    const drive = new TapeDrive();
    drive.blockLength = opts.blockLength ?? 0;
    await drive.load(await Cartridge.open(path));
    return new CartridgeTapeDevice(drive, { ownsCartridge: true });
  }

  get blockLength(): number {
    return this.drive.blockLength;
  }

  /**
   * Variable-length reads are placed synchronously (position moves before the file read), so
   * the copy engine may keep several in flight and still get the records in order.
   */
  get ordersReads(): boolean {
    return this.drive.blockLength === 0;
  }

  async read(target: Uint8Array): Promise<TapeReadResult> {
    const d = this.drive;
    if (d.blockLength > 0) {
      const count = Math.floor(target.length / d.blockLength);
      const out = await d.readFixed(target, count);
      if (out.bytes > 0 && (out.stop === 'filemark' || out.stop === 'ili')) {
        // Blocks came before the filemark (or wrong-length block): hand them over and stay in
        // front of it, so the next read reports it instead of losing it.
        d.position--;
        return { kind: 'data', bytes: out.bytes, recordLength: d.blockLength };
      }
      if (out.bytes > 0 || !out.stop) return { kind: 'data', bytes: out.bytes, recordLength: d.blockLength };
      if (out.stop === 'filemark') return { kind: 'filemark' };
      if (out.stop === 'eod') return { kind: 'eod' };
      throw new DriveError('bad-length', `block at ${d.position - 1} is not ${d.blockLength} bytes long`);
    }
    const out = await d.readVariable(target);
    if (out.stop === 'filemark') return { kind: 'filemark' };
    if (out.stop === 'eod') return { kind: 'eod' };
    return { kind: 'data', bytes: out.bytes, recordLength: out.recordLength };
  }

  async write(record: Uint8Array): Promise<{ earlyWarning: boolean }> {
    const out = await this.drive.write(record);
    await out.durable;
    if (out.overflow)
      throw new DriveError(
        'eod',
        `end of medium: ${out.residue} ${this.drive.blockLength ? 'block(s)' : 'byte(s)'} not written`,
      );
    return { earlyWarning: out.earlyWarning };
  }

  /** Several equal variable-length records as one append (one run on the cartridge). */
  async writeRecords(data: Uint8Array, recordLength: number): Promise<{ earlyWarning: boolean }> {
    if (this.drive.blockLength !== 0) throw new DriveError('bad-length', 'writeRecords is for variable-length mode');
    if (recordLength <= 0 || data.length % recordLength !== 0)
      throw new DriveError('bad-length', `data is not a whole number of ${recordLength}-byte records`);
    const out = await this.drive.write(data, recordLength);
    await out.durable;
    if (out.overflow) {
      throw new DriveError('eod', `end of medium: ${out.residue} record(s) not written`, {
        bytesWritten: data.length - out.residue * recordLength,
      });
    }
    return { earlyWarning: out.earlyWarning };
  }

  async writeFilemarks(count: number): Promise<void> {
    await this.drive.writeFilemarks(count);
  }

  async space(unit: 'blocks' | 'filemarks' | 'eod', count: number): Promise<void> {
    if (unit === 'eod') return this.drive.spaceToEod();
    const out = unit === 'blocks' ? this.drive.spaceBlocks(count) : this.drive.spaceFilemarks(count);
    if (out.stop && !(unit === 'blocks' && out.stop === 'filemark' && out.residue === 0)) {
      throw new DriveError('eod', `space ${unit} ${count}: stopped at ${out.stop} with ${out.residue} left`);
    }
  }

  async locate(blockId: number): Promise<void> {
    const out = this.drive.locate(blockId);
    if (out.stop) throw new DriveError('eod', `locate ${blockId}: past end of data`);
  }

  async rewind(): Promise<void> {
    this.drive.rewind();
  }

  async position(): Promise<TapePosition> {
    const d = this.drive;
    const c = d.medium();
    return { blockId: d.position, fileNumber: c.fileNumberAt(d.position), bop: d.bop, eow: d.beyondEarlyWarning };
  }

  async flush(): Promise<void> {
    await this.drive.writeFilemarks(0);
  }

  async close(): Promise<void> {
    const c = await this.drive.unload();
    if (c && this.ownsCartridge) await c.close();
  }
}
