import { createServer, type Server } from 'node:http';
import { parseHostPort } from '../util/units.ts';
import { metricsText, registry } from './metrics.ts';

/**
 * `--metrics HOST:PORT` of a storage node or mover: GET /metrics in the Prometheus text format,
 * nothing else. Resolves with the bound address.
 */
export async function serveMetrics(listen: string): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const { host, port } = parseHostPort(listen, 9470, '--metrics');
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    metricsText().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const bound = a && typeof a === 'object' ? a.port : port;
  return {
    host,
    port: bound,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
