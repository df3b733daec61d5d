import type { Command } from 'commander';
import type { CartridgeView, FileView, SetView } from '../jobs/types.ts';
import type { ScheduleView } from '../jobs/scheduler.ts';
import { bytes, connect, formatTime, idArg, out, printJson, table, volumeArg, withServer, type ServerOpts } from './client.ts';

// `ferry sets`, `ls`, `find`, `cartridges` and `schedules`: what the backup server holds and plans.

/** As `ferry ntfs ls`: type, MFT record, size, modified, path. */
function fileLine(e: FileView): string {
  const kind = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'reparse' ? 'r' : '-';
  return `${kind} ${String(e.record).padStart(8)} ${String(e.size).padStart(12)} ${e.modified ?? '-'} ${e.path}${e.type === 'dir' ? '/' : ''}`;
}

function printFiles(list: FileView[], json: boolean | undefined): void {
  if (json) return printJson(list);
  if (list.length) out(list.map(fileLine).join('\n'));
}

function setRow(s: SetView): Record<string, unknown> {
  const { id, volume, mode, level, base, startedAt, endedAt, bytes: b, cartridges } = s;
  return { id, volume, mode, level, base, startedAt, endedAt, bytes: b, cartridges };
}

export function registerSets(program: Command): void {
  withServer(program.command('sets'))
    .summary('list complete backup sets')
    .option('--volume <volume>', 'only sets of this volume (NODE:LUN)', volumeArg('--volume'))
    .action(async (o: ServerOpts & { volume?: string }) => {
      const list = await (await connect(o)).listSets({ volume: o.volume });
      if (o.json) return printJson(list.map(setRow));
      const rows = list.map((s) => [
        String(s.id),
        s.volume,
        s.mode,
        s.level,
        s.base === null ? '-' : String(s.base),
        formatTime(s.startedAt),
        formatTime(s.endedAt),
        bytes(s.bytes),
        s.cartridges.join(','),
      ]);
      out(table(['ID', 'VOLUME', 'MODE', 'LEVEL', 'BASE', 'STARTED', 'ENDED', 'BYTES', 'CARTRIDGES'], rows));
    });

  withServer(program.command('ls'))
    .summary('list the files of a files set, from the catalog (no tape, no node)')
    .description(
      'List a directory of a set made with `ferry backup VOLUME --mode files`, from the catalog alone. ' +
        'Rows as `ferry ntfs ls`: type, MFT record, size, modified time, path; --json adds links, streams, ' +
        'times, attributes and the set that holds the data. System files ($MFT, $Extend …) only with --system.',
    )
    .argument('<set>', 'backup set id', idArg('set'))
    .argument('[path]', 'directory (or file) in the set', '/')
    .option('-R, --recursive', 'list subdirectories too')
    .option('--system', 'include NTFS system files')
    .addHelpText('after', '\nExamples:\n  ferry ls 4\n  ferry ls 4 /docs -R --json')
    .action(async (set: number, path: string, o: ServerOpts & { recursive?: boolean; system?: boolean }) => {
      printFiles(await (await connect(o)).listFiles(set, { path, recursive: o.recursive, system: o.system }), o.json);
    });

  withServer(program.command('find'))
    .summary('find files of a files set by glob, from the catalog')
    .description('Entries whose name matches PATTERN (*, ?, […]; case-insensitive), or whose whole path does when PATTERN holds a /.')
    .argument('<set>', 'backup set id', idArg('set'))
    .argument('<pattern>', "glob, e.g. '*.docx' or '/users/*/desktop/*'")
    .action(async (set: number, pattern: string, o: ServerOpts) => {
      printFiles(await (await connect(o)).findFiles(set, pattern), o.json);
    });

  withServer(program.command('cartridges'))
    .summary('list cartridges with their pool and state')
    .action(async (o: ServerOpts) => {
      const list: CartridgeView[] = await (await connect(o)).listCartridges();
      if (o.json) return printJson(list);
      const rows = list.map((c) => [
        c.barcode,
        c.pool ?? '-',
        c.library ?? '-',
        c.state,
        bytes(c.bytesUsed),
        String(c.sets),
        formatTime(c.lastWrittenAt),
      ]);
      out(table(['BARCODE', 'POOL', 'LIBRARY', 'STATE', 'USED', 'SETS', 'LAST WRITTEN'], rows));
    });

  withServer(program.command('schedules'))
    .description("list the server's backup schedules with their next run and what the last one did")
    .action(async (o: ServerOpts) => {
      const list: ScheduleView[] = await (await connect(o)).listSchedules();
      if (o.json) return printJson(list);
      const last = (s: ScheduleView): string => (!s.last ? '-' : s.last.started ? `job ${s.last.job} (${s.last.level})` : `skipped: ${s.last.skipped}`);
      const rows = list.map((s) => [s.name, s.volume, s.mode, s.level, s.fullEveryMs === null ? '-' : `${s.fullEveryMs / 86_400_000}d`, s.cron, formatTime(s.nextRun), last(s)]);
      out(table(['NAME', 'VOLUME', 'MODE', 'LEVEL', 'FULL EVERY', 'CRON', 'NEXT RUN', 'LAST'], rows));
    });
}
