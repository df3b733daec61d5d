// Benchmark: backups in parallel on 2 drives and 2 data movers, every role its own process
// (test/helpers/site.ts), against one job alone in the same run. N full image backups of N
// volumes start at once (N = 1, 2, 4); the aggregate is N × size / the time from the first
// request to the last job done (snapshot, quiet wait, mount and copy included). With 4 jobs two
// wait for a drive. Then the failover time: a backup's mover is SIGKILLed at about 30 % and the
// time to the job's "resuming set" event (the next list sent to the other mover) is taken.
//
//   node --import tsx bench/parallel-jobs.ts [--size 512M] [--rate 150M] [--keep]
//
// --rate caps each mover (`ferry mover --max-rate`), standing in for a drive's native speed:
// without it every role shares this machine's cores, and the aggregate shows that instead.
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes, parseSize } from '../src/util/units.ts';
import { startSite, type Site } from '../test/helpers/site.ts';
import { ServerClient } from '../src/server/client.ts';
import type { JobView } from '../src/jobs/types.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512M' },
    rate: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SIZE = parseSize(values.size!, '--size');
const VOLUMES = 4;

async function client(site: Site): Promise<ServerClient> {
  return new ServerClient(site.server.url, (await readFile(site.server.tokenFile, 'utf8')).trim());
}

const backup = async (site: Site, lun: number): Promise<JobView> =>
  (await client(site)).startBackup({ volume: `store:${lun}`, mode: 'image', level: 'full' });

async function untilDone(site: Site, id: number): Promise<JobView> {
  for (;;) {
    const j = await (await client(site)).getJob(id);
    if (['done', 'failed', 'canceled'].includes(j.state)) {
      if (j.state !== 'done') throw new Error(`job ${id} ${j.state}: ${j.error?.message}`);
      return j;
    }
    await sleep(25);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-parallel-'));
  try {
    // The same random bytes on every volume, written before the storage node opens them.
    const chunk = randomFillSync(Buffer.alloc(64 << 20));
    for (let n = 0; n < VOLUMES; n++) {
      const fh = await open(join(dir, `disk${n}.img`), 'w');
      for (let off = 0; off < SIZE; off += chunk.length)
        await fh.write(chunk, 0, Math.min(chunk.length, SIZE - off), off);
      await fh.close();
    }
    const site = await startSite({
      dir,
      disks: Array(VOLUMES).fill(SIZE),
      cartridgeBytes: SIZE * 12,
      slots: 4,
      movers: 2,
      quietPeriodMs: 100,
      ...(values.rate ? { moverRate: values.rate } : {}),
    });
    try {
      const rows: Array<{ jobs: number; seconds: number; mbs: number }> = [];
      for (const jobs of [1, 2, 4]) {
        const t0 = performance.now();
        const started = await Promise.all(Array.from({ length: jobs }, (_, n) => backup(site, n)));
        await Promise.all(started.map((j) => untilDone(site, j.id)));
        const seconds = (performance.now() - t0) / 1000;
        rows.push({ jobs, seconds, mbs: (jobs * SIZE) / 1e6 / seconds });
      }
      const one = rows[0].mbs;
      console.log(
        `parallel backups, 2 drives, 2 movers${values.rate ? ` (each --max-rate ${values.rate})` : ''}, ` +
          `${formatBytes(SIZE)} per volume:`,
      );
      for (const r of rows)
        console.log(
          `  ${r.jobs} job${r.jobs > 1 ? 's' : ' '} at once: ${r.seconds.toFixed(2)} s, ${r.mbs.toFixed(0)} MB/s ` +
            `aggregate, ${(r.mbs / one).toFixed(2)}× one job`,
        );

      // Failover: kill the job's mover at ~30 % and time the resume.
      const j = await backup(site, 0);
      let v: JobView;
      do {
        await sleep(10);
        v = await (await client(site)).getJob(j.id);
      } while (
        !(v.mover && v.progress.bytesTotal && v.progress.bytesDone / v.progress.bytesTotal >= 0.3) &&
        v.state !== 'done'
      );
      if (v.state === 'done') throw new Error('the copy ended before 30 %: use a larger --size or a --rate');
      const killedAt = Date.now();
      await site.killMover(v.mover!);
      await untilDone(site, j.id);
      const events = await (await client(site)).events(j.id);
      const failed = events.find((e) => e.message.startsWith(`data mover ${v.mover} failed`));
      const resumed = events.find(
        (e) => e.message.startsWith('resuming set') || e.message.includes(' again from tape block'),
      );
      if (!failed || !resumed)
        throw new Error(`no failover in the job's events:\n${events.map((e) => e.message).join('\n')}`);
      console.log(
        `failover: mover ${v.mover} SIGKILLed at ` +
          `${((v.progress.bytesDone / v.progress.bytesTotal) * 100).toFixed(0)} %;` +
          ` the server saw it after ${Date.parse(failed.at) - killedAt} ms and resumed after ` +
          `${Date.parse(resumed.at) - killedAt} ms: "${resumed.message}"`,
      );
    } finally {
      await site.stop();
    }
  } finally {
    if (!values.keep) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

await main();
