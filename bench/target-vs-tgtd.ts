// Benchmark: sequential read (iscsi-perf) and write (qemu-img convert) against a Ferry
// target and tgtd, each serving the same kind of file, in the same run. Prints ours/tgtd.
//   npx tsx bench/target-vs-tgtd.ts [--size-mb 512] [--seconds 10]
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTarget } from '../test/helpers/ferry-cli.ts';
import { startTgtd } from '../test/helpers/tgtd.ts';

const exec = promisify(execFile);
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE_MB = arg('--size-mb', 512);
const SECONDS = arg('--seconds', 10);
const IQN = 'iqn.2026-11.dev.ferry:bench';

/** iscsi-perf: 1 MiB sequential READs, 16 in flight; returns MB/s (its own average). */
function iscsiPerf(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('iscsi-perf', ['-b', '2048', '-m', '16', '-t', String(SECONDS), url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      const all = [...out.matchAll(/iops average \d+ \((\d+) MB\/s\)/g)];
      if (!all.length) reject(new Error(`no iscsi-perf result: ${out.slice(-500)}`));
      else resolve(Number(all[all.length - 1][1]));
    });
  });
}

/** qemu-img convert of the source image into the LUN; returns MB/s. */
async function qemuWrite(src: string, url: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await exec('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return SIZE_MB / s;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-'));
  const src = join(dir, 'src.raw');
  await exec('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', `count=${SIZE_MB}`, 'status=none']);
  const oursImg = join(dir, 'ours.img');
  const tgtdImg = join(dir, 'tgtd.img');
  await copyFile(src, oursImg);
  await copyFile(src, tgtdImg);
  const ours = await spawnTarget(['--iqn', IQN, '--disk', oursImg, '--log-level', 'info']);
  const tgtd = await startTgtd();
  tgtd.addLun(1, tgtdImg);
  const oursUrl = `iscsi://127.0.0.1:${ours.port}/${IQN}/0`;
  const tgtdUrl = `iscsi://127.0.0.1:${tgtd.port}/${tgtd.iqn}/1`;
  try {
    const rows: Array<[string, number, number]> = [];
    // Interleave runs so both see the same machine load; best of 3 each.
    const best = async (f: () => Promise<number>): Promise<number> => Math.max(await f(), await f(), await f());
    const readOurs = await best(() => iscsiPerf(oursUrl));
    const readTgtd = await best(() => iscsiPerf(tgtdUrl));
    rows.push(['sequential read, iscsi-perf 1 MiB x16', readOurs, readTgtd]);
    const writeOurs = await best(() => qemuWrite(src, oursUrl));
    const writeTgtd = await best(() => qemuWrite(src, tgtdUrl));
    rows.push([`sequential write, qemu-img convert ${SIZE_MB} MiB`, writeOurs, writeTgtd]);
    console.log(`\nferry target vs tgtd, same run (${SIZE_MB} MiB file, ${SECONDS}s iscsi-perf)`);
    console.log('| test | ferry MB/s | tgtd MB/s | ferry/tgtd |');
    console.log('|---|---:|---:|---:|');
    for (const [name, a, b] of rows)
      console.log(`| ${name} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)} |`);
  } finally {
    await ours.stop();
    await tgtd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
