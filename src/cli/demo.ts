import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import pino from 'pino';
import type { DemoEvent, DemoPhase, DemoResult } from '../demo/demo.ts';
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
  const line = (k: string, v: string): string => `  ${k.padEnd(28)} ${v}\n`;
  const phase = (p: DemoResult['backup']): string =>
    `${formatBytes(p.moverBytes)} in ${p.seconds.toFixed(2)} s (${p.mbPerSecond} MiB/s), ${p.segments} segments, ${p.controlBytes} control bytes, ${p.polls} polls`;
  return (
    '\nSummary\n' +
    line('data', `${formatBytes(r.sizeBytes)} written by the workstation to LUN ${r.luns.workstation} (${r.write.mbPerSecond} MiB/s)`) +
    line('snapshot', `${r.snapshot.id}: waited ${((r.snapshot.waitedMs ?? 0) / 1000).toFixed(2)} s for a ${r.snapshot.quietPeriodMs / 1000} s quiet period → LUN ${r.luns.snapshot}`) +
    line('backup (snapshot → tape)', phase(r.backup)) +
    line('restore (tape → LUN ' + r.luns.restored + ')', phase(r.restore)) +
    line('bytes moved by the mover', `${r.moverBytes}`) +
    line('bytes on server sockets', `${r.serverBytesOnWire} (control session only: CDBs, lists, status)`) +
    line('ratio', `${pct(r.ratio)} ${r.serverless ? '< 0.1%: the data did not pass through the server' : '≥ 0.1%: too much traffic through the server'}`) +
    line('sha256', r.sha256.written) +
    line('verified', r.verified ? 'true (written = snapshot = restored, on the node and over iSCSI)' : `FALSE: ${JSON.stringify(r.sha256)}`) +
    line('total time', `${r.seconds.toFixed(2)} s`)
  );
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .summary('run the all-in-one node and back a LUN up to tape and restore it with EXTENDED COPY')
    .description(
      'Start a storage node with a tape library (changer LUN 0, one drive LUN 1; every LU a copy\n' +
        'manager) on 127.0.0.1 in this process, over --dir. A workstation writes --size of random\n' +
        'data to a disk LUN; a snapshot is taken after a quiet period; the backup server loads a\n' +
        'cartridge (MOVE MEDIUM) and sends ONE EXTENDED COPY (header, blocks, filemark) to the tape\n' +
        "drive's copy manager; a second one restores the tape into a fresh LUN, which is checked by\n" +
        "SHA-256. The summary compares the server's socket bytes with the bytes the mover moved.\n" +
        `The quiet period here defaults to 1s to keep the demo quick (the product default is ${DEFAULT_QUIET_PERIOD_MS / 1000}s).\n` +
        'Exit status: 0 verified, 1 verification or run failed, 2 usage error, 130 interrupted.',
    )
    .option('--dir <dir>', "the node's data directory (LUN images in luns/, library in library/; reset at start)", './ferry-data')
    .option('--size <size>', 'bytes the workstation writes (a multiple of 256K)', '64M')
    .option('--quiet-period <duration>', 'write pause the snapshot waits for', '1s')
    .option('--timeout <duration>', 'give up on the snapshot after this long', `${DEFAULT_QUIESCE_TIMEOUT_MS / 1000}s`)
    .option('--json', 'print one JSON object with the results on stdout')
    .option('--keep', 'keep the LUN images and the library in --dir after the run')
    .option('--verbose', 'log at info level to stderr (default: warnings only)')
    .addHelpText('after', '\nExamples:\n  npm run demo\n  ferry demo --size 256M --quiet-period 3s\n  ferry demo --size 16M --json --dir /tmp/ferry-demo')
    .action(async (o: DemoFlags) => {
      const sizeBytes = parseSize(o.size, '--size');
      const { runDemo, checkDemoSize } = await import('../demo/demo.ts'); // loaded on use: faster start for other commands
      checkDemoSize(sizeBytes);
      const quietPeriodMs = parseDuration(o.quietPeriod, '--quiet-period');
      const timeoutMs = parseDuration(o.timeout, '--timeout');
      const log = pino({ level: o.verbose ? 'info' : 'warn', base: { role: 'demo' } }, pino.destination({ fd: 2, sync: true }));
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
        if (!bars) return;
        if (barPhase !== e.phase) {
          stopBar();
          bar = new cliProgress.SingleBar(
            { format: `  ${e.phase.padEnd(8)} [{bar}] {percentage}% | {done}/{all} MiB | {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.totalBytes, 0, { done: '0', all: (e.totalBytes / (1 << 20)).toFixed(0) });
          barPhase = e.phase;
        }
        bar!.update(Math.min(e.doneBytes, e.totalBytes), { done: (e.doneBytes / (1 << 20)).toFixed(0) });
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
        r = await runDemo({ dir: o.dir, sizeBytes, quietPeriodMs, timeoutMs, keep: !!o.keep, log, onEvent, signal: ac.signal });
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
