// Shared pieces of the tape interop tests: an in-process Ferry tape target, and the command
// script run against both Ferry and tgtd (results normalised into a comparable transcript).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Target } from '../../src/iscsi-target/target.ts';
import { TargetServer } from '../../src/iscsi-target/server.ts';
import { InitiatorSession, type CommandResult } from '../../src/initiator/session.ts';
import { openLibrary, openStandaloneDrive, type OpenedLibrary } from '../../src/storage-node/tape-library.ts';
import type { LibraryOptions } from '../../src/tape/library.ts';
import { buildModeSelect6, buildTestUnitReady } from '../../src/scsi/cdb/spc.ts';
import {
  SpaceCode,
  buildRead6,
  buildReadPosition,
  buildRewind,
  buildSpace6,
  buildWrite6,
  buildWriteFilemarks6,
} from '../../src/scsi/cdb/ssc.ts';
import { encodeModeSelectBlockDescriptor } from '../../src/scsi/mode-parameters.ts';

export const TAPE_IQN = 'iqn.2026-11.dev.ferry:vtl';
export const INITIATOR = 'iqn.2026-11.dev.ferry:tape-interop';

export interface TapeTarget {
  host: string;
  port: number;
  dir: string;
  library?: OpenedLibrary;
  close(): Promise<void>;
}

/** Ferry tape target in this process: a library (changer LUN 0, drives 1…) or one stand-alone drive at LUN 0. */
export async function startFerryTape(
  opts: { library?: LibraryOptions; cartridgeBytes?: number } = {},
): Promise<TapeTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tape-'));
  const target = new Target({ name: TAPE_IQN });
  let library: OpenedLibrary | undefined;
  if (opts.library) {
    library = await openLibrary(join(dir, 'vtl'), opts.library);
    target.addLun(0, library.changer);
    library.drives.forEach((d, i) => target.addLun(i + 1, d));
  } else {
    target.addLun(
      0,
      await openStandaloneDrive(join(dir, 'one.cart'), { createSizeBytes: opts.cartridgeBytes ?? 64 << 20 }),
    );
  }
  const server = new TargetServer({ targets: [target] });
  const { host, port } = await server.listen('127.0.0.1', 0);
  return {
    host,
    port,
    dir,
    library,
    async close() {
      await server.close();
      await Promise.all([...target.luns.values()].map((lu) => lu.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function login(host: string, port: number, targetName: string): Promise<InitiatorSession> {
  return InitiatorSession.login({ host, port, initiatorName: INITIATOR, targetName });
}

/** Issue TEST UNIT READY until GOOD (clears power-on / medium-changed unit attentions). */
export async function settle(s: InitiatorSession, lun: number): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const r = await s.command(lun, buildTestUnitReady(), { allowCheckCondition: true });
    if (r.status === 0) return;
  }
  throw new Error(`LUN ${lun} never became ready`);
}

export interface Step {
  step: string;
  status: number;
  sense?: string;
  fm?: boolean;
  eom?: boolean;
  ili?: boolean;
  info?: number;
  bytes: number;
  sha?: string;
}

export function record(tag: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (tag * 37 + i * 11) & 0xff;
  return b;
}

export function summarize(step: string, r: CommandResult): Step {
  const out: Step = { step, status: r.status, bytes: r.data.length };
  if (r.data.length) out.sha = createHash('sha256').update(r.data).digest('hex').slice(0, 12);
  if (r.sense) {
    const s = r.sense;
    out.sense = `${s.key.toString(16)}/${s.asc.toString(16).padStart(2, '0')}/${s.ascq.toString(16).padStart(2, '0')}`;
    out.fm = s.filemark;
    out.eom = s.eom;
    out.ili = s.ili;
    if (s.info !== undefined) out.info = s.info | 0; // signed 32-bit
  }
  return out;
}

/**
 * The common script (SSC-3 variable-length mode): write records and filemarks, rewind,
 * read back (exact, longer, shorter requests; filemarks; end of data), space both ways,
 * overwrite in the middle. Every step is recorded.
 */
export async function commonScript(s: InitiatorSession, lun: number): Promise<Step[]> {
  const steps: Step[] = [];
  const run = async (
    step: string,
    cdb: Uint8Array,
    o: { dataOut?: Uint8Array; inLength?: number } = {},
  ): Promise<CommandResult> => {
    const r = await s.command(lun, cdb, { ...o, allowCheckCondition: true });
    steps.push(summarize(step, r));
    return r;
  };
  const A = record(1, 1000);
  const B = record(2, 500);
  const C = record(3, 300);
  const D = record(4, 200);
  // Variable-length mode (block length 0).
  const sel = encodeModeSelectBlockDescriptor(0);
  await run('mode select variable', buildModeSelect6(sel.length), { dataOut: sel });
  await run('rewind', buildRewind());
  await run('write A 1000', buildWrite6(A.length), { dataOut: A });
  await run('write B 500', buildWrite6(B.length), { dataOut: B });
  await run('write filemark', buildWriteFilemarks6(1));
  await run('write C 300', buildWrite6(C.length), { dataOut: C });
  await run('write 2 filemarks', buildWriteFilemarks6(2));
  await run('rewind', buildRewind());
  await run('read 1000 (A exact)', buildRead6(1000), { inLength: 1000 });
  await run('read 1000 (B shorter: ILI +500)', buildRead6(1000), { inLength: 1000 });
  await run('read 100 (filemark)', buildRead6(100), { inLength: 100 });
  await run('read 100 (C longer: ILI -200)', buildRead6(100), { inLength: 100 });
  await run('read 100 (filemark 2)', buildRead6(100), { inLength: 100 });
  await run('read 100 (filemark 3)', buildRead6(100), { inLength: 100 });
  await run('read 100 (end of data)', buildRead6(100), { inLength: 100 });
  await run('space filemarks -1', buildSpace6(SpaceCode.FILEMARKS, -1));
  await run('space filemarks -1 again', buildSpace6(SpaceCode.FILEMARKS, -1));
  await run('space blocks -1', buildSpace6(SpaceCode.BLOCKS, -1));
  await run('read 300 (C)', buildRead6(300), { inLength: 300 });
  await run('rewind', buildRewind());
  await run('space filemarks 1', buildSpace6(SpaceCode.FILEMARKS, 1));
  await run('read 300 (C after space)', buildRead6(300), { inLength: 300 });
  await run('rewind', buildRewind());
  await run('space blocks 2', buildSpace6(SpaceCode.BLOCKS, 2));
  await run('read 100 (filemark after 2 blocks)', buildRead6(100), { inLength: 100 });
  await run('space blocks 5 (stops at filemark)', buildSpace6(SpaceCode.BLOCKS, 5));
  await run('space filemarks -3 (hits BOP)', buildSpace6(SpaceCode.FILEMARKS, -3));
  await run('read position', buildReadPosition(), { inLength: 20 });
  await run('space to end of data', buildSpace6(SpaceCode.END_OF_DATA, 0));
  await run('read 100 at end of data', buildRead6(100), { inLength: 100 });
  await run('rewind', buildRewind());
  await run('space blocks 1', buildSpace6(SpaceCode.BLOCKS, 1));
  await run('write D 200 (truncates)', buildWrite6(D.length), { dataOut: D });
  await run('read after the new end of data', buildRead6(100), { inLength: 100 });
  await run('rewind', buildRewind());
  await run('read 1000 (A)', buildRead6(1000), { inLength: 1000 });
  await run('read 1000 (D: ILI +800)', buildRead6(1000), { inLength: 1000 });
  await run('read 100 (end of data after D)', buildRead6(100), { inLength: 100 });
  return steps;
}

/**
 * Stream variable-length records to `lun` with 4 WRITE(6)s in flight, checking they are
 * acknowledged in order, and call `kill` once `killAfter` is acknowledged; writes failing after
 * that are expected. Returns the last acknowledged record number.
 */
export async function streamUntilKilled(
  s: InitiatorSession,
  lun: number,
  recordLength: (i: number) => number,
  killAfter: number,
  kill: () => void,
): Promise<number> {
  let acked = -1;
  let next = 0;
  let killed = false;
  const inFlight = new Set<Promise<void>>();
  while (!killed) {
    while (inFlight.size < 4) {
      const i = next++;
      const p: Promise<void> = s
        .command(lun, buildWrite6(recordLength(i)), {
          dataOut: record(i, recordLength(i)),
          allowCheckCondition: true,
        })
        .then((r) => {
          assert.equal(r.status, 0, `write ${i}`);
          assert.equal(i, acked + 1, 'acknowledgements in order (one tape, CmdSN order)');
          acked = i;
          if (acked === killAfter && !killed) {
            killed = true;
            kill();
          }
        })
        .catch((e: Error) => {
          if (!killed) throw e;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.race(inFlight);
  }
  await Promise.allSettled(inFlight);
  return acked;
}
