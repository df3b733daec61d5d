import type { TapeDevice } from '../tape/tape-device.ts';
import { decodeRecord, recordLength } from './codec.ts';
import { checkTapeBlockBytes } from './geometry.ts';
import { TapeFormatError } from './errors.ts';
import type { TapeRecord } from './records.ts';

/**
 * Read the record at the drive's position (fixed-block mode): its first block, then as many
 * more as the prefix says. Leaves the drive after the record, or after a filemark it met
 * instead. Throws TapeFormatError for anything that is not a whole, valid record.
 */
export async function readRecord(
  dev: TapeDevice,
  tapeBlockBytes: number,
): Promise<TapeRecord | { kind: 'filemark' } | { kind: 'eod' }> {
  checkTapeBlockBytes(tapeBlockBytes);
  if (dev.blockLength !== tapeBlockBytes) {
    const mode = dev.blockLength ? `${dev.blockLength}-byte fixed` : 'variable';
    const msg = `drive is in ${mode}-block mode, the pool uses ${tapeBlockBytes}-byte blocks`;
    throw new TapeFormatError('bad-block-size', msg);
  }
  const first = new Uint8Array(tapeBlockBytes);
  const r = await dev.read(first);
  if (r.kind !== 'data') return { kind: r.kind };
  if (r.bytes < tapeBlockBytes) {
    throw new TapeFormatError('truncated', `short block: ${r.bytes} of ${tapeBlockBytes} bytes`, { offset: r.bytes });
  }
  const blocks = recordLength(first).blocks(tapeBlockBytes);
  if (blocks === 1) return decodeRecord(first);
  const all = new Uint8Array(blocks * tapeBlockBytes);
  all.set(first);
  const rest = await dev.read(all.subarray(tapeBlockBytes));
  const got = rest.kind === 'data' ? rest.bytes : 0;
  if (got < all.length - tapeBlockBytes) {
    const met = rest.kind === 'data' ? 'a filemark or end of data' : `a ${rest.kind}`;
    throw new TapeFormatError(
      'truncated',
      `record needs ${blocks} blocks, found ${1 + Math.floor(got / tapeBlockBytes)} then ${met}`,
      { offset: tapeBlockBytes + got },
    );
  }
  return decodeRecord(all);
}
