import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { DemoEvent, DemoJob, DemoPhase, DemoResult } from '../demo/demo.ts';
import { DEFAULT_QUIESCE_TIMEOUT_MS, DEFAULT_QUIET_PERIOD_MS } from '../snapshot/quiesce.ts';
import { formatBytes, parseDuration, parseSize } from '../util/units.ts';

interface DemoFlags {
  dir: string;
  size: string;
  quietPeriod: string;
  timeout: string;
  json?: boolean;
  keep?: boolean;
  verbose?: boolean;
}

const pct = (r: number): string => `${(r * 100).toFixed(4)}%`;

function summary(r: DemoResult): string {
  const line = (k: string, v: string): string => `  ${k.padEnd(30)} ${v}\n`;
  const job = (j: DemoJob): string =>
    `job ${j.job}, set ${j.set}: ${formatBytes(j.bytes)} moved by the data mover in ${j.seconds.toFixed(2)} s`;
  return (
    '\nSummary\n' +
    line(
      'workstations',
      `${r.workstations} wrote ${formatBytes(r.write.bytes)} to ${r.volume} (${r.write.mbPerSecond} MB/s)`,
    ) +
    line('full backup', `${job(r.full)}; waited ${r.full.quietWaitSeconds.toFixed(2)} s for quiet writes`) +
    line('incremental', `${job(r.incremental)}; ${formatBytes(r.incremental.changedBytes)} changed`) +
    line('restore of the chain', `${job(r.restore)} → ${r.restore.volume}`) +
    line('verify', `job ${r.verify.job}: ${r.verify.ok ? 'the tape and the snapshot digests match' : 'MISMATCH'}`) +
    line('bytes moved by the mover', `${r.moverBytes}`) +
    line(
      "bytes on the server's sockets",
      `${r.serverBytesOnWire} (iSCSI control sessions and node API: CDBs, lists, status)`,
    ) +
    line(
      'ratio',
      `${pct(r.ratio)} ` +
        (r.serverless
          ? '< 0.1%: the data did not pass through the server'
          : '≥ 0.1%: too much traffic through the server'),
    ) +
    line('sha256', r.sha256.expected) +
    line(
      'verified',
      r.verified ? 'true (written = restored, on the node and over iSCSI)' : `FALSE: ${JSON.stringify(r.sha256)}`,
    ) +
    line('total time', `${r.seconds.toFixed(2)} s`)
  );
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .summary('ferry up in this process, then a full backup, an incremental, a restore of the chain and verify')
    .description(
      'Start every role in this process over --dir (as `ferry up` does: storage node + tape library,\n' +
        'data mover, backup server). Workstations, each on its own iSCSI session, write --size of\n' +
        "random data to the disk LUN. Through the backup server's REST API: a full backup (the server\n" +
        'waits for the quiet period while a workstation is still writing), more writes, an incremental,\n' +
        'a restore of the chain to a new LUN checked by SHA-256 on the node and over iSCSI, and verify.\n' +
        "The summary sets the bytes on the server's sockets beside the bytes the data mover moved.\n" +
        `The quiet period here defaults to 1s to keep the demo quick (the product default is ` +
        `${DEFAULT_QUIET_PERIOD_MS / 1000}s).\n` +
        'Exit status: 0 verified, 1 verification or run failed, 2 usage error, 130 interrupted.',
    )
    .option(
      '--dir <dir>',
      "the site's directory (disk image, luns/, library/, catalog; reset at start: not the one ferry up uses)",
      './ferry-demo',
    )
    .option('--size <size>', 'size of the disk LUN the workstations fill (a multiple of 256K)', '64M')
    .option('--quiet-period <duration>', 'write pause the snapshot waits for', '1s')
    .option('--timeout <duration>', 'give up on the snapshot after this long', `${DEFAULT_QUIESCE_TIMEOUT_MS / 1000}s`)
    .option('--json', 'print one JSON object with the results on stdout')
    .option('--keep', 'keep the LUN images, the library and the catalog in --dir after the run')
    .option('--verbose', 'log at info level to stderr (default: warnings only)')
    .addHelpText(
      'after',
      '\nExamples:\n  npm run demo\n  ferry demo --size 256M --quiet-period 3s\n  ferry demo --size 16M --json --dir ' +
        '/tmp/ferry-demo',
    )
    .action(async (o: DemoFlags) => {
      const sizeBytes = parseSize(o.size, '--size');
      // loaded on use: faster start for other commands
      const { runDemo, checkDemoSize } = await import('../demo/demo.ts');
      checkDemoSize(sizeBytes);
      const quietPeriodMs = parseDuration(o.quietPeriod, '--quiet-period');
      const timeoutMs = parseDuration(o.timeout, '--timeout');
      const human = !o.json;
      const bars = human && process.stderr.isTTY === true;
      let bar: cliProgress.SingleBar | undefined;
      let barPhase: DemoPhase | undefined;
      const stopBar = (): void => {
        bar?.stop();
        bar = undefined;
        barPhase = undefined;
      };
      const onEvent = (e: DemoEvent): void => {
        if (e.kind === 'phase') {
          stopBar();
          if (human) process.stdout.write(`• ${e.message}\n`);
          return;
        }
        if (!bars) {
          if (human && e.note) process.stdout.write(`    ${e.note}\n`);
          return;
        }
        const all = (e.totalBytes / (1 << 20)).toFixed(0);
        if (barPhase !== e.phase || bar?.getTotal() !== e.totalBytes) {
          stopBar();
          bar = new cliProgress.SingleBar(
            {
              format: `  ${e.phase.padEnd(11)} [{bar}] {percentage}% | {done}/{all} MiB | {note}`,
              stream: process.stderr,
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.totalBytes, 0, { done: '0', all, note: '' });
          barPhase = e.phase;
        }
        bar!.update(Math.min(e.doneBytes, e.totalBytes), {
          done: (e.doneBytes / (1 << 20)).toFixed(0),
          all,
          ...(e.note ? { note: e.note } : {}),
        });
      };
      const ac = new AbortController();
      const interrupt = (): void => {
        if (ac.signal.aborted) process.exit(130); // second Ctrl-C: do not wait
        process.stderr.write('\nferry demo: interrupted, shutting down (Ctrl-C again to force)\n');
        ac.abort();
      };
      process.on('SIGINT', interrupt);
      process.on('SIGTERM', interrupt);
      let r: DemoResult;
      try {
        r = await runDemo({
          dir: o.dir,
          sizeBytes,
          quietPeriodMs,
          timeoutMs,
          keep: !!o.keep,
          logLevel: o.verbose ? 'info' : 'warn',
          onEvent,
          signal: ac.signal,
        });
      } catch (e) {
        if (ac.signal.aborted) {
          stopBar();
          process.exitCode = 130;
          return;
        }
        throw e;
      } finally {
        stopBar();
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      }
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(summary(r));
      if (!r.verified) process.exitCode = 1;
    });
}
