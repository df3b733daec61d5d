import type { Logger } from 'pino';
import { type RawPdu, Opcode, opcodeOf, immediateOf, ittOf, dataSegmentLength } from '../iscsi/pdu/bhs.ts';
import { decodeLoginRequest, encodeLoginResponse } from '../iscsi/pdu/login.ts';
import { decodeScsiCommand, edtlOf, writeBitOf } from '../iscsi/pdu/scsi-command.ts';
import { bufferOffsetOf, dataSNOf, dataTttOf, decodeDataOut } from '../iscsi/pdu/data.ts';
import { encodeR2t } from '../iscsi/pdu/r2t.ts';
import { decodeNop, encodeNop } from '../iscsi/pdu/nop.ts';
import { decodeText, encodeText } from '../iscsi/pdu/text.ts';
import { decodeLogoutRequest, encodeLogoutResponse } from '../iscsi/pdu/logout.ts';
import { decodeTmfRequest, encodeTmfResponse } from '../iscsi/pdu/task-mgmt.ts';
import { encodeReject, RejectReason } from '../iscsi/pdu/reject.ts';
import { TargetLoginFsm, type LoginResult } from '../iscsi/target-login-fsm.ts';
import { TextKeyError } from '../iscsi/text-keys.ts';
import { CmdSnWindow } from '../iscsi/cmdsn-window.ts';
import type { SessionParams, TargetLimits } from '../iscsi/negotiation.ts';
import { serialAdd } from '../util/serial.ts';
import {
  type Nexus,
  type ScsiResult,
  type ScsiTask,
  type TargetContext,
  type LogicalUnit,
  makeNexus,
  ScsiStatus,
} from '../scsi/task.ts';
import { SenseError, SenseKey, Asc, type AscCode } from '../scsi/sense.ts';
import { checkCondition } from '../scsi/command-table.ts';
import { unmappedLun } from '../scsi/spc.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import type { Target } from './target.ts';
import { WriteAssembly } from './write-assembly.ts';
import { TaskSet, newTask, type TargetTask } from './task-set.ts';
import { decideTaskManagement } from './task-management.ts';
import { buildScsiResponse, type ResponseNumbers } from './scsi-response-builder.ts';
import { TextExchange, type TextAnswer, type TextSession } from './text-exchange.ts';
import { iscsiSessions, SessionTally } from '../metrics/metrics.ts';

/** A session as other sessions of the portal reach it (LUN and target resets, reinstatement). */
export interface SessionPeer {
  readonly target?: Target;
  drop(reason: string): void;
  abortLunTasks(target: Target, lun: number): void;
}

/** What a session needs from the portal that accepted it. */
export interface SessionHost {
  readonly limits: TargetLimits;
  readonly portalGroupTag: number;
  findTarget(name: string): Target | undefined;
  targets(): Iterable<Target>;
  /** Register a new session; returns its TSIH. Closes an older session with the same ISID (RFC 7143 6.3.5). */
  registerSession(peer: SessionPeer, result: LoginResult): number;
  /** Every live session (for resets that reach other I_T nexuses). */
  connections(): Iterable<SessionPeer>;
}

/** What a session needs from its connection: the transport, seen as PDUs. */
export interface SessionLink {
  /** Write a PDU; `sent` runs once its bytes are handed over (or the link is gone). */
  send(pdu: RawPdu, sent?: () => void): void;
  /** Keep this turn's PDUs together: they leave as one write. */
  holdTurn(): void;
  /** The final Login Response is out: digests apply from the next PDU (RFC 7143 13.1). */
  loggedIn(params: SessionParams): void;
  /** Close once what was sent has left (logout). */
  end(reason: string): void;
  /** Close now (ERL 0 recovery). */
  drop(reason: string): void;
  /** This portal as TargetAddress gives it: `host:port,tpgt`. */
  portal(): string;
}

/** Commands admitted at once per session: the CmdSN window (RFC 7143 4.2.2.1). */
const QUEUE_DEPTH = 64;
/** Largest Data-Out a single command may carry. Larger writes get 05/24/00. */
export const MAX_WRITE_BYTES = 64 << 20;

let nextTtt = 1;

/** A Target Transfer Tag: never 0xffffffff, which marks unsolicited data (RFC 7143 11.7.4). */
function allocTtt(): number {
  const t = nextTtt;
  nextTtt = nextTtt >= 0xfffffffe ? 1 : nextTtt + 1;
  return t;
}

/** Data-Out buffers, shared by every session of the process (no per-WRITE allocation). */
const writeBuffers = new BufferPool();

/**
 * The target side of one iSCSI session (MaxConnections=1, ERL 0), without its socket: it takes
 * framed PDUs and answers through its SessionLink. Login (target-login-fsm.ts), CmdSN order
 * (cmdsn-window.ts), Data-Out (write-assembly.ts), task order (task-set.ts), task management
 * (task-management.ts), responses (scsi-response-builder.ts) and text (text-exchange.ts) are
 * its parts; it runs the logical units' commands. Any digest or sequence fault fails the task or
 * drops the connection (RFC 7143 7.1.5).
 */
export class TargetSession implements SessionPeer {
  private readonly host: SessionHost;
  private readonly link: SessionLink;
  private readonly self: SessionPeer;
  private log: Logger;
  /** Pooled buffer taken for the immediate data of the SCSI command being framed. */
  private immediateBuf?: Buffer;
  /** The task whose write buffer the framer is filling (a Data-Out PDU still arriving). */
  private filling?: TargetTask;
  /** A write buffer whose task ended while the framer was filling it: pooled once the PDU ends. */
  private orphanBuf?: Buffer;
  private readonly login: TargetLoginFsm;
  phase: 'login' | 'full' | 'closed' = 'login';
  params?: SessionParams;
  nexus?: Nexus;
  target?: Target;
  sessionType: 'Normal' | 'Discovery' = 'Normal';
  tsih = 0;
  isidHex = '';
  initiatorName = '';
  private statSN = 0;
  private readonly window = new CmdSnWindow();
  /** The first Login Request has opened the window. */
  private windowOpen = false;
  private readonly tasks = new TaskSet(
    (lun) => this.luAt(lun),
    (task) => void this.runTask(task), // calls the LU's execute() in this turn
  );
  /** The numbers a SCSI response carries, as the response builder takes them. */
  private readonly numbers: ResponseNumbers = {
    nextStatSN: () => this.nextStatSN(),
    expCmdSN: () => this.window.exp,
    maxCmdSN: () => this.windowMax(),
  };
  private readonly text = new TextExchange();
  private context?: TargetContext;
  /** close() has run. */
  private torn = false;
  /** What this session counts for the metrics (metrics.ts sums it when scraped). */
  private tally?: SessionTally;

  /** `self` is the connection other sessions reach this one by. */
  constructor(host: SessionHost, link: SessionLink, log: Logger, self?: SessionPeer) {
    this.host = host;
    this.link = link;
    this.log = log;
    this.self = self ?? this;
    this.login = new TargetLoginFsm({
      limits: host.limits,
      portalGroupTag: host.portalGroupTag,
      findTarget: (name) => {
        const t = host.findTarget(name);
        return t && { chap: t.chap, mutualChap: t.mutualChap, allows: (i: string) => t.allows(i) };
      },
    });
  }

  // ---- input ----

  /** Where the data of a PDU whose header is `bhs` lands: straight into its task's buffer when it is in sequence. */
  landing(bhs: Uint8Array): Uint8Array | undefined {
    if (this.phase !== 'full') return undefined;
    if (opcodeOf(bhs) === Opcode.SCSI_COMMAND) return this.immediateDataSink(bhs);
    if (opcodeOf(bhs) !== Opcode.DATA_OUT) return undefined;
    const task = this.tasks.get(ittOf(bhs));
    if (!task?.write || task.started || task.failed) return undefined;
    const slice = task.write.landing(dataTttOf(bhs), bufferOffsetOf(bhs), dataSegmentLength(bhs));
    if (slice) this.filling = task;
    return slice;
  }

  /** A whole PDU, or (no `data`) one whose data digest failed. */
  receive(pdu: RawPdu | { bhs: Uint8Array }): void {
    // The PDU is complete: the framer no longer writes into any task's buffer.
    this.filling = undefined;
    try {
      if (this.phase === 'closed') return;
      if (!('data' in pdu)) return this.reject(pdu.bhs, RejectReason.DATA_DIGEST_ERROR);
      this.dispatch(pdu);
    } finally {
      if (this.orphanBuf) writeBuffers.give(this.orphanBuf);
      this.orphanBuf = undefined;
    }
  }

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
    if (!this.windowOpen) {
      // The session's first CmdSN opens the window (RFC 7143 4.2.2.1).
      this.window.reset(req.cmdSN, serialAdd(req.cmdSN, QUEUE_DEPTH - 1));
      this.windowOpen = true;
    }
    if (out.kind === 'complete') this.acceptSession(out.result);
    const statSN = this.statSN;
    if (out.kind === 'complete') this.statSN = serialAdd(statSN, 1);
    const tsih = out.kind === 'complete' ? this.tsih : 0;
    this.link.send(
      encodeLoginResponse({ ...out.response, tsih, statSN, expCmdSN: this.window.exp, maxCmdSN: this.window.max }),
    );
    if (out.kind === 'failed') {
      this.log.info({ reason: out.reason }, 'login failed');
      return this.drop(out.reason);
    }
    if (out.kind === 'complete') {
      this.phase = 'full';
      iscsiSessions.inc({ type: this.sessionType });
      this.link.loggedIn(out.result.params);
    }
  }

  private acceptSession(result: LoginResult): void {
    this.params = result.params;
    this.sessionType = result.sessionType;
    this.initiatorName = result.initiatorName;
    this.isidHex = Buffer.from(result.isid).toString('hex');
    if (result.sessionType === 'Normal') {
      const target = this.host.findTarget(result.targetName!)!;
      this.target = target;
      this.nexus = makeNexus(result.initiatorName, this.isidHex, target.name, this.host.portalGroupTag);
      this.context = { targetName: target.name, relativePortId: this.host.portalGroupTag, luns: () => target.luns };
      this.tally = new SessionTally(target.name);
    }
    this.tsih = this.host.registerSession(this.self, result);
    this.log = this.log.child({ initiator: result.initiatorName, isid: this.isidHex, tsih: this.tsih });
    this.log.info({ type: result.sessionType, target: result.targetName, params: result.params }, 'session logged in');
  }

  // ---- sequence numbers ----

  /** Immediate PDUs run at once, the others in CmdSN order; false: outside the window, dropped. */
  private inOrder(cmdSN: number, immediate: boolean, run: () => void): boolean {
    if (immediate) {
      run();
      return true;
    }
    const taken = this.window.admit(cmdSN, run);
    if (!taken) this.log.debug({ cmdSN, expCmdSN: this.window.exp }, 'CmdSN outside the window: dropped');
    return taken;
  }

  private windowMax(): number {
    return this.window.advertise(QUEUE_DEPTH, this.tasks.size);
  }

  private nextStatSN(): number {
    const s = this.statSN;
    this.statSN = serialAdd(this.statSN, 1);
    return s;
  }

  // ---- SCSI commands ----

  private onScsiCommand(pdu: RawPdu): void {
    try {
      this.takeScsiCommand(pdu);
    } finally {
      // Not adopted (rejected, dropped, out of window): back to the pool.
      if (this.immediateBuf) writeBuffers.give(this.immediateBuf);
      this.immediateBuf = undefined;
    }
  }

  private takeScsiCommand(pdu: RawPdu): void {
    if (this.sessionType !== 'Normal') return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    const cmd = decodeScsiCommand(pdu);
    if (this.tally) this.tally.commands++;
    if (!cmd.immediate && !this.window.includes(cmd.cmdSN)) {
      this.log.debug({ cmdSN: cmd.cmdSN, expCmdSN: this.window.exp }, 'SCSI command outside the CmdSN window: dropped');
      return;
    }
    if (this.tasks.get(cmd.itt)) return this.reject(pdu.bhs, RejectReason.TASK_IN_PROGRESS);
    const params = this.params!;
    if (cmd.data.length > 0 && !params.immediateData) return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    const task = newTask(cmd);
    this.tasks.add(task);
    // Immediate data without the W bit (or EDTL 0) is a SAM overflow: the data is not used.
    if (cmd.write && cmd.edtl > 0) {
      if (cmd.edtl > MAX_WRITE_BYTES) {
        task.failed = this.checkCondition(cmd.lun, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
      } else {
        const imm = Math.min(cmd.data.length, cmd.edtl);
        const adopted = this.adoptImmediateBuffer(cmd.data, cmd.edtl);
        const buf = adopted ?? writeBuffers.take(cmd.edtl);
        if (!adopted) buf.set(cmd.data.subarray(0, imm), 0);
        task.write = new WriteAssembly(buf, imm, cmd.final, params);
        this.sendR2t(task);
      }
    }
    if (!this.inOrder(cmd.cmdSN, cmd.immediate, () => this.tasks.admit(task))) {
      this.releaseWriteBuffer(task);
      this.tasks.finish(task);
    }
  }

  /** The pooled buffer immediateDataSink filled, if `data` is its head; otherwise it goes back. */
  private adoptImmediateBuffer(data: Uint8Array, edtl: number): Buffer | undefined {
    const b = this.immediateBuf;
    this.immediateBuf = undefined;
    if (!b) return undefined;
    if (b.length === edtl && data.buffer === b.buffer && data.byteOffset === b.byteOffset) return b;
    writeBuffers.give(b);
    return undefined;
  }

  private sendR2t(task: TargetTask): void {
    if (task.failed || task.aborted) return;
    const grant = task.write?.nextR2t(this.params!.maxBurstLength, allocTtt);
    if (!grant) return;
    this.link.send(
      encodeR2t({
        lun: Math.max(0, task.cmd.lun),
        itt: task.cmd.itt,
        ttt: grant.ttt,
        statSN: this.statSN,
        expCmdSN: this.window.exp,
        maxCmdSN: this.windowMax(),
        r2tSN: grant.r2tSN,
        bufferOffset: grant.offset,
        desiredLength: grant.length,
      }),
    );
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

  /**
   * Give a task's write buffer back to the pool, unless the framer is still filling it (a reset
   * from another session mid-PDU): then it goes back when that PDU has been framed.
   */
  private releaseWriteBuffer(task: TargetTask): void {
    if (!task.write) return;
    if (task === this.filling) this.orphanBuf = task.write.buf;
    else writeBuffers.give(task.write.buf);
  }

  private onDataOut(pdu: RawPdu): void {
    const d = decodeDataOut(pdu);
    const task = this.tasks.get(d.itt);
    if (!task?.write || task.started || task.failed) return; // completed, aborted or failed: discard
    const broken = task.write.accept(d, d.data);
    if (broken !== undefined) {
      this.log.info({ itt: d.itt, why: broken }, 'data-out sequence error: task failed');
      task.failed = this.checkCondition(task.cmd.lun, SenseKey.ABORTED_COMMAND, Asc.DATA_PHASE_ERROR);
      task.write.stop();
      return this.tasks.kick(task, true);
    }
    this.sendR2t(task);
    this.tasks.kick(task);
  }

  private luAt(lun: number): LogicalUnit | undefined {
    return lun >= 0 ? this.target?.luns.get(lun) : undefined;
  }

  /** CHECK CONDITION in the sense format the addressed LU has in effect (command-table.ts builds it). */
  private checkCondition(lun: number, key: number, asc: AscCode): ScsiResult {
    return checkCondition(new SenseError(key, asc), this.luAt(lun)?.senseFormat ?? 'fixed');
  }

  private async runTask(task: TargetTask): Promise<void> {
    const { cmd } = task;
    if (this.log.isLevelEnabled('trace'))
      this.log.trace({ itt: cmd.itt, cmdSN: cmd.cmdSN, cdb: Buffer.from(cmd.cdb).toString('hex') }, 'task start');
    let result: ScsiResult;
    try {
      if (task.failed) {
        result = task.failed;
      } else {
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
        const lu = this.luAt(cmd.lun);
        result = lu ? await lu.execute(scsiTask) : unmappedLun(scsiTask);
      }
    } catch (err) {
      this.log.error({ err }, 'logical unit threw');
      result = this.checkCondition(cmd.lun, SenseKey.HARDWARE_ERROR, Asc.INTERNAL_TARGET_FAILURE);
    }
    // The LU is done with the Data-Out buffer once execute() settles, aborted or not.
    this.releaseWriteBuffer(task);
    this.tasks.finish(task);
    if (task.aborted || this.phase === 'closed') {
      result.release?.();
      return;
    }
    this.count(task, result);
    this.link.holdTurn(); // this turn's responses leave together
    const { pdus, lastDataIn } = buildScsiResponse(cmd, result, this.params!, this.numbers, task.write?.r2tsSent ?? 0);
    // The LU's Data-In buffer is free once its last Data-In is out; with none, at once.
    if (lastDataIn < 0) result.release?.();
    for (let i = 0; i < pdus.length; i++) this.link.send(pdus[i], i === lastDataIn ? result.release : undefined);
  }

  /** Bytes per LUN for ferry_lun_*_bytes_total: Data-In sent, and Data-Out of a write that completed GOOD. */
  private count(task: TargetTask, result: ScsiResult): void {
    const { cmd } = task;
    const sent = cmd.read ? Math.min(result.dataIn?.length ?? 0, cmd.edtl) : 0;
    const written = task.write && result.status === ScsiStatus.GOOD ? task.write.received : 0;
    if ((sent === 0 && written === 0) || !this.tally) return;
    const t = this.tally.lun(cmd.lun);
    t.read += sent;
    t.written += written;
  }

  // ---- NOP, Text, Logout ----

  private onNopOut(pdu: RawPdu): void {
    const nop = decodeNop(pdu);
    if (nop.itt === 0xffffffff) return; // answer to our NOP-In ping
    this.inOrder(nop.sn, nop.immediate, () =>
      this.sendNopIn(nop.lun, nop.itt, 0xffffffff, this.nextStatSN(), nop.data),
    );
  }

  private sendNopIn(lun: number, itt: number, ttt: number, statSN: number, data: Uint8Array): void {
    const fields = { immediate: false, lun, itt, ttt, sn: statSN, expSN: this.window.exp, data };
    this.link.send(encodeNop(Opcode.NOP_IN, { ...fields, maxCmdSN: this.windowMax() }));
  }

  private onText(pdu: RawPdu): void {
    const req = decodeText(pdu);
    this.inOrder(req.sn, req.immediate, () => {
      let a: TextAnswer;
      try {
        a = this.text.answer(req, this.textSession(), this.params!.peerMaxRecvDataSegmentLength, allocTtt);
      } catch (e) {
        if (e instanceof TextKeyError) return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
        throw e;
      }
      this.link.send(
        encodeText(Opcode.TEXT_RESPONSE, {
          final: !a.more,
          cont: a.more,
          immediate: false,
          itt: req.itt,
          ttt: a.ttt,
          sn: this.nextStatSN(),
          expSN: this.window.exp,
          maxCmdSN: this.windowMax(),
          data: a.data,
        }),
      );
    });
  }

  /** This session as SendTargets sees it. */
  private textSession(): TextSession {
    const host = this.host;
    return {
      initiatorName: this.initiatorName,
      sessionType: this.sessionType,
      target: this.target,
      portal: this.link.portal(),
      targets: () => host.targets(),
    };
  }

  private onLogout(pdu: RawPdu): void {
    const req = decodeLogoutRequest(pdu);
    this.inOrder(req.cmdSN, req.immediate, () => {
      // ERL 0: reason 2 (remove connection for recovery) is not supported (RFC 7143 11.15.1).
      this.link.send(
        encodeLogoutResponse({
          response: req.reason === 2 ? 2 : 0,
          itt: req.itt,
          statSN: this.nextStatSN(),
          expCmdSN: this.window.exp,
          maxCmdSN: this.windowMax(),
          time2Wait: 0,
          time2Retain: 0,
        }),
      );
      if (req.reason !== 2) {
        this.phase = 'closed';
        this.link.end('logout');
      }
    });
  }

  // ---- task management (RFC 7143 11.5, SAM-5 7) ----

  private onTmf(pdu: RawPdu): void {
    const req = decodeTmfRequest(pdu);
    if (this.sessionType !== 'Normal') return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
    this.inOrder(req.cmdSN, req.immediate, () => {
      const target = this.target!;
      const d = decideTaskManagement(req, this.tasks, this.window, (lun) => target.luns.has(lun));
      if ('abort' in d) {
        for (const t of d.abort) this.abortTask(t);
        if (d.received !== undefined) this.window.consider(d.received);
      } else if (d.reset === 'lun') {
        for (const c of this.host.connections()) c.abortLunTasks(target, d.lun);
        target.luns.get(d.lun)!.reset('lun', this.nexus!);
      } else {
        for (const c of this.host.connections()) for (const n of target.luns.keys()) c.abortLunTasks(target, n);
        for (const l of target.luns.values()) l.reset(d.reset, this.nexus!);
      }
      this.link.send(
        encodeTmfResponse({
          response: d.response,
          itt: req.itt,
          statSN: this.nextStatSN(),
          expCmdSN: this.window.exp,
          maxCmdSN: this.windowMax(),
        }),
      );
      // RFC 7143 11.5.1: a cold reset drops every connection of the target after the response.
      if ('reset' in d && d.reset === 'target-cold')
        for (const c of [...this.host.connections()]) if (c.target === target) c.drop('target cold reset');
    });
  }

  private abortTask(t: TargetTask): void {
    if (!t.started) this.releaseWriteBuffer(t); // a started task gives it back when execute() settles
    this.tasks.abort(t, new Error('task aborted'));
  }

  /** Abort this session's tasks on one LU of `target` (LUN RESET from any nexus). */
  abortLunTasks(target: Target, lun: number): void {
    if (this.target !== target) return;
    for (const t of [...this.tasks.values()]) if (t.cmd.lun === lun) this.abortTask(t);
  }

  /** A NOP-In ping, when the initiator has been quiet (RFC 7143 11.19). */
  ping(): void {
    if (this.phase === 'full') this.sendNopIn(0, 0xffffffff, 0x7fffffff, this.statSN, new Uint8Array(0));
  }

  private reject(bhs: Uint8Array, reason: number): void {
    this.log.info({ reason, opcode: opcodeOf(bhs), itt: ittOf(bhs) }, 'PDU rejected');
    this.link.send(
      encodeReject({
        reason,
        statSN: this.statSN,
        expCmdSN: this.window.exp,
        maxCmdSN: this.windowMax(),
        dataSN: dataSNOf(bhs),
        header: bhs,
      }),
    );
  }

  drop(reason: string): void {
    this.link.drop(reason);
  }

  /** The connection is gone: its tasks are aborted, and its LUs forget the nexus. */
  close(reason: string): void {
    if (this.torn) return;
    if (this.loggedIn) iscsiSessions.dec({ type: this.sessionType });
    this.tally?.close();
    this.torn = true;
    this.phase = 'closed';
    this.tasks.abortAll(new Error(`connection closed: ${reason}`));
    this.window.clear();
    if (this.nexus && this.target) for (const lu of this.target.luns.values()) lu.nexusLost(this.nexus);
  }

  /** Login completed (the session counts in ferry_iscsi_sessions until it closes). */
  private get loggedIn(): boolean {
    return this.params !== undefined;
  }
}
