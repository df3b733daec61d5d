import { readRecord } from '../tapeformat/read-record.ts';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { resolveTargetConfig } from '../storage-node/config.ts';
import { startStorageNode, type StorageNode } from '../storage-node/storage-node.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { openCatalog } from '../catalog/db.ts';
import type { ServerConfig } from '../server/config.ts';
import { Site } from './site.ts';
import { LocalJobService } from './service.ts';
import { startMover } from '../mover/mover.ts';
import { resolveMoverConfig } from '../mover/config.ts';

/**
 * For the jobs tests: the backup server's library in one process over real iSCSI. A storage node
 * whose target also serves the tapes (a library with a changer and 2 drives, or one stand-alone
 * drive at LUN 0, as a tgtd tape LUN is), the drive LUs as copy managers, a SQLite catalog, and
 * a workstation session to write volumes with.
 */

export interface JobsWorldOptions {
  iqn: string;
  cartridgeSize?: number;
  tapeBlockBytes?: number;
  /** One stand-alone drive `solo` instead of a library `vtl`. */
  standalone?: boolean;
  /** Serve the node's management API with this token; the library entry names it (verify on the tape node). */
  apiToken?: string;
  /** A data mover `m1` (what `ferry mover` runs) with a portal to the node, in the config: jobs copy through it. */
  mover?: boolean;
  /** The mover's `--max-rate` (bytes per second): copies that last long enough to overlap. */
  moverRate?: number;
}

export interface JobsWorld {
  node: StorageNode;
  ws: InitiatorSession;
  config: ServerConfig;
  service: LocalJobService;
  /** The node's API URL and token file, with `apiToken`. */
  api?: { url: string; tokenFile: string };
  /** A new disk LUN, open on the workstation session. */
  lun(sizeBytes: number): Promise<{ lun: number; dev: RemoteBlockDevice }>;
  /** A service over the same config and catalog file (after the old one is closed). */
  openService(): Promise<LocalJobService>;
  close(): Promise<void>;
}

export async function startJobsWorld(dir: string, o: JobsWorldOptions): Promise<JobsWorld> {
  const tokenFile = join(dir, 'node.token');
  if (o.apiToken) await writeFile(tokenFile, `${o.apiToken}\n`);
  const tapes = o.standalone
    ? { tape: join(dir, 'solo.cart') }
    : { library: join(dir, 'library'), drives: 2, slots: 6 };
  const cfg = resolveTargetConfig(
    {
      listen: '127.0.0.1:0',
      iqn: o.iqn,
      blockSize: 512,
      lunDir: join(dir, 'luns'),
      ...tapes,
      cartridgeSize: o.cartridgeSize ?? 64 << 20,
      ...(o.apiToken ? { api: '127.0.0.1:0', apiTokenFile: tokenFile } : {}),
      logLevel: 'silent',
    },
    'test',
  );
  const node = await startStorageNode(cfg, pino({ level: 'silent' }));
  const portal = { host: node.address.host, port: node.address.port };
  const api = o.apiToken ? { url: `http://127.0.0.1:${node.api!.port}`, tokenFile } : undefined;
  const tapeBlockBytes = o.tapeBlockBytes ?? 64 * 1024;
  const config: ServerConfig = {
    file: join(dir, 'server.json'),
    listen: { host: '127.0.0.1', port: 0 },
    tokenFile: join(dir, 'token'),
    catalog: join(dir, 'catalog.db'),
    // The jobs reach the node in process; the URL is only used where `api` is served.
    nodes: [
      {
        name: 'store',
        portal,
        iqn: o.iqn,
        api: api?.url ?? 'http://127.0.0.1:1',
        tokenFile: api?.tokenFile ?? join(dir, 'none'),
      },
    ],
    libraries: o.standalone ? [] : [{ name: 'vtl', portal, iqn: o.iqn, ...(api ? { api: api.url, tokenFile } : {}) }],
    drives: o.standalone ? [{ name: 'solo', portal, iqn: o.iqn, lun: 0 }] : [],
    movers: [],
    pools: [
      o.standalone
        ? { name: 'default', drive: 'solo', tapeBlockBytes }
        : { name: 'default', library: 'vtl', tapeBlockBytes },
    ],
    defaults: { quietPeriodMs: 0, timeoutMs: 10_000 },
  };
  const openService = async () =>
    LocalJobService.open(await openCatalog(config.catalog), new Site(config, new Map([['store', node.snapshots]])));
  const mover = o.mover
    ? await startMover(
        resolveMoverConfig({
          listen: '127.0.0.1:0',
          iqn: `${o.iqn}-mover`,
          portals: [`${portal.host}:${portal.port}`],
          ...(o.moverRate ? { maxRate: o.moverRate } : {}),
          logLevel: 'silent',
        }),
      )
    : undefined;
  if (mover)
    config.movers.push({
      name: 'm1',
      portal: { host: mover.address.host, port: mover.address.port },
      iqn: `${o.iqn}-mover`,
      maxJobs: 4,
    });
  const ws = await InitiatorSession.login({
    host: portal.host,
    port: portal.port,
    initiatorName: `${o.iqn}-ws`,
    targetName: o.iqn,
  });
  const w: JobsWorld = {
    node,
    ws,
    config,
    api,
    service: await openService(),
    async lun(sizeBytes) {
      const l = await node.registry.create({ sizeBytes });
      return { lun: l.lun, dev: await RemoteBlockDevice.open(ws, l.lun) };
    },
    openService,
    async close() {
      ws.close();
      await w.service.close();
      await mover?.close();
      await node.close();
    },
  };
  return w;
}

/** SHA-256 of a whole LUN, read over iSCSI in 1 MiB pieces. */
export async function remoteSha256(dev: RemoteBlockDevice): Promise<string> {
  const h = createHash('sha256');
  const chunk = new Uint8Array(1 << 20);
  const per = chunk.length / dev.blockSize;
  for (let lba = 0; lba < dev.blockCount; lba += per) {
    const part = chunk.subarray(0, Math.min(per, dev.blockCount - lba) * dev.blockSize);
    await dev.readInto(lba, part);
    h.update(part);
  }
  return h.digest('hex');
}

/**
 * The first record of cartridge `barcode`, read through a drive of the default pool: "UUID POOL" for a label, else its
 * kind.
 */
export async function firstRecordOf(w: JobsWorld, barcode: string): Promise<string> {
  const site = w.service.site;
  const pool = site.pool(undefined);
  const d = await site.mount(pool, (await site.drivesOf(pool))[0], barcode);
  await d.drive.setFixedBlock(pool.tapeBlockBytes);
  await d.drive.rewind();
  const r = await readRecord(d.drive.device, pool.tapeBlockBytes);
  return r.kind === 'label' ? `${r.cartridgeUuid} ${r.pool}` : r.kind;
}
