import { Command, Option } from 'commander';
import pino from 'pino';
import type { TargetConfigInput } from '../storage-node/config.ts';
import { collect, readJsonConfig, serveMetricsFlag, serveUntilSignal } from './options.ts';

export function registerTarget(program: Command): void {
  program
    .command('target')
    .summary('serve disk LUNs over iSCSI (the storage node)')
    .description(
      'Serve one iSCSI target whose LUNs are image files (sparse; created or grown to the given size)\n' +
        'and/or tape (a library or one drive). Tape LUNs come first, then LUN N is the next --disk.\n' +
        'Every LU is also an EXTENDED COPY copy manager (a data mover). Logs go to stderr as JSON lines;\n' +
        'SIGINT/SIGTERM stop the target cleanly and flush every LUN to disk.',
    )
    .option('--listen <host:port>', 'portal address to listen on (default 127.0.0.1:3260)')
    .option('--iqn <name>', 'target name (default iqn.2026-11.dev.ferry:store)')
    .option(
      '--disk <file[:size]>',
      'a disk LUN backed by FILE, created/grown to SIZE (e.g. ./disk0.img:64M); repeat for LUN 1, 2, …',
      collect,
      [],
    )
    .addOption(new Option('--block-size <bytes>', 'logical block size of the disks').choices(['512', '4096']))
    .option('--chap <user:secret>', 'require one-way CHAP from initiators (secret ≥ 12 characters)')
    .option(
      '--mutual-chap <user:secret>',
      "the target's own CHAP name and secret, for initiators that ask for mutual CHAP",
    )
    .option('--allow <initiator-iqn>', 'allow only these initiator names (repeatable; default: everyone)', collect, [])
    .option(
      '--library <dir>',
      'serve a tape library kept in DIR: medium changer at LUN 0, drives at LUN 1, 2, … (created with a blank ' +
        'cartridge per slot)',
    )
    .option('--drives <n>', 'tape drives in a new library (default 2)')
    .option('--slots <n>', 'storage slots in a new library (default 20; barcodes FER001L8, FER002L8, …)')
    .option('--cartridge-size <size>', 'capacity of new cartridges (default 2G)')
    .option('--tape <file.cart>', 'serve one stand-alone tape drive with this cartridge loaded (created if missing)')
    .option(
      '--copy-portal <host:port>',
      'a portal whose LUs the copy managers in these LUNs may copy to/from (EXTENDED COPY without a separate mover; ' +
        'repeatable)',
      collect,
      [],
    )
    .option('--copy-portal-chap <user:secret>', 'CHAP the copy managers present at the --copy-portal targets')
    .option('--lun-dir <dir>', 'directory for LUNs created through the API (default: ferry-luns beside the first disk)')
    .option('--api <host:port>', 'serve the management API (snapshots, LUNs, digests) here, e.g. 127.0.0.1:8460')
    .option('--api-token-file <file>', 'file holding the bearer token the API requires')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9470')
    .option(
      '--config <file>',
      'JSON file with the same settings: {listen, iqn, blockSize, disks: ["f:64M"], chap, mutualChap, ' +
        'allowedInitiators, library, drives, slots, cartridgeSize, tape, lunDir, api, apiTokenFile, copyPortals, ' +
        'copyPortalChap, logLevel}; flags override it',
    )
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ferry target --listen 127.0.0.1:3260 --iqn iqn.2026-11.dev.ferry:store --disk ./disk0.img:64M\n' +
        '  ferry target --disk a.img:1G --disk b.img:1G --block-size 4096 --chap backup:averylongsecret\n' +
        '  ferry target --disk d.img:1G --api 127.0.0.1:8460 --api-token-file ./token   # with snapshots API\n' +
        '  ferry target --library ./vtl --drives 2 --slots 20 --cartridge-size 2G       # a tape library\n' +
        '  ferry target --tape ./one.cart                                              # one tape drive\n' +
        '  iscsi-ls iscsi://127.0.0.1:3260            # discover it with libiscsi',
    )
    .action(async (opts: Record<string, unknown>) => {
      const fromFile = opts.config ? await readJsonConfig<TargetConfigInput>(opts.config as string) : {};
      const merged: Record<string, unknown> = { ...fromFile };
      if (opts.listen) merged.listen = opts.listen;
      if (opts.iqn) merged.iqn = opts.iqn;
      if ((opts.disk as string[]).length) merged.disks = opts.disk;
      if (opts.blockSize) merged.blockSize = Number(opts.blockSize);
      if (opts.chap) merged.chap = opts.chap;
      if (opts.mutualChap) merged.mutualChap = opts.mutualChap;
      if ((opts.allow as string[]).length) merged.allowedInitiators = opts.allow;
      if (opts.logLevel) merged.logLevel = opts.logLevel;
      if (opts.lunDir) merged.lunDir = opts.lunDir;
      if ((opts.copyPortal as string[]).length) merged.copyPortals = opts.copyPortal;
      if (opts.copyPortalChap) merged.copyPortalChap = opts.copyPortalChap;
      for (const k of ['library', 'drives', 'slots', 'cartridgeSize', 'tape'] as const)
        if (opts[k] !== undefined) merged[k] = opts[k];
      if (opts.api) merged.api = opts.api;
      if (opts.apiTokenFile) merged.apiTokenFile = opts.apiTokenFile;
      const { resolveTargetConfig } = await import('../storage-node/config.ts');
      const cfg = resolveTargetConfig(merged, opts.config ? `config ${opts.config as string}` : 'options');
      const log = pino({ level: cfg.logLevel, base: { role: 'target' } }, pino.destination({ fd: 2, sync: true }));
      const { startStorageNode } = await import('../storage-node/storage-node.ts');
      const node = await startStorageNode(cfg, log);
      log.info(
        {
          listen: `${node.address.host}:${node.address.port}`,
          iqn: cfg.iqn,
          luns: [
            ...node.tapes.describe,
            ...node.registry.list().map((l) => ({ lun: l.lun, kind: l.kind, bytes: l.sizeBytes })),
          ],
          api: node.api ? `http://${node.api.host}:${node.api.port}` : undefined,
        },
        'target ready',
      );
      const stopMetrics = await serveMetricsFlag(log, opts.metrics);
      await serveUntilSignal(
        log,
        async () => {
          await stopMetrics();
          await node.close();
        },
        'stopping: flushing LUNs',
      );
    });
}
