import { serialAdd, serialLt } from '../util/serial.ts';

/**
 * The CmdSN window of a session (RFC 7143 4.2.2.1): non-immediate commands numbered ExpCmdSN
 * to MaxCmdSN may be sent, and the target takes them in CmdSN order. The target keeps the window
 * and admits by it; the initiator follows it from the target's responses and sends within it.
 * No socket: it sees sequence numbers and hands back decisions.
 */
export class CmdSnWindow {
  /** ExpCmdSN: the next CmdSN the target takes in order. */
  exp = 0;
  /** MaxCmdSN: the last CmdSN the target accepts now. */
  max = 0;
  /** Target side: commands that arrived ahead of ExpCmdSN, by CmdSN. */
  private readonly ahead = new Map<number, () => void>();

  /** Set both ends: at login, from the first CmdSN (target) or the Login Response (initiator). */
  reset(exp: number, max: number): void {
    this.exp = exp >>> 0;
    this.max = max >>> 0;
    this.ahead.clear();
  }

  /** ExpCmdSN ≤ sn ≤ MaxCmdSN, in serial arithmetic (RFC 1982). */
  includes(sn: number): boolean {
    return !serialLt(sn, this.exp) && !serialLt(this.max, sn);
  }

  // ---- target side ----

  /**
   * Admit a non-immediate command (RFC 7143 3.2.2.1): `run` now when it is ExpCmdSN (then every
   * queued one that follows), later when it is ahead, never when it is outside the window or
   * its CmdSN is already waiting (false: the PDU is dropped).
   */
  admit(sn: number, run: () => void): boolean {
    if (!this.includes(sn) || this.ahead.has(sn)) return false;
    if (sn !== this.exp) {
      this.ahead.set(sn, run);
      return true;
    }
    this.exp = serialAdd(this.exp, 1);
    run();
    for (let next = this.ahead.get(this.exp); next; next = this.ahead.get(this.exp)) {
      this.ahead.delete(this.exp);
      this.exp = serialAdd(this.exp, 1);
      next();
    }
    return true;
  }

  /**
   * Take `sn` as received without a command (RFC 7143 11.5.1: ABORT TASK of a command that has
   * not arrived): the window moves past it, and the command, should it come, is dropped.
   */
  consider(sn: number): void {
    this.admit(sn, () => {});
  }

  /**
   * The MaxCmdSN to send: room for `depth` commands of which `busy` are still in progress.
   * It never shrinks (RFC 7143 4.2.2.1: MaxCmdSN does not go back).
   */
  advertise(depth: number, busy: number): number {
    const m = serialAdd(this.exp, depth - 1 - Math.min(busy, depth - 1));
    if (serialLt(this.max, m)) this.max = m;
    return this.max;
  }

  /** Forget the commands waiting ahead (the connection is gone). */
  clear(): void {
    this.ahead.clear();
  }

  // ---- initiator side ----

  /**
   * Follow ExpCmdSN and MaxCmdSN from a target's PDU: a pair with MaxCmdSN < ExpCmdSN - 1 is
   * ignored, and neither end goes back (RFC 7143 4.2.2.1).
   */
  update(exp: number, max: number): void {
    if (serialLt(serialAdd(max, 1), exp)) return;
    if (serialLt(this.exp, exp)) this.exp = exp;
    if (serialLt(this.max, max)) this.max = max;
  }

  /** The initiator may send `sn` now: it is not past MaxCmdSN. */
  allows(sn: number): boolean {
    return !serialLt(this.max, sn);
  }
}
