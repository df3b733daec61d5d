import type { Command } from 'commander';
import { JOB_STATES, STATE_LABELS, isFinal, type JobState } from '../jobs/states.ts';
import type { JobType, JobView } from '../jobs/types.ts';
import type { ServerClient } from '../server/client.ts';
import { resolve } from 'node:path';
import { parseDuration } from '../util/units.ts';
import { UsageError } from '../util/errors.ts';
import { collect } from './options.ts';
import {
  JobFailedError,
  bytes,
  connect,
  formatTime,
  idArg,
  oneOf,
  out,
  printJson,
  table,
  volumeArg,
  withServer,
  type ServerOpts,
} from './client.ts';

// `ferry backup`, `restore`, `verify`, `catalog rebuild`, `jobs` and `job`: clients of the
// backup server. The job commands wait for their job, drawing its progress, unless --detach.

export interface WaitOpts extends ServerOpts {
  detach?: boolean;
}

const JOB_TYPES: readonly JobType[] = ['backup', 'restore', 'verify', 'rebuild', 'label'];
const MODES = ['image', 'used', 'files'] as const;
const LEVELS = ['full', 'incremental'] as const;

export function withDetach(cmd: Command): Command {
  return cmd.option('--detach', 'print the job id at once and leave the job running');
}

/**
 * Start a job, then (unless --detach) wait for it with progress. Resolves with the final view,
 * or undefined when detached. A job that fails or is canceled throws JobFailedError (exit 1),
 * after `onEnd` has printed whatever --json prints.
 */
export async function runJob(
  o: WaitOpts,
  start: (c: ServerClient) => Promise<JobView>,
  onEnd: (v: JobView) => void,
): Promise<void> {
  const client = await connect(o);
  const job = await start(client);
  if (o.detach) {
    if (o.json) printJson({ job: job.id, state: job.state });
    else out(String(job.id));
    return;
  }
  const interrupt = (): void => {
    const follow = `ferry job ${job.id} --follow`;
    process.stderr.write(`\nferry: job ${job.id} goes on on the server; follow it with \`${follow}\`\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  let end: JobView;
  try {
    const { waitForJob } = await import('./job-progress.ts');
    end = await waitForJob(client, job, { quiet: o.json });
  } finally {
    process.off('SIGINT', interrupt);
  }
  onEnd(end);
  if (end.state !== 'done') throw new JobFailedError(end.id, end.state, end.error?.message);
}

export function errorOf(v: JobView): { error?: JobView['error'] } {
  return v.error ? { error: v.error } : {};
}

function jobResult(v: JobView): Record<string, unknown> {
  // A restore says where it went (`--to NODE:new` creates the LUN).
  const to = v.type === 'restore' && typeof v.result?.volume === 'string' ? { volume: v.result.volume } : {};
  return { job: v.id, state: v.state, set: v.set, bytes: v.bytes, ...to, ...errorOf(v) };
}

function jobRow(v: JobView): Record<string, unknown> {
  const { id, type, volume, state, startedAt, endedAt, bytes: b, set } = v;
  return { id, type, volume, state, startedAt, endedAt, bytes: b, set };
}

function jobsTable(list: JobView[]): string {
  return table(
    ['ID', 'TYPE', 'VOLUME', 'STATE', 'STARTED', 'ENDED', 'BYTES', 'SET'],
    list.map((j) => [
      String(j.id),
      j.type,
      j.volume ?? '-',
      STATE_LABELS[j.state],
      formatTime(j.startedAt),
      formatTime(j.endedAt),
      bytes(j.bytes),
      j.set === null ? '-' : String(j.set),
    ]),
  );
}

export function registerJobs(program: Command): void {
  withDetach(withServer(program.command('backup')))
    .summary('back up a volume (NODE:LUN) to tape through a data mover')
    .description(
      'Ask the backup server to back up a volume: a snapshot once writes pause, then EXTENDED COPY from ' +
        'the snapshot to tape by a data mover. Waits for the job and draws its progress unless --detach.\n' +
        'Exit status: 0 done, 1 the job or the request failed, 2 usage error.',
    )
    .argument('<volume>', 'NODE:LUN, e.g. store:0', volumeArg('volume'))
    .option(
      '--mode <mode>',
      'image (every block), used (allocated NTFS clusters) or files (every NTFS file: metadata, then the blocks its ' +
        'attributes point to; browse with `ferry ls`)',
      oneOf('--mode', MODES),
    )
    .option('--level <level>', 'full or incremental (changed blocks since the last set)', oneOf('--level', LEVELS))
    .option('--pool <name>', 'media pool')
    .option('--mover <name>', 'data mover')
    .option('--quiet-period <duration>', "write pause the snapshot waits for (default: the server's, 3s)")
    .option('--timeout <duration>', "fail if no such pause comes within this long (default: the server's, 80s)")
    .option('--verify', 'verify the set once written')
    .addHelpText('after', '\nExamples:\n  ferry backup store:0\n  ferry backup store:0 --level incremental --json')
    .action(
      async (
        volume: string,
        o: WaitOpts & {
          mode?: 'image' | 'used' | 'files';
          level?: 'full' | 'incremental';
          pool?: string;
          mover?: string;
          quietPeriod?: string;
          timeout?: string;
          verify?: boolean;
        },
      ) => {
        const quietPeriodMs = o.quietPeriod === undefined ? undefined : parseDuration(o.quietPeriod, '--quiet-period');
        const timeoutMs = o.timeout === undefined ? undefined : parseDuration(o.timeout, '--timeout');
        const req = { volume, mode: o.mode, level: o.level, pool: o.pool, mover: o.mover, quietPeriodMs, timeoutMs };
        await runJob(
          o,
          (c) => c.startBackup({ ...req, verify: o.verify }),
          (v) => {
            if (o.json) return printJson(jobResult(v));
            if (v.state === 'done') out(`job ${v.id} done: set ${v.set} of ${volume}, ${bytes(v.bytes)} moved`);
          },
        );
      },
    );

  withDetach(withServer(program.command('restore')))
    .summary('restore a backup set to a volume through a data mover, or files of a files set to a directory')
    .description(
      'Restore a set to a LUN: tape → LUN by a data mover, the full set and then each incremental ' +
        'of the chain. --to NODE:new creates a LUN through the node API. Refuses a LUN smaller than the ' +
        'source, or one that is the source of a set in the chain, unless --force.\n' +
        'Or restore files of a files set (--file PATH, repeatable; a directory brings its subtree) into ' +
        "--out DIR on the backup server's disk, at their full paths (DIR/a/b.txt for /a/b.txt). The server " +
        "reads only those files' tape blocks, in one pass in tape order; their data crosses the server, " +
        'unlike every other job. Named streams land as PATH:STREAM unless --no-streams.\n' +
        'Waits unless --detach. Exit status: 0 done, 1 the job or the request failed, 2 usage error.',
    )
    .argument('<set>', 'backup set id', idArg('set'))
    .option('--to <volume>', 'NODE:LUN, or NODE:new', volumeArg('--to', true))
    .option('--file <path>', 'a file or directory of a files set (repeat for more)', collect, [])
    .option('--out <dir>', "with --file: a new or empty directory on the server's disk")
    .option('--no-streams', 'with --file: leave named streams out')
    .option(
      '--force',
      'restore into a smaller LUN or a source of the chain; with --file, into a directory that is not empty',
    )
    .option('--mover <name>', 'data mover')
    .addHelpText(
      'after',
      '\nExamples:\n  ferry restore 3 --to store:new\n  ferry restore 4 --file /docs/report.txt --file /photos --out ' +
        '/srv/restore',
    )
    .action(
      async (
        set: number,
        o: WaitOpts & { to?: string; file: string[]; out?: string; streams: boolean; force?: boolean; mover?: string },
      ) => {
        if (o.file.length > 0 || o.out !== undefined) {
          if (o.to !== undefined)
            throw new UsageError(
              'give either --to NODE:LUN (the whole set to a LUN) or --file PATH --out DIR (files to a directory), ' +
                'not both',
            );
          if (o.file.length === 0) throw new UsageError('--out needs at least one --file PATH');
          if (o.out === undefined)
            throw new UsageError('--file needs --out DIR: the directory on the server to restore into');
          // Relative to where the command runs (the server is often on the same host).
          const outDir = resolve(o.out);
          return runJob(
            o,
            (c) => c.startFileRestore({ set, files: o.file, out: outDir, force: o.force, streams: o.streams }),
            (v) => {
              const r = v.result ?? {};
              if (o.json)
                return printJson({
                  job: v.id,
                  state: v.state,
                  set: v.set,
                  bytes: v.bytes,
                  out: r.out ?? outDir,
                  files: r.files ?? 0,
                  tapeBytes: r.tapeBytes ?? 0,
                  ...errorOf(v),
                });
              if (v.state === 'done')
                out(
                  `job ${v.id} done: ${String(r.files)} entries of set ${set} restored into ${String(r.out)}, ` +
                    `${bytes(v.bytes)} written, ${bytes(Number(r.tapeBytes))} read from tape`,
                );
            },
          );
        }
        if (o.to === undefined)
          throw new UsageError('say where to restore: --to NODE:LUN (or NODE:new), or --file PATH --out DIR');
        const to = o.to;
        await runJob(
          o,
          (c) => c.startRestore({ set, to, force: o.force, mover: o.mover }),
          (v) => {
            if (o.json) return printJson(jobResult(v));
            const lun = v.result && typeof v.result.lun === 'number' ? ` (LUN ${v.result.lun})` : '';
            if (v.state !== 'done') return;
            out(`job ${v.id} done: set ${set} restored to ${to}${lun}, ${bytes(v.bytes)} moved`);
          },
        );
      },
    );

  withDetach(withServer(program.command('verify')))
    .summary('verify a backup set: digests computed where the data lives, compared')
    .argument('<set>', 'backup set id', idArg('set'))
    .action(async (set: number, o: WaitOpts) => {
      await runJob(
        o,
        (c) => c.startVerify({ set }),
        (v) => {
          const ok = v.state === 'done' && v.result?.ok === true;
          if (o.json) printJson({ set, ok, ...errorOf(v) });
          else if (v.state === 'done') out(ok ? `set ${set} verified: digests match` : `set ${set}: digests differ`);
          if (v.state === 'done' && !ok) {
            throw new JobFailedError(v.id, 'failed', `set ${set} did not verify: the digests on tape and disk differ`);
          }
        },
      );
    });

  const catalog = program.command('catalog').summary('the backup catalog');
  withDetach(withServer(catalog.command('rebuild')))
    .description('rebuild the catalog from the labels, headers and trailers on tape (reads no data)')
    .option('--library <name>', 'only the cartridges of this library')
    .action(async (o: WaitOpts & { library?: string }) => {
      await runJob(
        o,
        (c) => c.startRebuild({ library: o.library }),
        (v) => {
          if (o.json) return printJson({ job: v.id, state: v.state, result: v.result, ...errorOf(v) });
          const result = v.result ? ` ${JSON.stringify(v.result)}` : '';
          if (v.state === 'done') out(`job ${v.id} done: catalog rebuilt${result}`);
        },
      );
    });

  withServer(program.command('jobs'))
    .summary('list jobs')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`, oneOf('--state', JOB_STATES))
    .option('--type <type>', `only jobs of this type (${JOB_TYPES.join(', ')})`, oneOf('--type', JOB_TYPES))
    .option('--volume <volume>', 'only jobs of this volume (NODE:LUN)', volumeArg('--volume'))
    .option('--limit <n>', 'at most this many, newest first', idArg('--limit'))
    .action(async (o: ServerOpts & { state?: JobState; type?: JobType; volume?: string; limit?: number }) => {
      const filter = { state: o.state, type: o.type, volume: o.volume, limit: o.limit };
      const list = await (await connect(o)).listJobs(filter);
      if (o.json) return printJson(list.map(jobRow));
      out(jobsTable(list));
    });

  withServer(program.command('job'))
    .summary('show a job and its events; --follow draws its progress until it ends')
    .argument('<id>', 'job id', idArg('job'))
    .option('--follow', 'keep drawing until the job ends (with --json: one event per line)')
    .action(async (id: number, o: ServerOpts & { follow?: boolean }) => {
      const client = await connect(o);
      const job = await client.getJob(id);
      if (o.follow && o.json) {
        await client.follow(id, (e) => printJson(e));
        const end = await client.getJob(id);
        if (end.state !== 'done') throw new JobFailedError(end.id, end.state, end.error?.message);
        return;
      }
      const events = await client.events(id);
      if (o.json) return printJson({ ...job, events });
      out(describeJob(job));
      for (const e of events) {
        out(`  ${formatTime(e.at)}  ${(e.state ?? e.kind).padEnd(13)}  ${e.message}`);
      }
      if (!o.follow || isFinal(job.state)) return;
      const { waitForJob } = await import('./job-progress.ts');
      const end = await waitForJob(client, job);
      out(describeJob(end));
      if (end.state !== 'done') throw new JobFailedError(end.id, end.state, end.error?.message);
    });
}

function describeJob(j: JobView): string {
  const lines = [
    `job ${j.id}: ${j.type}${j.volume ? ` of ${j.volume}` : ''}, ${STATE_LABELS[j.state]}`,
    `  created ${formatTime(j.createdAt)}, started ${formatTime(j.startedAt)}, ended ${formatTime(j.endedAt)}`,
    `  bytes moved ${bytes(j.bytes)}${j.set === null ? '' : `, set ${j.set}`}${j.mover ? `, mover ${j.mover}` : ''}` +
      (j.cartridge ? `, cartridge ${j.cartridge}` : ''),
  ];
  const w = j.progress.waitingFor;
  if (w && !isFinal(j.state)) lines.push(`  ${/^waiting\b/.test(w) ? w : `waiting for ${w}`}`);
  if (j.error) lines.push(`  error ${j.error.code}: ${j.error.message}`);
  if (j.result) lines.push(`  result ${JSON.stringify(j.result)}`);
  return lines.join('\n');
}
