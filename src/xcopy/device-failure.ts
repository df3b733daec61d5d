import { SenseError, Asc, encodeFixedSense, type AscCode } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import type { ForwardedSense } from './plan.ts';
import type { Tally } from './engine.ts';

// A copy source or destination failed: what the segment engine turns into COPY ABORTED (SPC-4 6.4.5).

/** A CSCD failed: carries the role so the sense can forward the device's own sense. */
export class DeviceFailure extends Error {
  readonly role: 'source' | 'destination';
  readonly asc: AscCode;
  readonly forwarded?: ForwardedSense;
  /** The segment of a failed write (writes of one segment may still be in flight during the next). */
  tally?: Tally;
  constructor(
    role: 'source' | 'destination',
    err: unknown,
    asc: AscCode = Asc.COPY_TARGET_DEVICE_NOT_REACHABLE,
    sense?: Uint8Array,
  ) {
    super(err instanceof Error ? err.message : String(err), { cause: err });
    this.role = role;
    this.asc = asc;
    const s = sense ?? senseOf(err);
    if (s) this.forwarded = { from: role, status: ScsiStatus.CHECK_CONDITION, sense: s };
  }
}

/** The sense a device error carries: a SenseError (local LU) or raw bytes (initiator's ScsiCommandError). */
function senseOf(err: unknown): Uint8Array | undefined {
  if (err instanceof SenseError) return encodeFixedSense(err);
  const e = err as { rawSense?: unknown; sense?: unknown } | null;
  if (e?.rawSense instanceof Uint8Array && e.rawSense.length) return e.rawSense;
  return e?.sense instanceof Uint8Array ? e.sense : undefined;
}
