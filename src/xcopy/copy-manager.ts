import type { RateLimit } from '../util/rate-limit.ts';
import { SenseError, SenseKey, Asc, type SenseFormat } from '../scsi/sense.ts';
import type { CommandEntry, HandlerResult } from '../scsi/command-table.ts';
import { ScsiStatus, type Nexus, type ScsiTask } from '../scsi/task.ts';
import { encodeCopyStatus, encodeFailedSegmentDetails, encodeOperatingParameters } from './copy-results.ts';
import {
  CscdId,
  DEFAULT_LIMITS,
  ListIdUsage,
  SUPPORTED_CSCD_TYPES,
  SUPPORTED_SEGMENT_TYPES,
  decodeXcopyParameterList,
  type Segment,
  type XcopyLimits,
  type XcopyParameterList,
} from './descriptors.ts';
import { executePlan, type CopyProgress } from './engine.ts';
import { BoundedBufferPool } from './copy-buffers.ts';
import { copyAborted, makeEndpoint, planCopy, type Endpoint } from './plan.ts';
import { CopyTargetResolver } from './resolver.ts';
import type { CopyTarget, RemoteCopyTargets } from './copy-target.ts';
import { ScsiOpcode } from '../scsi/opcodes.ts';
import { decodeExtendedCopyCdb, decodeReceiveCopyResultsCdb } from '../scsi/cdb/spc.ts';
import { xcopyFailures, xcopyOperations } from '../metrics/metrics.ts';

/**
 * The copy manager inside every Ferry LU (and the standalone mover's LU 0): EXTENDED COPY
 * (LID1) and RECEIVE COPY RESULTS, with held status per I_T nexus and list identifier.
 * SPC-4 6.3, 6.17 / SPC-5 5.17, 6.5, 6.21–6.25.
 */

export const RcrServiceAction = {
  COPY_STATUS: 0x00,
  RECEIVE_DATA: 0x01,
  OPERATING_PARAMETERS: 0x03,
  FAILED_SEGMENT_DETAILS: 0x04,
} as const;

export interface CopyManagerOptions {
  limits?: XcopyLimits;
  /** LUs reachable through the mover's own portals (standalone `ferry mover`). */
  remote?: RemoteCopyTargets;
  /** Bytes per read/write on block devices. */
  chunkBytes?: number;
  /** Source READs one copy keeps in flight (default 8: a backup waits on the snapshot's reads, docs/benchmarks.md). */
  readsInFlight?: number;
  /** Share one pool between the copy managers of a target. */
  pool?: BoundedBufferPool;
  /** Completed results kept per nexus before the oldest are dropped. */
  maxHeldPerNexus?: number;
  /** Told why a copy was aborted by a device (for logs). */
  onDeviceError?: (info: { segment: number; role: 'source' | 'destination'; error: unknown }) => void;
  /** Completed results nobody asked for are dropped after this long (default 10 minutes). */
  heldForMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Bandwidth cap over every copy of this copy manager (bytes read per second). */
  rate?: RateLimit;
}

interface CopyOperation {
  nexusKey: string;
  listId: number;
  tracked: boolean;
  state: 'running' | 'done' | 'failed';
  /** When the copy finished (for the held-result timeout). */
  finishedAt?: number;
  progress: CopyProgress;
  /** The failure's sense (FAILED SEGMENT DETAILS encodes it in the format in effect then). */
  sense?: SenseError;
  controller: AbortController;
}

export class CopyManager {
  readonly limits: XcopyLimits;
  private readonly resolver: CopyTargetResolver;
  private readonly pool: BoundedBufferPool;
  private readonly readsInFlight: number;
  private readonly maxHeldPerNexus: number;
  private readonly onDeviceError?: CopyManagerOptions['onDeviceError'];
  private readonly heldForMs: number;
  private readonly now: () => number;
  private readonly rate?: RateLimit;
  /** Held status, key = nexus key + list id. Insertion order = age. */
  private readonly held = new Map<string, CopyOperation>();
  /** Every running copy, tracked or not (for resets and the concurrency limit). */
  private readonly running = new Set<CopyOperation>();

  constructor(opts: CopyManagerOptions = {}) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.resolver = new CopyTargetResolver(opts.remote);
    this.pool = opts.pool ?? new BoundedBufferPool(opts.chunkBytes ?? 1024 * 1024, 16);
    this.readsInFlight = opts.readsInFlight ?? 8;
    this.maxHeldPerNexus = opts.maxHeldPerNexus ?? 64;
    this.onDeviceError = opts.onDeviceError;
    this.heldForMs = opts.heldForMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
    this.rate = opts.rate;
  }

  /** 83h/00h EXTENDED COPY(LID1). Resolves when the copy is done (GOOD) or throws COPY ABORTED. */
  async extendedCopy(task: ScsiTask): Promise<HandlerResult> {
    const pll = decodeExtendedCopyCdb(task.cdb).parameterListLength;
    if (pll === 0) return; // SPC-4 6.3.1: not an error
    if (task.dataOut.length < pll) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.PARAMETER_LIST_LENGTH_ERROR);
    const list = decodeXcopyParameterList(task.dataOut.subarray(0, pll), this.limits);

    const tracked = list.header.listIdUsage !== ListIdUsage.UNTRACKED;
    const key = `${task.nexus.key}\u0000${list.header.listId}`;
    if (tracked && this.held.get(key)?.state === 'running') {
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.OPERATION_IN_PROGRESS);
    }
    if (this.running.size >= this.limits.maxConcurrentCopies) return { status: ScsiStatus.BUSY }; // SAM-5 5.3.1
    const op: CopyOperation = {
      nexusKey: task.nexus.key,
      listId: list.header.listId,
      tracked,
      state: 'running',
      progress: { segmentsProcessed: 0, bytesWritten: 0 },
      controller: new AbortController(),
    };
    if (tracked) {
      this.expireHeld();
      this.held.delete(key); // a completed list with the same id is replaced
      this.held.set(key, op);
      this.trimHeld(task.nexus.key);
    }
    this.running.add(op);
    xcopyOperations.inc();
    const onAbort = () => op.controller.abort(task.signal.reason);
    if (task.signal.aborted) onAbort();
    else task.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const endpoints = await this.resolveAll(list, task);
      const steps = planCopy(list, { endpoint: (id) => endpoints.get(id)!, limits: this.limits });
      await executePlan(steps, op.progress, op.controller.signal, {
        readsInFlight: this.readsInFlight,
        pool: this.pool,
        rate: this.rate,
        onDeviceError: this.onDeviceError,
      });
      op.state = 'done';
    } catch (err) {
      op.state = 'failed';
      xcopyFailures.inc();
      const e =
        err instanceof SenseError
          ? err
          : op.controller.signal.aborted
            ? new SenseError(SenseKey.ABORTED_COMMAND, Asc.NO_ADDITIONAL_SENSE)
            : null;
      if (!e) throw err; // a bug: runCommand logs it and answers 04/44/00
      op.sense = e;
      throw e;
    } finally {
      op.finishedAt ??= this.now();
      this.running.delete(op);
      task.signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Resolve every CSCD the segments name, in segment order, before any I/O. Unknown index or
   * designator → COPY ABORTED, UNREACHABLE COPY TARGET (SPC-5 6.4.6.1).
   */
  private async resolveAll(list: XcopyParameterList, task: ScsiTask): Promise<Map<number, Endpoint>> {
    const out = new Map<number, Endpoint>();
    const byLu = new Map<string, CopyTarget>(); // one device object per LU, however many CSCDs name it
    for (const seg of list.segments) {
      for (const [id, field] of referencedIds(seg)) {
        if (out.has(id)) continue;
        const unreachable = (offset: number, sd: boolean) =>
          copyAborted({ asc: Asc.UNREACHABLE_COPY_TARGET, segment: seg.index, field: { sd, offset } });
        if (id === CscdId.NULL_BLOCK || id === CscdId.NULL_STREAM) {
          out.set(id, { kind: 'null', pad: false, cscdOffset: seg.offset + field });
          continue;
        }
        if (id === CscdId.OWN_LU) {
          const t = this.resolver.own(task);
          if (!t) throw unreachable(field, true);
          out.set(id, makeEndpoint(t, undefined, seg.index));
          continue;
        }
        const cscd = id <= CscdId.MAX_INDEX ? list.cscds[id] : undefined;
        if (!cscd) throw unreachable(field, true);
        let t;
        try {
          t = await this.resolver.resolve(cscd, task);
        } catch {
          throw copyAborted({
            asc: Asc.COPY_TARGET_DEVICE_NOT_REACHABLE,
            segment: seg.index,
            field: { sd: false, offset: cscd.offset },
          });
        }
        if (!t) throw unreachable(cscd.offset, false);
        if (t.lu) {
          const first = byLu.get(t.lu);
          if (first) t = first;
          else byLu.set(t.lu, t);
        }
        out.set(id, makeEndpoint(t, cscd, seg.index));
      }
    }
    return out;
  }

  /** 84h RECEIVE COPY RESULTS (LID1): SA 00h, 01h, 03h, 04h. */
  receiveCopyResults(task: ScsiTask, senseFormat: SenseFormat = 'fixed'): HandlerResult {
    const { serviceAction: sa, listId, allocationLength: alloc } = decodeReceiveCopyResultsCdb(task.cdb);
    let data: Uint8Array;
    if (sa === RcrServiceAction.OPERATING_PARAMETERS) {
      data = operatingParameters(this.limits);
    } else {
      this.expireHeld();
      const key = `${task.nexus.key}\u0000${listId}`;
      const op = this.held.get(key);
      if (!op)
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, {
          fieldPointer: { cd: true, field: 2 },
        });
      if (sa === RcrServiceAction.COPY_STATUS) {
        data = encodeCopyStatus({ state: op.state, ...op.progress });
        // SPC-4 6.18.2: status of a finished copy is reported once; failures stay for 04h.
        if (op.state === 'done' && alloc >= 12) this.held.delete(key);
      } else if (sa === RcrServiceAction.RECEIVE_DATA) {
        data = new Uint8Array(4); // no held-data segments (0Bh–0Fh): AVAILABLE DATA 0
        if (op.state === 'done') this.held.delete(key);
      } else {
        data = encodeFailedSegmentDetails(op.state === 'failed' ? op.sense : undefined, senseFormat);
        if (op.state !== 'running' && alloc >= data.length) this.held.delete(key);
      }
    }
    return data.subarray(0, Math.min(alloc, data.length));
  }

  /** LOGICAL UNIT RESET / TARGET RESET: stop every copy, forget held results. */
  reset(): void {
    for (const op of this.running) op.controller.abort(new Error('LU reset'));
    this.held.clear();
  }

  /** The I_T nexus is gone: stop its copies, drop its held results. */
  nexusLost(nexus: Nexus): void {
    for (const op of this.running) if (op.nexusKey === nexus.key) op.controller.abort(new Error('I_T nexus lost'));
    for (const [k, op] of this.held) if (op.nexusKey === nexus.key) this.held.delete(k);
  }

  /** Running copies (for tests and the management API). */
  get activeCopies(): number {
    return this.running.size;
  }

  /** SPC-4 6.18: held results are kept for a vendor-specific time; ours is `heldForMs`. */
  private expireHeld(): void {
    const limit = this.now() - this.heldForMs;
    for (const [k, op] of this.held)
      if (op.state !== 'running' && (op.finishedAt ?? Infinity) < limit) this.held.delete(k);
  }

  private trimHeld(nexusKey: string): void {
    let n = 0;
    for (const op of this.held.values()) if (op.nexusKey === nexusKey) n++;
    for (const [k, op] of this.held) {
      if (n <= this.maxHeldPerNexus) break;
      if (op.nexusKey === nexusKey && op.state !== 'running') {
        this.held.delete(k);
        n--;
      }
    }
  }
}

/** Which CSCD IDs a segment uses, with the field offset inside the segment. */
function referencedIds(seg: Segment): Array<[number, number]> {
  switch (seg.type) {
    case 0x00:
    case 0x01:
    case 0x02:
      return [
        [seg.source, 4],
        [seg.destination, 6],
      ];
    case 0x06:
    case 0x07:
      return [[seg.source, 4]];
    default:
      return [[seg.destination, 6]];
  }
}

const IMPLEMENTED_CODES = [...SUPPORTED_SEGMENT_TYPES, ...SUPPORTED_CSCD_TYPES];

/** SPC-4 6.18.4 OPERATING PARAMETERS (RECEIVE COPY RESULTS SA 03h). */
export function operatingParameters(l: XcopyLimits): Uint8Array {
  return encodeOperatingParameters(l, IMPLEMENTED_CODES);
}

/**
 * SPC-4 7.8.16 Third-party Copy VPD page (8Fh): third-party copy descriptors, each
 * 0–1 type, 2–3 length (n−3), padded to a multiple of 4.
 */
export function thirdPartyCopyVpdPage(peripheralDeviceType: number, l: XcopyLimits = DEFAULT_LIMITS): Uint8Array {
  const body = thirdPartyCopyVpdBody(l);
  const page = new Uint8Array(4 + body.length);
  page[0] = peripheralDeviceType & 0x1f;
  page[1] = 0x8f;
  new DataView(page.buffer).setUint16(2, body.length);
  page.set(body, 4);
  return page;
}

/** The 8Fh page after its 4-byte header (what an SpcState VPD builder returns). */
export function thirdPartyCopyVpdBody(l: XcopyLimits = DEFAULT_LIMITS): Uint8Array {
  const descs: Uint8Array[] = [];
  const desc = (type: number, body: number[] | Uint8Array) => {
    const len = (body.length + 3) & ~3;
    const d = new Uint8Array(4 + len);
    new DataView(d.buffer).setUint16(0, type);
    new DataView(d.buffer).setUint16(2, len);
    d.set(body, 4);
    descs.push(d);
  };
  const be = (v: number, bytes: number) =>
    Array.from({ length: bytes }, (_, i) => (v / 2 ** (8 * (bytes - 1 - i))) & 0xff);
  // 0001h Supported Commands: list length, then {opcode, SA count, SAs}.
  const cmds = [ScsiOpcode.EXTENDED_COPY, 1, 0x00, ScsiOpcode.RECEIVE_COPY_RESULTS, 4, 0x00, 0x01, 0x03, 0x04];
  desc(0x0001, [cmds.length, ...cmds]);
  // 0004h Parameter Data (length 1Ch).
  desc(0x0004, [
    0,
    0,
    0,
    0,
    ...be(l.maxCscdCount, 2),
    ...be(l.maxSegmentCount, 2),
    ...be(l.maxDescriptorListLength, 4),
    ...be(l.maxInlineDataLength, 4),
    ...new Array(12).fill(0),
  ]);
  // 0008h Supported Descriptors.
  desc(0x0008, [IMPLEMENTED_CODES.length, ...IMPLEMENTED_CODES]);
  // 000Ch Supported CSCD Descriptor IDs: FFFFh (this LU).
  desc(0x000c, [0, 2, 0xff, 0xff]);
  // 8001h General Copy Operations (length 20h).
  desc(0x8001, [
    ...be(l.maxConcurrentCopies, 4),
    ...be(l.maxConcurrentCopies, 4),
    ...be(l.maxSegmentLength, 4),
    9,
    2,
    ...new Array(18).fill(0),
  ]);
  // 9101h Stream Copy Operations.
  desc(0x9101, [...be(l.maxStreamTransferSize, 4), ...new Array(8).fill(0)]);
  // C001h Held Data: no hold segments.
  desc(0xc001, [0, 0, 0, 0, 0, ...new Array(7).fill(0)]);
  const body = new Uint8Array(descs.reduce((n, d) => n + d.length, 0));
  let off = 0;
  for (const d of descs) {
    body.set(d, off);
    off += d.length;
  }
  return body;
}

/**
 * Command-table entries for EXTENDED COPY and RECEIVE COPY RESULTS. A LU table spreads them in:
 * `new Map([...spc, ...copyManagerCommands<DiskLu>((lu) => lu.copyManager, (lu) => lu.spc.senseFormat)])`.
 * `senseFormat` is the LU's D_SENSE, for the sense in FAILED SEGMENT DETAILS.
 */
export function copyManagerCommands<L>(
  get: (lu: L) => CopyManager,
  senseFormat: (lu: L) => SenseFormat = () => 'fixed',
): Array<[number, CommandEntry<L>]> {
  // SPC-4 Table 64 (via command-table `pr`): RECEIVE COPY RESULTS only reads state.
  const sa = (name: string, handler: CommandEntry<L>['handler'], pr?: 'read'): CommandEntry<L> => ({
    name,
    handler,
    cdbLength: 16,
    pr,
  });
  return [
    [
      ScsiOpcode.EXTENDED_COPY,
      {
        name: 'EXTENDED COPY',
        cdbLength: 16,
        handler: () => undefined,
        serviceActions: new Map([[0x00, sa('EXTENDED COPY(LID1)', (task, lu) => get(lu).extendedCopy(task))]]),
      },
    ],
    [
      ScsiOpcode.RECEIVE_COPY_RESULTS,
      {
        name: 'RECEIVE COPY RESULTS',
        cdbLength: 16,
        handler: () => undefined,
        serviceActions: new Map([
          [
            RcrServiceAction.COPY_STATUS,
            sa('RECEIVE COPY STATUS(LID1)', (task, lu) => get(lu).receiveCopyResults(task), 'read'),
          ],
          [
            RcrServiceAction.RECEIVE_DATA,
            sa('RECEIVE COPY DATA(LID1)', (task, lu) => get(lu).receiveCopyResults(task), 'read'),
          ],
          [
            RcrServiceAction.OPERATING_PARAMETERS,
            sa('RECEIVE COPY OPERATING PARAMETERS', (task, lu) => get(lu).receiveCopyResults(task), 'read'),
          ],
          [
            RcrServiceAction.FAILED_SEGMENT_DETAILS,
            sa(
              'RECEIVE COPY FAILURE DETAILS(LID1)',
              (task, lu) => get(lu).receiveCopyResults(task, senseFormat(lu)),
              'read',
            ),
          ],
        ]),
      },
    ],
  ];
}
