import type { Socket } from 'node:net';
import { connectWithReadBuffer, type ChunkReader } from '../io/fixed-read-socket.ts';
import { randomBytes } from 'node:crypto';
import { Framer, FramingError, pduPieces, type DataDigestFault } from '../iscsi/framer.ts';
import {
  type RawPdu,
  Opcode,
  opcodeOf,
  ittOf,
  dataSegmentLength,
  statSNOf,
  expCmdSNOf,
  maxCmdSNOf,
} from '../iscsi/pdu/bhs.ts';
import { encodeLoginRequest, decodeLoginResponse } from '../iscsi/pdu/login.ts';
import { encodeScsiCommand, TaskAttr } from '../iscsi/pdu/scsi-command.ts';
import { decodeScsiResponse } from '../iscsi/pdu/scsi-response.ts';
import { bufferOffsetOf, dataInHasStatus, decodeDataIn, encodeDataOut } from '../iscsi/pdu/data.ts';
import { decodeR2t } from '../iscsi/pdu/r2t.ts';
import { decodeNop, encodeNop } from '../iscsi/pdu/nop.ts';
import { decodeText, encodeText } from '../iscsi/pdu/text.ts';
import { encodeLogoutRequest, decodeLogoutResponse } from '../iscsi/pdu/logout.ts';
import { encodeTmfRequest, decodeTmfResponse, TmfFunction } from '../iscsi/pdu/task-mgmt.ts';
import { decodeReject } from '../iscsi/pdu/reject.ts';
import { decodeKeyValues, encodeKeyValues } from '../iscsi/text-keys.ts';
import {
  type SessionParams,
  defaultParams,
  DEFAULT_INITIATOR_OFFER,
  type InitiatorOffer,
} from '../iscsi/negotiation.ts';
import type { ChapSecret } from '../iscsi/chap.ts';
import { InitiatorLoginFsm } from '../iscsi/initiator-login-fsm.ts';
import { CmdSnWindow } from '../iscsi/cmdsn-window.ts';
import { serialAdd } from '../util/serial.ts';
import { FerryError } from '../util/errors.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { decodeSense, describeSense, type DecodedSense } from '../scsi/sense.ts';
import { commandName } from '../scsi/command-name.ts';

export class IscsiError extends FerryError {}

/** SAM-5 5.3.1 status codes in words. */
const STATUS_NAMES: Record<number, string> = {
  0x02: 'CHECK CONDITION',
  0x08: 'BUSY',
  0x18: 'RESERVATION CONFLICT',
  0x28: 'TASK SET FULL',
  0x40: 'TASK ABORTED',
};

/** A CHECK CONDITION (or other non-GOOD status) from the target, naming the command when known. */
export class ScsiCommandError extends FerryError {
  readonly status: number;
  readonly sense?: DecodedSense;
  readonly rawSense: Uint8Array;
  readonly command?: string;
  constructor(status: number, rawSense: Uint8Array, where?: { cdb: Uint8Array; lun: number }) {
    const s = rawSense.length ? decodeSense(rawSense) : undefined;
    const command = where ? commandName(where.cdb) : undefined;
    const statusText = STATUS_NAMES[status] ?? `SCSI status 0x${status.toString(16)}`;
    super(
      'ERR_SCSI_STATUS',
      `${command ? `${command} on LUN ${where!.lun}: ` : ''}${statusText}${s ? `, ${describeSense(s)}` : ''}`,
    );
    this.status = status;
    this.sense = s;
    this.rawSense = rawSense;
    this.command = command;
  }
}

export interface LoginOptions {
  host: string;
  port?: number;
  initiatorName: string;
  /** Omit for a discovery session. */
  targetName?: string;
  /** Our CHAP secret (one-way). */
  chap?: ChapSecret;
  /** The target's expected CHAP name/secret, to authenticate it (mutual). */
  mutualChap?: ChapSecret;
  headerDigest?: boolean;
  dataDigest?: boolean;
  offer?: Partial<InitiatorOffer>;
  /** 6-byte ISID; random (type 80h, random qualifier) by default. */
  isid?: Uint8Array;
  timeoutMs?: number;
}

export interface CommandOptions {
  /** Bytes to write (Data-Out). */
  dataOut?: Uint8Array;
  /** Bytes expected back (Data-In allocation). */
  inLength?: number;
  /** Read into this buffer instead of allocating. */
  into?: Uint8Array;
  /** Task attribute (default SIMPLE = 1). */
  attr?: number;
  /** Do not throw on non-GOOD status; return it. */
  allowCheckCondition?: boolean;
  /**
   * Retry on UNIT ATTENTION as sd does (default 5 times; 0 to see every UA). Never by default
   * for an ORDERED command: younger ones in flight have run after it, so a retry would land
   * out of order (a tape WRITE after the records that follow it).
   */
  unitAttentionRetries?: number;
  /** Told the task's ITT when it is sent (for abortTask). */
  onIssued?: (itt: number) => void;
}

export interface CommandResult {
  status: number;
  data: Uint8Array;
  sense?: DecodedSense;
  rawSense: Uint8Array;
  residual: number;
  overflow: boolean;
  underflow: boolean;
}

interface Pending {
  itt: number;
  lun: number;
  buf?: Uint8Array;
  received: number;
  dataOut?: Uint8Array;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  status?: number;
}

/** Target PDUs that carry ExpCmdSN and MaxCmdSN. */
const CARRIES_WINDOW: ReadonlySet<number> = new Set([
  Opcode.REJECT,
  Opcode.ASYNC_MESSAGE,
  Opcode.DATA_IN,
  Opcode.SCSI_RESPONSE,
  Opcode.NOP_IN,
  Opcode.R2T,
  Opcode.TEXT_RESPONSE,
  Opcode.TASK_MGMT_RESPONSE,
  Opcode.LOGOUT_RESPONSE,
]);

/**
 * An initiator session (one connection, ERL 0): login, many commands in flight within the
 * target's CmdSN window, R2T-driven writes, Data-In reassembly, TMF, logout.
 */
export class InitiatorSession {
  private socket!: Socket;
  private framer = new Framer({ headerDigest: false, dataDigest: false, maxDataSegment: 16 << 20 });
  params: SessionParams = defaultParams();
  private full = false;
  private cmdSN = 0;
  private expStatSN = 0;
  private readonly window = new CmdSnWindow();
  private nextItt = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly control = new Map<number, (pdu: RawPdu) => void>();
  /** Commands waiting for the CmdSN window, in call order. */
  private windowWaiters: Array<{ send: () => void; fail: (err: Error) => void }> = [];
  private loginWaiter?: (pdu: RawPdu) => void;
  private closedError?: Error;
  /** The connection is gone (logout, close, or the target went away): log in again to go on. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }
  isid: Uint8Array = new Uint8Array(6);
  tsih = 0;
  targetName?: string;
  /** Bytes on this session's socket, both directions (for the "no data through the server" check). */
  get bytesOnWire(): { sent: number; received: number } {
    return { sent: this.socket?.bytesWritten ?? 0, received: this.socket?.bytesRead ?? 0 };
  }

  static async login(opts: LoginOptions): Promise<InitiatorSession> {
    const s = new InitiatorSession();
    await s.open(opts);
    return s;
  }

  private async open(opts: LoginOptions): Promise<void> {
    const port = opts.port ?? 3260;
    this.socket = await new Promise<Socket>((resolve, reject) => {
      const sock = connectWithReadBuffer({ host: opts.host, port }, this.reader);
      sock.once('connect', () => resolve(sock));
      sock.once('error', (e) =>
        reject(new IscsiError('ERR_ISCSI_CONNECT', `cannot connect to ${opts.host}:${port}: ${e.message}`)),
      );
    });
    this.socket.setNoDelay(true);
    // Data-In lands straight in the command's buffer (one copy, no staging buffer).
    this.framer.dataTarget = (bhs) => {
      if (opcodeOf(bhs) !== Opcode.DATA_IN) return undefined;
      const p = this.pending.get(ittOf(bhs));
      const off = bufferOffsetOf(bhs);
      const len = dataSegmentLength(bhs);
      return p?.buf && off + len <= p.buf.length ? p.buf.subarray(off, off + len) : undefined;
    };
    this.socket.on('error', (e) => this.fail(new IscsiError('ERR_ISCSI_SOCKET', `connection error: ${e.message}`)));
    this.socket.on('close', () => this.fail(new IscsiError('ERR_ISCSI_CLOSED', 'connection closed by the target')));
    this.socket.on('drain', () => this.flushWindowWaiters());
    const timer = setTimeout(
      () => this.fail(new IscsiError('ERR_ISCSI_LOGIN_TIMEOUT', 'login timed out')),
      opts.timeoutMs ?? 15_000,
    );
    try {
      await this.doLogin(opts);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Log in through the login state machine: send what it asks, feed it each response. */
  private async doLogin(opts: LoginOptions): Promise<void> {
    this.isid = opts.isid ?? Buffer.concat([Buffer.of(0x80), randomBytes(5)]);
    this.targetName = opts.targetName;
    this.cmdSN = randomBytes(4).readUInt32BE(0);
    const fsm = new InitiatorLoginFsm({
      initiatorName: opts.initiatorName,
      targetName: opts.targetName,
      chap: opts.chap,
      mutualChap: opts.mutualChap,
      offer: {
        ...DEFAULT_INITIATOR_OFFER,
        ...opts.offer,
        headerDigest: !!opts.headerDigest,
        dataDigest: !!opts.dataDigest,
      },
      isid: this.isid,
      itt: this.allocItt(),
      cmdSN: this.cmdSN,
    });
    let request = fsm.start();
    for (;;) {
      const raw = await new Promise<RawPdu>((resolve, reject) => {
        this.loginWaiter = resolve;
        this.closedReject = reject;
        this.write(encodeLoginRequest(request));
      });
      const step = fsm.handle(decodeLoginResponse(raw));
      if (step.kind === 'failed') throw new IscsiError('ERR_ISCSI_LOGIN', step.message);
      if (step.kind === 'send') {
        request = step.request;
        continue;
      }
      this.params = step.params;
      this.tsih = step.tsih;
      this.expStatSN = serialAdd(step.statSN, 1);
      this.window.reset(step.expCmdSN, step.maxCmdSN);
      break;
    }
    this.loginWaiter = undefined;
    this.full = true;
    this.framer.opts.headerDigest = this.params.headerDigest;
    this.framer.opts.dataDigest = this.params.dataDigest;
  }

  private closedReject?: (e: Error) => void;

  private allocItt(): number {
    let itt = this.nextItt;
    this.nextItt = (this.nextItt + 1) >>> 0 || 1;
    if (itt === 0xffffffff) itt = this.allocItt();
    return itt;
  }

  // ---- I/O ----

  private write(pdu: RawPdu): void {
    const pieces = pduPieces(pdu, this.full && this.params.headerDigest, this.full && this.params.dataDigest);
    this.socket.cork();
    for (const p of pieces) this.socket.write(p);
    this.socket.uncork();
  }

  /** Socket reads: into the shared buffer (`onData`) or straight into a Data-In destination. */
  private readonly reader: ChunkReader = {
    receive: (chunk) => this.onData(chunk),
    direct: () => this.framer.directTarget(),
    receivedDirect: (n) => this.framed(() => this.framer.pushedDirect(n, this.onPdu)),
  };

  private onData(chunk: Buffer): void {
    this.framed(() => this.framer.push(chunk, this.onPdu));
  }

  private framed(step: () => void): void {
    try {
      step();
    } catch (e) {
      this.fail(e instanceof FramingError ? new IscsiError('ERR_ISCSI_FRAMING', e.message) : (e as Error));
    }
  }

  private readonly onPdu = (pdu: RawPdu | DataDigestFault): void => {
    if (!('data' in pdu)) return this.fail(new IscsiError('ERR_ISCSI_DIGEST', 'data digest error from target'));
    this.dispatch(pdu);
  };

  private dispatch(pdu: RawPdu): void {
    const op = opcodeOf(pdu.bhs);
    if (op === Opcode.LOGIN_RESPONSE) {
      const w = this.loginWaiter;
      this.loginWaiter = undefined;
      w?.(pdu);
      return;
    }
    this.trackWindow(pdu);
    switch (op) {
      case Opcode.DATA_IN:
        return this.onDataIn(pdu);
      case Opcode.SCSI_RESPONSE:
        return this.onResponse(pdu);
      case Opcode.R2T:
        return this.onR2t(pdu);
      case Opcode.NOP_IN: {
        const nop = decodeNop(pdu);
        if (nop.ttt !== 0xffffffff) {
          // A ping from the target: answer with the same TTT (RFC 7143 11.19).
          this.write(
            encodeNop(Opcode.NOP_OUT, {
              immediate: true,
              lun: 0,
              itt: 0xffffffff,
              ttt: nop.ttt,
              sn: this.cmdSN,
              expSN: this.expStatSN,
              maxCmdSN: 0,
              data: new Uint8Array(0),
            }),
          );
          return;
        }
        break;
      }
      case Opcode.REJECT: {
        const rej = decodeReject(pdu);
        const itt = rej.header.length >= 20 ? ittOf(rej.header) : 0xffffffff;
        const p = this.pending.get(itt);
        if (p) {
          this.pending.delete(itt);
          p.reject(
            new IscsiError('ERR_ISCSI_REJECT', `target rejected the command: reason 0x${rej.reason.toString(16)}`),
          );
        }
        const c = this.control.get(itt);
        if (c) {
          this.control.delete(itt);
          c(pdu);
        }
        return;
      }
      default:
        break;
    }
    const itt = ittOf(pdu.bhs);
    const c = this.control.get(itt);
    if (c) {
      this.control.delete(itt);
      c(pdu);
    }
  }

  /** Follow the CmdSN window and StatSN from every PDU that carries them (RFC 7143 4.2.2.1). */
  private trackWindow(pdu: RawPdu): void {
    const op = opcodeOf(pdu.bhs);
    const b = pdu.bhs;
    if (!CARRIES_WINDOW.has(op)) return;
    this.window.update(expCmdSNOf(b), maxCmdSNOf(b));
    const hasStatSN = op !== Opcode.R2T && op !== Opcode.REJECT && !(op === Opcode.DATA_IN && !dataInHasStatus(b));
    // A NOP-In ping (ITT 0xffffffff) does not advance StatSN (RFC 7143 11.19).
    if (hasStatSN && !(op === Opcode.NOP_IN && ittOf(b) === 0xffffffff)) this.expStatSN = serialAdd(statSNOf(b), 1);
    this.flushWindowWaiters();
  }

  private flushWindowWaiters(): void {
    while (this.windowWaiters.length && this.windowOpen()) this.windowWaiters.shift()!.send();
  }

  private windowOpen(): boolean {
    return this.window.allows(this.cmdSN) && !this.socket.writableNeedDrain;
  }

  /**
   * Run `send` (it takes the next CmdSN and writes its PDU) once the window has room, in call
   * order: the CmdSN order is the order callers asked in, which ORDERED tasks depend on
   * (RFC 7143 3.2.2.1), and no command goes past MaxCmdSN.
   */
  private inTurn<T>(send: () => Promise<T>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    // Both paths settle through the same promise depth, so responses that arrive together
    // resolve their callers in arrival order whether or not a command waited for the window.
    return new Promise<T>((resolve, reject) => {
      const waiter = { send: () => resolve(send()), fail: reject };
      if (this.windowOpen() && this.windowWaiters.length === 0) waiter.send();
      else this.windowWaiters.push(waiter);
    });
  }

  private onDataIn(pdu: RawPdu): void {
    const d = decodeDataIn(pdu);
    const p = this.pending.get(d.itt);
    if (!p) return;
    if (!p.buf || d.bufferOffset + d.data.length > p.buf.length) {
      this.pending.delete(d.itt);
      p.reject(
        new IscsiError(
          'ERR_ISCSI_PROTOCOL',
          `Data-In past the expected length (offset ${d.bufferOffset} + ${d.data.length})`,
        ),
      );
      return;
    }
    if (d.data.buffer !== p.buf.buffer || d.data.byteOffset !== p.buf.byteOffset + d.bufferOffset)
      p.buf.set(d.data, d.bufferOffset);
    p.received = Math.max(p.received, d.bufferOffset + d.data.length);
    // RFC 7143 11.7.1, 11.7.4: the S bit (only with F) carries the command's status in the last
    // Data-In (phase collapse): no SCSI Response follows, and sense data never comes this way.
    if (d.hasStatus) {
      this.pending.delete(d.itt);
      p.resolve({
        status: d.status,
        data: p.buf.subarray(0, p.received),
        rawSense: new Uint8Array(0),
        residual: d.residual,
        overflow: d.overflow,
        underflow: d.underflow,
      });
    }
  }

  private onResponse(pdu: RawPdu): void {
    const r = decodeScsiResponse(pdu);
    const p = this.pending.get(r.itt);
    if (!p) return;
    this.pending.delete(r.itt);
    const data = p.buf ? p.buf.subarray(0, p.received) : new Uint8Array(0);
    p.resolve({
      status: r.status,
      data,
      rawSense: r.sense,
      sense: r.sense.length ? decodeSense(r.sense) : undefined,
      residual: r.residual,
      overflow: r.overflow,
      underflow: r.underflow,
    });
  }

  private onR2t(pdu: RawPdu): void {
    const r = decodeR2t(pdu);
    const p = this.pending.get(r.itt);
    if (!p || !p.dataOut) return;
    this.sendDataOut(p, r.ttt, r.bufferOffset, r.desiredLength);
  }

  /** Send [offset, offset+length) as Data-Out PDUs of at most the target's MaxRecvDataSegmentLength. */
  private sendDataOut(p: Pending, ttt: number, offset: number, length: number): void {
    const data = p.dataOut!;
    const end = Math.min(offset + length, data.length);
    const mrdsl = this.params.peerMaxRecvDataSegmentLength;
    let dataSN = 0;
    this.socket.cork();
    for (let off = offset; off < end; off += mrdsl) {
      const n = Math.min(mrdsl, end - off);
      const pieces = pduPieces(
        encodeDataOut({
          final: off + n >= end,
          lun: p.lun,
          itt: p.itt,
          ttt,
          expStatSN: this.expStatSN,
          dataSN: dataSN++,
          bufferOffset: off,
          data: data.subarray(off, off + n),
        }),
        this.params.headerDigest,
        this.params.dataDigest,
      );
      for (const piece of pieces) this.socket.write(piece);
    }
    this.socket.uncork();
  }

  // ---- commands ----

  /** Run one SCSI command. Throws ScsiCommandError on non-GOOD status unless allowCheckCondition. */
  async command(lun: number, cdb: Uint8Array, opts: CommandOptions = {}): Promise<CommandResult> {
    // SAM-5 5.14: a unit attention reports an event, not a failure of this command: retry it.
    for (let retries = opts.unitAttentionRetries ?? (opts.attr === TaskAttr.ORDERED ? 0 : 5); ; retries--) {
      const res = await this.commandOnce(lun, cdb, { ...opts, allowCheckCondition: true });
      if (res.status === ScsiStatus.CHECK_CONDITION && res.sense?.key === 0x06 && retries > 0) continue;
      if (res.status !== ScsiStatus.GOOD && res.status !== ScsiStatus.CONDITION_MET && !opts.allowCheckCondition) {
        throw new ScsiCommandError(res.status, res.rawSense, { cdb, lun });
      }
      return res;
    }
  }

  private commandOnce(lun: number, cdb: Uint8Array, opts: CommandOptions): Promise<CommandResult> {
    return this.inTurn(() => this.sendCommand(lun, cdb, opts));
  }

  /** Issue one command now (the window has room); settles with its response. */
  private async sendCommand(lun: number, cdb: Uint8Array, opts: CommandOptions): Promise<CommandResult> {
    const itt = this.allocItt();
    opts.onIssued?.(itt);
    const dataOut = opts.dataOut;
    const inLength = opts.into ? opts.into.length : (opts.inLength ?? 0);
    const edtl = dataOut ? dataOut.length : inLength;
    const p: Pending = { itt, lun, received: 0, dataOut, resolve: () => {}, reject: () => {} };
    if (!dataOut && inLength > 0) p.buf = opts.into ?? Buffer.allocUnsafe(inLength);
    const done = new Promise<CommandResult>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    this.pending.set(itt, p);
    const cmdSN = this.cmdSN;
    this.cmdSN = serialAdd(this.cmdSN, 1);
    let immediate: Uint8Array = new Uint8Array(0);
    let unsolicitedEnd = 0;
    if (dataOut && dataOut.length > 0) {
      const first = Math.min(this.params.firstBurstLength, dataOut.length);
      if (this.params.immediateData)
        immediate = dataOut.subarray(0, Math.min(first, this.params.peerMaxRecvDataSegmentLength));
      unsolicitedEnd = this.params.initialR2T ? immediate.length : first;
    }
    this.write(
      encodeScsiCommand({
        immediate: false,
        final: !dataOut || unsolicitedEnd <= immediate.length,
        read: !dataOut && inLength > 0,
        write: !!dataOut && dataOut.length > 0,
        attr: opts.attr ?? 1,
        lun,
        itt,
        edtl,
        cmdSN,
        expStatSN: this.expStatSN,
        cdb,
        data: immediate,
      }),
    );
    if (dataOut && unsolicitedEnd > immediate.length)
      this.sendDataOut(p, 0xffffffff, immediate.length, unsolicitedEnd - immediate.length);
    return done;
  }

  /** A control request (NOP, Text, TMF, Logout) and its response, matched by ITT. */
  private request(build: (itt: number, cmdSN: number) => RawPdu, immediate: boolean): Promise<RawPdu> {
    const send = async (): Promise<RawPdu> => {
      if (this.closedError) throw this.closedError;
      const itt = this.allocItt();
      const cmdSN = this.cmdSN;
      if (!immediate) this.cmdSN = serialAdd(this.cmdSN, 1);
      const res = new Promise<RawPdu>((resolve) => this.control.set(itt, resolve));
      this.write(build(itt, cmdSN));
      return res;
    };
    return immediate ? send() : this.inTurn(send);
  }

  async nop(data: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    const res = await this.request(
      (itt, cmdSN) =>
        encodeNop(Opcode.NOP_OUT, {
          immediate: true,
          lun: 0,
          itt,
          ttt: 0xffffffff,
          sn: cmdSN,
          expSN: this.expStatSN,
          maxCmdSN: 0,
          data,
        }),
      true,
    );
    if (opcodeOf(res.bhs) !== Opcode.NOP_IN)
      throw new IscsiError('ERR_ISCSI_PROTOCOL', 'NOP-Out not answered with NOP-In');
    return decodeNop(res).data;
  }

  /** SendTargets (RFC 7143 Appendix C): [{name, addresses}]. */
  async sendTargets(value = 'All'): Promise<Array<{ name: string; addresses: string[] }>> {
    let data = Buffer.alloc(0);
    let ttt = 0xffffffff;
    let first = true;
    for (;;) {
      const payload = first ? encodeKeyValues([['SendTargets', value]]) : Buffer.alloc(0);
      const t = ttt;
      const res = await this.request(
        (itt, cmdSN) =>
          encodeText(Opcode.TEXT_REQUEST, {
            final: true,
            cont: false,
            immediate: true,
            itt,
            ttt: t,
            sn: cmdSN,
            expSN: this.expStatSN,
            maxCmdSN: 0,
            data: payload,
          }),
        true,
      );
      if (opcodeOf(res.bhs) !== Opcode.TEXT_RESPONSE)
        throw new IscsiError('ERR_ISCSI_PROTOCOL', 'SendTargets was rejected');
      const txt = decodeText(res);
      data = Buffer.concat([data, txt.data]);
      first = false;
      if (!txt.cont) break;
      ttt = txt.ttt;
    }
    const out: Array<{ name: string; addresses: string[] }> = [];
    for (const [k, v] of decodeKeyValues(data)) {
      if (k === 'TargetName') out.push({ name: v, addresses: [] });
      else if (k === 'TargetAddress' && out.length) out[out.length - 1].addresses.push(v);
    }
    return out;
  }

  /** Task management (RFC 7143 11.5); returns the response code (0 = function complete). */
  async taskManagement(func: number, lun: number, referencedTaskTag = 0xffffffff): Promise<number> {
    const res = await this.request(
      (itt, cmdSN) =>
        encodeTmfRequest({
          immediate: true,
          func,
          lun,
          itt,
          referencedTaskTag,
          cmdSN,
          expStatSN: this.expStatSN,
          refCmdSN: cmdSN,
          expDataSN: 0,
        }),
      true,
    );
    return decodeTmfResponse(res).response;
  }

  /**
   * ABORT TASK (RFC 7143 11.5.1): the target ends the task without a SCSI Response, so once the
   * function is complete the command's promise is rejected here (ERR_TASK_ABORTED).
   */
  async abortTask(lun: number, itt: number): Promise<number> {
    const response = await this.taskManagement(TmfFunction.ABORT_TASK, lun, itt);
    const p = this.pending.get(itt);
    if (response === 0 && p) {
      this.pending.delete(itt);
      p.reject(new IscsiError('ERR_TASK_ABORTED', `task ${itt} on LUN ${lun} was aborted`));
    }
    return response;
  }

  lunReset(lun: number): Promise<number> {
    return this.taskManagement(TmfFunction.LOGICAL_UNIT_RESET, lun);
  }

  /** The ITT the next command will use (for ABORT TASK tests). */
  peekNextItt(): number {
    return this.nextItt;
  }

  async logout(): Promise<void> {
    if (this.closedError) return;
    try {
      const res = await Promise.race([
        this.request(
          (itt, cmdSN) =>
            encodeLogoutRequest({ immediate: true, reason: 0, itt, cid: 0, cmdSN, expStatSN: this.expStatSN }),
          true,
        ),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('logout timeout')), 5000).unref()),
      ]);
      decodeLogoutResponse(res);
    } catch {
      // the session is going away either way
    }
    this.close();
  }

  close(): void {
    this.fail(new IscsiError('ERR_ISCSI_CLOSED', 'session closed'));
    this.socket?.destroy();
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.closedReject?.(err);
    this.loginWaiter = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.windowWaiters) w.fail(err);
    this.windowWaiters = [];
    this.socket?.destroy();
  }
}
