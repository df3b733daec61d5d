// Benchmark: a full `image` backup of a disk LUN to tape and its restore to a new LUN, end to
// end, every role its own process (test/helpers/site.ts: storage node with its API, tape library
// node, `ferry mover`, `ferry server --config`; the CLI as users run it), against peers measured
// in the same run:
//   dd           the same bytes file to file, bs=1M conv=fdatasync, as Ferry keeps them: each backup
//                appended to one growing file that keeps every run's copy (a cartridge keeps its
//                sets), each restore into a new file that is deleted after it (untimed; Ferry's
//                restored LUN is too);
//   dd overwrite the peer of this bench before 2026-12-05: the image into a file it deletes just
//                before (`rm`), and back. On this VM that reuses pages freed a moment earlier, which
//                runs 2–5× faster than writing data that is kept (see docs/benchmarks.md);
//   traditional  a separate process plays a backup server that moves the data itself, with the
//                same initiator code: it snapshots the LUN through the node's API, loads a cartridge
//                through the changer, reads the snapshot LUN over iSCSI (RemoteBlockDevice) and
//                writes the tape over iSCSI (RemoteTapeDevice, fixed 256 KiB blocks, 1 MiB per
//                WRITE), then a filemark; the restore reads the tape and writes a new LUN, then
//                SYNCHRONIZE CACHE. Like Ferry's backup it appends each set after the ones before it
//                (SPACE to end of data) and computes a SHA-256 of the data (in its own process;
//                Ferry's storage node digests the snapshot alongside the copy);
//   traditional overwrite  the same process as this bench's peer before 2026-12-04: it REWINDs and
//                overwrites its cartridge's first set every run and computes no digest. Overwriting
//                pages a run before already wrote skips the page allocation that appending new data
//                costs (on this VM ~2–3 s of kernel CPU per GiB in the tape node once the guest's
//                recently used memory runs out), so it is kept to show that difference.
// Ferry, traditional and traditional overwrite take turns going first; the LUN each restore made
// is deleted after it (untimed), so memory stays flat over the runs. For Ferry and the
// traditional peers it prints the "server" process's CPU seconds (/proc/PID/stat) and bytes (its
// TCP sockets by `ss`, and rchar+wchar of /proc/PID/io, which also counts its SQLite catalog) per
// GiB moved; --cpu also prints every role's CPU time per step. Every timed step starts after `settle`
// (memory warmed, then `sync`).
//
// --topology drive starts the site without a `ferry mover`: the server then sends EXTENDED COPY to
// the copy manager in the loaded drive's LU (DESIGN.md's third choice), and the data makes one
// iSCSI hop (storage node → tape node) instead of two.
//
//   node --import tsx bench/backup-e2e.ts [--size 1G] [--runs 3] [--topology mover|drive] [--cold] [--cpu]
//                                          [--keep]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes, parseSize } from '../src/util/units.ts';
import { SnapshotApiClient } from '../src/storage-node/api-client.ts';
import { dd, settle, warmBeforeEachStep } from './settle.ts';
import { cpuSeconds, ioBytes, SocketMeter, startSite, STORE_IQN, TAPE_IQN, type Site } from '../test/helpers/site.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    cpu: { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
    topology: { type: 'string', default: 'mover' },
    // The traditional server's own process (started by this script).
    role: { type: 'string' },
    store: { type: 'string' },
    api: { type: 'string' },
    'api-token-file': { type: 'string' },
    tape: { type: 'string' },
  },
});

const TAPE_BLOCK = 256 * 1024;
const GIB = 2 ** 30;

// ---------------------------------------------------------------------------------------------
// The traditional backup server: data through its own sockets.

/**
 * How a traditional server run treats its cartridge and the data:
 * - `traditional`: as a backup application does, and as Ferry's backup does: each set appended
 *   after the sets before it (SPACE to end of data), and a SHA-256 of the data computed as it
 *   passes (Ferry's storage node digests the snapshot alongside the copy for the catalog);
 * - `overwrite`: the peer of earlier runs of this bench: REWIND and overwrite the cartridge's
 *   first set every run, no digest.
 */
type TradPeer = 'traditional' | 'overwrite';
const TRAD_PEERS: readonly TradPeer[] = ['traditional', 'overwrite'];

async function traditionalServer(): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const { InitiatorSession } = await import('../src/initiator/session.ts');
  const { RemoteBlockDevice } = await import('../src/initiator/remote-device.ts');
  const { discoverLibrary } = await import('../src/media/discovery.ts');
  const { ChangerClient } = await import('../src/media/changer-client.ts');
  const { DriveClient } = await import('../src/media/drive-client.ts');
  const initiatorName = 'iqn.2026-11.dev.ferry:traditional-server';
  const hp = (s: string) => ({ host: s.slice(0, s.lastIndexOf(':')), port: Number(s.slice(s.lastIndexOf(':') + 1)) });
  const store = await InitiatorSession.login({ ...hp(values.store!), initiatorName, targetName: STORE_IQN });
  const lib = await InitiatorSession.login({ ...hp(values.tape!), initiatorName, targetName: TAPE_IQN });
  const api = new SnapshotApiClient(values.api!, (await readFile(values['api-token-file']!, 'utf8')).trim());
  const found = await discoverLibrary(lib, { name: 'vtl' });
  const changer = await ChangerClient.open(lib, found.changer.lun, { name: 'vtl' });
  // Each peer its own cartridge (the last slots') in the library's last drive: the Ferry server uses the first ones.
  const drive = found.drives[found.drives.length - 1];
  const full = (await changer.status()).filter((e) => e.type === 'slot' && e.full && e.barcode);
  const barcodes: Record<TradPeer, string> = { traditional: full.at(-1)!.barcode!, overwrite: full.at(-2)!.barcode! };
  /** Where each peer's last set starts on its cartridge (its restore reads that set). */
  const lastSet: Record<TradPeer, number> = { traditional: 0, overwrite: 0 };

  const mount = async (peer: TradPeer) => {
    await changer.load(barcodes[peer], drive.elementAddress);
    const d = await DriveClient.open(lib, drive.lun, { name: 'vtl' });
    await d.ready();
    await d.setFixedBlock(TAPE_BLOCK);
    await d.rewind();
    return d;
  };
  const CHUNK = 4 << 20;
  const WRITE = 1 << 20;
  const bufs = [0, 1, 2].map(() => Buffer.allocUnsafe(CHUNK));

  async function backup(peer: TradPeer): Promise<Record<string, unknown>> {
    const snap = await api.createSnapshot(0, { quietPeriodMs: 0 });
    const src = await RemoteBlockDevice.open(store, snap.lun, { readOnly: true });
    const d = await mount(peer);
    if (peer === 'traditional') await d.spaceEod(); // after the sets already on the cartridge
    lastSet[peer] = (await d.position()).blockId;
    const hash = peer === 'traditional' ? createHash('sha256') : undefined;
    const bytes = src.blockCount * src.blockSize;
    if (bytes % CHUNK !== 0) throw new Error(`the LUN (${bytes} bytes) is not a multiple of ${CHUNK}`);
    // Three buffers: the snapshot is read into one while the WRITEs of the others are in flight (ORDERED).
    const writing: Array<Promise<unknown>> = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
    for (let off = 0, i = 0; off < bytes; off += CHUNK, i++) {
      const k = i % 3;
      await writing[k];
      await src.readInto(off / src.blockSize, bufs[k]);
      const w: Array<Promise<unknown>> = [];
      for (let o = 0; o < CHUNK; o += WRITE) w.push(d.device.write(bufs[k].subarray(o, o + WRITE)));
      hash?.update(bufs[k]); // while its WRITEs are in flight
      writing[k] = Promise.all(w);
    }
    await Promise.all(writing);
    await d.device.writeFilemarks(1); // ends the set; the drive makes it durable
    await changer.unload(drive.elementAddress);
    await api.deleteSnapshot(snap.id);
    return { bytes, sha256: hash?.digest('hex') };
  }

  async function restore(peer: TradPeer): Promise<Record<string, unknown>> {
    const src = await RemoteBlockDevice.open(store, 0);
    const bytes = src.blockCount * src.blockSize;
    const lun = await api.createLun({ sizeBytes: bytes });
    const dst = await RemoteBlockDevice.open(store, lun.lun);
    const d = await mount(peer);
    await d.locate(lastSet[peer]);
    const writing: Array<Promise<unknown>> = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
    for (let off = 0, i = 0; off < bytes; off += CHUNK, i++) {
      const k = i % 3;
      await writing[k];
      const r = await d.device.read(bufs[k]);
      if (r.kind !== 'data' || r.bytes !== CHUNK) throw new Error(`tape read at ${off}: ${JSON.stringify(r)}`);
      writing[k] = dst.write(off / dst.blockSize, bufs[k]);
    }
    await Promise.all(writing);
    await dst.flush();
    await changer.unload(drive.elementAddress);
    return { bytes, lun: lun.lun };
  }

  process.on('message', (m: { op: 'backup' | 'restore' | 'exit'; peer: TradPeer }) => {
    if (m.op === 'exit') {
      store.close();
      lib.close();
      process.disconnect();
      return;
    }
    const t0 = performance.now();
    (m.op === 'backup' ? backup(m.peer) : restore(m.peer)).then(
      (r) => process.send!({ ok: true, ms: performance.now() - t0, ...r }),
      (e: unknown) => process.send!({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

interface Sample {
  ms: number;
  /** The CLI command's own wall time (Ferry only): process start, HTTP, waiting for the job. */
  cliMs?: number;
  /** The job's copying phase alone (Ferry only): from its `copying` state to its end. */
  copyMs?: number;
  cpuS: number;
  socketBytes: number;
  ioBytes: number;
}

/** utime and stime of a process in clock ticks (USER_HZ = 100), from /proc/PID/stat. */
function cpuTicks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]), Number(rest[12])];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/** Measure the "server" process `pid` around `fn`. */
async function measured(
  pid: number,
  fn: () => Promise<{ ms: number; cliMs?: number; copyMs?: number }>,
): Promise<Sample> {
  settle();
  const meter = new SocketMeter(pid, 100);
  const cpu0 = cpuSeconds(pid);
  const io0 = ioBytes(pid);
  await meter.start();
  const r = await fn();
  const socketBytes = await meter.stop();
  const io1 = ioBytes(pid);
  return {
    ms: r.ms,
    cliMs: r.cliMs,
    copyMs: r.copyMs,
    cpuS: cpuSeconds(pid) - cpu0,
    socketBytes,
    ioBytes: io1.rchar - io0.rchar + io1.wchar - io0.wchar,
  };
}

interface JobJson {
  job: number;
  state: string;
  set: number | null;
  bytes: number;
}

/** Run a Ferry client command that starts a job; ms from the job's creation to its end (catalog times). */
async function ferryJob(
  site: Site,
  args: string[],
): Promise<{ ms: number; cliMs: number; copyMs: number; job: JobJson }> {
  const t0 = performance.now();
  const r = await site.ferry([...args, '--json']);
  const cliMs = performance.now() - t0;
  if (r.code !== 0)
    throw new Error(`ferry ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}\n${site.logTail()}`);
  const job = r.json<JobJson>();
  const v = (await site.ferry(['job', String(job.job), '--json'])).json<{
    createdAt: string;
    endedAt: string;
    mover?: string;
    events: Array<{ at: string; state?: string }>;
  }>();
  // The copy ran where --topology says: m1 (a `ferry mover`), or "vtl (drive LU n)".
  const want = site.mover ? /^m1$/ : /drive LU/;
  if (!want.test(v.mover ?? '')) throw new Error(`ferry ${args.join(' ')}: copied by ${v.mover}, expected ${want}`);
  const copying = v.events.find((e) => e.state === 'copying');
  const end = Date.parse(v.endedAt);
  return { ms: end - Date.parse(v.createdAt), cliMs, copyMs: copying ? end - Date.parse(copying.at) : NaN, job };
}

function startTraditional(site: Site): Promise<{
  child: ChildProcess;
  run(op: 'backup' | 'restore', peer: TradPeer): Promise<{ ms: number; sha256?: string }>;
}> {
  const child = spawn(
    process.execPath,
    [
      '--max-semi-space-size=64',
      '--import',
      'tsx',
      import.meta.filename,
      '--role',
      'traditional',
      '--store',
      site.store.portal,
      '--api',
      site.store.api,
      '--api-token-file',
      site.store.tokenFile,
      '--tape',
      site.tape.portal,
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
    },
  );
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the traditional server exited (${code})`)));
    child.once('message', () =>
      resolve({
        child,
        run: (op, peer) =>
          new Promise((res, rej) => {
            child.once('message', (m: { ok: boolean; ms: number; sha256?: string; error?: string }) =>
              m.ok ? res(m) : rej(new Error(`${peer} ${op}: ${m.error}`)),
            );
            child.send({ op, peer });
          }),
      }),
    );
  });
}

async function main(): Promise<void> {
  const BYTES = parseSize(values.size!, '--size');
  const RUNS = Number(values.runs);
  const topology = values.topology!;
  if (topology !== 'mover' && topology !== 'drive') throw new Error(`--topology: mover or drive, not ${topology}`);
  if (BYTES % (4 << 20) !== 0) throw new Error('--size must be a multiple of 4 MiB');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-e2e-'));
  if (!values.cold) warmBeforeEachStep(dir, BYTES);
  let site: Site | undefined;
  let trad: ChildProcess | undefined;
  try {
    // The volume: random bytes in the storage node's first disk image, written before it starts.
    const volume = join(dir, 'disk0.img');
    const fh = await open(volume, 'w');
    const chunk = Buffer.alloc(4 << 20);
    const volumeHash = createHash('sha256');
    for (let off = 0; off < BYTES; off += chunk.length) {
      await fh.write(randomFillSync(chunk), 0, chunk.length, off);
      volumeHash.update(chunk);
    }
    await fh.close();
    const volumeSha256 = volumeHash.digest('hex');
    site = await startSite({
      dir,
      disks: [BYTES],
      cartridgeBytes: (RUNS + 1) * BYTES + GIB,
      slots: 8,
      quietPeriodMs: 0,
      movers: topology === 'mover' ? 1 : 0,
    });
    const t = await startTraditional(site);
    const node = new SnapshotApiClient(site.store.api, readFileSync(site.store.tokenFile, 'utf8').trim());
    /** After a restore (untimed): delete the LUNs restored into, so the node's memory stays flat over the runs. */
    const dropRestored = async (): Promise<void> => {
      for (const l of await node.listLuns()) if (l.kind === 'disk' && l.lun !== 0) await node.deleteLun(l.lun);
    };
    trad = t.child;
    const pid = t.child.pid!;
    type Path = 'ferry' | TradPeer | 'dd' | 'ddOverwrite';
    const rows: Record<Path, Record<'backup' | 'restore', Sample[]>> = {
      ferry: { backup: [], restore: [] },
      traditional: { backup: [], restore: [] },
      overwrite: { backup: [], restore: [] },
      dd: { backup: [], restore: [] },
      ddOverwrite: { backup: [], restore: [] },
    };
    const roles: Record<string, number> = {
      store: site.store.pid,
      tape: site.tape.pid,
      ...(site.mover ? { mover: site.mover.pid } : {}),
      server: site.server.pid,
      traditional: pid,
    };
    /** --cpu: every role's CPU ms (user+sys) over `fn`. */
    const cpuOf = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      if (!values.cpu) return fn();
      const before = Object.entries(roles).map(([k, p]) => [k, cpuTicks(p)] as const);
      const r = await fn();
      const use = before.map(([k, [u, sy]]) => {
        const [u1, s1] = cpuTicks(roles[k]);
        return `${k} ${(u1 - u) * 10}+${(s1 - sy) * 10}`;
      });
      console.log(`  ${what}: CPU ms user+sys: ${use.join(', ')}`);
      return r;
    };
    const ddTape = join(dir, 'dd-tape.img');
    const ddBack = join(dir, 'dd-back.img');
    const ddCopy = join(dir, 'dd-copy.img');
    const ddCopyBack = join(dir, 'dd-copy-back.img');
    const mib = BYTES / 2 ** 20;
    /** dd's backup and restore of run `i`. */
    const ddRun = (i: number, peer: 'dd' | 'ddOverwrite'): void => {
      const push = (dirn: 'backup' | 'restore', ms: number) =>
        rows[peer][dirn].push({ ms, cpuS: 0, socketBytes: 0, ioBytes: 0 });
      if (peer === 'dd') {
        // Run i's copy appended after the copies before it, then restored from there into a new file.
        push('backup', dd(`if=${volume}`, `of=${ddTape}`, 'oflag=append', 'conv=notrunc,fdatasync'));
        push('restore', dd(`if=${ddTape}`, `skip=${i * mib}`, `count=${mib}`, `of=${ddBack}`, 'conv=fdatasync'));
        rmSync(ddBack);
      } else {
        // Into files it wrote the run before, deleted just before.
        rmSync(ddCopy, { force: true });
        push('backup', dd(`if=${volume}`, `of=${ddCopy}`, 'conv=fdatasync'));
        rmSync(ddCopyBack, { force: true });
        push('restore', dd(`if=${ddCopy}`, `of=${ddCopyBack}`, 'conv=fdatasync'));
      }
    };
    for (let i = 0; i < RUNS; i++) {
      // Ferry and its peers take turns going first.
      const paths: Path[] = ['ferry', ...TRAD_PEERS, 'dd', 'ddOverwrite'];
      for (let k = 0; k < paths.length; k++) {
        const path = paths[(i + k) % paths.length];
        if (path === 'dd' || path === 'ddOverwrite') ddRun(i, path);
        else if (path === 'ferry') {
          let set = 0;
          rows.ferry.backup.push(
            await cpuOf('ferry backup', () =>
              measured(site!.server.pid, async () => {
                const r = await ferryJob(site!, ['backup', 'store:0', '--mode', 'image', '--quiet-period', '0']);
                set = r.job.set!;
                return r;
              }),
            ),
          );
          rows.ferry.restore.push(
            await cpuOf('ferry restore', () =>
              measured(site!.server.pid, () => ferryJob(site!, ['restore', String(set), '--to', 'store:new'])),
            ),
          );
          await dropRestored();
        } else {
          rows[path].backup.push(
            await cpuOf(`${path} backup`, () =>
              measured(pid, async () => {
                const r = await t.run('backup', path);
                if (r.sha256 !== undefined && r.sha256 !== volumeSha256)
                  throw new Error(`${path} backup: SHA-256 ${r.sha256}, the volume's is ${volumeSha256}`);
                return r;
              }),
            ),
          );
          rows[path].restore.push(await cpuOf(`${path} restore`, () => measured(pid, () => t.run('restore', path))));
          await dropRestored();
        }
      }
      for (const dirn of ['backup', 'restore'] as const) {
        const f = rows.ferry[dirn][i];
        const at = (p: Path) => mbps(BYTES, rows[p][dirn][i].ms).toFixed(0);
        console.log(
          `run ${i + 1} ${dirn}: ferry ${mbps(BYTES, f.ms).toFixed(0)} MB/s (CLI ` +
            `${mbps(BYTES, f.cliMs!).toFixed(0)}, ` +
            `copy phase ${mbps(BYTES, f.copyMs!).toFixed(0)}), traditional ${at('traditional')}, ` +
            `traditional overwrite ${at('overwrite')}, dd ${at('dd')}, dd overwrite ${at('ddOverwrite')}`,
        );
      }
    }

    const gib = BYTES / GIB;
    const copier = topology === 'mover' ? 'a `ferry mover`' : "the drive LU's copy manager";
    const memory = values.cold ? 'memory as it was' : 'memory warmed before each step';
    console.log(
      `\n${formatBytes(BYTES)} LUN, ${RUNS} runs, medians; every role its own process; tape blocks ` +
        `${formatBytes(TAPE_BLOCK)}; Ferry's copy by ${copier}; ${memory}`,
    );
    const table: Record<string, Record<string, string | number>> = {};
    for (const dirn of ['backup', 'restore'] as const) {
      const m = (p: Path, k: keyof Sample) => median(rows[p][dirn].map((s) => s[k] ?? NaN));
      const fMs = m('ferry', 'ms');
      const dMs = m('dd', 'ms');
      table[`ferry ${dirn}`] = {
        'MB/s': Math.round(mbps(BYTES, fMs)),
        'CLI MB/s': Math.round(mbps(BYTES, m('ferry', 'cliMs'))),
        'copy phase MB/s': Math.round(mbps(BYTES, m('ferry', 'copyMs'))),
        'server CPU s/GiB': +(m('ferry', 'cpuS') / gib).toFixed(3),
        'server socket B/GiB': Math.round(m('ferry', 'socketBytes') / gib),
        'server rchar+wchar B/GiB': Math.round(m('ferry', 'ioBytes') / gib),
      };
      for (const peer of TRAD_PEERS)
        table[`${peer === 'traditional' ? 'traditional' : 'trad. overwrite'} ${dirn}`] = {
          'MB/s': Math.round(mbps(BYTES, m(peer, 'ms'))),
          'server CPU s/GiB': +(m(peer, 'cpuS') / gib).toFixed(3),
          'server socket B/GiB': Math.round(m(peer, 'socketBytes') / gib),
          'server rchar+wchar B/GiB': Math.round(m(peer, 'ioBytes') / gib),
        };
      table[`dd ${dirn}`] = { 'MB/s': Math.round(mbps(BYTES, dMs)) };
      table[`dd overwrite ${dirn}`] = { 'MB/s': Math.round(mbps(BYTES, m('ddOverwrite', 'ms'))) };
    }
    console.table(table);
    for (const dirn of ['backup', 'restore'] as const) {
      const m = (p: Path, k: keyof Sample) => median(rows[p][dirn].map((s) => s[k] ?? NaN));
      const sock = m('ferry', 'socketBytes') / m('traditional', 'socketBytes');
      console.log(
        `${dirn}: ferry = ${(m('dd', 'ms') / m('ferry', 'ms')).toFixed(2)}× dd (goal ≥ 0.5×), ` +
          `${(m('ddOverwrite', 'ms') / m('ferry', 'ms')).toFixed(2)}× dd overwrite, ` +
          `${(m('traditional', 'ms') / m('ferry', 'ms')).toFixed(2)}× traditional (goal > 1×), ` +
          `${(m('overwrite', 'ms') / m('ferry', 'ms')).toFixed(2)}× traditional overwrite, ` +
          `server socket bytes ${(100 * sock).toFixed(4)}% of traditional's (goal < 1%); ` +
          `by the CLI's wall time ${(m('dd', 'ms') / m('ferry', 'cliMs')).toFixed(2)}× dd, ` +
          `${(m('traditional', 'ms') / m('ferry', 'cliMs')).toFixed(2)}× traditional`,
      );
    }
  } finally {
    if (trad?.connected) trad.send({ op: 'exit' });
    await site?.stop();
    if (trad && trad.exitCode === null) trad.kill('SIGTERM');
    if (values.keep) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

if (values.role === 'traditional') await traditionalServer();
else await main();
