// Benchmark: stream 1 GiB of 256 KiB fixed blocks to a cartridge through the Ferry target
// (our initiator → iSCSI over loopback → `ferry target --tape` → cartridge file), against `dd` writing the
// same number of bytes to a file on the same disk in the same run. Both end with a flush
// (WRITE FILEMARKS → fsync; dd conv=fdatasync).
//
//   node --import tsx bench/tape-vs-dd.ts [--size 1G] [--depth 4] [--runs 3] [--no-tgtd]
//                                         [--blocks-per-command 1]
//
// One 256 KiB block per WRITE(6) by default: what Ferry's own movers send (one 256 KiB record
// per command) and what `st` sends for `dd bs=256K`. In fixed-block mode one command may carry
// several blocks (`st` with `dd bs=1M` and a 256 KiB block size sends 4): --blocks-per-command
// shows what the per-command cost is, with the same blocks on the cartridge.
//
// A tgtd tape LUN (tgtimg cartridge, `--bstype ssc`) gets the same stream from the same
// initiator in the same run, as a second peer: what a C iSCSI tape target does on this box.
//
// Memory state: this VM returns freed guest memory to its host within seconds, and writing
// into such memory again costs several times more (dd conv=fdatasync of 1 GiB: 0.73-0.80 s
// right after a 1 GiB file was deleted, 1.8-1.9 s ten seconds later). So every timed write,
// Ferry's and dd's alike, starts right after 1 GiB of page cache was freed (a scratch file
// written and deleted, untimed).
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSize, formatBytes } from '../src/util/units.ts';
import { openStandaloneDrive } from '../src/storage-node/tape-library.ts';
import { InitiatorSession } from '../src/initiator/session.ts';
import { startTgtd } from '../test/helpers/tgtd.ts';
import { makeNexus, type ScsiTask } from '../src/scsi/task.ts';
import { buildModeSelect6, buildTestUnitReady } from '../src/scsi/cdb/spc.ts';
import { buildRead6, buildRewind, buildWrite6, buildWriteFilemarks6 } from '../src/scsi/cdb/ssc.ts';
import { encodeModeSelectBlockDescriptor } from '../src/scsi/mode-parameters.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const totalBytes = parseSize(opt('size', '1G'));
const depth = Number(opt('depth', '4'));
const runs = Number(opt('runs', '3'));
const withTgtd = !args.includes('--no-tgtd');
const BLOCK = 256 * 1024;
const perCommand = Number(opt('blocks-per-command', '1'));
if (!Number.isInteger(perCommand) || perCommand < 1 || perCommand * BLOCK > 16 << 20)
  throw new Error('--blocks-per-command: a whole number from 1 to 64');
const commands = Math.floor(totalBytes / BLOCK / perCommand);
const blocks = commands * perCommand;

const IQN = 'iqn.2026-11.dev.ferry:bench';
const FERRY_BIN = fileURLToPath(new URL('../bin/ferry.mjs', import.meta.url));

/** Issue `count` commands, `depth` at a time, in order of issue. */
async function inFlight(count: number, issue: (n: number) => Promise<unknown>): Promise<void> {
  const running = new Set<Promise<unknown>>();
  for (let n = 0; n < count || running.size;) {
    while (n < count && running.size < depth) {
      const p: Promise<unknown> = issue(n++).finally(() => running.delete(p));
      running.add(p);
    }
    await Promise.race(running);
  }
}

let scratchDir = '';

/** Right before a timed write: write and delete 1 GiB of page cache, so every step starts alike. */
function freshMemory(): void {
  const scratch = join(scratchDir, 'scratch.img');
  execFileSync('dd', ['if=/dev/zero', `of=${scratch}`, `bs=${BLOCK}`, `count=${blocks}`], { stdio: 'ignore' });
  rmSync(scratch);
}

/** Stream `blocks` fixed blocks to LUN `lun` of a logged-in session, then WRITE FILEMARKS; MB/s. */
async function streamWrite(s: InitiatorSession, lun: number): Promise<number> {
  for (let i = 0; i < 3; i++)
    if ((await s.command(lun, buildTestUnitReady(), { allowCheckCondition: true })).status === 0) break;
  const sel = encodeModeSelectBlockDescriptor(BLOCK);
  await s.command(lun, buildModeSelect6(sel.length), { dataOut: sel });
  const data = randomBytes(BLOCK * perCommand);
  const cdb = buildWrite6(perCommand, { fixed: true });
  freshMemory();
  const t0 = process.hrtime.bigint();
  await inFlight(commands, () => s.command(lun, cdb, { dataOut: data }));
  await s.command(lun, buildWriteFilemarks6(1)); // flush: fsync of the cartridge
  return (blocks * BLOCK) / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function ferryRun(dir: string, n: number): Promise<number> {
  const iqn = IQN;
  // The real `ferry target --tape` in its own process, with the launcher's node flags.
  const cart = join(dir, `bench${n}.cart`);
  const args = [
    '--max-semi-space-size=64',
    FERRY_BIN,
    'target',
    '--listen',
    '127.0.0.1:0',
    '--iqn',
    iqn,
    '--tape',
    cart,
    '--cartridge-size',
    String(totalBytes + (64 << 20)),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"listen":"[^"]*:(\d+)"/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`ferry target exited ${c}: ${err}`)));
  });
  const s = await InitiatorSession.login({
    host: '127.0.0.1',
    port,
    initiatorName: 'iqn.2026-11.dev.ferry:bench-init',
    targetName: iqn,
  });
  const rate = await streamWrite(s, 0);
  // Read it back (a restore): READ(6) FIXED, as many blocks per command as written, same depth.
  await s.command(0, buildRewind());
  const rcdb = buildRead6(perCommand, { fixed: true });
  const r0 = process.hrtime.bigint();
  await inFlight(commands, () => s.command(0, rcdb, { inLength: BLOCK * perCommand }));
  readRates.push((blocks * BLOCK) / (Number(process.hrtime.bigint() - r0) / 1e9));
  await s.logout();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  return rate;
}

/** The same stream to a tgtd tape LUN (tgtimg cartridge): a C target on the same box. */
async function tgtdRun(dir: string, n: number): Promise<number> {
  const tgtd = await startTgtd('iqn.2026-11.dev.ferry:bench-tgtd-tape');
  try {
    const img = join(dir, `tgtd${n}.img`);
    execFileSync(
      'tgtimg',
      [
        '--op',
        'new',
        '--device-type',
        'tape',
        '--barcode',
        `BENCH${n}`,
        '--size',
        String(Math.ceil(totalBytes / 2 ** 20) + 64),
        '--type',
        'data',
        '--file',
        img,
      ],
      { stdio: 'pipe' },
    );
    tgtd.addLun(1, img, { deviceType: 'tape' });
    const s = await InitiatorSession.login({
      host: '127.0.0.1',
      port: tgtd.port,
      initiatorName: 'iqn.2026-11.dev.ferry:bench-init',
      targetName: tgtd.iqn,
    });
    try {
      return await streamWrite(s, 1);
    } finally {
      await s.logout().catch(() => undefined);
    }
  } finally {
    await tgtd.stop();
  }
}

/** The SSC LU and cartridge alone: WRITE(6) executed in-process, no iSCSI. */
async function luRun(dir: string, n: number): Promise<number> {
  const lu = await openStandaloneDrive(join(dir, `lu${n}.cart`), { createSizeBytes: totalBytes + (64 << 20) });
  const nexus = makeNexus('iqn.2026-11.dev.ferry:bench-init', '400000000001', IQN, 1);
  const task = (cdb: Uint8Array, dataOut: Uint8Array = new Uint8Array(0)): ScsiTask => ({
    cdb,
    lun: 0,
    nexus,
    dataOut,
    expectedInLength: 0,
    signal: new AbortController().signal,
    target: { targetName: IQN, relativePortId: 1, luns: () => new Map() },
  });
  for (let i = 0; i < 3; i++) if ((await lu.execute(task(buildTestUnitReady()))).status === 0) break;
  const sel = encodeModeSelectBlockDescriptor(BLOCK);
  await lu.execute(task(buildModeSelect6(sel.length), sel));
  const data = randomBytes(BLOCK * perCommand);
  const cdb = buildWrite6(perCommand, { fixed: true });
  freshMemory();
  const t0 = process.hrtime.bigint();
  // Same depth as over iSCSI: consecutive WRITEs overlap their file I/O inside the LU.
  await inFlight(commands, async (n) => {
    if ((await lu.execute(task(cdb, data))).status !== 0) throw new Error(`write ${n} failed`);
  });
  await lu.execute(task(buildWriteFilemarks6(1)));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await lu.close();
  return (blocks * BLOCK) / secs;
}

const readRates: number[] = [];
const ddReadRates: number[] = [];

function ddRun(dir: string, n: number): number {
  const out = join(dir, `dd${n}.img`);
  freshMemory();
  const t0 = process.hrtime.bigint();
  execFileSync('dd', ['if=/dev/zero', `of=${out}`, `bs=${BLOCK}`, `count=${blocks}`, 'conv=fdatasync'], {
    stdio: 'ignore',
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const r0 = process.hrtime.bigint();
  execFileSync('dd', [`if=${out}`, 'of=/dev/null', `bs=${BLOCK}`], { stdio: 'ignore' });
  ddReadRates.push((blocks * BLOCK) / (Number(process.hrtime.bigint() - r0) / 1e9));
  return (blocks * BLOCK) / secs;
}

await main();

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-tape-'));
  try {
    const ferry: number[] = [];
    const dd: number[] = [];
    const local: number[] = [];
    const tgtd: number[] = [];
    scratchDir = dir;
    for (let i = 0; i < runs; i++) {
      // Alternate so page-cache and disk state favour neither side.
      dd.push(ddRun(dir, i));
      ferry.push(await ferryRun(dir, i));
      local.push(await luRun(dir, i));
      if (withTgtd) tgtd.push(await tgtdRun(dir, i));
      for (const f of [`dd${i}.img`, `bench${i}.cart`, `lu${i}.cart`, `tgtd${i}.img`])
        await rm(join(dir, f), { force: true });
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const mb = (x: number): string => `${(x / 1e6).toFixed(0)} MB/s`;
    console.log(
      `tape-vs-dd: ${formatBytes(blocks * BLOCK)} of ${BLOCK / 1024} KiB fixed blocks, ${perCommand} per command, ` +
        `${depth} commands in flight, ${runs} runs`,
    );
    console.log(`  dd (file, conv=fdatasync):        ${dd.map(mb).join(', ')}  median ${mb(median(dd))}`);
    console.log(`  ferry (iSCSI → SSC → cartridge):  ${ferry.map(mb).join(', ')}  median ${mb(median(ferry))}`);
    console.log(`  SSC LU in-process (no iSCSI):     ${local.map(mb).join(', ')}  median ${mb(median(local))}`);
    if (withTgtd)
      console.log(
        `  tgtd tape LUN (same initiator):   ${tgtd.map(mb).join(', ')}  median ${mb(median(tgtd))}  (ferry/tgtd ` +
          `${(median(ferry) / median(tgtd)).toFixed(2)}×)`,
      );
    console.log(
      `  read back, dd (page cache):       ${ddReadRates.map(mb).join(', ')}  median ${mb(median(ddReadRates))}`,
    );
    console.log(`  read back, ferry (iSCSI READ(6)): ${readRates.map(mb).join(', ')}  median ${mb(median(readRates))}`);
    console.log(`  ratio ferry/dd (median): ${(median(ferry) / median(dd)).toFixed(2)}×  (goal ≥ 0.8×)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
