import type { Command } from 'commander';
import type { CartridgeView, SetView } from '../jobs/types.ts';
import type { ScheduleView } from '../jobs/scheduler.ts';
import { bytes, connect, formatTime, out, printJson, table, volumeArg, withServer, type ServerOpts } from './client.ts';

// `ferry sets`, `ferry cartridges` and `ferry schedules`: what the backup server holds and plans.

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
