import {
  makeNexus,
  type LogicalUnit,
  type Nexus,
  type ScsiResult,
  type ScsiTask,
  type TargetContext,
} from '../../src/scsi/task.ts';
import { decodeSense, type DecodedSense } from '../../src/scsi/sense.ts';
import assert from 'node:assert/strict';
import { buildModeSelect6, buildModeSense6 } from '../../src/scsi/cdb/spc.ts';

/** Helpers for unit tests that drive a LogicalUnit with hand-built CDBs (no transport). */

export const nexusA: Nexus = makeNexus('iqn.2026-11.dev.ferry:client-1', '400000000001', 'iqn.2026-11.dev.ferry:t', 1);
export const nexusB: Nexus = makeNexus('iqn.2026-11.dev.ferry:client-2', '400000000002', 'iqn.2026-11.dev.ferry:t', 1);

export function targetOf(luns: Map<number, LogicalUnit>): TargetContext {
  return { targetName: 'iqn.2026-11.dev.ferry:t', relativePortId: 1, luns: () => luns };
}

export interface TaskOptions {
  nexus?: Nexus;
  dataOut?: Uint8Array;
  expectedInLength?: number;
  signal?: AbortSignal;
  lun?: number;
  target?: TargetContext;
}

/** A CDB from raw bytes: for deliberately malformed CDBs only; the rest use src/scsi/cdb/ builders. */
export function cdb(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

export function makeTask(cdbBytes: Uint8Array, o: TaskOptions = {}): ScsiTask {
  return {
    cdb: cdbBytes,
    lun: o.lun ?? 0,
    nexus: o.nexus ?? nexusA,
    target: o.target ?? targetOf(new Map()),
    dataOut: o.dataOut ?? new Uint8Array(0),
    expectedInLength: o.expectedInLength ?? 1 << 24,
    signal: o.signal ?? new AbortController().signal,
  };
}

/** Sense of a CHECK CONDITION result, decoded; undefined when the status is not 02h. */
export function senseOf(r: ScsiResult): DecodedSense | undefined {
  return r.status === 0x02 && r.sense ? decodeSense(r.sense) : undefined;
}

/** "key/asc/ascq" in hex, or the status name, for compact assertions. */
export function outcome(r: ScsiResult): string {
  const s = senseOf(r);
  if (s) return `${s.key.toString(16)}/${s.asc.toString(16).padStart(2, '0')}/${s.ascq.toString(16).padStart(2, '0')}`;
  return (
    ({ 0: 'GOOD', 4: 'CONDITION MET', 0x18: 'RESERVATION CONFLICT' } as Record<number, string>)[r.status] ??
    `status ${r.status}`
  );
}

/**
 * Set or clear D_SENSE (control mode page byte 2 bit 2, SPC-4 7.5.8): MODE SENSE(6) the page,
 * MODE SELECT(6) it back with PF=1, and check that it reads back.
 */
export async function setDSense(lu: LogicalUnit, on: boolean, o: TaskOptions = {}): Promise<void> {
  const sense6 = (): Promise<ScsiResult> => lu.execute(makeTask(buildModeSense6(0x0a, { dbd: true }), o));
  const ms = await sense6();
  assert.equal(ms.status, 0x00, 'MODE SENSE control page');
  const page = ms.dataIn!.subarray(4 + ms.dataIn![3]);
  assert.equal(page[0] & 0x3f, 0x0a);
  const param = new Uint8Array(4 + page.length);
  param.set(page, 4);
  param[4 + 2] = on ? page[2] | 0x04 : page[2] & ~0x04;
  const sel = await lu.execute(makeTask(buildModeSelect6(param.length), { ...o, dataOut: param }));
  assert.equal(sel.status, 0x00, `MODE SELECT: ${outcome(sel)}`);
  const after = await sense6();
  assert.equal(after.dataIn![4 + after.dataIn![3] + 2] & 0x04, on ? 0x04 : 0, 'D_SENSE reads back');
}
