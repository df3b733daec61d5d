// Benchmark: a backup and a restore through `ferry mover` (EXTENDED COPY) against `dd bs=1M`
// copying the same bytes file to file, in the same run. The backup copies a disk LUN on a
// Ferry target to a tape LUN (tgtd's by default, or Ferry's) in 256 KiB records; the restore
// copies the tape back to a fresh LUN. The initiator only sends the two parameter lists.
// The Ferry target and the mover run as their own processes (`ferry target`, `ferry mover`), as
// they would in production. An in-process engine baseline (MemoryDevice → MemoryTape, no
// iSCSI) is printed beside it.
//
//   node --import tsx bench/xcopy-vs-dd.ts [--size 1G] [--runs 3] [--tape tgtd|ferry] [--record 256K]
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryDevice } from '../src/block/memory-device.ts';
import { InitiatorSession } from '../src/initiator/session.ts';
import { extendedCopy, inquiry } from '../src/initiator/cdb.ts';
import { buildRewind } from '../src/scsi/tape-cdb.ts';
import { decodeDeviceIdentificationPage } from '../src/xcopy/resolver.ts';
import { encodeXcopyParameterList, type CscdInput, type SegmentInput } from '../src/xcopy/descriptors.ts';
import type { Designator } from '../src/xcopy/copy-target.ts';
import { MemoryTape } from '../src/xcopy/testing/memory-tape.ts';
import { TestLu, targetOf, xcopy } from '../src/xcopy/testing/harness.ts';
import { formatBytes, parseSize } from '../src/util/units.ts';
import { freePort, startTgtd } from '../test/helpers/tgtd.ts';
import { startFerryTape, TAPE_IQN } from '../test/interop/tape-script.ts';

const { values } = parseArgs({
  options: { size: { type: 'string', default: '1G' }, runs: { type: 'string', default: '3' }, tape: { type: 'string', default: 'tgtd' }, record: { type: 'string', default: '256K' } },
});
const BYTES = parseSize(values.size!);
const RUNS = Number(values.runs);
const BLOCK = 512;
const RECORD = parseSize(values.record!, '--record');
const SEG_BLOCKS = 32768;
const INITIATOR = 'iqn.2026-11.dev.ferry:bench';
const SRC_IQN = 'iqn.2026-11.dev.ferry:bench-src';
if (BYTES % (SEG_BLOCKS * BLOCK) !== 0) throw new Error('--size must be a multiple of 16 MiB');

const naaOf = (vpd: Uint8Array): Designator => decodeDeviceIdentificationPage(vpd).find((d) => d.designatorType === 3 && d.association === 0)!;
const cscd = (d: Designator, pdt: number, blockLength: number): CscdInput => ({ ...d, peripheralDeviceType: pdt, pad: false, fixed: false, blockLength });
const FERRY = join(import.meta.dirname, '..', 'bin', 'ferry.mjs');

/** Start `ferry …` as a child process and wait until its portal accepts an iSCSI login. */
async function ferry(args: string[], port: number, iqn: string): Promise<ChildProcess> {
  const prof = process.env.PROF_MOVER && args[0] === 'mover' ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROF_MOVER] : [];
  const child = spawn(process.execPath, [...prof, FERRY, ...args, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    try {
      const s = await InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: iqn });
      await s.logout();
      return child;
    } catch {
      // not up yet
    }
  }
  child.kill('SIGKILL');
  throw new Error(`ferry ${args[0]} did not start`);
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function dd(from: string, to: string): number {
  const t0 = performance.now();
  const r = spawnSync('dd', [`if=${from}`, `of=${to}`, 'bs=1M', 'status=none'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('dd failed');
  return performance.now() - t0;
}

async function engineBaseline(): Promise<number> {
  const n = Math.min(BYTES, 256 << 20);
  const disk = new TestLu({ block: new MemoryDevice(BLOCK, n / BLOCK) }, 1);
  const tape = new TestLu({ tape: new MemoryTape() }, 2);
  const t = targetOf([disk, tape]);
  const segs = Array.from({ length: n / BLOCK / SEG_BLOCKS }, (_, i): SegmentInput => ({ type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: RECORD, blockCount: SEG_BLOCKS, lba: i * SEG_BLOCKS }));
  const list = encodeXcopyParameterList({ header: { listId: 1, str: false, listIdUsage: 0, priority: 0 }, cscds: [disk.cscd(), tape.cscd()], segments: segs });
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const tapeDev = tape.tapeDevice as MemoryTape;
    tapeDev.objects.length = 0;
    tapeDev.pos = 0;
    const t0 = performance.now();
    const r = await xcopy(t, list);
    if (r.status !== 0) throw new Error('engine baseline failed');
    best = Math.max(best, mbps(n, performance.now() - t0));
  }
  return best;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-xcopy-'));
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const srcPath = join(dir, 'src.img');
    const fh = await open(srcPath, 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < BYTES; off += chunk.length) await fh.write(randomFillSync(chunk), 0, chunk.length, off);
    await fh.close();

    const srcAddr = { port: await freePort() };
    const target = await ferry(['target', '--listen', `127.0.0.1:${srcAddr.port}`, '--iqn', SRC_IQN, '--disk', srcPath, '--disk', `${join(dir, 'dst.img')}:${BYTES}`], srcAddr.port, SRC_IQN);
    cleanup.push(() => stop(target));

    let tape: { host: string; port: number; iqn: string; lun: number };
    if (values.tape === 'ferry') {
      const ft = await startFerryTape({ cartridgeBytes: BYTES + (64 << 20) });
      cleanup.push(() => ft.close());
      tape = { host: ft.host, port: ft.port, iqn: TAPE_IQN, lun: 0 };
    } else {
      const tgtd = await startTgtd('iqn.2026-11.dev.ferry:bench-tape');
      cleanup.push(() => tgtd.stop());
      const img = join(dir, 'tape.img');
      execFileSync('tgtimg', ['--op', 'new', '--device-type', 'tape', '--barcode', 'BENCH1', '--size', String(Math.ceil(BYTES / 2 ** 20) + 64), '--type', 'data', '--file', img], { stdio: 'pipe' });
      tgtd.addLun(1, img, { deviceType: 'tape' });
      tape = { host: '127.0.0.1', port: tgtd.port, iqn: tgtd.iqn, lun: 1 };
    }

    const moverPort = await freePort();
    const moverIqn = 'iqn.2026-11.dev.ferry:mover';
    const mover = await ferry(['mover', '--listen', `127.0.0.1:${moverPort}`, '--iqn', moverIqn, '--portal', `127.0.0.1:${srcAddr.port}`, '--portal', `${tape.host}:${tape.port}`], moverPort, moverIqn);
    cleanup.push(() => stop(mover));
    const toSrc = await InitiatorSession.login({ host: '127.0.0.1', port: srcAddr.port, initiatorName: INITIATOR, targetName: SRC_IQN });
    const toTape = await InitiatorSession.login({ host: tape.host, port: tape.port, initiatorName: INITIATOR, targetName: tape.iqn });
    const toMover = await InitiatorSession.login({ host: '127.0.0.1', port: moverPort, initiatorName: INITIATOR, targetName: moverIqn });
    cleanup.push(() => Promise.all([toSrc, toTape, toMover].map((s) => s.logout().catch(() => undefined))));
    const srcD = naaOf((await toSrc.command(0, inquiry(255, 0x83), { inLength: 255 })).data);
    const dstD = naaOf((await toSrc.command(1, inquiry(255, 0x83), { inLength: 255 })).data);
    const tapeD = naaOf((await toTape.command(tape.lun, inquiry(255, 0x83), { inLength: 255 })).data);
    const segs = BYTES / BLOCK / SEG_BLOCKS;
    const backup = encodeXcopyParameterList({
      header: { listId: 1, str: false, listIdUsage: 0, priority: 0 },
      cscds: [cscd(srcD, 0, BLOCK), cscd(tapeD, 1, 0)],
      segments: Array.from({ length: segs }, (_, i): SegmentInput => ({ type: 0x00, cat: false, source: 0, destination: 1, streamTransferLength: RECORD, blockCount: SEG_BLOCKS, lba: i * SEG_BLOCKS })),
    });
    const restore = encodeXcopyParameterList({
      header: { listId: 2, str: false, listIdUsage: 0, priority: 0 },
      cscds: [cscd(tapeD, 1, 0), cscd(dstD, 0, BLOCK)],
      segments: Array.from({ length: segs }, (_, i): SegmentInput => ({ type: 0x01, cat: false, source: 0, destination: 1, streamTransferLength: RECORD, blockCount: SEG_BLOCKS, lba: i * SEG_BLOCKS })),
    });
    const run = async (list: Uint8Array): Promise<number> => {
      await toTape.command(tape.lun, buildRewind());
      const t0 = performance.now();
      const r = await toMover.command(0, extendedCopy(list.length), { dataOut: list, allowCheckCondition: true });
      if (r.status !== 0) throw new Error(`XCOPY failed: ${JSON.stringify(r.sense)}`);
      return performance.now() - t0;
    };

    const rows: Array<{ run: number; ddBackup: number; moverBackup: number; ddRestore: number; moverRestore: number }> = [];
    const ddCopy = join(dir, 'dd-copy.img');
    const ddBack = join(dir, 'dd-back.img');
    for (let i = 0; i < RUNS; i++) {
      const ddB = dd(srcPath, ddCopy);
      const mB = await run(backup);
      const mR = await run(restore);
      const ddR = dd(ddCopy, ddBack);
      rows.push({ run: i + 1, ddBackup: mbps(BYTES, ddB), moverBackup: mbps(BYTES, mB), ddRestore: mbps(BYTES, ddR), moverRestore: mbps(BYTES, mR) });
      await rm(ddCopy, { force: true });
      await rm(ddBack, { force: true });
    }
    const wire = [toSrc, toTape, toMover].reduce((n, s) => n + s.bytesOnWire.sent + s.bytesOnWire.received, 0);
    const m = (k: keyof (typeof rows)[number]) => median(rows.map((r) => r[k]));
    console.log(`xcopy-vs-dd: ${formatBytes(BYTES)} disk LUN ↔ ${values.tape} tape through ferry mover, ${RUNS} runs, ${formatBytes(RECORD)} records, hot cache`);
    console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'run' ? v : `${v.toFixed(0)} MB/s`]))));
    console.log(`backup  (disk → tape): mover ${m('moverBackup').toFixed(0)} MB/s, dd ${m('ddBackup').toFixed(0)} MB/s, ratio ${(m('moverBackup') / m('ddBackup')).toFixed(2)}× (goal ≥ 0.8×)`);
    console.log(`restore (tape → disk): mover ${m('moverRestore').toFixed(0)} MB/s, dd ${m('ddRestore').toFixed(0)} MB/s, ratio ${(m('moverRestore') / m('ddRestore')).toFixed(2)}×`);
    console.log(`initiator sockets: ${wire} bytes for ${2 * RUNS * BYTES} bytes moved`);
    console.log(`engine baseline (in-process MemoryDevice → MemoryTape, no iSCSI, best of 3): ${(await engineBaseline()).toFixed(0)} MB/s`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
