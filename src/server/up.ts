import { randomBytes } from 'node:crypto';
import { mkdir, writeFile, access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { resolveTargetConfig } from '../storage-node/config.ts';
import { startStorageNode, type StorageNode } from '../storage-node/storage-node.ts';
import { startMover, type Mover } from '../mover/mover.ts';
import { resolveMoverConfig } from '../mover/config.ts';
import { DEFAULT_MAX_JOBS_PER_MOVER, DEFAULT_TAPE_BLOCK_BYTES, type ServerConfig } from './config.ts';
import { startServer, type RunningServer } from './run.ts';

/**
 * `ferry up`: every role in one process over one directory, left running: a storage node (disk
 * LUN, snapshots, management API) that is also the tape library (changer, two drives), a data
 * mover, and the backup server. The server reaches them as it would on a site: iSCSI and the
 * node's HTTP API. It writes `server.json` there, which the CLI client finds by default.
 */

export const UP_IQN = 'iqn.2026-11.dev.ferry:up';
export const UP_MOVER_IQN = 'iqn.2026-11.dev.ferry:up-mover';

export interface UpOptions {
  dir: string;
  /** The server's REST API address (`127.0.0.1:8470`; port 0 picks one). */
  listen: { host: string; port: number };
  /** The web console's address (`127.0.0.1:8471`); none when absent. */
  console?: { host: string; port: number };
  diskBytes: number;
  cartridgeBytes: number;
  logLevel: string;
  quietPeriodMs?: number;
}

export interface Up {
  dir: string;
  node: StorageNode;
  mover: Mover;
  server: RunningServer;
  /** `server.json`: `{url, tokenFile}`. */
  connectionFile: string;
  /** The disk LUN's volume name (tape LUNs come first on the target, so it is not LUN 0). */
  volume: string;
  config: ServerConfig;
  close(): Promise<void>;
}

async function tokenFile(path: string): Promise<string> {
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) await writeFile(path, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  return path;
}

export async function startUp(o: UpOptions): Promise<Up> {
  const dir = resolve(o.dir);
  await mkdir(dir, { recursive: true });
  const log = pino({ level: o.logLevel }, pino.destination(2));
  const nodeToken = await tokenFile(join(dir, 'node.token'));
  const serverToken = await tokenFile(join(dir, 'server.token'));
  const node = await startStorageNode(
    resolveTargetConfig(
      {
        listen: '127.0.0.1:0',
        iqn: UP_IQN,
        blockSize: 512,
        disks: [`${join(dir, 'disk0.img')}:${o.diskBytes}`],
        lunDir: join(dir, 'luns'),
        library: join(dir, 'library'),
        drives: 2,
        slots: 8,
        cartridgeSize: o.cartridgeBytes,
        api: '127.0.0.1:0',
        apiTokenFile: nodeToken,
        logLevel: o.logLevel,
      },
      'ferry up',
    ),
    log,
  );
  const portal = `${node.address.host}:${node.address.port}`;
  let mover: Mover | undefined;
  try {
    mover = await startMover(
      resolveMoverConfig(
        { listen: '127.0.0.1:0', iqn: UP_MOVER_IQN, portals: [portal], logLevel: o.logLevel },
        'ferry up',
      ),
      log,
    );
    const config: ServerConfig = {
      file: join(dir, 'server-config.json'),
      listen: o.listen,
      ...(o.console ? { console: o.console } : {}),
      restoreDir: join(dir, 'restores'),
      tokenFile: serverToken,
      catalog: join(dir, 'catalog.db'),
      nodes: [
        {
          name: 'store',
          portal: node.address,
          iqn: UP_IQN,
          api: `http://${node.api!.host}:${node.api!.port}`,
          tokenFile: nodeToken,
        },
      ],
      // The node serves the library too, so its API digests cartridges for verify.
      libraries: [
        {
          name: 'vtl',
          portal: node.address,
          iqn: UP_IQN,
          api: `http://${node.api!.host}:${node.api!.port}`,
          tokenFile: nodeToken,
        },
      ],
      drives: [],
      movers: [{ name: 'm1', portal: mover.address, iqn: UP_MOVER_IQN, maxJobs: DEFAULT_MAX_JOBS_PER_MOVER }],
      pools: [{ name: 'default', library: 'vtl', tapeBlockBytes: DEFAULT_TAPE_BLOCK_BYTES }],
      defaults: { quietPeriodMs: o.quietPeriodMs ?? 3000, timeoutMs: 80_000 },
    };
    const server = await startServer(config, { logLevel: o.logLevel });
    const connectionFile = join(dir, 'server.json');
    const connection = { url: server.api.url, tokenFile: 'server.token', console: server.console?.url };
    await writeFile(connectionFile, `${JSON.stringify(connection, null, 2)}\n`);
    const m = mover;
    const disk = node.registry.list().find((l) => l.kind === 'disk');
    return {
      volume: `store:${disk?.lun ?? 0}`,
      dir,
      node,
      mover: m,
      server,
      connectionFile,
      config,
      async close() {
        await server.close();
        await m.close();
        await node.close();
      },
    };
  } catch (e) {
    await mover?.close();
    await node.close();
    throw e;
  }
}
