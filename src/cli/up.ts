import type { Command } from 'commander';
import { dirname, join, relative } from 'node:path';
import { parseDuration, parseHostPort, parseSize } from '../util/units.ts';

interface UpFlags {
  dir: string;
  listen: string;
  console: string | false;
  diskSize: string;
  cartridgeSize: string;
  quietPeriod: string;
  logLevel: string;
  json?: boolean;
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .summary(
      'start every role in this process (storage node, tape library, data mover, backup server) and leave it running',
    )
    .description(
      'The all-in-one site over --dir: a storage node with a disk LUN, snapshots and its\n' +
        'management API; a tape library on the same target (changer, two drives, eight cartridges);\n' +
        'a data mover; and the backup server with its catalog and REST API. The server reaches the\n' +
        'others over iSCSI and the node API, as on a real site. It writes DIR/server.json, which\n' +
        '`ferry backup`, `ferry jobs` and the other client commands use by default. Stop with Ctrl-C.',
    )
    .option('--dir <dir>', 'directory for LUN images, cartridges, catalog and tokens', './ferry-data')
    .option('--listen <host:port>', "the backup server's REST API address", '127.0.0.1:8470')
    .option(
      '--console <host:port>',
      'the web console address (sign in with the token in DIR/server.token)',
      '127.0.0.1:8471',
    )
    .option('--no-console', 'no web console')
    .option('--disk-size <size>', 'size of the disk LUN', '64M')
    .option('--cartridge-size <size>', 'capacity of each new cartridge', '1G')
    .option('--quiet-period <duration>', 'default write pause before a snapshot', '3s')
    .option('--log-level <level>', 'log level (logs are JSON lines on stderr)', 'warn')
    .option('--json', 'print the connection details as JSON once everything is up')
    .action(async (f: UpFlags) => {
      const { startUp, UP_IQN } = await import('../server/up.ts');
      const up = await startUp({
        dir: f.dir,
        listen: parseHostPort(f.listen, 8470, '--listen'),
        ...(f.console === false ? {} : { console: parseHostPort(f.console, 8471, '--console') }),
        diskBytes: parseSize(f.diskSize),
        cartridgeBytes: parseSize(f.cartridgeSize),
        quietPeriodMs: parseDuration(f.quietPeriod),
        logLevel: f.logLevel,
      });
      const rel = relative(process.cwd(), up.connectionFile) || up.connectionFile;
      const tokenAt = join(dirname(rel), 'server.token');
      if (f.json) {
        process.stdout.write(
          JSON.stringify({
            url: up.server.api.url,
            console: up.server.console?.url ?? null,
            connectionFile: up.connectionFile,
            volume: up.volume,
            portal: `${up.node.address.host}:${up.node.address.port}`,
            iqn: UP_IQN,
            dir: up.dir,
          }) + '\n',
        );
      } else {
        process.stdout.write(
          `Ferry is up in ${up.dir}\n` +
            `  backup server   ${up.server.api.url}  (connection file ${rel})\n` +
            (up.server.console
              ? `  web console     ${up.server.console.url}  (sign in with the token in ${tokenAt})\n`
              : '') +
            `  storage node    iscsi://${up.node.address.host}:${up.node.address.port}  volume ${up.volume}, API ` +
            `http://${up.node.api!.host}:${up.node.api!.port}\n` +
            `  tape library    changer + 2 drives on the same target, pool "default"\n` +
            `  data mover      iscsi://${up.mover.address.host}:${up.mover.address.port}\n\n` +
            'Try, in another shell from this directory:\n' +
            `  ferry backup ${up.volume}\n  ferry sets\n  ferry restore 1 --to store:new\n  ferry jobs\n\nCtrl-C ` +
            `stops everything.\n`,
        );
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await up.close();
    });
}
