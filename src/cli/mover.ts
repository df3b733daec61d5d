import { Command, Option } from 'commander';
import pino from 'pino';
import type { MoverConfigInput } from '../mover/config.ts';
import { collect, readJsonConfig, serveMetricsFlag, serveUntilSignal } from './options.ts';
import { UsageError } from '../util/errors.ts';

export function registerMover(program: Command): void {
  program
    .command('mover')
    .summary('run a standalone data mover (EXTENDED COPY copy manager) over iSCSI')
    .description(
      'Serve an iSCSI target whose LU 0 is a copy manager (peripheral device type 03h). An initiator sends it\n' +
        'EXTENDED COPY (LID1); the mover copies between disk and tape LUs on the targets behind the --portal\n' +
        'addresses (found by SendTargets + INQUIRY VPD 83h), so backup data never passes through the initiator.\n' +
        'Copy descriptors are resolved only among those LUs. SIGINT/SIGTERM stop it cleanly.',
    )
    .option('--listen <host:port>', 'portal address of the mover itself (default 127.0.0.1:3261)')
    .option('--iqn <name>', 'target name of the mover (default iqn.2026-11.dev.ferry:mover)')
    .option('--portal <host:port>', 'a portal whose targets hold copy sources/destinations (repeatable)', collect, [])
    .option('--portal-chap <user:secret>', 'CHAP the mover presents when it logs in to the --portal targets')
    .option(
      '--initiator-name <iqn>',
      'initiator name the mover uses toward the portals (default <iqn prefix>:mover-initiator)',
    )
    .option('--chap <user:secret>', 'require one-way CHAP from initiators that send EXTENDED COPY to the mover')
    .option('--mutual-chap <user:secret>', "the mover's own CHAP name and secret, for mutual CHAP")
    .option('--allow <initiator-iqn>', 'allow only these initiator names (repeatable)', collect, [])
    .option(
      '--max-rate <bytes/s>',
      'cap the bytes per second the mover reads, over all its copies at once, e.g. 200M (default: no cap)',
    )
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9470')
    .option(
      '--config <file>',
      'JSON file with the same settings: {listen, iqn, initiatorName, portals: ["host:port" | {address, chap, ' +
        'mutualChap}], portalChap, chap, mutualChap, allowedInitiators, maxRate, logLevel}; flags override it',
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
        '  ferry mover --listen 127.0.0.1:3261 --iqn iqn.2026-11.dev.ferry:mover --portal 10.0.0.5:3260 --portal ' +
        '10.0.0.9:3260\n' +
        '  ferry mover --config mover.json     # {"portals": [{"address": "10.0.0.9:3260", "chap": ' +
        '"backup:averylongsecret"}]}',
    )
    .action(async (opts: Record<string, unknown>) => {
      const fromFile = opts.config ? await readJsonConfig<MoverConfigInput>(opts.config as string) : {};
      const merged: Record<string, unknown> = { ...fromFile };
      if (opts.listen) merged.listen = opts.listen;
      if (opts.iqn) merged.iqn = opts.iqn;
      if ((opts.portal as string[]).length) merged.portals = opts.portal;
      if (opts.portalChap) merged.portalChap = opts.portalChap;
      if (opts.initiatorName) merged.initiatorName = opts.initiatorName;
      if (opts.chap) merged.chap = opts.chap;
      if (opts.mutualChap) merged.mutualChap = opts.mutualChap;
      if ((opts.allow as string[]).length) merged.allowedInitiators = opts.allow;
      if (opts.maxRate) merged.maxRate = opts.maxRate;
      if (opts.logLevel) merged.logLevel = opts.logLevel;
      const { resolveMoverConfig } = await import('../mover/config.ts');
      const cfg = resolveMoverConfig(merged, opts.config ? `config ${opts.config as string}` : 'options');
      if (cfg.portals.length === 0)
        throw new UsageError('no portals: give at least one --portal HOST:PORT (or "portals" in --config)');
      const log = pino({ level: cfg.logLevel, base: { role: 'mover' } }, pino.destination({ fd: 2, sync: true }));
      const { startMover } = await import('../mover/mover.ts');
      const mover = await startMover(cfg, log);
      log.info(
        {
          listen: `${mover.address.host}:${mover.address.port}`,
          iqn: cfg.iqn,
          copyTargets: mover.remote.known.length,
          maxBytesPerSecond: cfg.maxBytesPerSecond ?? null,
        },
        'mover ready',
      );
      const stopMetrics = await serveMetricsFlag(log, opts.metrics);
      await serveUntilSignal(
        log,
        async () => {
          await stopMetrics();
          await mover.close();
        },
        'stopping',
      );
    });
}
