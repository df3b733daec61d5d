import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Framer, FramingError, pduPieces, type DataDigestFault } from '../iscsi/framer.ts';
import type { RawPdu } from '../iscsi/pdu/bhs.ts';
import type { LoginResult } from '../iscsi/target-login-fsm.ts';
import type { SessionParams } from '../iscsi/negotiation.ts';
import { TurnCork } from '../io/turn-cork.ts';
import type { Target } from './target.ts';
import { TargetSession, type SessionHost, type SessionLink, type SessionPeer } from './session.ts';

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost extends SessionHost {
  readonly log: Logger;
  registerSession(conn: TargetConnection, result: LoginResult): number;
  unregisterSession(conn: TargetConnection): void;
  connections(): Iterable<TargetConnection>;
}

const LOGIN_TIMEOUT_MS = 15_000;
const NOP_INTERVAL_MS = 30_000;

/**
 * One iSCSI connection on the target side: the only user of its net.Socket. It frames what
 * arrives, hands whole PDUs to its session (session.ts), and writes what the session sends,
 * with digests once logged in and backpressure; it also keeps the login and idle timers.
 */
export class TargetConnection implements SessionPeer {
  readonly socket: Socket;
  private readonly turnCork: TurnCork;
  private readonly host: ConnectionHost;
  private readonly log: Logger;
  private readonly framer: Framer;
  readonly session: TargetSession;
  /** Digests on outgoing PDUs: set once the final Login Response has left. */
  private headerDigest = false;
  private dataDigest = false;
  private loginTimer?: NodeJS.Timeout;
  private nopTimer?: NodeJS.Timeout;
  private lastHeard = Date.now();
  private torn = false;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.turnCork = new TurnCork(socket);
    this.host = host;
    this.log = host.log.child({ peer: `${socket.remoteAddress}:${socket.remotePort}` });
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.framer = new Framer({
      headerDigest: false,
      dataDigest: false,
      maxDataSegment: host.limits.maxRecvDataSegmentLength,
    });
    this.session = new TargetSession(host, this.link, this.log, this);
    this.framer.dataTarget = (bhs) => this.session.landing(bhs);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
    socket.on('close', () => this.teardown('socket closed'));
    socket.on('drain', () => socket.resume());
    this.loginTimer = setTimeout(() => this.drop('login did not complete in time'), LOGIN_TIMEOUT_MS);
  }

  /** The session's target, once logged in to one. */
  get target(): Target | undefined {
    return this.session.target;
  }

  /** Abort this session's tasks on one LU of `target` (LUN RESET from any nexus). */
  abortLunTasks(target: Target, lun: number): void {
    this.session.abortLunTasks(target, lun);
  }

  // ---- input ----

  /** Bytes from the socket (the server's reader); `chunk` is reused after this returns. */
  receive(chunk: Buffer): void {
    this.lastHeard = Date.now();
    try {
      this.framer.push(chunk, this.onPdu);
    } catch (err) {
      this.drop(err instanceof FramingError ? err.message : `bad input: ${(err as Error).message}`);
    }
  }

  /** Where the next socket read may land directly: the rest of the data segment being framed. */
  directTarget(): Uint8Array | undefined {
    return this.torn ? undefined : this.framer.directTarget();
  }

  /** `n` bytes were read straight into `directTarget()`. */
  receivedDirect(n: number): void {
    this.lastHeard = Date.now();
    try {
      this.framer.pushedDirect(n, this.onPdu);
    } catch (err) {
      this.drop(err instanceof FramingError ? err.message : `bad input: ${(err as Error).message}`);
    }
  }

  private readonly onPdu = (pdu: RawPdu | DataDigestFault): void => this.session.receive(pdu);

  // ---- output ----

  /** The session's way out. */
  private readonly link: SessionLink = {
    send: (pdu, sent) => this.send(pdu, sent),
    holdTurn: () => this.turnCork.hold(),
    loggedIn: (params) => this.loggedIn(params),
    end: (reason) => {
      this.socket.end();
      this.teardown(reason);
    },
    drop: (reason) => this.drop(reason),
    portal: () => {
      const local = this.socket.localAddress ?? '127.0.0.1';
      const v6 = local.includes(':') && !local.startsWith('::ffff:');
      const addr = v6 ? `[${local}]` : local.replace(/^::ffff:/, '');
      return `${addr}:${this.socket.localPort},${this.host.portalGroupTag}`;
    },
  };

  private loggedIn(params: SessionParams): void {
    // Digests start with the first PDU after the final Login Response (RFC 7143 13.1).
    this.framer.opts.headerDigest = this.headerDigest = params.headerDigest;
    this.framer.opts.dataDigest = this.dataDigest = params.dataDigest;
    clearTimeout(this.loginTimer);
    this.nopTimer = setInterval(() => this.keepAlive(), NOP_INTERVAL_MS);
    this.nopTimer.unref();
  }

  /** Write a PDU; `sent` runs once its bytes are handed to the kernel (or the socket died). */
  private send(pdu: RawPdu, sent?: () => void): void {
    if (this.torn || this.socket.destroyed) {
      sent?.();
      return;
    }
    const pieces = pduPieces(pdu, this.headerDigest, this.dataDigest);
    this.socket.cork();
    let ok = true;
    for (let i = 0; i < pieces.length; i++)
      ok = this.socket.write(pieces[i], i === pieces.length - 1 && sent ? () => sent() : undefined) && ok;
    this.socket.uncork();
    if (!ok) this.socket.pause(); // resume on 'drain': backpressure stops new commands
  }

  private keepAlive(): void {
    const quiet = Date.now() - this.lastHeard;
    if (quiet > 3 * NOP_INTERVAL_MS) return this.drop('initiator silent for 90 s');
    if (quiet >= NOP_INTERVAL_MS) this.session.ping();
  }

  /** Drop the connection (ERL 0 recovery). */
  drop(reason: string): void {
    if (this.torn) return;
    this.log.info({ reason }, 'dropping connection');
    this.socket.destroy();
    this.teardown(reason);
  }

  private teardown(reason: string): void {
    if (this.torn) return;
    this.torn = true;
    clearTimeout(this.loginTimer);
    clearInterval(this.nopTimer);
    this.session.close(reason);
    this.host.unregisterSession(this);
    this.resolveClosed();
  }
}
