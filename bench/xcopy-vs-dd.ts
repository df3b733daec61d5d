// Benchmark: a backup and a restore by EXTENDED COPY against `dd bs=1M` copying the same
// bytes file to file, in the same run. The backup copies a 1 GiB disk LUN to a tape drive in
// 256 KiB records; the restore copies the tape back to a fresh LUN. The initiator ("backup
// server") only sends the parameter lists. Every Ferry role runs as its own `ferry` process,
// as in production. Three places for the copy manager (the data mover), each measured:
//   storage-node  one `ferry target` serves the disks and the tape drive; its copy manager
//                 moves the data inside the node (no network hop);
//   tape-node     the disks on one `ferry target`, the tape drive on another whose copy
//                 manager pulls from the disks (`--copy-portal`): one iSCSI hop;
//   mover         a standalone `ferry mover` between the disk target and the tape target:
//                 two iSCSI hops (disk → mover → tape).
// `--tape tgtd` uses a tgtd tape LUN instead of Ferry's (mover topology only). Every timed
// step starts after `sync`, so none pays for the page-cache writeback of the one before.
//
// Two finish lines, each with its own dd peer in the same run:
//   copied   the EXTENDED COPY returned (data in the targets' page cache) — against dd into a
//            new file and dd conv=notrunc over the existing file (what the copy does: it
//            overwrites an existing cartridge and LUN), both page-cache copies;
//   durable  then the backup server makes it durable as a backup application does — WRITE
//            FILEMARKS(1) ends the backup set (the drive fsyncs), SYNCHRONIZE CACHE ends the
//            restore — against dd conv=fdatasync into a new file.
//
//   node --import tsx bench/xcopy-vs-dd.ts [--size 1G] [--runs 3] [--topology storage-node,tape-node,mover]
//                                          [--tape ferry|tgtd] [--record 256K] [--cpu]
// --cpu prints each role's CPU time (user+sys, from /proc) beside every timed copy.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryDevice } from '../src/block/memory-device.ts';
import { InitiatorSession } from '../src/initiator/session.ts';
import { decodeDeviceIdentificationPage } from '../src/scsi/device-identification.ts';
import { encodeXcopyParameterList, type CscdInput, type SegmentInput } from '../src/xcopy/descriptors.ts';
import type { Designator } from '../src/xcopy/copy-target.ts';
import { MemoryTape } from '../src/xcopy/testing/memory-tape.ts';
import { TestLu, targetOf, xcopy } from '../src/xcopy/testing/harness.ts';
import { formatBytes, parseSize } from '../src/util/units.ts';
import { freePort, startTgtd } from '../test/helpers/tgtd.ts';
import { buildSynchronizeCache10 } from '../src/scsi/cdb/sbc.ts';
import { buildExtendedCopy, buildInquiry, buildTestUnitReady } from '../src/scsi/cdb/spc.ts';
import { buildRewind, buildWriteFilemarks6 } from '../src/scsi/cdb/ssc.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '3' },
    tape: { type: 'string', default: 'ferry' },
    record: { type: 'string', default: '256K' },
    topology: { type: 'string', default: 'storage-node,tape-node,mover' },
    cpu: { type: 'boolean', default: false },
  },
});
const BYTES = parseSize(values.size!);
const RUNS = Number(values.runs);
const BLOCK = 512;
const RECORD = parseSize(values.record!, '--record');
const SEG_BLOCKS = 32768;
const INITIATOR = 'iqn.2026-11.dev.ferry:bench';
const TOPOLOGIES = values.topology!.split(',');
for (const t of TOPOLOGIES)
  if (!['storage-node', 'tape-node', 'mover'].includes(t)) throw new Error(`--topology: unknown ${t}`);
if (values.tape === 'tgtd' && TOPOLOGIES.some((t) => t !== 'mover'))
  throw new Error('--tape tgtd works with --topology mover only (tgtd has no copy manager)');
if (BYTES % (SEG_BLOCKS * BLOCK) !== 0) throw new Error('--size must be a multiple of 16 MiB');

const naaOf = (vpd: Uint8Array): Designator =>
  decodeDeviceIdentificationPage(vpd).find((d) => d.designatorType === 3 && d.association === 0)!;
const cscd = (d: Designator, pdt: number, blockLength: number): CscdInput => ({
  ...d,
  peripheralDeviceType: pdt,
  pad: false,
  fixed: false,
  blockLength,
});
const FERRY = join(import.meta.dirname, '..', 'bin', 'ferry.mjs');

/** Start `ferry …` (with the launcher's node flags) and wait until its portal accepts a login. */
async function ferry(args: string[], port: number, iqn: string): Promise<ChildProcess> {
  const prof = process.env.PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROF_DIR] : [];
  const child = spawn(process.execPath, ['--max-semi-space-size=64', ...prof, FERRY, ...args, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  roles.set(
    child,
    args[0] === 'mover'
      ? 'mover'
      : args.includes('--tape')
        ? args.includes('--disk')
          ? 'storage node'
          : 'tape target'
        : 'disk target',
  );
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

/** Each role's process, for its CPU time (--cpu). */
const roles = new Map<ChildProcess, string>();

/** utime + stime of a process in ms, from /proc (Linux). */
function cpuMs(pid: number): { user: number; sys: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const tick = 10; // USER_HZ = 100
  return { user: Number(rest[11]) * tick, sys: Number(rest[12]) * tick };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Write back all dirty pages first, so no step pays for the previous one's writeback. */
function settle(): void {
  execFileSync('sync');
}

/** How dd writes its output: into a new file, over the existing one, or into a new file then fdatasync. */
type DdMode = 'new' | 'notrunc' | 'fdatasync';

/** `dd if=FROM of=TO bs=1M`, in `mode`; milliseconds. */
function dd(from: string, to: string, mode: DdMode): number {
  if (mode !== 'notrunc') rmSync(to, { force: true });
  settle();
  const conv = mode === 'notrunc' ? ['conv=notrunc'] : mode === 'fdatasync' ? ['conv=fdatasync'] : [];
  const t0 = performance.now();
  const r = spawnSync('dd', [`if=${from}`, `of=${to}`, 'bs=1M', 'status=none', ...conv], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('dd failed');
  return performance.now() - t0;
}

async function engineBaseline(): Promise<number> {
  const n = Math.min(BYTES, 256 << 20);
  const disk = new TestLu({ block: new MemoryDevice(BLOCK, n / BLOCK) }, 1);
  const tape = new TestLu({ tape: new MemoryTape() }, 2);
  const t = targetOf([disk, tape]);
  const segs = Array.from({ length: n / BLOCK / SEG_BLOCKS }, (_, i): SegmentInput => ({
    type: 0x00,
    cat: false,
    source: 0,
    destination: 1,
    streamTransferLength: RECORD,
    blockCount: SEG_BLOCKS,
    lba: i * SEG_BLOCKS,
  }));
  const list = encodeXcopyParameterList({
    header: { listId: 1, str: false, listIdUsage: 0, priority: 0 },
    cscds: [disk.cscd(), tape.cscd()],
    segments: segs,
  });
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

interface Lun {
  session: InitiatorSession;
  lun: number;
}

/** One topology, set up: where the disks and the tape are, and whom to send the XCOPY to. */
interface Setup {
  src: Lun;
  dst: Lun;
  tape: Lun;
  copyManager: Lun;
  sessions: InitiatorSession[];
}

const login = (port: number, iqn: string, host = '127.0.0.1') =>
  InitiatorSession.login({ host, port, initiatorName: INITIATOR, targetName: iqn });

async function setUp(
  topology: string,
  dir: string,
  srcPath: string,
  cleanup: Array<() => Promise<unknown>>,
): Promise<Setup> {
  const dstSpec = `${join(dir, `dst-${topology}.img`)}:${BYTES}`;
  const cart = join(dir, `${topology}.cart`);
  const cartSize = String(BYTES + (64 << 20));
  if (topology === 'storage-node') {
    const port = await freePort();
    const iqn = 'iqn.2026-11.dev.ferry:bench-node';
    cleanup.push(() => stop(node));
    const node = await ferry(
      [
        'target',
        '--listen',
        `127.0.0.1:${port}`,
        '--iqn',
        iqn,
        '--tape',
        cart,
        '--cartridge-size',
        cartSize,
        '--disk',
        srcPath,
        '--disk',
        dstSpec,
      ],
      port,
      iqn,
    );
    const s = await login(port, iqn);
    return {
      src: { session: s, lun: 1 },
      dst: { session: s, lun: 2 },
      tape: { session: s, lun: 0 },
      copyManager: { session: s, lun: 0 },
      sessions: [s],
    };
  }
  const diskPort = await freePort();
  const diskIqn = 'iqn.2026-11.dev.ferry:bench-disks';
  const disks = await ferry(
    ['target', '--listen', `127.0.0.1:${diskPort}`, '--iqn', diskIqn, '--disk', srcPath, '--disk', dstSpec],
    diskPort,
    diskIqn,
  );
  cleanup.push(() => stop(disks));
  const toDisks = await login(diskPort, diskIqn);
  let tape: Lun;
  let tapePortal: string;
  const tapeIqn = 'iqn.2026-11.dev.ferry:bench-tape';
  if (values.tape === 'tgtd') {
    const tgtd = await startTgtd(tapeIqn);
    cleanup.push(() => tgtd.stop());
    const img = join(dir, 'tape.img');
    execFileSync(
      'tgtimg',
      [
        '--op',
        'new',
        '--device-type',
        'tape',
        '--barcode',
        'BENCH1',
        '--size',
        String(Math.ceil(BYTES / 2 ** 20) + 64),
        '--type',
        'data',
        '--file',
        img,
      ],
      { stdio: 'pipe' },
    );
    tgtd.addLun(1, img, { deviceType: 'tape' });
    tape = { session: await login(tgtd.port, tgtd.iqn), lun: 1 };
    tapePortal = `127.0.0.1:${tgtd.port}`;
  } else {
    const tapePort = await freePort();
    const copyPortal = topology === 'tape-node' ? ['--copy-portal', `127.0.0.1:${diskPort}`] : [];
    const tapeNode = await ferry(
      [
        'target',
        '--listen',
        `127.0.0.1:${tapePort}`,
        '--iqn',
        tapeIqn,
        '--tape',
        cart,
        '--cartridge-size',
        cartSize,
        ...copyPortal,
      ],
      tapePort,
      tapeIqn,
    );
    cleanup.push(() => stop(tapeNode));
    tape = { session: await login(tapePort, tapeIqn), lun: 0 };
    tapePortal = `127.0.0.1:${tapePort}`;
  }
  const sessions = [toDisks, tape.session];
  let copyManager = tape;
  if (topology === 'mover') {
    const moverPort = await freePort();
    const moverIqn = 'iqn.2026-11.dev.ferry:bench-mover';
    const mover = await ferry(
      [
        'mover',
        '--listen',
        `127.0.0.1:${moverPort}`,
        '--iqn',
        moverIqn,
        '--portal',
        `127.0.0.1:${diskPort}`,
        '--portal',
        tapePortal,
      ],
      moverPort,
      moverIqn,
    );
    cleanup.push(() => stop(mover));
    copyManager = { session: await login(moverPort, moverIqn), lun: 0 };
    sessions.push(copyManager.session);
  }
  return { src: { session: toDisks, lun: 0 }, dst: { session: toDisks, lun: 1 }, tape, copyManager, sessions };
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
    const ddCopy = join(dir, 'dd-copy.img');
    const ddBack = join(dir, 'dd-back.img');
    const summary: string[] = [];
    for (const topology of TOPOLOGIES) {
      const mine: Array<() => Promise<unknown>> = [];
      const su = await setUp(topology, dir, srcPath, mine);
      mine.push(() => Promise.all(su.sessions.map((s) => s.logout().catch(() => undefined))));
      try {
        const id = async (l: Lun) =>
          naaOf((await l.session.command(l.lun, buildInquiry(255, 0x83), { inLength: 255 })).data);
        for (let i = 0; i < 3; i++)
          if (
            (await su.tape.session.command(su.tape.lun, buildTestUnitReady(), { allowCheckCondition: true })).status ===
            0
          )
            break;
        const [srcD, dstD, tapeD] = [await id(su.src), await id(su.dst), await id(su.tape)];
        const segs = BYTES / BLOCK / SEG_BLOCKS;
        const list = (listId: number, type: 0x00 | 0x01, cscds: CscdInput[]) =>
          encodeXcopyParameterList({
            header: { listId, str: false, listIdUsage: 0, priority: 0 },
            cscds,
            segments: Array.from({ length: segs }, (_, i): SegmentInput => ({
              type,
              cat: false,
              source: 0,
              destination: 1,
              streamTransferLength: RECORD,
              blockCount: SEG_BLOCKS,
              lba: i * SEG_BLOCKS,
            })),
          });
        const backup = list(1, 0x00, [cscd(srcD, 0, BLOCK), cscd(tapeD, 1, 0)]);
        const restore = list(2, 0x01, [cscd(tapeD, 1, 0), cscd(dstD, 0, BLOCK)]);
        /** One EXTENDED COPY, then the flush that makes it durable: milliseconds to each finish line. */
        const run = async (
          l: Uint8Array,
          flush: Lun,
          flushCdb: Uint8Array,
        ): Promise<{ copied: number; durable: number }> => {
          await su.tape.session.command(su.tape.lun, buildRewind());
          settle();
          const live = [...roles].filter(([c]) => c.exitCode === null && c.pid !== undefined);
          const before = live.map(([c]) => cpuMs(c.pid!));
          const t0 = performance.now();
          const r = await su.copyManager.session.command(su.copyManager.lun, buildExtendedCopy(l.length), {
            dataOut: l,
            allowCheckCondition: true,
          });
          if (r.status !== 0) throw new Error(`XCOPY failed: ${JSON.stringify(r.sense)}`);
          const copied = performance.now() - t0;
          await flush.session.command(flush.lun, flushCdb);
          const durable = performance.now() - t0;
          if (values.cpu) {
            const use = live.map(([c, role], i) => {
              const a = cpuMs(c.pid!);
              return `${role} ${(a.user - before[i].user).toFixed(0)}+${(a.sys - before[i].sys).toFixed(0)}`;
            });
            console.log(
              `  ${l === backup ? 'backup' : 'restore'} ${copied.toFixed(0)} ms copied, ${durable.toFixed(0)} ms ` +
                `durable; CPU ms user+sys: ${use.join(', ')}`,
            );
          }
          return { copied, durable };
        };
        type Row = Record<'xcopy' | 'xcopyDurable' | 'ddNew' | 'ddNotrunc' | 'ddFdatasync', number>;
        const rows: Record<'backup' | 'restore', Row[]> = { backup: [], restore: [] };
        const ddAll = (from: string, to: string) => ({
          ddNew: dd(from, to, 'new'),
          ddNotrunc: dd(from, to, 'notrunc'),
          ddFdatasync: dd(from, to, 'fdatasync'),
        });
        const rate = (ms: Record<keyof Row, number>): Row =>
          Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, mbps(BYTES, v)])) as Row;
        for (let i = 0; i < RUNS; i++) {
          // Alternate with dd so page-cache and disk state favour neither side.
          const ddB = ddAll(srcPath, ddCopy);
          const b = await run(backup, su.tape, buildWriteFilemarks6(1));
          const r = await run(restore, su.dst, buildSynchronizeCache10());
          const ddR = ddAll(ddCopy, ddBack);
          rows.backup.push(rate({ xcopy: b.copied, xcopyDurable: b.durable, ...ddB }));
          rows.restore.push(rate({ xcopy: r.copied, xcopyDurable: r.durable, ...ddR }));
        }
        const wire = su.sessions.reduce((n, s) => n + s.bytesOnWire.sent + s.bytesOnWire.received, 0);
        console.log(
          `\n${topology}: ${formatBytes(BYTES)} disk LUN ↔ ${values.tape} tape, ${RUNS} runs, ${formatBytes(RECORD)} ` +
            `records (MB/s)`,
        );
        for (const dir of ['backup', 'restore'] as const) {
          console.log(dir);
          console.table(
            rows[dir].map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v)]))),
          );
          const m = (k: keyof Row) => median(rows[dir].map((r) => r[k]));
          const what = dir === 'backup' ? 'backup  (disk → tape)' : 'restore (tape → disk)';
          summary.push(
            `${topology} ${what}: copied ${m('xcopy').toFixed(0)} MB/s = ${(m('xcopy') / m('ddNew')).toFixed(2)}× dd ` +
              `new file (${m('ddNew').toFixed(0)}), ` +
              `${(m('xcopy') / m('ddNotrunc')).toFixed(2)}× dd notrunc (${m('ddNotrunc').toFixed(0)}); ` +
              `durable ${m('xcopyDurable').toFixed(0)} MB/s = ${(m('xcopyDurable') / m('ddFdatasync')).toFixed(2)}× ` +
              `dd fdatasync (${m('ddFdatasync').toFixed(0)})`,
          );
          console.log(summary.at(-1));
        }
        console.log(`backup server's sockets: ${wire} bytes for ${2 * RUNS * BYTES} bytes moved`);
      } finally {
        for (const c of mine.reverse()) await c().catch(() => undefined);
        await rm(join(dir, `${topology}.cart`), { force: true });
        await rm(join(dir, `dst-${topology}.img`), { force: true });
      }
    }
    console.log(`\nsummary (medians; goal ≥ 0.8×):\n${summary.join('\n')}`);
    console.log(
      `engine baseline (in-process MemoryDevice → MemoryTape, no iSCSI, best of 3): ` +
        `${(await engineBaseline()).toFixed(0)} MB/s`,
    );
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
