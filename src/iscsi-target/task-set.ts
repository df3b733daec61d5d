import { type ScsiCommandPdu, TaskAttr } from '../iscsi/pdu/scsi-command.ts';
import type { ScsiResult } from '../scsi/task.ts';
import type { WriteAssembly } from './write-assembly.ts';

/** One SCSI task of a session, from its command PDU to its response. */
export interface TargetTask {
  readonly cmd: ScsiCommandPdu;
  readonly abort: AbortController;
  /** Its Data-Out, for a WRITE with data. */
  write?: WriteAssembly;
  /** Reached in CmdSN order (RFC 7143 3.2.2.1): it has its place in the task set. */
  admitted: boolean;
  started: boolean;
  /** ABORT TASK or a reset: finish silently. */
  aborted: boolean;
  /** Data-phase failure: answer with this instead of executing. */
  failed?: ScsiResult;
}

export function newTask(cmd: ScsiCommandPdu): TargetTask {
  return { cmd, abort: new AbortController(), admitted: false, started: false, aborted: false };
}

/** What the ordering rules need to know of a LU (LogicalUnit meets it). */
export interface OrderedLu {
  /** It applies this command in the order it was called (a tape drive's WRITE). */
  appliesInCallOrder?(cdb: Uint8Array): boolean;
}

/**
 * The tasks of one session and when each may start (SAM-5 8.6 task attributes, in CmdSN order,
 * not in the order the data comes in). An ORDERED task waits until every older task on its LU
 * has completed, or only started where the LU applies commands in call order (pipelined tape
 * WRITEs rely on this); a SIMPLE one waits for older ORDERED tasks; HEAD OF QUEUE waits for
 * none. No socket: `start` is called for each task that may run.
 */
export class TaskSet {
  private readonly byItt = new Map<number, TargetTask>();
  /** Admitted tasks not yet completed, oldest (lowest CmdSN) first. */
  private readonly order: TargetTask[] = [];
  private readonly luOf: (lun: number) => OrderedLu | undefined;
  private readonly start: (task: TargetTask) => void;

  constructor(luOf: (lun: number) => OrderedLu | undefined, start: (task: TargetTask) => void) {
    this.luOf = luOf;
    this.start = start;
  }

  /** Tasks received and not yet completed: the session's commands in progress. */
  get size(): number {
    return this.byItt.size;
  }
  get(itt: number): TargetTask | undefined {
    return this.byItt.get(itt);
  }
  values(): IterableIterator<TargetTask> {
    return this.byItt.values();
  }

  /** A command arrived (its ITT is free). */
  add(task: TargetTask): void {
    this.byItt.set(task.cmd.itt, task);
  }

  /** It reached its turn in CmdSN order: it takes its place, and starts if it may. */
  admit(task: TargetTask): void {
    if (task.aborted) return; // aborted while it waited for its turn: it is gone already
    task.admitted = true;
    this.order.push(task);
    this.kick(task);
  }

  /**
   * Start `task` if it may: admitted, its data in (or `force`: it failed and only answers),
   * and no older task holds it back.
   */
  kick(task: TargetTask, force = false): void {
    if (task.started || task.aborted || !task.admitted) return;
    if (!force && !task.failed && task.write && !task.write.complete) return;
    if (this.waitsForOlder(task)) return;
    task.started = true;
    this.start(task);
    // An LU that applies commands in call order lets the next ORDERED one start now.
    if (this.luOf(task.cmd.lun)?.appliesInCallOrder)
      for (const t of [...this.order]) if (!t.started && t.cmd.lun === task.cmd.lun) this.kick(t);
  }

  /** The task completed, or was dropped before it started: younger tasks of its LU may start. */
  finish(task: TargetTask): void {
    this.byItt.delete(task.cmd.itt);
    const i = this.order.indexOf(task);
    if (i < 0) return;
    this.order.splice(i, 1);
    for (const t of [...this.order]) if (t.cmd.lun === task.cmd.lun) this.kick(t);
  }

  /**
   * ABORT TASK and the resets (SAM-5 7.2): signal the task; one not started is gone at once,
   * a started one finishes silently.
   */
  abort(task: TargetTask, reason: Error): void {
    task.aborted = true;
    task.write?.stop();
    task.abort.abort(reason);
    if (!task.started) this.finish(task);
  }

  /** The connection is gone: every task is aborted and forgotten. */
  abortAll(reason: Error): void {
    for (const t of this.byItt.values()) {
      t.aborted = true;
      t.abort.abort(reason);
    }
    this.byItt.clear();
    this.order.length = 0;
  }

  private waitsForOlder(task: TargetTask): boolean {
    const attr = task.cmd.attr;
    if (attr === TaskAttr.HEAD_OF_QUEUE) return false;
    const lu = this.luOf(task.cmd.lun);
    const callOrder = (t: TargetTask): boolean => lu?.appliesInCallOrder?.(t.cmd.cdb) === true;
    for (const t of this.order) {
      if (t === task) return false;
      if (t.cmd.lun !== task.cmd.lun) continue;
      if (attr !== TaskAttr.ORDERED && t.cmd.attr !== TaskAttr.ORDERED) continue;
      // Started on an LU that applies both in call order: it is ahead of this one there.
      if (t.started && callOrder(t) && callOrder(task)) continue;
      return true;
    }
    return false;
  }
}
