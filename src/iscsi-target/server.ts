import { createServer, type Server, type Socket } from 'node:net';
import { adoptWithReadBuffer } from '../io/fixed-read-socket.ts';
import pino, { type Logger } from 'pino';
import { TargetConnection, type ConnectionHost } from './connection.ts';
import type { Target } from './target.ts';
import type { LoginResult } from '../iscsi/target-login-fsm.ts';
import { DEFAULT_TARGET_LIMITS, type TargetLimits } from '../iscsi/negotiation.ts';

export interface TargetServerOptions {
  targets?: Target[];
  limits?: Partial<TargetLimits>;
  portalGroupTag?: number;
  log?: Logger;
}

/**
 * An iSCSI portal: a TCP listener whose connections log in to one of its targets.
 * Many sessions at once; each connection is independent, so a slow or dead initiator
 * never blocks the others.
 */
export class TargetServer implements ConnectionHost {
  readonly limits: TargetLimits;
  readonly portalGroupTag: number;
  readonly log: Logger;
  private readonly byName = new Map<string, Target>();
  private readonly live = new Set<TargetConnection>();
  private readonly sessions = new Map<string, TargetConnection>();
  private nextTsih = 1;
  private server?: Server;

  constructor(opts: TargetServerOptions = {}) {
    this.limits = { ...DEFAULT_TARGET_LIMITS, ...opts.limits };
    this.portalGroupTag = opts.portalGroupTag ?? 1;
    this.log = opts.log ?? pino({ level: 'silent' });
    for (const t of opts.targets ?? []) this.addTarget(t);
  }

  addTarget(t: Target): void {
    if (this.byName.has(t.name)) throw new RangeError(`target ${t.name} already exists`);
    this.byName.set(t.name, t);
  }

  findTarget(name: string): Target | undefined {
    return this.byName.get(name);
  }

  targets(): Iterable<Target> {
    return this.byName.values();
  }

  connections(): Iterable<TargetConnection> {
    return this.live;
  }

  registerSession(conn: TargetConnection, result: LoginResult): number {
    // RFC 7143 6.3.5: a leading login with the ISID of a live session reinstates it.
    const key = `${result.initiatorName}|${Buffer.from(result.isid).toString('hex')}|${result.targetName ?? ''}`;
    const old = this.sessions.get(key);
    if (old && old !== conn) old.drop('session reinstated by a new login with the same ISID');
    this.sessions.set(key, conn);
    const tsih = this.nextTsih;
    this.nextTsih = (this.nextTsih % 0xffff) + 1;
    return tsih;
  }

  unregisterSession(conn: TargetConnection): void {
    this.live.delete(conn);
    for (const [k, c] of this.sessions) if (c === conn) this.sessions.delete(k);
  }

  /** Listen on host:port (port 0 = any); resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    // Paused on accept so the socket can be re-wrapped to read into one fixed buffer.
    const server = createServer({ pauseOnConnect: true }, (accepted: Socket) => {
      const reader = { conn: undefined as TargetConnection | undefined };
      const socket = adoptWithReadBuffer(accepted, {
        receive: (chunk) => reader.conn?.receive(chunk),
        direct: () => reader.conn?.directTarget(),
        receivedDirect: (n) => reader.conn?.receivedDirect(n),
      });
      const conn = new TargetConnection(socket, this);
      reader.conn = conn;
      this.live.add(conn);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const a = server.address();
        if (a && typeof a === 'object') resolve({ host: a.address, port: a.port });
        else reject(new Error('no address'));
      });
    });
  }

  /** Stop listening, drop every connection, and wait until they are torn down. */
  async close(): Promise<void> {
    const closing = this.server ? new Promise<void>((r) => this.server!.close(() => r())) : Promise.resolve();
    const conns = [...this.live];
    for (const c of conns) c.drop('target shutting down');
    await Promise.all(conns.map((c) => c.closed));
    await closing;
  }
}
