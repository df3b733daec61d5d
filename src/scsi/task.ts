/**
 * The seam between a SCSI transport (the iSCSI target, or an in-process caller) and a
 * logical unit. The transport gathers all Data-Out before calling `execute`, and sends
 * `dataIn` back (truncated to the initiator's expected length) with residuals computed
 * from `transferLength` (SAM-5 5.4: residual = expected − what the CDB asked for).
 */
import type { SenseFormat, SenseValue } from './sense.ts';
import { BufferPool } from '../util/buffer-pool.ts';

/** An I_T nexus: one initiator port (iSCSI name + ISID) talking to one target port. SAM-5 4.7 */
export interface Nexus {
  /** Stable key, unique per I_T nexus: `${initiatorName},i,0x${isid},${targetName},t,${tpgt}`. */
  readonly key: string;
  readonly initiatorName: string;
  /** 6-byte ISID as 12 hex digits. */
  readonly isid: string;
  readonly targetName: string;
  readonly tpgt: number;
  /** SPC-4 7.6.4.6 iSCSI TransportID (format 01b: name + ",i,0x" + ISID), used by PERSISTENT RESERVE. */
  readonly transportId: Uint8Array;
}

/** What a LU can see of the target it lives in: its sibling LUs as mapped for this session. */
export interface TargetContext {
  readonly targetName: string;
  readonly relativePortId: number;
  /** LUs mapped to the requesting session, by LUN. */
  luns(): ReadonlyMap<number, LogicalUnit>;
}

export interface ScsiTask {
  readonly cdb: Uint8Array;
  readonly lun: number;
  readonly nexus: Nexus;
  readonly target: TargetContext;
  /** All Data-Out the initiator sent (length ≤ its expected data transfer length), or empty. */
  readonly dataOut: Uint8Array;
  /** The initiator's expected data transfer length for Data-In (iSCSI EDTL of a read). */
  readonly expectedInLength: number;
  /** Aborted by ABORT TASK, LUN RESET, or the connection dropping. */
  readonly signal: AbortSignal;
  /** SAM-5 task attribute (0 untagged/simple…); carried for completeness. */
  readonly taskAttribute?: number;
}

export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;

export interface ScsiResult {
  status: number;
  /** Data-In to return (the transport sends at most expectedInLength of it). */
  dataIn?: Uint8Array;
  /** Sense data, when status is CHECK CONDITION, in the format in effect (fixed unless D_SENSE=1). */
  sense?: Uint8Array;
  /** The sense as a value, so `runCommand` can encode it in the LU's format (command-table.ts). */
  senseData?: SenseValue;
  /**
   * Bytes the CDB itself asked to transfer (in its direction). The transport compares it
   * with the iSCSI expected length to report overflow/underflow. Omitted: use dataIn's length.
   */
  transferLength?: number;
  /**
   * Called by the transport once `dataIn` has been handed to the network (or dropped), so the
   * LU may reuse that buffer (a pooled read buffer). Never called twice.
   */
  release?: () => void;
}

export type ResetKind = 'lun' | 'target-warm' | 'target-cold';

export interface LogicalUnit {
  /** SPC-4 6.6.2 PERIPHERAL DEVICE TYPE: 00h disk, 01h tape, 03h processor, 08h changer. */
  readonly deviceType: number;
  /** Sense format in effect (Control mode page D_SENSE, SPC-4 7.5.8); fixed when absent. */
  readonly senseFormat?: SenseFormat;
  execute(task: ScsiTask): Promise<ScsiResult>;
  /**
   * True when execute() itself applies this command in the order execute() is called (a tape's
   * one position). Task attributes then need only start tasks in CmdSN order: an ORDERED task
   * need not wait for older ones to complete (SAM-5 8.6 is met by the LU), so their I/O overlaps.
   */
  appliesInCallOrder?(cdb: Uint8Array): boolean;
  /** LOGICAL UNIT RESET / TARGET RESET from `from`: abort tasks, set unit attentions (SAM-5 6.3). */
  reset(kind: ResetKind, from: Nexus): void;
  /** The I_T nexus is gone (session closed): drop its RESERVE(6) and per-nexus state. */
  nexusLost(nexus: Nexus): void;
  close(): Promise<void>;
}

/** Build a Nexus from iSCSI identities. */
export function makeNexus(initiatorName: string, isid: string, targetName: string, tpgt: number): Nexus {
  const id = `${initiatorName},i,0x${isid}`;
  // SPC-4 7.6.4.6: iSCSI TransportID, FORMAT CODE 01b, null-terminated, padded to a multiple of 4.
  const name = new TextEncoder().encode(id);
  const len = (name.length + 1 + 3) & ~3;
  const transportId = new Uint8Array(4 + len);
  transportId[0] = 0x40 | 0x05; // format 01b, protocol identifier 5h (iSCSI)
  transportId[2] = len >> 8;
  transportId[3] = len & 0xff;
  transportId.set(name, 4);
  return { key: `${id},${targetName},t,${tpgt}`, initiatorName, isid, targetName, tpgt, transportId };
}

/** Data-In buffers of READ commands (disk and tape), given back through ScsiResult.release. */
export const readBuffers = new BufferPool(64 << 20);
