import type { FastifyInstance } from 'fastify';
import { UsageError } from './errors.ts';

/**
 * Listen, or say in words why not: an address in use or not on this host names the service and
 * where its address is set, never a stack. Returns the port (port 0 picks one).
 */
export async function listenOrExplain(
  app: FastifyInstance,
  host: string,
  port: number,
  what: string,
  setting: string,
): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (code === 'EADDRINUSE')
      throw new UsageError(
        `${what} cannot listen on ${at}: another process uses that address; choose another (${setting})`,
      );
    if (code === 'EADDRNOTAVAIL')
      throw new UsageError(`${what} cannot listen on ${at}: no interface of this host has that address (${setting})`);
    if (code === 'EACCES')
      throw new UsageError(`${what} cannot listen on ${at}: ports below 1024 need privileges (${setting})`);
    throw e;
  }
  const a = app.server.address();
  return typeof a === 'object' && a ? a.port : port;
}
