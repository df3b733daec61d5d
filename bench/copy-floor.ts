// Benchmark: what moving a LUN's bytes to a "tape" file costs this machine with no protocol at
// all, as a floor for bench/backup-e2e.ts. In the same run, each writing the same bytes as a
// backup does, appended to a file that keeps them (a cartridge keeps its sets) and ended with
// fdatasync:
//   dd             dd bs=1M oflag=append conv=notrunc,fdatasync (backup-e2e's dd peer);
//   dd overwrite   dd bs=1M conv=fdatasync into a file deleted just before (its old peer);
//   relay H hop(s) the bytes through H loopback TCP connections and H + 1 processes, like Ferry's
//                  two topologies: 1 hop (storage node → the drive LU's copy manager) and 2 hops
//                  (storage node → `ferry mover` → tape node). A source process reads the image
//                  (1 MiB reads, 4 in flight) and writes them to a socket; a relay process passes
//                  them on; a sink process appends them to its file (fdatasync every 32 MiB, as a
//                  cartridge does, and at the end). Each read lands in a buffer of a fixed ring
//                  (Node's `onread`), as in Ferry's iSCSI sockets; nothing else is done.
//                  "+ SHA-256": the source also reads the image a second time and digests it on
//                  a worker thread, beside the sends, as Ferry's storage node digests the
//                  snapshot it serves (src/util/threaded-sha256.ts).
// Each timed step starts after a scratch file as large as the copy was written and deleted, and
// `sync` (as in backup-e2e: this VM's freed memory turns cold within seconds); --cold skips that.
// The variants take turns going first. Memory: every variant but "dd overwrite" keeps what it
// writes, runs × 5 × size in all (mind a tmpfs TMPDIR).
//
//   node --import tsx bench/copy-floor.ts [--size 1G] [--runs 3] [--cold]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { connect, createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatBytes, parseSize } from '../src/util/units.ts';
import { ThreadedSha256 } from '../src/util/threaded-sha256.ts';
import { dd, settle, warmBeforeEachStep } from './settle.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '3' },
    cold: { type: 'boolean', default: false },
    role: { type: 'string' },
    to: { type: 'string' },
    file: { type: 'string' },
  },
});

const CHUNK = 1 << 20;
/** The sink's fdatasync interval, as a cartridge's background write-back. */
const SYNC_EVERY = 32 << 20;

/** A socket whose reads land in a ring of `n` buffers; `use(chunk, done)` returns each one with done(). */
function ringReader(n: number, use: (chunk: Buffer, done: () => void) => void, sock: () => Socket) {
  const free: Buffer[] = Array.from({ length: n }, () => Buffer.allocUnsafe(CHUNK));
  let paused = false;
  return {
    buffer: () => free[free.length - 1],
    callback: (got: number, buf: Uint8Array) => {
      free.pop();
      use(Buffer.from(buf.buffer, buf.byteOffset, got), () => {
        free.push(buf as Buffer);
        if (paused) {
          paused = false;
          sock().resume();
        }
      });
      if (!free.length) {
        paused = true;
        sock().pause();
      }
      return true;
    },
  };
}

/** Listen on an ephemeral port; tell the parent which; serve one connection with `onConn`. */
function listenOnce(onConn: (s: Socket) => void): void {
  const srv = createServer({ pauseOnConnect: true }, (accepted) => {
    srv.close();
    onConn(accepted);
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as { port: number }).port }));
}

/** Adopt an accepted socket's handle into a Socket that reads into `onread` (as src/io/fixed-read-socket.ts). */
function adopt(accepted: Socket, onread: ReturnType<typeof ringReader>): Socket {
  const husk = accepted as unknown as { _handle: unknown };
  const handle = husk._handle;
  husk._handle = null;
  accepted.destroy();
  return new Socket({ handle, readable: true, writable: true, onread } as ConstructorParameters<typeof Socket>[0]);
}

function sink(): void {
  listenOnce((accepted) => {
    const fd = openSync(values.file!, 'a');
    let bytes = 0;
    let unsynced = 0;
    const s: Socket = adopt(
      accepted,
      ringReader(
        1,
        (chunk, done) => {
          writeSync(fd, chunk);
          bytes += chunk.length;
          unsynced += chunk.length;
          if (unsynced >= SYNC_EVERY) {
            fdatasyncSync(fd);
            unsynced = 0;
          }
          done();
        },
        () => s,
      ),
    );
    s.on('end', () => {
      fdatasyncSync(fd);
      closeSync(fd);
      process.send!({ done: bytes });
    });
  });
}

function relay(): void {
  listenOnce((accepted) => {
    const out = connect(Number(values.to), '127.0.0.1');
    const s: Socket = adopt(
      accepted,
      ringReader(
        16,
        (chunk, done) => out.write(chunk, done),
        () => s,
      ),
    );
    s.on('end', () => out.end());
  });
}

/** SHA-256 of the file's first `size` bytes, read in CHUNK reads and hashed on a worker thread. */
async function digestFile(fh: FileHandle, size: number, hash: ThreadedSha256): Promise<string> {
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const buf = await hash.buffer();
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - off), off);
      hash.update(buf, bytesRead);
    }
    return await hash.digest();
  } finally {
    await hash.close();
  }
}

async function source(): Promise<void> {
  const { port, file, digest } = await new Promise<{ port: number; file: string; digest: boolean }>((r) =>
    process.once('message', r),
  );
  const fh = await open(file, 'r');
  const size = (await fh.stat()).size;
  const hash = digest ? new ThreadedSha256(CHUNK, 4) : undefined;
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  // The digest reads the image again beside the sends, as the storage node's digest of a snapshot does.
  const digested = hash ? digestFile(fh, size, hash) : Promise.resolve(undefined);
  const ring = Array.from({ length: 4 }, () => ({ buf: Buffer.allocUnsafe(CHUNK), sent: Promise.resolve() }));
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
    const slot = ring[i % ring.length];
    await slot.sent;
    const { bytesRead } = await fh.read(slot.buf, 0, Math.min(CHUNK, size - off), off);
    const chunk = slot.buf.subarray(0, bytesRead);
    slot.sent = new Promise((r) => sock.write(chunk, () => r()));
  }
  await Promise.all(ring.map((s) => s.sent));
  sock.end();
  process.send!({ sha256: await digested });
  await fh.close();
}

// ---------------------------------------------------------------------------------------------

function role(name: string, extra: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--role', name, ...extra], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m: { port?: number }) => resolve({ child, port: m.port ?? 0 }));
    if (name === 'source') resolve({ child, port: 0 });
  });
}

/**
 * One relay run: H hops into `tape` (appended); ms from the source's start to the sink's last
 * fdatasync and, with `sha256` (the image's), the digest's end (checked against it).
 */
async function relayRun(image: string, tape: string, hops: number, sha256?: string): Promise<number> {
  const sinkRole = await role('sink', ['--file', tape]);
  const relays: ChildProcess[] = [];
  let port = sinkRole.port;
  for (let h = 1; h < hops; h++) {
    const r = await role('relay', ['--to', String(port)]);
    relays.push(r.child);
    port = r.port;
  }
  const src = await role('source');
  const done = new Promise<number>((r) => sinkRole.child.once('message', (m: { done: number }) => r(m.done)));
  const digested = new Promise<string | undefined>((r) =>
    src.child.once('message', (m: { sha256?: string }) => r(m.sha256)),
  );
  settle();
  const t0 = performance.now();
  src.child.send({ port, file: image, digest: sha256 !== undefined });
  const [bytes, got] = await Promise.all([done, digested]);
  const ms = performance.now() - t0;
  if (got !== sha256) throw new Error(`relay: SHA-256 ${got}, the image's is ${sha256}`);
  for (const c of [sinkRole.child, src.child, ...relays]) c.kill();
  return bytes > 0 ? ms : NaN;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const BYTES = parseSize(values.size!, '--size');
  const RUNS = Number(values.runs);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-floor-'));
  if (!values.cold) warmBeforeEachStep(dir, BYTES);
  try {
    const image = join(dir, 'disk.img');
    const fh = await open(image, 'w');
    const chunk = Buffer.alloc(4 << 20);
    const imageHash = createHash('sha256');
    for (let off = 0; off < BYTES; off += chunk.length) {
      const part = randomFillSync(chunk).subarray(0, Math.min(chunk.length, BYTES - off));
      await fh.write(part, 0, part.length, off);
      imageHash.update(part);
    }
    await fh.close();
    const sha = imageHash.digest('hex');
    const variants: Record<string, (i: number) => Promise<number>> = {
      dd: async () => dd(`if=${image}`, `of=${join(dir, 'dd-tape')}`, 'oflag=append', 'conv=notrunc,fdatasync'),
      'dd overwrite': async () => {
        rmSync(join(dir, 'dd-copy'), { force: true });
        return dd(`if=${image}`, `of=${join(dir, 'dd-copy')}`, 'conv=fdatasync');
      },
      'relay 1 hop': () => relayRun(image, join(dir, 'tape-1'), 1),
      'relay 1 hop + SHA-256': () => relayRun(image, join(dir, 'tape-1s'), 1, sha),
      'relay 2 hops': () => relayRun(image, join(dir, 'tape-2'), 2),
      'relay 2 hops + SHA-256': () => relayRun(image, join(dir, 'tape-2s'), 2, sha),
    };
    const names = Object.keys(variants);
    const ms: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < RUNS; i++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(i + k) % names.length];
        ms[n].push(await variants[n](i));
      }
      console.log(
        `run ${i + 1}: ${names.map((n) => `${n} ${((BYTES / ms[n][i]) * 1e-3).toFixed(0)}`).join(', ')} MB/s`,
      );
    }
    const dd0 = median(ms.dd);
    const memory = values.cold ? 'memory as it was' : 'memory warmed before each';
    console.log(`\n${formatBytes(BYTES)}, ${RUNS} runs, medians, in ${dir.replace(/\/[^/]*$/, '')}, ${memory}`);
    console.table(
      Object.fromEntries(
        names.map((n) => [
          n,
          { 'MB/s': Math.round((BYTES / median(ms[n])) * 1e-3), '× dd': +(dd0 / median(ms[n])).toFixed(2) },
        ]),
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (values.role === 'sink') sink();
else if (values.role === 'relay') relay();
else if (values.role === 'source') await source();
else await main();
