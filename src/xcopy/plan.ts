import { SenseError, SenseKey, Asc, SenseDataSource, encodeFixedSense, type AscCode } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { BlockDevice } from '../block/block-device.ts';
import type { TapeDevice } from '../tape/tape-device.ts';
import {
  BLOCK_PDTS,
  PDT,
  type CscdDescriptor,
  type Segment,
  type XcopyLimits,
  type XcopyParameterList,
} from './descriptors.ts';
import type { CopyTarget } from './copy-target.ts';

/**
 * The whole copy, worked out in bytes before any I/O: which blocks or records each segment
 * reads and writes, and what residual data it leaves (SPC-5 5.17.7.2, Tables 115–117).
 * Every range, device type and inexact-segment error is found here, so the engine only
 * moves bytes and nothing is written outside the blocks this plan names.
 */

/** A CSCD after resolution, with its descriptor's device-type-specific parameters. */
export type Endpoint =
  | { kind: 'block'; device: BlockDevice; blockSize: number; pad: boolean; cscdOffset: number }
  | { kind: 'stream'; device: TapeDevice; /** 0 = variable */ fixedBlock: number; pad: boolean; cscdOffset: number }
  | { kind: 'null'; pad: boolean; cscdOffset: number };

export type Source =
  | { kind: 'none' }
  | { kind: 'block'; ep: Extract<Endpoint, { kind: 'block' }>; lba: number; blocks: number }
  /** `reads` transfers of `unit` bytes (variable: one record each; fixed: unit/fixedBlock blocks). */
  | { kind: 'stream'; ep: Extract<Endpoint, { kind: 'stream' }>; unit: number; reads: number; lastUnit: number }
  | { kind: 'bytes'; data: Uint8Array };

export type Destination =
  | { kind: 'none' }
  | { kind: 'block'; ep: Extract<Endpoint, { kind: 'block' }>; lba: number; blocks: number }
  /** `units` of `unit` bytes, written `perWrite` units at a time. */
  | { kind: 'stream'; ep: Extract<Endpoint, { kind: 'stream' }>; unit: number; perWrite: number; units: number };

export interface DataStep {
  kind: 'data';
  segment: Segment;
  source: Source;
  /** Bytes taken from the source residual before any read. */
  fromResidual: number;
  /** Bytes processed (source data → destination data), SPC-5 5.17.7.2. */
  processBytes: number;
  destination: Destination;
  /** Zero bytes appended to destination data (PAD) before the last write. */
  padBytes: number;
  /** After the segment: keep or discard the residuals. */
  discardSourceResidual: boolean;
  discardDestinationResidual: boolean;
  /** True when the destination is written in units that stop short (dest-count segments use this). */
  destinationCount: boolean;
  /** Destination bytes this segment writes (for progress and the residual in sense INFORMATION). */
  writeBytes: number;
}

export type TapeOp =
  | { kind: 'filemarks'; count: number; immed: boolean }
  | { kind: 'space'; unit: 'blocks' | 'filemarks' | 'eod'; count: number }
  | { kind: 'locate'; blockId: number };

export type Step =
  | DataStep
  | { kind: 'tape'; segment: Segment; ep: Extract<Endpoint, { kind: 'stream' }>; op: TapeOp }
  | { kind: 'verify'; segment: Segment };

export interface ForwardedSense {
  from: 'source' | 'destination';
  /** SCSI status byte the CSCD returned, then its sense data. */
  status: number;
  sense: Uint8Array;
}

export interface CopyAbortedOptions {
  asc: AscCode;
  segment: number;
  /** Field pointer: relative to the segment descriptor (sd) or to the parameter list. */
  field?: { sd: boolean; offset: number; bit?: number };
  forwarded?: ForwardedSense;
  /** Residual for the segment (SPC-5 5.17.7.4 c), when something was written. */
  residual?: number;
}

/**
 * SPC-5 5.17.7.4: COPY ABORTED with the segment number in COMMAND-SPECIFIC INFORMATION, the
 * segment pointer in SENSE-KEY SPECIFIC (4.5.2.4.5), and the failing CSCD's status and sense
 * forwarded: after byte 17 in fixed format, a 0Ch descriptor in descriptor format (sense.ts).
 */
export function copyAborted(o: CopyAbortedOptions): SenseError {
  let senseKeySpecific: Uint8Array | undefined;
  if (o.field) {
    const f = o.field;
    senseKeySpecific = new Uint8Array([
      (f.sd ? 0x20 : 0) | (f.bit !== undefined ? 0x08 | (f.bit & 7) : 0),
      (f.offset >> 8) & 0xff,
      f.offset & 0xff,
    ]);
  }
  const fwd = o.forwarded;
  return new SenseError(SenseKey.COPY_ABORTED, o.asc, {
    commandSpecific: o.segment & 0xffff,
    senseKeySpecific,
    forwarded: fwd && {
      source: fwd.from === 'source' ? SenseDataSource.COPY_SOURCE : SenseDataSource.COPY_DESTINATION,
      status: fwd.status,
      sense: fwd.sense,
    },
    info: o.residual,
  });
}

/** The sense a block device would return for an out-of-range LBA, to forward (SBC-4 4.5). */
export function deviceSense(key: number, asc: AscCode): Uint8Array {
  return encodeFixedSense(new SenseError(key, asc));
}

const F = {
  // Segment field offsets, SPC-5 Tables 149–162.
  STDL: 9,
  BLOCK_COUNT_BS: 14,
  LBA_BS: 16,
  BLOCK_COUNT_BB: 10,
  SRC_LBA_BB: 12,
  DST_LBA_BB: 20,
  SOURCE: 4,
  DESTINATION: 6,
} as const;

export interface PlanContext {
  /** Endpoints by CSCD descriptor ID (index, FFFFh, C000h/C001h), resolved beforehand. */
  endpoint(id: number): Endpoint;
  limits: XcopyLimits;
}

/** Turn a resolved CopyTarget and its CSCD descriptor into an endpoint, checking the device type. */
export function makeEndpoint(target: CopyTarget, cscd: CscdDescriptor | undefined, segment: number): Endpoint {
  const cscdOffset = cscd?.offset ?? 0;
  const pad = cscd?.pad ?? false;
  const wrongType = () =>
    copyAborted({ asc: Asc.INCORRECT_COPY_TARGET_DEVICE_TYPE, segment, field: { sd: false, offset: cscdOffset } });
  if (target.kind === 'block') {
    if (cscd && !BLOCK_PDTS.includes(cscd.peripheralDeviceType)) throw wrongType();
    // SPC-5 6.4.5.3: DISK BLOCK LENGTH 0 means "ask the device".
    if (cscd && cscd.blockLength !== 0 && cscd.blockLength !== target.device.blockSize) throw wrongType();
    return { kind: 'block', device: target.device, blockSize: target.device.blockSize, pad, cscdOffset };
  }
  if (cscd && cscd.peripheralDeviceType !== PDT.TAPE) throw wrongType();
  const fixedBlock = cscd ? (cscd.fixed ? cscd.blockLength : 0) : target.device.blockLength;
  if (fixedBlock !== target.device.blockLength) throw wrongType();
  return { kind: 'stream', device: target.device, fixedBlock, pad, cscdOffset };
}

/** Build the plan for every segment, in order; throws COPY ABORTED naming the first bad segment. */
export function planCopy(list: XcopyParameterList, ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  let rs = 0; // residual source bytes
  let rd = 0; // residual destination bytes
  const last = list.segments.length - 1;
  for (const seg of list.segments) {
    const n = seg.index;
    const abort = (asc: AscCode, offset?: number, forwarded?: ForwardedSense) =>
      copyAborted({ asc, segment: n, field: offset === undefined ? undefined : { sd: true, offset }, forwarded });
    const ep = (id: number) => ctx.endpoint(id);
    const invalidOp = (offset: number) => abort(Asc.INVALID_OPERATION_FOR_COPY_SOURCE_OR_DESTINATION, offset);
    const asBlock = (id: number, offset: number) => {
      const e = ep(id);
      // SPC-5 Table 148 b: a null LU gets no commands: as if unreachable.
      if (e.kind === 'null') throw abort(Asc.UNREACHABLE_COPY_TARGET, offset);
      if (e.kind !== 'block') throw invalidOp(offset);
      return e;
    };
    const asStream = (id: number, offset: number) => {
      const e = ep(id);
      if (e.kind === 'null') throw abort(Asc.UNREACHABLE_COPY_TARGET, offset);
      if (e.kind !== 'stream') throw invalidOp(offset);
      return e;
    };
    const streamUnit = (e: Extract<Endpoint, { kind: 'stream' }>, stdl: number) => {
      // SPC-5 Table 138: variable → STDL bytes per transfer; fixed → STDL × STREAM BLOCK LENGTH.
      const unit = e.fixedBlock ? stdl * e.fixedBlock : stdl;
      if (stdl === 0 || unit > ctx.limits.maxStreamTransferSize)
        throw abort(Asc.INVALID_FIELD_IN_PARAMETER_LIST, F.STDL);
      return unit;
    };
    const checkBlocks = (
      e: Extract<Endpoint, { kind: 'block' }>,
      lba: number,
      blocks: number,
      lbaField: number,
      role: 'source' | 'destination',
    ) => {
      if (lba + blocks > e.device.blockCount) {
        throw abort(Asc.COPY_TARGET_DEVICE_NOT_REACHABLE, lbaField, {
          from: role,
          status: ScsiStatus.CHECK_CONDITION,
          sense: deviceSense(SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE),
        });
      }
      if (role === 'destination' && blocks > 0 && e.device.readOnly) {
        throw abort(Asc.COPY_TARGET_DEVICE_NOT_REACHABLE, F.DESTINATION, {
          from: role,
          status: ScsiStatus.CHECK_CONDITION,
          sense: deviceSense(SenseKey.DATA_PROTECT, Asc.WRITE_PROTECTED),
        });
      }
    };

    if (seg.type === 0x07) {
      ep(seg.source); // reachability was checked when resolving
      steps.push({ kind: 'verify', segment: seg });
      continue;
    }
    if (seg.type === 0x10 || seg.type === 0x11 || seg.type === 0x12) {
      const e = asStream(seg.destination, F.DESTINATION);
      let op: TapeOp;
      if (seg.type === 0x10) op = { kind: 'filemarks', count: seg.count, immed: seg.immed };
      else if (seg.type === 0x12) op = { kind: 'locate', blockId: seg.objectId };
      else {
        // SSC-3 SPACE codes: 0 logical blocks, 1 filemarks, 3 end of data.
        const unit = ({ 0: 'blocks', 1: 'filemarks', 3: 'eod' } as const)[seg.code as 0 | 1 | 3];
        if (!unit) throw abort(Asc.INVALID_FIELD_IN_PARAMETER_LIST, 8);
        op = { kind: 'space', unit, count: seg.count };
      }
      steps.push({ kind: 'tape', segment: seg, ep: e, op });
      continue; // residuals retained, as for 07h (SPC-5 Table 115)
    }

    // Data segments. Source side.
    let source: Source = { kind: 'none' };
    let destination: Destination = { kind: 'none' };
    let srcPad = false;
    let N = 0; // bytes processed
    let fromResidual = 0;
    let destinationCount = false;
    let dstUnit = 0;
    let dstUnits = 0;
    let rdAfter: number;

    // Destination endpoints first: the dest-count segments size the source from them.
    type DstEp = {
      e: Extract<Endpoint, { kind: 'block' }> | Extract<Endpoint, { kind: 'stream' }>;
      unit: number;
      perWrite: number;
    };
    let dst: DstEp | undefined;
    if (seg.type === 0x00 || seg.type === 0x04 || seg.type === 0x05) {
      const e = asStream(seg.destination, F.DESTINATION);
      const u = streamUnit(e, seg.streamTransferLength);
      dst = e.fixedBlock ? { e, unit: e.fixedBlock, perWrite: u / e.fixedBlock } : { e, unit: u, perWrite: 1 };
    } else if (seg.type === 0x01 || seg.type === 0x02) {
      const e = asBlock(seg.destination, F.DESTINATION);
      dst = { e, unit: e.blockSize, perWrite: 0 };
    }
    const dstPad = dst?.e.pad ?? false;

    const takeSource = (need: number) => {
      fromResidual = Math.min(rs, need);
      return need - fromResidual;
    };

    if (seg.type === 0x01 || (seg.type === 0x02 && seg.dc)) {
      // Destination count (SPC-5 Table 115): write exactly blockCount destination blocks.
      destinationCount = true;
      const M = seg.blockCount * dst!.unit;
      if (rd >= M) {
        N = 0;
        rdAfter = rd - M;
      } else {
        N = M - rd;
        rdAfter = 0;
      }
      dstUnits = seg.blockCount;
    } else if (seg.type === 0x00 || seg.type === 0x02) {
      const e = asBlock(seg.source, F.SOURCE);
      N = seg.blockCount * e.blockSize;
    } else if (seg.type === 0x04) {
      if (seg.inlineOffset + seg.byteCount > list.inline.length) throw abort(Asc.INLINE_DATA_LENGTH_EXCEEDED, 12);
      N = seg.byteCount;
    } else if (seg.type === 0x05) {
      N = seg.data.length;
    } else if (seg.type === 0x06) {
      N = seg.byteCount;
    }

    // Read side: how much comes from residual and how many reads.
    if (seg.type === 0x00 || seg.type === 0x02) {
      const e = asBlock(seg.source, F.SOURCE);
      srcPad = e.pad;
      const need = takeSource(N);
      const blocks = Math.ceil(need / e.blockSize);
      const lbaField = 'sourceLba' in seg ? F.SRC_LBA_BB : F.LBA_BS;
      const lba = 'sourceLba' in seg ? seg.sourceLba : seg.lba;
      checkBlocks(e, lba, blocks, lbaField, 'source');
      source = { kind: 'block', ep: e, lba, blocks };
      rs = rs - fromResidual + (blocks * e.blockSize - need);
    } else if (seg.type === 0x01 || seg.type === 0x06) {
      const e = asStream(seg.source, F.SOURCE);
      srcPad = e.pad;
      const need = takeSource(N);
      const unit = need > 0 || seg.type === 0x01 ? streamUnit(e, seg.streamTransferLength) : 1;
      let reads: number;
      let lastUnit: number;
      if (e.fixedBlock) {
        // Just enough whole blocks, up to STDL blocks per READ.
        const blocks = Math.ceil(need / e.fixedBlock);
        reads = Math.ceil(blocks / (unit / e.fixedBlock));
        lastUnit = reads === 0 ? 0 : (blocks - (reads - 1) * (unit / e.fixedBlock)) * e.fixedBlock;
        rs = rs - fromResidual + (blocks * e.fixedBlock - need);
      } else {
        reads = Math.ceil(need / unit);
        lastUnit = unit;
        rs = rs - fromResidual + (reads * unit - need);
      }
      source = { kind: 'stream', ep: e, unit, reads, lastUnit };
    } else if (seg.type === 0x04) {
      source = { kind: 'bytes', data: list.inline.subarray(seg.inlineOffset, seg.inlineOffset + seg.byteCount) };
    } else if (seg.type === 0x05) {
      source = { kind: 'bytes', data: seg.data };
    }

    // Write side.
    if (dst) {
      dstUnit = dst.unit;
      if (!destinationCount) {
        const total = rd + N;
        dstUnits = Math.floor(total / dstUnit);
        rdAfter = total - dstUnits * dstUnit;
      }
    } else {
      rdAfter = rd; // 06h: nothing written, destination residual untouched
    }

    // SPC-5 Table 116: residuals at the end of the segment.
    let padBytes = 0;
    let discardS = false;
    let discardD = false;
    const isLast = seg.index === last;
    if (seg.cat) {
      discardS = discardD = isLast;
    } else if (dstPad) {
      if (destinationCount && rdAfter! > 0) throw abort(Asc.UNEXPECTED_INEXACT_SEGMENT);
      if (rdAfter! > 0) {
        padBytes = dstUnit - rdAfter!;
        dstUnits += 1;
        rdAfter = 0;
      }
      discardS = srcPad || isLast;
    } else if (srcPad) {
      discardS = discardD = true;
    } else if (rs > 0 || rdAfter! > 0) {
      throw abort(Asc.UNEXPECTED_INEXACT_SEGMENT);
    }

    if (dst && dst.e.kind === 'block') {
      const lba = 'destinationLba' in seg ? seg.destinationLba : 'lba' in seg ? seg.lba : 0;
      checkBlocks(dst.e, lba, dstUnits, seg.type === 0x01 ? F.LBA_BS : F.DST_LBA_BB, 'destination');
      destination = { kind: 'block', ep: dst.e, lba, blocks: dstUnits };
    } else if (dst && dst.e.kind === 'stream') {
      destination = { kind: 'stream', ep: dst.e, unit: dst.unit, perWrite: dst.perWrite, units: dstUnits };
    }

    steps.push({
      kind: 'data',
      segment: seg,
      source,
      fromResidual,
      processBytes: N,
      destination,
      padBytes,
      discardSourceResidual: discardS,
      discardDestinationResidual: discardD,
      destinationCount,
      writeBytes: dstUnits * dstUnit,
    });
    if (discardS) rs = 0;
    rd = discardD ? 0 : rdAfter!;
  }
  return steps;
}
