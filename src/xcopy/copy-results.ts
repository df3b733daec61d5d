import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { DecodeError } from '../util/errors.ts';
import { encodeSense, decodeSense, type DecodedSense, type SenseError, type SenseFormat } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { XcopyLimits } from './descriptors.ts';

/**
 * RECEIVE COPY RESULTS (LID1) parameter data: COPY STATUS, OPERATING PARAMETERS and FAILED
 * SEGMENT DETAILS. The copy manager encodes them and the copy client decodes them, here and
 * nowhere else (SPC-4 6.18).
 */

/** SPC-4 6.18.2 COPY MANAGER STATUS. */
export const CopyManagerStatus = { IN_PROGRESS: 0x00, GOOD: 0x01, ERROR: 0x02 } as const;

export interface CopyStatus {
  /** COPY MANAGER STATUS without the HDD bit. */
  status: number;
  /** HDD: held data discarded. */
  heldDataDiscarded: boolean;
  segmentsProcessed: number;
  /** TRANSFER COUNT scaled by its units. */
  transferBytes: number;
}

/**
 * SPC-4 6.18.2 COPY STATUS (12 bytes): 0–3 AVAILABLE DATA (8); 4 b7 HDD, b6:0 status;
 * 5–6 SEGMENTS PROCESSED; 7 TRANSFER COUNT UNITS; 8–11 TRANSFER COUNT.
 */
export function encodeCopyStatus(s: {
  state: 'running' | 'done' | 'failed';
  segmentsProcessed: number;
  bytesWritten: number;
}): Uint8Array {
  const w = new ByteWriter(12);
  w.setU32(0, 8);
  const status =
    s.state === 'running'
      ? CopyManagerStatus.IN_PROGRESS
      : s.state === 'done'
        ? CopyManagerStatus.GOOD
        : CopyManagerStatus.ERROR;
  w.setU8(4, status);
  w.setU16(5, Math.min(0xffff, s.segmentsProcessed));
  // Units: 0 bytes, 1 KiB, 2 MiB, 3 GiB, 4 TiB, 5 PiB, 6 EiB: the smallest that fits 32 bits.
  let units = 0;
  let count = s.bytesWritten;
  while (count > 0xffffffff && units < 6) {
    count = Math.floor(count / 1024);
    units++;
  }
  w.setU8(7, units).setU32(8, count);
  return w.buf;
}

export function decodeCopyStatus(data: Uint8Array): CopyStatus {
  const r = new ByteReader(data);
  const units = r.u8(7);
  if (units > 6) throw new DecodeError(`COPY STATUS: TRANSFER COUNT UNITS ${units} is reserved`, 7);
  return {
    status: r.u8(4) & 0x7f,
    heldDataDiscarded: (r.u8(4) & 0x80) !== 0,
    segmentsProcessed: r.u16(5),
    transferBytes: r.u32(8) * 1024 ** units,
  };
}

export interface FailedSegmentDetails {
  /** COPY COMMAND STATUS (a SCSI status), or undefined while running or when the copy succeeded. */
  commandStatus?: number;
  sense?: DecodedSense;
  rawSense: Uint8Array;
}

/**
 * SPC-4 6.18.5 FAILED SEGMENT DETAILS: 0–3 AVAILABLE DATA (n−3); 56 COPY COMMAND STATUS;
 * 58–59 SENSE DATA LENGTH; 60… sense data in the format D_SENSE selects. In progress or no
 * error: AVAILABLE DATA 0.
 */
export function encodeFailedSegmentDetails(sense: SenseError | undefined, format: SenseFormat): Uint8Array {
  if (!sense) return new Uint8Array(4);
  const bytes = encodeSense(sense, format);
  const w = new ByteWriter(60 + bytes.length);
  w.setU32(0, w.buf.length - 4);
  w.setU8(56, ScsiStatus.CHECK_CONDITION);
  w.setU16(58, bytes.length);
  w.buf.set(bytes, 60);
  return w.buf;
}

export function decodeFailedSegmentDetails(data: Uint8Array): FailedSegmentDetails {
  const r = new ByteReader(data);
  const available = r.u32(0);
  if (available === 0) return { rawSense: new Uint8Array(0) };
  const senseLength = r.u16(58);
  const rawSense = r.buf.subarray(60, 60 + senseLength);
  if (rawSense.length < senseLength)
    throw new DecodeError(
      `FAILED SEGMENT DETAILS: sense data truncated (${rawSense.length} of ${senseLength} bytes)`,
      60,
    );
  return { commandStatus: r.u8(56), sense: rawSense.length ? decodeSense(rawSense) : undefined, rawSense };
}

/** What OPERATING PARAMETERS reports (SPC-4 6.18.4), as the limits a list builder keeps to. */
export interface OperatingParameters extends XcopyLimits {
  /** SNLID: LIST ID USAGE 11b (untracked) is supported. */
  supportsNoListId: boolean;
  /** Segment and CSCD descriptor type codes the copy manager implements. */
  implementedDescriptorCodes: number[];
}

/**
 * SPC-4 6.18.4 OPERATING PARAMETERS: 0–3 AVAILABLE DATA; 4 b0 SNLID; 8–9 MAXIMUM CSCD
 * DESCRIPTOR COUNT; 10–11 MAXIMUM SEGMENT DESCRIPTOR COUNT; 12–15 MAXIMUM DESCRIPTOR LIST
 * LENGTH; 16–19 MAXIMUM SEGMENT LENGTH; 20–23 MAXIMUM INLINE DATA LENGTH; 24–27 HELD DATA
 * LIMIT; 28–31 MAXIMUM STREAM DEVICE TRANSFER SIZE; 34–35 TOTAL CONCURRENT COPIES; 36 MAXIMUM
 * CONCURRENT COPIES; 37–39 granularities (log2); 43 IMPLEMENTED DESCRIPTOR LIST LENGTH; 44… codes.
 */
export function encodeOperatingParameters(l: XcopyLimits, implementedCodes: readonly number[]): Uint8Array {
  const n = implementedCodes.length;
  const w = new ByteWriter(44 + n);
  w.setU32(0, 40 + n);
  w.setU8(4, 0x01); // SNLID: LIST ID USAGE 11b is supported
  w.setU16(8, l.maxCscdCount).setU16(10, l.maxSegmentCount);
  w.setU32(12, l.maxDescriptorListLength).setU32(16, l.maxSegmentLength);
  w.setU32(20, l.maxInlineDataLength).setU32(24, 0); // held data limit: no hold segments
  w.setU32(28, l.maxStreamTransferSize);
  w.setU16(34, l.maxConcurrentCopies).setU8(36, Math.min(255, l.maxConcurrentCopies));
  w.setU8(37, 9).setU8(38, 2).setU8(39, 0); // granularities (log2): 512-byte data, 4-byte inline
  w.setU8(43, n);
  implementedCodes.forEach((c, i) => w.setU8(44 + i, c));
  return w.buf;
}

export function decodeOperatingParameters(data: Uint8Array): OperatingParameters {
  const r = new ByteReader(data);
  const n = r.u8(43);
  const codes: number[] = [];
  for (let i = 0; i < n && 44 + i < data.length; i++) codes.push(r.u8(44 + i));
  return {
    supportsNoListId: (r.u8(4) & 0x01) !== 0,
    maxCscdCount: r.u16(8),
    maxSegmentCount: r.u16(10),
    maxDescriptorListLength: r.u32(12),
    maxSegmentLength: r.u32(16),
    maxInlineDataLength: r.u32(20),
    maxStreamTransferSize: r.u32(28),
    maxConcurrentCopies: r.u16(34),
    implementedDescriptorCodes: codes,
  };
}
