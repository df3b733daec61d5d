import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';

/**
 * The mode parameter list around the mode pages: its header and block descriptors (SPC-4 7.5.5),
 * the one codec for MODE SENSE data and MODE SELECT parameter lists, target and initiator side.
 *
 * Header, 6-byte commands (4 bytes): 0 MODE DATA LENGTH; 1 MEDIUM TYPE; 2 DEVICE-SPECIFIC
 * PARAMETER; 3 BLOCK DESCRIPTOR LENGTH.
 * Header, 10-byte commands (8 bytes): 0–1 MODE DATA LENGTH; 2 MEDIUM TYPE; 3 DEVICE-SPECIFIC
 * PARAMETER; 4 b0 LONGLBA; 6–7 BLOCK DESCRIPTOR LENGTH.
 * The device-specific parameter: b7 WP for disks (SBC-3 6.4.2) and tapes (SSC-3 8.3.2); tapes
 * add BUFFERED MODE in b6:4.
 *
 * Block descriptor, 8 bytes: 0–3 NUMBER OF LOGICAL BLOCKS (SBC short LBA form; in the general
 * form of SPC-4 7.5.5.1, which tapes use, byte 0 is the DENSITY CODE and 1–3 the number of
 * blocks); 4 reserved; 5–7 BLOCK LENGTH. Long LBA form (LONGLBA set), 16 bytes: 0–7 NUMBER OF
 * LOGICAL BLOCKS; 12–15 LOGICAL BLOCK LENGTH.
 */

export type ModeCommandSize = 6 | 10;

export interface BlockDescriptor {
  /** The whole 4-byte (short) or 8-byte (long) count; in the general form byte 0 is the density. */
  blockCount: number;
  blockLength: number;
}

export interface ModeParameterHeader {
  /** Header bytes: 4 or 8. */
  headerLength: number;
  deviceSpecific: number;
  longLba: boolean;
  blockDescriptorLength: number;
}

export function modeHeaderLength(size: ModeCommandSize): number {
  return size === 6 ? 4 : 8;
}

/**
 * Header, block descriptor (if any) and pages, as MODE SENSE returns them, or as a MODE SELECT
 * parameter list (`select`: MODE DATA LENGTH is then reserved, 0).
 */
export function encodeModeParameters(p: {
  size: ModeCommandSize;
  deviceSpecific: number;
  descriptor?: BlockDescriptor;
  longLba?: boolean;
  pages?: Uint8Array;
  select?: boolean;
}): Uint8Array {
  const hlen = modeHeaderLength(p.size);
  const longLba = !!p.descriptor && !!p.longLba && p.size === 10;
  const bdLen = p.descriptor ? (longLba ? 16 : 8) : 0;
  const pages = p.pages ?? new Uint8Array(0);
  const total = hlen + bdLen + pages.length;
  const w = new ByteWriter(total);
  if (p.size === 6) {
    w.setU8(0, p.select ? 0 : Math.min(255, total - 1));
    w.setU8(2, p.deviceSpecific);
    w.setU8(3, bdLen);
  } else {
    w.setU16(0, p.select ? 0 : total - 2);
    w.setU8(3, p.deviceSpecific);
    w.setU8(4, longLba ? 1 : 0);
    w.setU16(6, bdLen);
  }
  const bd = p.descriptor;
  if (bd) {
    if (longLba) {
      w.setU64(hlen, bd.blockCount);
      w.setU32(hlen + 12, bd.blockLength);
    } else {
      w.setU32(hlen, Math.min(bd.blockCount, 0xffffffff));
      w.setU32(hlen + 4, bd.blockLength & 0xffffff);
    }
  }
  w.pos = hlen + bdLen;
  w.bytes(pages);
  return w.buf;
}

/**
 * A tape's MODE SELECT(6) parameter list that only sets the block descriptor: buffered mode 1
 * (SSC-3 8.3.2), DENSITY CODE, 0 blocks, BLOCK LENGTH (0: variable).
 */
export function encodeModeSelectBlockDescriptor(blockLength: number, densityCode = 0): Uint8Array {
  return encodeModeParameters({
    size: 6,
    select: true,
    deviceSpecific: 0x10,
    descriptor: { blockCount: densityCode * 0x1000000, blockLength },
  });
}

/** The header of mode parameter data; undefined when `d` is shorter than a header. */
export function decodeModeParameterHeader(d: Uint8Array, size: ModeCommandSize): ModeParameterHeader | undefined {
  const headerLength = modeHeaderLength(size);
  if (d.length < headerLength) return undefined;
  const r = new ByteReader(d);
  if (size === 6) return { headerLength, deviceSpecific: r.u8(2), longLba: false, blockDescriptorLength: r.u8(3) };
  return { headerLength, deviceSpecific: r.u8(3), longLba: (r.u8(4) & 0x01) !== 0, blockDescriptorLength: r.u16(6) };
}

/** The first block descriptor, if the data holds a whole one. */
export function decodeBlockDescriptor(
  d: Uint8Array,
  h: ModeParameterHeader,
): (BlockDescriptor & { density: number }) | undefined {
  const at = h.headerLength;
  const r = new ByteReader(d);
  if (h.longLba) {
    if (h.blockDescriptorLength < 16 || d.length < at + 16) return undefined;
    return { density: 0, blockCount: r.u64(at), blockLength: r.u32(at + 12) };
  }
  if (h.blockDescriptorLength < 8 || d.length < at + 8) return undefined;
  return { density: r.u8(at), blockCount: r.u32(at), blockLength: r.u24(at + 5) };
}
