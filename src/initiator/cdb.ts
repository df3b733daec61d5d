import { ScsiOpcode } from '../scsi/opcodes.ts';

// CDB builders for the initiator (SPC-4, SBC-3). Pure functions: bytes out, nothing else.
// Tape (SSC) builders live in src/scsi/tape-cdb.ts.

function cdb(n: number): Buffer {
  return Buffer.alloc(n);
}

export function testUnitReady(): Uint8Array {
  return cdb(6);
}

/** SPC-4 6.6 INQUIRY; `page` selects a VPD page (EVPD=1). */
export function inquiry(allocation = 255, page?: number): Uint8Array {
  const c = cdb(6);
  c[0] = ScsiOpcode.INQUIRY;
  if (page !== undefined) {
    c[1] = 0x01;
    c[2] = page;
  }
  c.writeUInt16BE(allocation, 3);
  return c;
}

export function requestSense(allocation = 252): Uint8Array {
  const c = cdb(6);
  c[0] = ScsiOpcode.REQUEST_SENSE;
  c[4] = allocation;
  return c;
}

export function reportLuns(allocation = 4096): Uint8Array {
  const c = cdb(12);
  c[0] = ScsiOpcode.REPORT_LUNS;
  c.writeUInt32BE(allocation, 6);
  return c;
}

export function readCapacity10(): Uint8Array {
  const c = cdb(10);
  c[0] = ScsiOpcode.READ_CAPACITY_10;
  return c;
}

/** SBC-3 5.16 READ CAPACITY(16) (SERVICE ACTION IN 9Eh/10h). */
export function readCapacity16(allocation = 32): Uint8Array {
  const c = cdb(16);
  c[0] = ScsiOpcode.SERVICE_ACTION_IN_16;
  c[1] = 0x10;
  c.writeUInt32BE(allocation, 10);
  return c;
}

export function read10(lba: number, blocks: number, fua = false): Uint8Array {
  const c = cdb(10);
  c[0] = ScsiOpcode.READ_10;
  if (fua) c[1] = 0x08;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function write10(lba: number, blocks: number, fua = false): Uint8Array {
  const c = cdb(10);
  c[0] = ScsiOpcode.WRITE_10;
  if (fua) c[1] = 0x08;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function read16(lba: number, blocks: number, fua = false): Uint8Array {
  const c = cdb(16);
  c[0] = ScsiOpcode.READ_16;
  if (fua) c[1] = 0x08;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function write16(lba: number, blocks: number, fua = false): Uint8Array {
  const c = cdb(16);
  c[0] = ScsiOpcode.WRITE_16;
  if (fua) c[1] = 0x08;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function synchronizeCache10(lba = 0, blocks = 0): Uint8Array {
  const c = cdb(10);
  c[0] = ScsiOpcode.SYNCHRONIZE_CACHE_10;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

/** SPC-4 6.4 EXTENDED COPY(LID1), service action 00h. */
export function extendedCopy(parameterListLength: number): Uint8Array {
  const c = cdb(16);
  c[0] = ScsiOpcode.EXTENDED_COPY;
  c.writeUInt32BE(parameterListLength, 10);
  return c;
}

/** SPC-4 6.18 RECEIVE COPY RESULTS. */
export function receiveCopyResults(serviceAction: number, listId: number, allocation: number): Uint8Array {
  const c = cdb(16);
  c[0] = ScsiOpcode.RECEIVE_COPY_RESULTS;
  c[1] = serviceAction & 0x1f;
  c[2] = listId;
  c.writeUInt32BE(allocation, 10);
  return c;
}

/** Decode READ CAPACITY(16) data: SBC-3 5.16.2. */
export function decodeReadCapacity16(d: Uint8Array): { lastLba: number; blockSize: number } {
  const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return { lastLba: Number(b.readBigUInt64BE(0)), blockSize: b.readUInt32BE(8) };
}

/** Decode READ CAPACITY(10) data: SBC-3 5.15.2. */
export function decodeReadCapacity10(d: Uint8Array): { lastLba: number; blockSize: number } {
  const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return { lastLba: b.readUInt32BE(0), blockSize: b.readUInt32BE(4) };
}
