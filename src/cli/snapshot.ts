import type { Command } from 'commander';
import { DEFAULT_API_URL, SnapshotApiClient, parseApiUrl } from '../storage-node/api-client.ts';
import { DEFAULT_QUIESCE_TIMEOUT_MS, DEFAULT_QUIET_PERIOD_MS } from '../snapshot/quiesce.ts';
import { UsageError } from '../util/errors.ts';
import { table } from './client.ts';
import { formatBytes, parseDuration } from '../util/units.ts';

interface ApiOpts {
  api: string;
  tokenFile?: string;
}

async function client(o: ApiOpts): Promise<SnapshotApiClient> {
  if (!o.tokenFile) throw new UsageError('give --token-file FILE (the bearer token the storage node was started with)');
  const { readTokenFile } = await import('../util/bearer-token.ts');
  return new SnapshotApiClient(parseApiUrl(o.api), await readTokenFile(o.tokenFile));
}

function lunNumber(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 0xffff) throw new UsageError(`--lun "${text}" is not a LUN number`);
  return Number(text);
}

function withApi(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'storage node management API', DEFAULT_API_URL)
    .option('--token-file <file>', 'file whose first line is the bearer token');
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function registerSnapshot(program: Command): void {
  const snap = program
    .command('snapshot')
    .summary('take, list and delete snapshots of disk LUNs on a storage node; change ids and changed blocks')
    .description(
      'Drive the storage node management API (`ferry target … --api HOST:PORT --api-token-file FILE`). ' +
        `A snapshot waits until no write has reached the LUN for the quiet period (default ` +
        `${DEFAULT_QUIET_PERIOD_MS / 1000}s) ` +
        `and fails if that does not happen within the timeout (default ${DEFAULT_QUIESCE_TIMEOUT_MS / 1000}s). ` +
        `--quiet-period 0 snapshots at once.`,
    );

  withApi(snap.command('create'))
    .description(
      'snapshot a disk LUN once its writes pause; prints the snapshot, its own read-only LUN and its change id',
    )
    .requiredOption('--lun <n>', 'disk LUN to snapshot')
    .option(
      '--quiet-period <duration>',
      'write pause to wait for (0 = crash-consistent now)',
      `${DEFAULT_QUIET_PERIOD_MS / 1000}s`,
    )
    .option(
      '--timeout <duration>',
      'give up (and fail) after this long without such a pause',
      `${DEFAULT_QUIESCE_TIMEOUT_MS / 1000}s`,
    )
    .option('--json', 'print the snapshot as JSON')
    .action(async (o: ApiOpts & { lun: string; quietPeriod: string; timeout: string; json?: boolean }) => {
      const lun = lunNumber(o.lun);
      const quietPeriodMs = parseDuration(o.quietPeriod, '--quiet-period');
      const timeoutMs = parseDuration(o.timeout, '--timeout');
      const s = await (await client(o)).createSnapshot(lun, { quietPeriodMs, timeoutMs });
      if (o.json) return out(JSON.stringify(s));
      out(
        `snapshot ${s.id} of LUN ${s.sourceLun} is LUN ${s.lun}: taken ${s.takenAt} (${s.mode}) after waiting ` +
          `${s.waitedMs} ms`,
      );
      out(
        `change id ${s.changeId}: \`ferry snapshot changed --lun ${s.sourceLun} --since ${s.changeId}\` works after ` +
          `the snapshot is deleted`,
      );
    });

  withApi(snap.command('ls'))
    .description('list snapshots')
    .option('--lun <n>', 'only snapshots of this disk LUN')
    .option('--json', 'print JSON')
    .action(async (o: ApiOpts & { lun?: string; json?: boolean }) => {
      const list = await (await client(o)).listSnapshots(o.lun === undefined ? undefined : lunNumber(o.lun));
      if (o.json) return out(JSON.stringify(list));
      out(
        table(
          ['ID', 'LUN', 'SOURCE', 'TAKEN', 'MODE', 'WAITED'],
          list.map((s) => [
            s.id,
            String(s.lun),
            String(s.sourceLun),
            s.takenAt,
            s.mode,
            s.waitedMs === null ? '-' : `${s.waitedMs} ms`,
          ]),
        ),
      );
    });

  withApi(snap.command('rm'))
    .description('delete a snapshot (and unmap its LUN); other snapshots are not disturbed')
    .argument('<id>', 'snapshot id')
    .action(async (id: string, o: ApiOpts) => {
      await (await client(o)).deleteSnapshot(id);
      out(`deleted ${id}`);
    });

  withApi(snap.command('changed'))
    .description(
      'blocks of a disk LUN changed since a change id (changed-block tracking), as [lba, blockCount] extents',
    )
    .requiredOption('--lun <n>', 'disk LUN')
    .requiredOption('--since <id>', 'change id (or the id of the snapshot that started it, deleted or not)')
    .option('--until <id>', 'a later change id or snapshot instead of now')
    .option('--json', 'print {"granularity", "blockSize", "extents"}')
    .action(async (o: ApiOpts & { lun: string; since: string; until?: string; json?: boolean }) => {
      const c = await (await client(o)).changedSince(lunNumber(o.lun), o.since, { until: o.until });
      if (c.tracking === 'lost')
        process.stderr.write(
          `ferry: warning: changed-block tracking was lost (${c.reason}); the whole LUN is reported, back it up in ` +
            `full\n`,
        );
      if (o.json) {
        const extents = c.extents.map((e) => [e.lba, e.blocks]);
        const body: Record<string, unknown> = { granularity: c.granularity, blockSize: c.blockSize, extents };
        if (c.tracking === 'lost') Object.assign(body, { tracking: c.tracking, reason: c.reason });
        else if (c.reason) Object.assign(body, { reason: c.reason });
        return out(JSON.stringify(body));
      }
      const blocks = c.extents.reduce((n, e) => n + e.blocks, 0);
      const lines = [
        `${c.extents.length} extent(s), ${blocks} block(s) (${formatBytes(blocks * c.blockSize)}) changed since ` +
          `${o.since} at ${formatBytes(c.granularity)} granularity`,
      ];
      for (const e of c.extents) lines.push(`  lba ${e.lba}  blocks ${e.blocks}`);
      out(lines.join('\n'));
    });

  withApi(snap.command('mark'))
    .description('start a change-tracking epoch on a disk LUN without a snapshot; prints its change id')
    .requiredOption('--lun <n>', 'disk LUN')
    .option('--json', 'print {"changeId", "lun", "startedAt"}')
    .action(async (o: ApiOpts & { lun: string; json?: boolean }) => {
      const m = await (await client(o)).markChanges(lunNumber(o.lun));
      if (o.json) return out(JSON.stringify(m));
      out(`change id ${m.changeId} of LUN ${m.lun} from ${m.startedAt}`);
    });

  withApi(snap.command('tracking'))
    .description("a disk LUN's change-tracking epochs, oldest first, and the space their bitmaps take on the node")
    .requiredOption('--lun <n>', 'disk LUN')
    .option('--json', 'print JSON')
    .action(async (o: ApiOpts & { lun: string; json?: boolean }) => {
      const t = await (await client(o)).changeTracking(lunNumber(o.lun));
      if (o.json) return out(JSON.stringify(t));
      const lines = [
        `LUN ${t.lun}: ${t.epochs.length} of at most ${t.maxEpochs} epochs at ${formatBytes(t.granularity)} ` +
          `granularity, ${formatBytes(t.bytes)} of bitmaps`,
      ];
      const rows = t.epochs.map((e) => [
        e.changeId,
        e.startedAt,
        e.snapshotId ?? '-',
        e.lost ? `lost: ${e.lost}` : e.merged.length ? `also ${e.merged.join(', ')}` : '',
      ]);
      if (rows.length) lines.push(table(['CHANGE ID', 'STARTED', 'SNAPSHOT', 'NOTE'], rows));
      out(lines.join('\n'));
    });
}
