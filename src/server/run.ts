import pino from 'pino';
import { openCatalog } from '../catalog/db.ts';
import { readTokenFile } from '../util/bearer-token.ts';
import { Site } from '../jobs/site.ts';
import { LocalJobService } from '../jobs/service.ts';
import type { NodeControl } from '../snapshot/node-control.ts';
import type { ServerConfig } from './config.ts';
import { startServerApi, type ServerApi } from './api.ts';

/**
 * `ferry server`: the catalog, the job service over the site, and the REST API, in one process.
 * `controls` lets `ferry up` hand in-process storage nodes to the server instead of their HTTP API.
 */
export interface RunningServer {
  service: LocalJobService;
  api: ServerApi;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, opts: { logLevel?: string; controls?: ReadonlyMap<string, NodeControl> } = {}): Promise<RunningServer> {
  const log = pino({ level: opts.logLevel ?? 'info' }, pino.destination(2));
  const token = await readTokenFile(config.tokenFile);
  const catalog = await openCatalog(config.catalog);
  const service = await LocalJobService.open(catalog, new Site(config, opts.controls)).catch(async (e: unknown) => {
    await catalog.close();
    throw e;
  });
  const api = await startServerApi(service, { host: config.listen.host, port: config.listen.port, token, log }).catch(async (e: unknown) => {
    await service.close();
    throw e;
  });
  log.info({ url: api.url, catalog: config.catalog }, 'backup server listening');
  return {
    service,
    api,
    async close() {
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
