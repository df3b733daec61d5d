import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Framer, FramingError, pduPieces, type DataDigestFault } from '../iscsi/framer.ts';
import { type RawPdu, Opcode, opcodeOf, immediateOf, ittOf, dataSegmentLength } from '../iscsi/pdu/bhs.ts';
import { decodeLoginRequest, encodeLoginResponse, LoginStatus } from '../iscsi/pdu/login.ts';
import { decodeScsiCommand, edtlOf, TaskAttr, writeBitOf, type ScsiCommandPdu } from '../iscsi/pdu/scsi-command.ts';
import { encodeScsiResponse } from '../iscsi/pdu/scsi-response.ts';
import { bufferOffsetOf, dataSNOf, dataTttOf, decodeDataOut, encodeDataIn } from '../iscsi/pdu/data.ts';
import { encodeR2t } from '../iscsi/pdu/r2t.ts';
import { decodeNop, encodeNop } from '../iscsi/pdu/nop.ts';
import { decodeText, encodeText } from '../iscsi/pdu/text.ts';
import { decodeLogoutRequest, encodeLogoutResponse } from '../iscsi/pdu/logout.ts';
import { decodeTmfRequest, encodeTmfResponse, TmfFunction, TmfResponse } from '../iscsi/pdu/task-mgmt.ts';
import { encodeReject, RejectReason } from '../iscsi/pdu/reject.ts';
import { TargetLoginFsm, type LoginResult } from '../iscsi/login-fsm.ts';
import { decodeKeyValues, encodeKeyValues, type KeyValues, TextKeyError } from '../iscsi/text-keys.ts';
import type { SessionParams, TargetLimits } from '../iscsi/negotiation.ts';
import { serialLe, serialLt, serialAdd } from '../util/serial.ts';
import {
  type Nexus,
  type ScsiResult,
  type ScsiTask,
  type TargetContext,
  type LogicalUnit,
  makeNexus,
  ScsiStatus,
} from '../scsi/task.ts';
import { SenseError, SenseKey, Asc } from '../scsi/sense.ts';
import { checkCondition } from '../scsi/command-table.ts';
import type { SenseFormat } from '../scsi/sense.ts';
import { unmappedLun } from '../scsi/spc.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { TurnCork } from '../io/turn-cork.ts';
import type { Target } from './target.ts';

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly limits: TargetLimits;
  readonly portalGroupTag: number;
  readonly log: Logger;
  findTarget(name: string): Target | undefined;
  targets(): Iterable<Target>;
  /** Register a new session; returns its TSIH. Closes an older session with the same ISID (RFC 7143 6.3.5). */
  registerSession(conn: TargetConnection, result: LoginResult): number;
  unregisterSession(conn: TargetConnection): void;
  /** Every live connection (for resets that reach other I_T nexuses). */
  connections(): Iterable<TargetConnection>;
}

/** Commands admitted at once per session: the CmdSN window (RFC 7143 4.2.2.1). */
const QUEUE_DEPTH = 64;
/** Largest Data-Out a single command may carry. Larger writes get 05/24/00. */
const MAX_WRITE_BYTES = 64 << 20;
const LOGIN_TIMEOUT_MS = 15_000;
const NOP_INTERVAL_MS = 30_000;

interface WriteState {
  buf: Buffer;
  received: number;
  /** Bytes from offset 0 that may arrive without R2T (immediate + unsolicited). */
  unsolicitedEnd: number;
  unsolicitedNextOffset: number;
  unsolicitedNextDataSN: number;
  /** The outstanding R2T, if any. */
  r2t?: { ttt: number; offset: number; length: number; nextOffset: number; nextDataSN: number };
  nextR2tOffset: number;
  r2tSN: number;
}

interface TaskState {
  readonly cmd: ScsiCommandPdu;
  readonly abort: AbortController;
  write?: WriteState;
  /** Reached in CmdSN order (RFC 7143 4.2.2.1): it has its place in the task set. */
  admitted: boolean;
  started: boolean;
  /** ABORT TASK or a reset: finish silently. */
  aborted: boolean;
  /** Data-phase failure: answer with this instead of executing. */
  failed?: ScsiResult;
}

let nextTtt = 1;

/** A Target Transfer Tag: never 0xffffffff, which marks unsolicited data (RFC 7143 11.7.4). */
function allocTtt(): number {
  const t = nextTtt;
  nextTtt = nextTtt >= 0xfffffffe ? 1 : nextTtt + 1;
  return t;
}

/** Data-Out buffers, shared by every connection of the process (no per-WRITE allocation). */
const writeBuffers = new BufferPool();

/**
 * One iSCSI connection on the target side, and (MaxConnections=1) its session.
 * The only user of its net.Socket. ERL 0: any digest or sequence fault fails the task
 * or drops the connection (RFC 7143 7.1.5).
 */
export class TargetConnection {
  readonly socket: Socket;
  private readonly turnCork: TurnCork;
  private readonly host: ConnectionHost;
  private log: Logger;
  private readonly framer: Framer;
  /** Pooled buffer taken for the immediate data of the SCSI command being framed. */
  private immediateBuf?: Buffer;
  /** The task whose write buffer the framer is filling (a Data-Out PDU still arriving). */
  private filling?: TaskState;
  /** A write buffer whose task ended while the framer was filling it: pooled once the PDU ends. */
  private orphanBuf?: Buffer;
  private login: TargetLoginFsm;
  private phase: 'login' | 'full' | 'closed' = 'login';
  params?: SessionParams;
  nexus?: Nexus;
  target?: Target;
  sessionType: 'Normal' | 'Discovery' = 'Normal';
  tsih = 0;
  isidHex = '';
  initiatorName = '';
  private statSN = 0;
  private expCmdSN = 0;
  private maxCmdSN = 0;
  private readonly tasks = new Map<number, TaskState>();
  /** Admitted tasks not yet completed, oldest (lowest CmdSN) first: the task set's order. */
  private readonly taskSet: TaskState[] = [];
  private readonly waitingForCmdSN = new Map<number, () => void>();
  private active = 0;
  private textContinuation?: { ttt: number; rest: Buffer };
  private loginTimer?: NodeJS.Timeout;
  private nopTimer?: NodeJS.Timeout;
  private lastHeard = Date.now();
  private context?: TargetContext;
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
    this.login = this.newLogin();
    this.framer.dataTarget = (bhs) => this.dataOutSink(bhs);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
    socket.on('close', () => this.teardown('socket closed'));
    socket.on('drain', () => socket.resume());
    this.loginTimer = setTimeout(() => this.drop('login did not complete in time'), LOGIN_TIMEOUT_MS);
  }

  private newLogin(): TargetLoginFsm {
    const host = this.host;
    return new TargetLoginFsm({
      limits: host.limits,
      portalGroupTag: host.portalGroupTag,
      findTarget: (name) => {
        const t = host.findTarget(name);
        return t && { chap: t.chap, mutualChap: t.mutualChap, allows: (i: string) => t.allows(i) };
      },
    });
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
    return this.phase === 'closed' ? undefined : this.framer.directTarget();
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

  private readonly onPdu = (pdu: RawPdu | DataDigestFault): void => {
    // The PDU is complete: the framer no longer writes into any task's buffer.
    this.filling = undefined;
    try {
      if (this.phase === 'closed') return;
      if (!('data' in pdu)) {
        this.reject(pdu.bhs, RejectReason.DATA_DIGEST_ERROR);
        return;
      }
      this.dispatch(pdu);
    } finally {
      if (this.orphanBuf) writeBuffers.give(this.orphanBuf);
      this.orphanBuf = undefined;
    }
  };

  private dispatch(pdu: RawPdu): void {
    const op = opcodeOf(pdu.bhs);
    if (this.phase === 'login') {
      if (op !== Opcode.LOGIN_REQUEST) return this.drop(`opcode 0x${op.toString(16)} before login completed`);
      return this.onLogin(pdu);
    }
    try {
      switch (op) {
        case Opcode.SCSI_COMMAND:
          return this.onScsiCommand(pdu);
        case Opcode.DATA_OUT:
          return this.onDataOut(pdu);
        case Opcode.NOP_OUT:
          return this.onNopOut(pdu);
        case Opcode.TEXT_REQUEST:
          return this.onText(pdu);
        case Opcode.TASK_MGMT_REQUEST:
          return this.onTmf(pdu);
        case Opcode.LOGOUT_REQUEST:
          return this.onLogout(pdu);
        case Opcode.LOGIN_REQUEST:
          return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
        default:
          return this.reject(pdu.bhs, RejectReason.COMMAND_NOT_SUPPORTED);
      }
    } catch (err) {
      this.log.warn({ err }, 'PDU handling failed');
      this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    }
  }

  // ---- login (RFC 7143 6) ----

  private onLogin(pdu: RawPdu): void {
    const req = decodeLoginRequest(pdu);
    if (!immediateOf(pdu.bhs)) return this.drop('login request without the I bit');
    const out = this.login.handle(req);
    if (this.statSN === 0) this.statSN = (Math.random() * 0xffffffff) >>> 0 || 1;
    if (this.expCmdSN === 0 && this.maxCmdSN === 0) {
      this.expCmdSN = req.cmdSN;
      this.maxCmdSN = serialAdd(req.cmdSN, QUEUE_DEPTH - 1);
    }
    let tsih = 0;
    if (out.kind === 'complete') {
      if (out.result.tsih !== 0) {
        // Adding a connection or reinstating by TSIH needs MaxConnections > 1 or ERL 2.
        const res = {
          ...out.response,
          transit: false,
          nsg: 0,
          statusClass: LoginStatus.SESSION_DOES_NOT_EXIST[0],
          statusDetail: LoginStatus.SESSION_DOES_NOT_EXIST[1],
          data: new Uint8Array(0),
        };
        this.send(
          encodeLoginResponse({
            ...res,
            tsih: 0,
            statSN: this.statSN,
            expCmdSN: this.expCmdSN,
            maxCmdSN: this.maxCmdSN,
          }),
        );
        return this.drop('login with a TSIH of a session this target does not have');
      }
      this.acceptSession(out.result);
      tsih = this.tsih;
    }
    const statSN = this.statSN;
    if (out.kind === 'complete') this.statSN = serialAdd(this.statSN, 1);
    this.send(encodeLoginResponse({ ...out.response, tsih, statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN }));
    if (out.kind === 'failed') {
      this.log.info({ reason: out.reason }, 'login failed');
      this.drop(out.reason);
      return;
    }
    if (out.kind === 'complete') {
      // Digests start with the first PDU after the final Login Response (RFC 7143 13.1).
      this.framer.opts.headerDigest = out.result.params.headerDigest;
      this.framer.opts.dataDigest = out.result.params.dataDigest;
      this.phase = 'full';
      clearTimeout(this.loginTimer);
      this.nopTimer = setInterval(() => this.keepAlive(), NOP_INTERVAL_MS);
      this.nopTimer.unref();
    }
  }

  private acceptSession(result: LoginResult): void {
    this.params = result.params;
    this.sessionType = result.sessionType;
    this.initiatorName = result.initiatorName;
    this.isidHex = Buffer.from(result.isid).toString('hex');
    if (result.sessionType === 'Normal') {
      this.target = this.host.findTarget(result.targetName!)!;
      this.nexus = makeNexus(result.initiatorName, this.isidHex, this.target.name, this.host.portalGroupTag);
      const target = this.target;
      this.context = { targetName: target.name, relativePortId: this.host.portalGroupTag, luns: () => target.luns };
    }
    this.tsih = this.host.registerSession(this, result);
    this.log = this.log.child({ initiator: result.initiatorName, isid: this.isidHex, tsih: this.tsih });
    this.log.info({ type: result.sessionType, target: result.targetName, params: result.params }, 'session logged in');
  }

  // ---- CmdSN ordering (RFC 7143 4.2.2.1) ----

  /** Admit a non-immediate PDU: run now if in order, queue if ahead, drop if outside the window. */
  private admit(cmdSN: number, immediate: boolean, run: () => void): boolean {
    if (immediate) {
      run();
      return true;
    }
    if (serialLt(cmdSN, this.expCmdSN) || serialLt(this.maxCmdSN, cmdSN)) {
      this.log.debug({ cmdSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN }, 'CmdSN outside the window: dropped');
      return false;
    }
    if (cmdSN !== this.expCmdSN) {
      this.waitingForCmdSN.set(cmdSN, run);
      return true;
    }
    this.expCmdSN = serialAdd(this.expCmdSN, 1);
    run();
    for (let next = this.waitingForCmdSN.get(this.expCmdSN); next; next = this.waitingForCmdSN.get(this.expCmdSN)) {
      this.waitingForCmdSN.delete(this.expCmdSN);
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      next();
    }
    return true;
  }

  private windowMax(): number {
    const m = serialAdd(this.expCmdSN, QUEUE_DEPTH - 1 - Math.min(this.active, QUEUE_DEPTH - 1));
    if (serialLt(this.maxCmdSN, m)) this.maxCmdSN = m; // never shrink MaxCmdSN
    return this.maxCmdSN;
  }

  private nextStatSN(): number {
    const s = this.statSN;
    this.statSN = serialAdd(this.statSN, 1);
    return s;
  }

  // ---- SCSI commands ----

  /** The pooled buffer immediateDataSink filled, if `data` is its head; otherwise it goes back. */
  private adoptImmediateBuffer(data: Uint8Array, edtl: number): Buffer | undefined {
    const b = this.immediateBuf;
    this.immediateBuf = undefined;
    if (!b) return undefined;
    if (b.length === edtl && data.buffer === b.buffer && data.byteOffset === b.byteOffset) return b;
    writeBuffers.give(b);
    return undefined;
  }

  private onScsiCommand(pdu: RawPdu): void {
    try {
      this.onScsiCommandWith(pdu);
    } finally {
      // Not adopted (rejected, dropped, out of window): back to the pool.
      if (this.immediateBuf) writeBuffers.give(this.immediateBuf);
      this.immediateBuf = undefined;
    }
  }

  private onScsiCommandWith(pdu: RawPdu): void {
    if (this.sessionType !== 'Normal') return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    const cmd = decodeScsiCommand(pdu);
    if (!cmd.immediate && (serialLt(cmd.cmdSN, this.expCmdSN) || serialLt(this.maxCmdSN, cmd.cmdSN))) {
      this.log.debug({ cmdSN: cmd.cmdSN, expCmdSN: this.expCmdSN }, 'SCSI command outside the CmdSN window: dropped');
      return;
    }
    if (this.tasks.has(cmd.itt)) return this.reject(pdu.bhs, RejectReason.TASK_IN_PROGRESS);
    const params = this.params!;
    if (cmd.data.length > 0 && !params.immediateData) return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    const task: TaskState = { cmd, abort: new AbortController(), admitted: false, started: false, aborted: false };
    this.tasks.set(cmd.itt, task);
    this.active++;
    if (cmd.write && cmd.edtl > 0) {
      if (cmd.edtl > MAX_WRITE_BYTES) {
        task.failed = checkCondition(
          new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB),
          this.senseFormatOf(cmd.lun),
        );
      } else {
        const imm = Math.min(cmd.data.length, cmd.edtl);
        const adopted = this.adoptImmediateBuffer(cmd.data, cmd.edtl);
        const buf = adopted ?? writeBuffers.take(cmd.edtl);
        if (!adopted) buf.set(cmd.data.subarray(0, imm), 0);
        const unsolicitedEnd = cmd.final || params.initialR2T ? imm : Math.min(params.firstBurstLength, cmd.edtl);
        task.write = {
          buf,
          received: imm,
          unsolicitedEnd: Math.max(unsolicitedEnd, imm),
          unsolicitedNextOffset: imm,
          unsolicitedNextDataSN: 0,
          nextR2tOffset: Math.max(unsolicitedEnd, imm),
          r2tSN: 0,
        };
        this.maybeSendR2t(task);
      }
    } else if (cmd.data.length > 0) {
      // Immediate data without the W bit (or EDTL 0): SAM overflow; the data is not used.
      task.write = undefined;
    }
    const admitted = this.admit(cmd.cmdSN, cmd.immediate, () => {
      task.admitted = true;
      this.taskSet.push(task);
      this.maybeStart(task);
    });
    if (!admitted) {
      this.tasks.delete(cmd.itt);
      this.active--;
    }
  }

  private dataComplete(task: TaskState): boolean {
    return !task.write || task.write.received >= task.write.buf.length;
  }

  private maybeSendR2t(task: TaskState): void {
    const w = task.write!;
    if (w.r2t || w.nextR2tOffset >= w.buf.length || task.failed || task.aborted) return;
    const length = Math.min(this.params!.maxBurstLength, w.buf.length - w.nextR2tOffset);
    const ttt = allocTtt();
    w.r2t = { ttt, offset: w.nextR2tOffset, length, nextOffset: w.nextR2tOffset, nextDataSN: 0 };
    w.nextR2tOffset += length;
    this.send(
      encodeR2t({
        lun: Math.max(0, task.cmd.lun),
        itt: task.cmd.itt,
        ttt,
        statSN: this.statSN,
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.windowMax(),
        r2tSN: w.r2tSN++,
        bufferOffset: w.r2t.offset,
        desiredLength: length,
      }),
    );
  }

  /** Where an incoming Data-Out's data goes: straight into its task's buffer when it is in sequence. */
  private dataOutSink(bhs: Uint8Array): Uint8Array | undefined {
    if (this.phase !== 'full') return undefined;
    if (opcodeOf(bhs) === Opcode.SCSI_COMMAND) return this.immediateDataSink(bhs);
    if (opcodeOf(bhs) !== Opcode.DATA_OUT) return undefined;
    const task = this.tasks.get(ittOf(bhs));
    const w = task?.write;
    if (!task || !w || task.started || task.failed) return undefined;
    const ttt = dataTttOf(bhs);
    const offset = bufferOffsetOf(bhs);
    const expected = ttt === 0xffffffff ? w.unsolicitedNextOffset : w.r2t?.ttt === ttt ? w.r2t.nextOffset : -1;
    const len = dataSegmentLength(bhs);
    if (offset !== expected || offset + len > w.buf.length) return undefined;
    this.filling = task;
    return w.buf.subarray(offset, offset + len);
  }

  /**
   * Give a task's write buffer back to the pool, unless the framer is still filling it (a reset
   * from another session mid-PDU): then it goes back when that PDU has been framed.
   */
  private releaseWriteBuffer(task: TaskState): void {
    if (!task.write) return;
    if (task === this.filling) this.orphanBuf = task.write.buf;
    else writeBuffers.give(task.write.buf);
  }

  /**
   * Immediate data of a WRITE (RFC 7143 11.3.4) lands in the pooled buffer the task will use,
   * taken here when its header arrives; onScsiCommand adopts it (or gives it back).
   */
  private immediateDataSink(bhs: Uint8Array): Uint8Array | undefined {
    const edtl = edtlOf(bhs);
    const len = dataSegmentLength(bhs);
    if (!writeBitOf(bhs) || !this.params?.immediateData || edtl > MAX_WRITE_BYTES || len > edtl) return undefined;
    if (this.immediateBuf) writeBuffers.give(this.immediateBuf);
    this.immediateBuf = writeBuffers.take(edtl);
    return this.immediateBuf.subarray(0, len);
  }

  private onDataOut(pdu: RawPdu): void {
    const d = decodeDataOut(pdu);
    const task = this.tasks.get(d.itt);
    if (!task || !task.write || task.started || task.failed) return; // completed, aborted or failed: discard
    const w = task.write;
    const fail = (why: string): void => {
      this.log.info({ itt: d.itt, why }, 'data-out sequence error: task failed');
      task.failed = checkCondition(
        new SenseError(SenseKey.ABORTED_COMMAND, Asc.DATA_PHASE_ERROR),
        this.senseFormatOf(task.cmd.lun),
      );
      w.r2t = undefined;
      this.maybeStart(task, true);
    };
    // RFC 7143 11.7.5/11.7.6: DataSN per sequence from 0; offsets in order (DataPDUInOrder=Yes).
    if (d.ttt === 0xffffffff) {
      if (d.dataSN !== w.unsolicitedNextDataSN)
        return fail(`unsolicited DataSN ${d.dataSN}, expected ${w.unsolicitedNextDataSN}`);
      if (d.bufferOffset !== w.unsolicitedNextOffset || d.bufferOffset + d.data.length > w.unsolicitedEnd) {
        return fail(
          `unsolicited data at offset ${d.bufferOffset}+${d.data.length} outside [${w.unsolicitedNextOffset}, ` +
            `${w.unsolicitedEnd})`,
        );
      }
      w.unsolicitedNextDataSN++;
      w.unsolicitedNextOffset += d.data.length;
    } else {
      const r = w.r2t;
      if (!r || r.ttt !== d.ttt) return fail(`data-out with unknown target transfer tag ${d.ttt}`);
      if (d.dataSN !== r.nextDataSN) return fail(`DataSN ${d.dataSN}, expected ${r.nextDataSN}`);
      if (d.bufferOffset !== r.nextOffset || d.bufferOffset + d.data.length > r.offset + r.length) {
        return fail(
          `data at offset ${d.bufferOffset}+${d.data.length} outside the R2T [${r.nextOffset}, ${r.offset + r.length})`,
        );
      }
      r.nextDataSN++;
      r.nextOffset += d.data.length;
      if (r.nextOffset === r.offset + r.length) {
        if (!d.final) return fail('R2T sequence complete without the F bit');
        w.r2t = undefined;
      } else if (d.final) {
        return fail('F bit before the R2T sequence was complete');
      }
    }
    const inPlace = d.data.buffer === w.buf.buffer && d.data.byteOffset === w.buf.byteOffset + d.bufferOffset;
    if (!inPlace) w.buf.set(d.data, d.bufferOffset);
    w.received += d.data.length;
    if (!w.r2t) this.maybeSendR2t(task);
    this.maybeStart(task);
  }

  private maybeStart(task: TaskState, force = false): void {
    if (task.started || task.aborted || !task.admitted) return;
    if (!force && !task.failed && !this.dataComplete(task)) return;
    if (this.waitsForOlder(task)) return;
    task.started = true;
    void this.runTask(task); // calls the LU's execute() in this turn
    // An LU that applies commands in call order lets the next ORDERED one start now.
    if (this.luOf(task)?.appliesInCallOrder)
      for (const t of [...this.taskSet]) if (!t.started && t.cmd.lun === task.cmd.lun) this.maybeStart(t);
  }

  private luOf(task: TaskState): LogicalUnit | undefined {
    return task.cmd.lun >= 0 ? this.target?.luns.get(task.cmd.lun) : undefined;
  }

  /**
   * SAM-5 8.6 task attributes, in CmdSN order (not the order the data comes in): an ORDERED
   * task waits until every older task on its LU has completed (or only started, where the LU
   * applies commands in call order); a SIMPLE one waits for older ORDERED tasks; HEAD OF QUEUE
   * waits for none. Pipelined tape WRITEs rely on this.
   */
  private waitsForOlder(task: TaskState): boolean {
    const attr = task.cmd.attr;
    if (attr === TaskAttr.HEAD_OF_QUEUE) return false;
    const lu = this.luOf(task);
    const inCallOrder = (t: TaskState): boolean => lu?.appliesInCallOrder?.(t.cmd.cdb) === true;
    for (const t of this.taskSet) {
      if (t === task) return false;
      if (t.cmd.lun !== task.cmd.lun) continue;
      if (attr !== TaskAttr.ORDERED && t.cmd.attr !== TaskAttr.ORDERED) continue;
      // Started on an LU that applies both in call order: it is ahead of this one there.
      if (t.started && inCallOrder(t) && inCallOrder(task)) continue;
      return true;
    }
    return false;
  }

  /** A task has completed or was aborted before it started: younger tasks of its LU may now start. */
  private retire(task: TaskState): void {
    const i = this.taskSet.indexOf(task);
    if (i < 0) return;
    this.taskSet.splice(i, 1);
    for (const t of [...this.taskSet]) if (t.cmd.lun === task.cmd.lun) this.maybeStart(t);
  }

  /** The sense format the addressed LU has in effect, for CHECK CONDITIONs built here. */
  private senseFormatOf(lun: number): SenseFormat {
    return (lun >= 0 ? this.target?.luns.get(lun)?.senseFormat : undefined) ?? 'fixed';
  }

  private async runTask(task: TaskState): Promise<void> {
    const { cmd } = task;
    if (this.log.isLevelEnabled('trace'))
      this.log.trace({ itt: cmd.itt, cmdSN: cmd.cmdSN, cdb: Buffer.from(cmd.cdb).toString('hex') }, 'task start');
    let result: ScsiResult;
    try {
      if (task.failed) {
        result = task.failed;
      } else {
        const lu: LogicalUnit | undefined = cmd.lun >= 0 ? this.target!.luns.get(cmd.lun) : undefined;
        const scsiTask: ScsiTask = {
          cdb: cmd.cdb,
          lun: cmd.lun,
          nexus: this.nexus!,
          target: this.context!,
          dataOut: task.write ? task.write.buf : new Uint8Array(0),
          expectedInLength: cmd.read ? cmd.edtl : 0,
          signal: task.abort.signal,
          taskAttribute: cmd.attr,
        };
        result = lu ? await lu.execute(scsiTask) : unmappedLun(scsiTask);
      }
    } catch (err) {
      this.log.error({ err }, 'logical unit threw');
      result = checkCondition(
        new SenseError(SenseKey.HARDWARE_ERROR, Asc.INTERNAL_TARGET_FAILURE),
        this.senseFormatOf(cmd.lun),
      );
    }
    this.tasks.delete(cmd.itt);
    this.active--;
    // The LU is done with the Data-Out buffer once execute() settles, aborted or not.
    this.releaseWriteBuffer(task);
    this.retire(task);
    if (task.aborted || this.phase === 'closed') {
      result.release?.();
      return;
    }
    this.respond(task, result);
  }

  /** Send Data-In (if any) and status, with residuals (RFC 7143 11.4.5, 11.7.4). */
  private respond(task: TaskState, result: ScsiResult): void {
    this.turnCork.hold(); // this turn's responses leave together
    const { cmd } = task;
    const params = this.params!;
    const dataIn = result.dataIn ?? new Uint8Array(0);
    const readDir = cmd.read || (!cmd.write && dataIn.length > 0);
    const sendLen = readDir ? Math.min(dataIn.length, cmd.edtl) : 0;
    let transfer: number;
    if (readDir) transfer = result.transferLength ?? dataIn.length;
    else if (cmd.write) transfer = result.transferLength ?? cmd.edtl;
    else transfer = result.transferLength ?? 0;
    const good = result.status === ScsiStatus.GOOD || result.status === ScsiStatus.CONDITION_MET;
    // Residuals are reported for completed commands (SAM-5 5.4); CHECK CONDITION still carries them.
    let overflow = false;
    let underflow = false;
    let residual = 0;
    if (transfer > cmd.edtl) {
      overflow = true;
      residual = transfer - cmd.edtl;
    } else if (transfer < cmd.edtl) {
      underflow = true;
      residual = cmd.edtl - transfer;
    }
    if (readDir && sendLen < cmd.edtl && !overflow) {
      underflow = true;
      residual = cmd.edtl - sendLen;
    }
    const collapse = sendLen > 0 && !result.sense && good;
    let dataSN = 0;
    if (sendLen > 0) {
      const mrdsl = params.peerMaxRecvDataSegmentLength;
      const burst = params.maxBurstLength;
      let off = 0;
      let burstLeft = burst;
      this.socket.cork();
      while (off < sendLen) {
        const n = Math.min(mrdsl, sendLen - off, burstLeft);
        const last = off + n === sendLen;
        burstLeft -= n;
        const final = last || burstLeft === 0;
        if (burstLeft === 0) burstLeft = burst;
        const withStatus = last && collapse;
        this.send(
          encodeDataIn({
            final,
            ack: false,
            overflow: withStatus && overflow,
            underflow: withStatus && underflow,
            hasStatus: withStatus,
            status: withStatus ? result.status : 0,
            lun: Math.max(0, cmd.lun),
            itt: cmd.itt,
            ttt: 0xffffffff,
            statSN: withStatus ? this.nextStatSN() : 0,
            expCmdSN: this.expCmdSN,
            maxCmdSN: this.windowMax(),
            dataSN: dataSN++,
            bufferOffset: off,
            residual: withStatus ? residual : 0,
            data: dataIn.subarray(off, off + n),
          }),
          false,
          last ? result.release : undefined,
        );
        off += n;
      }
      this.socket.uncork();
      if (collapse) return;
    } else {
      result.release?.();
    }
    this.send(
      encodeScsiResponse({
        overflow,
        underflow,
        response: 0,
        status: result.status,
        itt: cmd.itt,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.windowMax(),
        expDataSN: readDir ? dataSN : (task.write?.r2tSN ?? 0),
        residual,
        sense: result.sense ?? new Uint8Array(0),
      }),
    );
  }

  // ---- NOP, Text, Logout ----

  private onNopOut(pdu: RawPdu): void {
    const nop = decodeNop(pdu);
    if (nop.itt === 0xffffffff) return; // answer to our NOP-In ping
    this.admit(nop.sn, nop.immediate, () => {
      this.send(
        encodeNop(Opcode.NOP_IN, {
          immediate: false,
          lun: nop.lun,
          itt: nop.itt,
          ttt: 0xffffffff,
          sn: this.nextStatSN(),
          expSN: this.expCmdSN,
          maxCmdSN: this.windowMax(),
          data: nop.data,
        }),
      );
    });
  }

  private keepAlive(): void {
    if (this.phase !== 'full') return;
    if (Date.now() - this.lastHeard > 3 * NOP_INTERVAL_MS) return this.drop('initiator silent for 90 s');
    if (Date.now() - this.lastHeard < NOP_INTERVAL_MS) return;
    this.send(
      encodeNop(Opcode.NOP_IN, {
        immediate: false,
        lun: 0,
        itt: 0xffffffff,
        ttt: 0x7fffffff,
        sn: this.statSN,
        expSN: this.expCmdSN,
        maxCmdSN: this.windowMax(),
        data: new Uint8Array(0),
      }),
    );
  }

  private onText(pdu: RawPdu): void {
    const t = decodeText(pdu);
    this.admit(t.sn, t.immediate, () => {
      let payload: Buffer;
      if (t.ttt !== 0xffffffff && this.textContinuation?.ttt === t.ttt) {
        payload = this.textContinuation.rest;
        this.textContinuation = undefined;
      } else {
        let keys: KeyValues;
        try {
          keys = decodeKeyValues(t.data);
        } catch (e) {
          if (e instanceof TextKeyError) return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
          throw e;
        }
        const answers: KeyValues = [];
        for (const [k, v] of keys) {
          if (k === 'SendTargets') answers.push(...this.sendTargets(v));
          else answers.push([k, 'NotUnderstood']);
        }
        payload = encodeKeyValues(answers);
      }
      const max = this.params!.peerMaxRecvDataSegmentLength;
      const more = payload.length > max;
      const ttt = more ? allocTtt() : 0xffffffff;
      if (more) this.textContinuation = { ttt, rest: payload.subarray(max) };
      this.send(
        encodeText(Opcode.TEXT_RESPONSE, {
          final: !more,
          cont: more,
          immediate: false,
          itt: t.itt,
          ttt,
          sn: this.nextStatSN(),
          expSN: this.expCmdSN,
          maxCmdSN: this.windowMax(),
          data: more ? payload.subarray(0, max) : payload,
        }),
      );
    });
  }

  /** RFC 7143 12.3 / Appendix C: SendTargets=All lists every target this initiator may see. */
  private sendTargets(value: string): KeyValues {
    const out: KeyValues = [];
    const local = this.socket.localAddress ?? '127.0.0.1';
    const addr = local.includes(':') && !local.startsWith('::ffff:') ? `[${local}]` : local.replace(/^::ffff:/, '');
    for (const t of this.host.targets()) {
      if (!t.allows(this.initiatorName)) continue;
      const wanted =
        value === 'All' ? this.sessionType === 'Discovery' : value === '' ? t === this.target : value === t.name;
      if (!wanted) continue;
      out.push(
        ['TargetName', t.name],
        ['TargetAddress', `${addr}:${this.socket.localPort},${this.host.portalGroupTag}`],
      );
    }
    return out;
  }

  private onLogout(pdu: RawPdu): void {
    const req = decodeLogoutRequest(pdu);
    this.admit(req.cmdSN, req.immediate, () => {
      // ERL 0: reason 2 (remove connection for recovery) is not supported (RFC 7143 11.15.1).
      this.send(
        encodeLogoutResponse({
          response: req.reason === 2 ? 2 : 0,
          itt: req.itt,
          statSN: this.nextStatSN(),
          expCmdSN: this.expCmdSN,
          maxCmdSN: this.windowMax(),
          time2Wait: 0,
          time2Retain: 0,
        }),
      );
      if (req.reason !== 2) {
        this.phase = 'closed';
        this.socket.end();
        this.teardown('logout');
      }
    });
  }

  // ---- task management (RFC 7143 11.5, SAM-5 7) ----

  private onTmf(pdu: RawPdu): void {
    const req = decodeTmfRequest(pdu);
    if (this.sessionType !== 'Normal') return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    this.admit(req.cmdSN, req.immediate, () => {
      let response: number = TmfResponse.FUNCTION_COMPLETE;
      const lu = this.target!.luns.get(req.lun);
      switch (req.func) {
        case TmfFunction.ABORT_TASK: {
          const t = this.tasks.get(req.referencedTaskTag);
          if (t && t.cmd.lun === req.lun) this.abortTask(t);
          else if (
            !t &&
            serialLt(req.refCmdSN, this.expCmdSN) === false &&
            serialLe(req.refCmdSN, this.maxCmdSN) &&
            serialLt(req.refCmdSN, req.cmdSN)
          ) {
            // RFC 7143 11.5.1: a referenced command not yet received is considered received.
            response = TmfResponse.FUNCTION_COMPLETE;
          } else if (!t) response = TmfResponse.TASK_DOES_NOT_EXIST;
          break;
        }
        case TmfFunction.ABORT_TASK_SET:
        case TmfFunction.CLEAR_TASK_SET:
          if (!lu) response = TmfResponse.LUN_DOES_NOT_EXIST;
          else for (const t of this.tasks.values()) if (t.cmd.lun === req.lun) this.abortTask(t);
          break;
        case TmfFunction.LOGICAL_UNIT_RESET:
          if (!lu) response = TmfResponse.LUN_DOES_NOT_EXIST;
          else {
            for (const c of this.host.connections()) c.abortLunTasks(this.target!, req.lun);
            lu.reset('lun', this.nexus!);
          }
          break;
        case TmfFunction.TARGET_WARM_RESET:
        case TmfFunction.TARGET_COLD_RESET: {
          const cold = req.func === TmfFunction.TARGET_COLD_RESET;
          for (const c of this.host.connections())
            for (const n of this.target!.luns.keys()) c.abortLunTasks(this.target!, n);
          for (const l of this.target!.luns.values()) l.reset(cold ? 'target-cold' : 'target-warm', this.nexus!);
          if (cold) {
            // RFC 7143 11.5.1: cold reset drops every connection after the response.
            this.sendTmf(req.itt, response);
            for (const c of [...this.host.connections()]) if (c.target === this.target) c.drop('target cold reset');
            return;
          }
          break;
        }
        default:
          response = TmfResponse.NOT_SUPPORTED;
      }
      this.sendTmf(req.itt, response);
    });
  }

  private sendTmf(itt: number, response: number): void {
    this.send(
      encodeTmfResponse({
        response,
        itt,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.windowMax(),
      }),
    );
  }

  private abortTask(t: TaskState): void {
    t.aborted = true;
    t.abort.abort(new Error('task aborted'));
    if (!t.started) {
      this.tasks.delete(t.cmd.itt);
      this.active--;
      this.releaseWriteBuffer(t);
      this.retire(t);
    }
  }

  /** Abort this session's tasks on one LU of `target` (LUN RESET from any nexus). */
  abortLunTasks(target: Target, lun: number): void {
    if (this.target !== target) return;
    for (const t of [...this.tasks.values()]) if (t.cmd.lun === lun) this.abortTask(t);
  }

  // ---- output ----

  /** Write a PDU; `sent` runs once its bytes are handed to the kernel (or the socket died). */
  private send(pdu: RawPdu, cork = true, sent?: () => void): void {
    if (this.phase === 'closed' || this.socket.destroyed) {
      sent?.();
      return;
    }
    const p = this.params;
    const full = this.phase === 'full';
    const pieces = pduPieces(pdu, full && !!p?.headerDigest, full && !!p?.dataDigest);
    if (cork) this.socket.cork();
    let ok = true;
    for (let i = 0; i < pieces.length; i++)
      ok = this.socket.write(pieces[i], i === pieces.length - 1 && sent ? () => sent() : undefined) && ok;
    if (cork) this.socket.uncork();
    if (!ok) this.socket.pause(); // resume on 'drain': backpressure stops new commands
  }

  private reject(bhs: Uint8Array, reason: number): void {
    this.log.info({ reason, opcode: opcodeOf(bhs), itt: ittOf(bhs) }, 'PDU rejected');
    this.send(
      encodeReject({
        reason,
        statSN: this.statSN,
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.windowMax(),
        dataSN: dataSNOf(bhs),
        header: bhs,
      }),
    );
  }

  /** Drop the connection (ERL 0 recovery). */
  drop(reason: string): void {
    if (this.phase === 'closed') return;
    this.log.info({ reason }, 'dropping connection');
    this.phase = 'closed';
    this.socket.destroy();
    this.teardown(reason);
  }

  private torn = false;
  private teardown(reason: string): void {
    if (this.torn) return;
    this.torn = true;
    this.phase = 'closed';
    clearTimeout(this.loginTimer);
    clearInterval(this.nopTimer);
    for (const t of this.tasks.values()) {
      t.aborted = true;
      t.abort.abort(new Error(`connection closed: ${reason}`));
    }
    this.tasks.clear();
    this.taskSet.length = 0;
    this.waitingForCmdSN.clear();
    if (this.nexus && this.target) for (const lu of this.target.luns.values()) lu.nexusLost(this.nexus);
    this.host.unregisterSession(this);
    this.resolveClosed();
  }
}
