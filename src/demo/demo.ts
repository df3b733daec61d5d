import { createHash, randomFillSync, randomInt } from 'node:crypto';
import { mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { ServerClient } from '../server/client.ts';
import { startUp, UP_IQN, type Up } from '../server/up.ts';
import { FerryError, UsageError } from '../util/errors.ts';
import type { JobView } from '../jobs/types.ts';

/**
 * `ferry demo`: `ferry up` in this process, then a day in the life of the site, driven through
 * the backup server's REST API exactly as the CLI drives it:
 *
 *   workstations (one iSCSI session each) write to store's disk LUN
 *   full backup: the server waits for write inactivity (shown), snapshots, the mover copies
 *   more writes, then an incremental (changed blocks only)
 *   restore of the chain (full, then incremental) to a new LUN, checked against what was written
 *   verify of the incremental: the tape node's digest against the storage node's
 *
 * The summary sets the bytes on the server's own sockets (iSCSI sessions and node API) beside
 * the bytes the data mover moved.
 */

export const DEMO_WORKSTATIONS = 3;
const TAPE_BLOCK = 256 * 1024;
const MAX_DEMO_BYTES = 8 * 1024 ** 3;
const WRITE_CHUNK = 1 << 20;
const POLL_MS = 100;

export type DemoPhase = 'up' | 'write' | 'backup' | 'incremental' | 'restore' | 'verify';

export type DemoEvent =
  | { kind: 'phase'; phase: DemoPhase; message: string }
  | { kind: 'progress'; phase: DemoPhase; doneBytes: number; totalBytes: number; note?: string };

export interface DemoOptions {
  dir: string;
  sizeBytes: number;
  quietPeriodMs: number;
  timeoutMs: number;
  keep: boolean;
  logLevel?: string;
  onEvent?: (e: DemoEvent) => void;
  signal?: AbortSignal;
}

export interface DemoJob {
  job: number;
  set: number | null;
  state: string;
  /** Bytes the data mover moved for this job. */
  bytes: number;
  seconds: number;
}

export interface DemoResult {
  sizeBytes: number;
  volume: string;
  workstations: number;
  write: { bytes: number; seconds: number; mbPerSecond: number };
  full: DemoJob & { quietWaitSeconds: number };
  incremental: DemoJob & { changedBytes: number };
  restore: DemoJob & { volume: string };
  verify: { job: number; ok: boolean };
  /** Bytes the data mover moved (full + incremental + restore). */
  moverBytes: number;
  /** Bytes on the backup server's sockets: its iSCSI sessions (CDBs, lists, status, metadata) and the node API. */
  serverBytesOnWire: number;
  ratio: number;
  serverless: boolean;
  sha256: { expected: string; restoredOnNode: string; restoredOverIscsi: string };
  verified: boolean;
  seconds: number;
}

export function checkDemoSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 4 * TAPE_BLOCK || sizeBytes % TAPE_BLOCK !== 0) {
    throw new UsageError(`--size must be a multiple of 256K and at least 1M, e.g. 64M; got ${sizeBytes} bytes`);
  }
  if (sizeBytes > MAX_DEMO_BYTES) throw new UsageError(`--size is at most ${MAX_DEMO_BYTES / 1024 ** 3}G`);
}

const mbps = (bytes: number, seconds: number): number =>
  seconds > 0 ? Math.round((bytes / 1e6 / seconds) * 10) / 10 : 0;
const round = (s: number): number => Math.round(s * 1000) / 1000;

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FerryError('ERR_INTERRUPTED', 'interrupted');
}

/** Wait for a job, reporting its progress; throws when it does not end `done`. */
async function follow(
  client: ServerClient,
  job: JobView,
  phase: DemoPhase,
  opts: DemoOptions,
): Promise<{ view: JobView; seconds: number }> {
  const t0 = performance.now();
  let last = '';
  for (;;) {
    const v = await client.getJob(job.id);
    const p = v.progress;
    const note = p.waitingFor
      ? p.waitingFor + (p.lastWriteMsAgo !== null ? ` — last write ${(p.lastWriteMsAgo / 1000).toFixed(1)} s ago` : '')
      : p.phase;
    opts.onEvent?.({
      kind: 'progress',
      phase,
      doneBytes: p.bytesDone,
      totalBytes: Math.max(p.bytesTotal, 1),
      note: note !== last ? note : undefined,
    });
    last = note;
    if (v.state === 'done') return { view: v, seconds: (performance.now() - t0) / 1000 };
    if (v.state === 'failed' || v.state === 'canceled')
      throw new FerryError(
        'ERR_DEMO_JOB',
        `${phase}: job ${v.id} ${v.state}: ${v.error?.message ?? 'no reason given'}`,
      );
    if (opts.signal?.aborted) {
      await client.cancel(job.id).catch(() => undefined);
      checkAbort(opts.signal);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

const demoJob = (v: JobView, seconds: number): DemoJob => ({
  job: v.id,
  set: v.set,
  state: v.state,
  bytes: v.bytes,
  seconds: round(seconds),
});

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  checkDemoSize(opts.sizeBytes);
  const say = (phase: DemoPhase, message: string): void => opts.onEvent?.({ kind: 'phase', phase, message });
  const dir = resolve(opts.dir);
  const createdDir = await mkdir(dir, { recursive: true });
  // What `ferry up` keeps in the directory: disk0.img and its snapshot store, luns/, library/, the catalog, tokens.
  const owned = /^(disk0\.img.*|luns|library|catalog\.db.*|server\.json|server\.token|node\.token)$/;
  const clean = async () => {
    for (const f of await readdir(dir).catch(() => []))
      if (owned.test(f)) await rm(join(dir, f), { recursive: true, force: true });
  };
  await clean(); // a fresh site each run
  const started = performance.now();
  let up: Up | undefined;
  const sessions: InitiatorSession[] = [];
  const onAbort = (): void => {
    for (const s of sessions) s.close();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    say('up', 'starting the site in this process: storage node + tape library, data mover, backup server');
    up = await startUp({
      dir,
      listen: { host: '127.0.0.1', port: 0 },
      diskBytes: opts.sizeBytes,
      cartridgeBytes: 2 * opts.sizeBytes + (64 << 20),
      logLevel: opts.logLevel ?? 'warn',
      quietPeriodMs: opts.quietPeriodMs,
    });
    const token = (await readFile(join(dir, 'server.token'), 'utf8')).trim();
    const client = new ServerClient(up.server.api.url, token);
    const volume = up.volume;
    const lun = Number(volume.split(':')[1]);
    const portal = up.node.address;
    checkAbort(opts.signal);

    // 1. Workstations write, each over its own session, into its own part of the LUN.
    const mirror = new Uint8Array(opts.sizeBytes);
    const share = Math.floor(opts.sizeBytes / DEMO_WORKSTATIONS / 512) * 512;
    const disks: RemoteBlockDevice[] = [];
    for (let i = 0; i < DEMO_WORKSTATIONS; i++) {
      const s = await InitiatorSession.login({
        host: portal.host,
        port: portal.port,
        initiatorName: `iqn.2026-11.dev.ferry:demo-ws${i + 1}`,
        targetName: UP_IQN,
      });
      sessions.push(s);
      disks.push(await RemoteBlockDevice.open(s, lun));
    }
    say(
      'write',
      `${DEMO_WORKSTATIONS} workstations write ${opts.sizeBytes / (1 << 20)} MiB of random data to ${volume}, one ` +
        `iSCSI session each`,
    );
    const tw = performance.now();
    let written = 0;
    await Promise.all(
      disks.map(async (d, i) => {
        const from = i * share;
        const to = i === DEMO_WORKSTATIONS - 1 ? opts.sizeBytes : from + share;
        for (let off = from; off < to; off += WRITE_CHUNK) {
          checkAbort(opts.signal);
          const part = mirror.subarray(off, Math.min(to, off + WRITE_CHUNK));
          randomFillSync(part);
          await d.write(off / 512, part);
          written += part.length;
          opts.onEvent?.({ kind: 'progress', phase: 'write', doneBytes: written, totalBytes: opts.sizeBytes });
        }
        await d.flush();
      }),
    );
    const writeSeconds = (performance.now() - tw) / 1000;

    // 2. Full backup while one workstation is still writing: the server waits for the quiet period.
    say(
      'backup',
      `full backup of ${volume}: the server waits for ${opts.quietPeriodMs / 1000} s without writes (workstation ` +
        `1 is ` +
        `still writing)`,
    );
    const full = await client.startBackup({
      volume,
      mode: 'image',
      level: 'full',
      quietPeriodMs: opts.quietPeriodMs,
      timeoutMs: opts.timeoutMs,
    });
    const keepWriting = Date.now() + Math.max(1500, 2 * opts.quietPeriodMs);
    const trickle = (async () => {
      while (Date.now() < keepWriting && !opts.signal?.aborted) {
        const off = randomInt(0, Math.floor(share / 4096)) * 4096;
        const part = mirror.subarray(off, off + 4096);
        randomFillSync(part);
        await disks[0].write(off / 512, part);
        await new Promise((r) => setTimeout(r, 150));
      }
      await disks[0].flush();
    })();
    const fullDone = await follow(client, full, 'backup', opts);
    await trickle;
    const quietWait =
      fullDone.view.result && typeof fullDone.view.result.quietWaitMs === 'number'
        ? fullDone.view.result.quietWaitMs / 1000
        : 0;
    checkAbort(opts.signal);

    // 3. More writes, then an incremental.
    let changed = 0;
    await Promise.all(
      disks.map(async (d, i) => {
        for (let k = 0; k < 4; k++) {
          const off = i * share + randomInt(0, Math.max(1, Math.floor((share - TAPE_BLOCK) / 4096))) * 4096;
          const part = mirror.subarray(off, off + 64 * 1024);
          randomFillSync(part);
          await d.write(off / 512, part);
          changed += part.length;
        }
        await d.flush();
      }),
    );
    say(
      'incremental',
      `the workstations change ${changed / 1024} KiB; incremental backup of ${volume} (changed blocks only)`,
    );
    const inc = await follow(
      client,
      await client.startBackup({
        volume,
        level: 'incremental',
        quietPeriodMs: opts.quietPeriodMs,
        timeoutMs: opts.timeoutMs,
      }),
      'incremental',
      opts,
    );
    const expected = createHash('sha256').update(mirror).digest('hex');
    checkAbort(opts.signal);

    // 4. Restore the chain (full, then incremental) to a new LUN.
    say('restore', `restore of set ${inc.view.set} (the full, then the incremental) to a new LUN on store`);
    const rest = await follow(
      client,
      await client.startRestore({ set: inc.view.set!, to: 'store:new' }),
      'restore',
      opts,
    );
    const restoredLun = rest.view.result!.lun as number;
    const restoredOnNode = (await up.node.snapshots.digest(restoredLun, [{ lba: 0, blocks: opts.sizeBytes / 512 }]))
      .sha256;
    // A workstation reads the restored LUN back over iSCSI as an independent check.
    const vs = await InitiatorSession.login({
      host: portal.host,
      port: portal.port,
      initiatorName: 'iqn.2026-11.dev.ferry:demo-check',
      targetName: UP_IQN,
    });
    sessions.push(vs);
    const vd = await RemoteBlockDevice.open(vs, restoredLun, { readOnly: true });
    const h = createHash('sha256');
    const buf = new Uint8Array(4 << 20);
    for (let lba = 0; lba < vd.blockCount; lba += buf.length / 512) {
      const part = buf.subarray(0, Math.min(buf.length, (vd.blockCount - lba) * 512));
      await vd.readInto(lba, part);
      h.update(part);
    }
    const restoredOverIscsi = h.digest('hex');

    // 5. Verify where the data lives.
    say(
      'verify',
      `verify of set ${inc.view.set}: the tape node digests the set's blocks, compared with the storage node's ` +
        `digest ` +
        `of the snapshot`,
    );
    const v = await follow(client, await client.startVerify({ set: inc.view.set! }), 'verify', opts);
    const verify: DemoResult['verify'] = { job: v.view.id, ok: v.view.result?.ok === true };

    const moverBytes = fullDone.view.bytes + inc.view.bytes + rest.view.bytes;
    const serverBytesOnWire = up.server.service.site.bytesOnWire();
    const ratio = moverBytes > 0 ? serverBytesOnWire / moverBytes : Infinity;
    return {
      sizeBytes: opts.sizeBytes,
      volume,
      workstations: DEMO_WORKSTATIONS,
      write: { bytes: written, seconds: round(writeSeconds), mbPerSecond: mbps(written, writeSeconds) },
      full: { ...demoJob(fullDone.view, fullDone.seconds), quietWaitSeconds: round(quietWait) },
      incremental: { ...demoJob(inc.view, inc.seconds), changedBytes: changed },
      restore: { ...demoJob(rest.view, rest.seconds), volume: `store:${restoredLun}` },
      verify,
      moverBytes,
      serverBytesOnWire,
      ratio,
      serverless: ratio < 0.001,
      sha256: { expected, restoredOnNode, restoredOverIscsi },
      verified: expected === restoredOnNode && expected === restoredOverIscsi && verify.ok,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    for (const s of sessions) s.close();
    await up?.close();
    if (!opts.keep) {
      await clean();
      if (createdDir) await rmdir(dir).catch(() => undefined);
    }
  }
}
