import type { Command } from 'commander';
import type { CartridgeView, DriveView, FileView, SetView } from '../jobs/types.ts';
import type { ScheduleView } from '../jobs/scheduler.ts';
import { errorOf, runJob, withDetach, type WaitOpts } from './jobs.ts';
import {
  bytes,
  connect,
  formatTime,
  idArg,
  out,
  printJson,
  table,
  volumeArg,
  withServer,
  type ServerOpts,
} from './client.ts';

// `ferry sets`, `ls`, `find`, `cartridges` and `schedules`: what the backup server holds and plans.

/** As `ferry ntfs ls`: type, MFT record, size, modified, path. */
function fileLine(e: FileView): string {
  const kind = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'reparse' ? 'r' : '-';
  return (
    `${kind} ${String(e.record).padStart(8)} ${String(e.size).padStart(12)} ${e.modified ?? '-'} ` +
    `${e.path}${e.type === 'dir' ? '/' : ''}`
  );
}

function printFiles(list: FileView[], json: boolean | undefined): void {
  if (json) return printJson(list);
  if (list.length) out(list.map(fileLine).join('\n'));
}

function setRow(s: SetView): Record<string, unknown> {
  const { id, volume, mode, level, base, startedAt, endedAt, bytes: b, cartridges } = s;
  return { id, volume, mode, level, base, startedAt, endedAt, bytes: b, cartridges, protected: s.protected };
}

export function registerSets(program: Command): void {
  const sets = withServer(program.command('sets'))
    .summary('list complete backup sets (and protect one from pruning)')
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
        s.protected ? 'protected' : '-',
      ]);
      out(table(['ID', 'VOLUME', 'MODE', 'LEVEL', 'BASE', 'STARTED', 'ENDED', 'BYTES', 'CARTRIDGES', 'PRUNE'], rows));
    });

  withServer(sets.command('protect'))
    .summary('exempt a set from pruning (the sets it builds on stay with it)')
    .description(
      'Exempt a set from `ferry prune`: it is kept whatever the retention rules say, and so is every set it builds on.',
    )
    .argument('<set>', 'backup set id', idArg('set'))
    .option('--off', 'lift the protection: the retention rules decide again')
    .addHelpText('after', '\nExamples:\n  ferry sets protect 12\n  ferry sets protect 12 --off')
    .action(async (set: number, mine: ServerOpts & { off?: boolean }) => {
      // `ferry sets` has the same options: those given after `protect` may have gone to it.
      const o = { ...sets.opts<ServerOpts>(), ...mine };
      const s = await (await connect(o)).protectSet(set, !o.off);
      if (o.json) return printJson(setRow(s));
      out(
        `set ${s.id} (${s.volume}, ${s.mode} ${s.level}) is ` +
          `${s.protected ? 'protected from pruning' : 'pruned by the retention rules again'}`,
      );
    });

  withServer(program.command('prune'))
    .summary("expire the sets the pools' retention rules no longer keep")
    .description(
      "Apply each pool's retention rules (config pools[].retention: keepLast, keepDaily, keepWeekly, keepMonthly, " +
        'per volume and mode). Protected sets and every set a kept incremental builds on are kept. Expired sets ' +
        'leave `ferry sets` and can no longer be restored; a cartridge left with no kept set returns to scratch ' +
        'and is relabeled before it is written again (blank cartridges go first). Refused while a job uses a ' +
        'cartridge of a set that would expire.',
    )
    .option('--dry-run', 'say what would expire and which cartridges would return to scratch; change nothing')
    .addHelpText('after', '\nExamples:\n  ferry prune --dry-run\n  ferry prune --json')
    .action(async (o: ServerOpts & { dryRun?: boolean }) => {
      const r = await (await connect(o)).prune({ dryRun: o.dryRun });
      if (o.json) return printJson(r);
      const verb = r.dryRun ? 'would expire' : 'expired';
      const rows = r.expired.map((e) => [
        String(e.set),
        e.volume,
        e.mode,
        e.level,
        formatTime(e.snapshotAt),
        e.pool,
        e.cartridges.join(','),
      ]);
      if (rows.length) out(table(['SET', 'VOLUME', 'MODE', 'LEVEL', 'SNAPSHOT', 'POOL', 'CARTRIDGES'], rows));
      out(`${verb} ${r.expired.length} set${r.expired.length === 1 ? '' : 's'}, kept ${r.kept.length}`);
      if (r.scratch.length) out(`${r.dryRun ? 'would return' : 'returned'} to scratch: ${r.scratch.join(', ')}`);
      if (r.unmanaged.length) out(`pools without retention rules (every set kept): ${r.unmanaged.join(', ')}`);
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
    .description(
      'Entries whose name matches PATTERN (*, ?, […]; case-insensitive), or whose whole path does when PATTERN holds ' +
        'a /.',
    )
    .argument('<set>', 'backup set id', idArg('set'))
    .argument('<pattern>', "glob, e.g. '*.docx' or '/users/*/desktop/*'")
    .action(async (set: number, pattern: string, o: ServerOpts) => {
      printFiles(await (await connect(o)).findFiles(set, pattern), o.json);
    });

  const cartridges = withServer(program.command('cartridges'))
    .summary('list cartridges: pool, state, where, bytes used, sets, last written, loads (and export, import)')
    .action(async (o: ServerOpts) => {
      const list: CartridgeView[] = await (await connect(o)).listCartridges();
      if (o.json) return printJson(list);
      const rows = list.map((c) => [
        c.barcode,
        c.pool ?? (c.recycled ? 'scratch' : '-'),
        c.library ?? '-',
        c.state,
        c.where ?? '-',
        bytes(c.bytesUsed),
        String(c.sets),
        formatTime(c.lastWrittenAt),
        c.loadCount === null ? '-' : String(c.loadCount),
      ]);
      out(table(['BARCODE', 'POOL', 'LIBRARY', 'STATE', 'WHERE', 'USED', 'SETS', 'LAST WRITTEN', 'LOADS'], rows));
    });

  for (const [verb, what] of [
    [
      'export',
      'move a cartridge to a free import/export element (from its slot, or its drive when idle); no job uses it ' +
        'until ' +
        'it is imported',
    ],
    [
      'import',
      'move a cartridge from an import/export element into an empty slot; a cartridge new to the catalog joins as ' +
        'blank',
    ],
  ] as const) {
    withServer(cartridges.command(verb))
      .summary(what)
      .description(`${what[0].toUpperCase()}${what.slice(1)}.`)
      .argument('<barcode>', 'the cartridge')
      .addHelpText('after', `\nExample:\n  ferry cartridges ${verb} FER003L8`)
      .action(async (barcode: string, mine: ServerOpts) => {
        // `ferry cartridges` has the same options: those given after the verb may have gone to it.
        const o = { ...cartridges.opts<ServerOpts>(), ...mine };
        const c = await connect(o);
        const v = verb === 'export' ? await c.exportCartridge(barcode) : await c.importCartridge(barcode);
        if (o.json) return printJson(v);
        out(`cartridge ${v.barcode} is in ${v.where ?? 'an unknown place'} of library ${v.library ?? '-'}`);
      });
  }

  withDetach(withServer(cartridges.command('label')))
    .summary(
      "write a cartridge's label for a pool now (a blank one, one back from scratch, or an empty one of another pool)",
    )
    .description(
      'Write a new Ferry label on the cartridge for POOL through a data mover, as a backup does at its first use ' +
        'of a ' +
        'blank cartridge, and put it in the pool. Refused for a cartridge that holds kept sets (their data would ' +
        'end) ' +
        'or whose tape does not start with the label the catalog has. Waits for the job unless --detach.',
    )
    .argument('<barcode>', 'the cartridge')
    .option('--pool <name>', "the pool (default: the config's first)")
    .addHelpText('after', '\nExample:\n  ferry cartridges label FER004L8 --pool offsite')
    .action(async (barcode: string, mine: WaitOpts & { pool?: string }) => {
      const o = { ...cartridges.opts<WaitOpts>(), ...mine };
      await runJob(
        o,
        (c) => c.startLabel({ barcode, ...(o.pool ? { pool: o.pool } : {}) }),
        (v) => {
          if (o.json) return printJson({ job: v.id, state: v.state, result: v.result, ...errorOf(v) });
          if (v.state === 'done')
            out(`job ${v.id} done: cartridge ${barcode} labeled for pool ${String(v.result?.pool)}`);
        },
      );
    });

  withServer(program.command('drives'))
    .summary('list drives: what each holds and which job has it')
    .description(
      'Every drive of the configured libraries and stand-alone drives: the cartridge loaded, the job that holds it ' +
        '(or idle), and the pools that use it.',
    )
    .action(async (o: ServerOpts) => {
      const list: DriveView[] = await (await connect(o)).listDrives();
      if (o.json) return printJson(list);
      const rows = list.map((d) => [
        d.name,
        d.cartridge ?? '-',
        d.job === null ? 'idle' : `job ${d.job}`,
        d.pools.join(',') || '-',
      ]);
      out(table(['DRIVE', 'CARTRIDGE', 'IN USE BY', 'POOLS'], rows));
    });

  withServer(program.command('schedules'))
    .description("list the server's backup schedules with their next run and what the last one did")
    .action(async (o: ServerOpts) => {
      const list: ScheduleView[] = await (await connect(o)).listSchedules();
      if (o.json) return printJson(list);
      const last = (s: ScheduleView): string =>
        !s.last ? '-' : s.last.started ? `job ${s.last.job} (${s.last.level})` : `skipped: ${s.last.skipped}`;
      const rows = list.map((s) => [
        s.name,
        s.volume,
        s.mode,
        s.level,
        s.fullEveryMs === null ? '-' : `${s.fullEveryMs / 86_400_000}d`,
        s.cron,
        formatTime(s.nextRun),
        last(s),
      ]);
      out(table(['NAME', 'VOLUME', 'MODE', 'LEVEL', 'FULL EVERY', 'CRON', 'NEXT RUN', 'LAST'], rows));
    });
}
