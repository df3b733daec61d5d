import pino from 'pino';
import { openCatalog } from '../catalog/db.ts';
import { readTokenFile } from '../util/bearer-token.ts';
import { Site } from '../jobs/site.ts';
import { LocalJobService } from '../jobs/service.ts';
import { Scheduler } from '../jobs/scheduler.ts';
import type { NodeControl } from '../storage-node/node-control.ts';
import type { ServerConfig } from './config.ts';
import { startServerApi, type ServerApi } from './api.ts';
import { dirname, join } from 'node:path';
import type { ConsoleServer } from '../console/app.ts';

/**
 * `ferry server`: the catalog, the job service over the site, and the REST API, in one process.
 * `controls` lets `ferry up` hand in-process storage nodes to the server instead of their HTTP API.
 */
export interface RunningServer {
  service: LocalJobService;
  api: ServerApi;
  /** The web console, when the config has `console`. */
  console?: ConsoleServer;
  close(): Promise<void>;
}

export async function startServer(
  config: ServerConfig,
  opts: { logLevel?: string; controls?: ReadonlyMap<string, NodeControl> } = {},
): Promise<RunningServer> {
  const log = pino({ level: opts.logLevel ?? 'info' }, pino.destination(2));
  const token = await readTokenFile(config.tokenFile);
  const catalog = await openCatalog(config.catalog);
  const service = await LocalJobService.open(catalog, new Site(config, opts.controls)).catch(async (e: unknown) => {
    await catalog.close();
    throw e;
  });
  const scheduler = new Scheduler(service, config.schedules ?? [], {
    onFire: (name, o) => {
      if (o instanceof Error) log.error({ schedule: name, err: o }, 'scheduled backup could not start');
      else if (o.started) log.info({ schedule: name, job: o.job, level: o.level }, 'scheduled backup started');
      else log.warn({ schedule: name, reason: o.skipped }, 'scheduled backup skipped');
    },
  });
  const api = await startServerApi(service, {
    host: config.listen.host,
    port: config.listen.port,
    token,
    log,
    schedules: () => scheduler.list(),
  }).catch(async (e: unknown) => {
    await service.close();
    throw e;
  });
  let web: ConsoleServer | undefined;
  if (config.console) {
    const { startConsole } = await import('../console/app.ts');
    web = await startConsole(service, {
      host: config.console.host,
      port: config.console.port,
      token,
      log,
      pools: config.pools.map((p) => p.name),
      restoreDir: config.restoreDir ?? join(dirname(config.file), 'restores'),
    }).catch(async (e: unknown) => {
      await api.close();
      await service.close();
      throw e;
    });
  }
  scheduler.start();
  log.info(
    { url: api.url, console: web?.url, catalog: config.catalog, schedules: config.schedules?.length ?? 0 },
    'backup server listening',
  );
  return {
    service,
    api,
    console: web,
    async close() {
      scheduler.stop();
      await web?.close();
      await api.close();
      await service.close();
    },
  };
}

/** What `ferry server --config FILE` runs: serve until SIGINT or SIGTERM. */
export async function runServer(config: ServerConfig, opts: { logLevel?: string } = {}): Promise<void> {
  const s = await startServer(config, opts);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await s.close();
}
