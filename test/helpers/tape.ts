import { makeNexus, type LogicalUnit, type Nexus, type ScsiResult, type ScsiTask } from '../../src/scsi/task.ts';
import { decodeSense, type DecodedSense } from '../../src/scsi/sense.ts';

/** In-process task runner for tape/changer LU tests (no transport). */
export function nexusFor(name = 'iqn.2026-01.test:init', isid = '400000000001'): Nexus {
  return makeNexus(name, isid, 'iqn.2026-01.test:tape', 1);
}

export interface RunResult extends ScsiResult {
  decoded?: DecodedSense;
}

export async function runCdb(
  lu: LogicalUnit,
  cdb: Uint8Array,
  opts: { dataOut?: Uint8Array; nexus?: Nexus; luns?: Map<number, LogicalUnit> } = {},
): Promise<RunResult> {
  const task: ScsiTask = {
    cdb,
    lun: 0,
    nexus: opts.nexus ?? nexusFor(),
    target: { targetName: 'iqn.2026-01.test:tape', relativePortId: 1, luns: () => opts.luns ?? new Map() },
    dataOut: opts.dataOut ?? new Uint8Array(0),
    expectedInLength: 1 << 26,
    signal: new AbortController().signal,
  };
  const r: RunResult = await lu.execute(task);
  if (r.sense) r.decoded = decodeSense(r.sense);
  return r;
}
