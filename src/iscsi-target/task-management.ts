import { type TmfRequest, TmfFunction, TmfResponse } from '../iscsi/pdu/task-mgmt.ts';
import type { CmdSnWindow } from '../iscsi/cmdsn-window.ts';
import { serialLt } from '../util/serial.ts';
import type { TaskSet, TargetTask } from './task-set.ts';

/** What a task management request does, decided without touching anything (RFC 7143 11.5, SAM-5 7). */
export type TmfDecision =
  /**
   * Abort these tasks of this session (ABORT TASK, ABORT TASK SET, CLEAR TASK SET); `received`
   * is a CmdSN to take as received, its command never to run (ABORT TASK of one not yet here).
   */
  | { readonly response: number; readonly abort: readonly TargetTask[]; readonly received?: number }
  /** Abort the LU's tasks in every session of the target, then reset the LU. */
  | { readonly response: number; readonly reset: 'lun'; readonly lun: number }
  /** Abort every task of the target, reset its LUs; a cold reset then drops its connections. */
  | { readonly response: number; readonly reset: 'target-warm' | 'target-cold' };

/**
 * Decide a task management request of a Normal session. `window` is the session's CmdSN window
 * as the request is taken; `hasLun` says whether the target maps the LUN.
 */
export function decideTaskManagement(
  req: TmfRequest,
  tasks: TaskSet,
  window: CmdSnWindow,
  hasLun: (lun: number) => boolean,
): TmfDecision {
  const ok = TmfResponse.FUNCTION_COMPLETE;
  switch (req.func) {
    case TmfFunction.ABORT_TASK: {
      const t = tasks.get(req.referencedTaskTag);
      if (t) return t.cmd.lun === req.lun ? { response: ok, abort: [t] } : { response: ok, abort: [] };
      // RFC 7143 11.5.1: a referenced command not yet received (RefCmdSN in the window and before
      // this request) is considered received, and aborted; one that is gone does not exist.
      const notYetReceived = window.includes(req.refCmdSN) && serialLt(req.refCmdSN, req.cmdSN);
      if (!notYetReceived) return { response: TmfResponse.TASK_DOES_NOT_EXIST, abort: [] };
      return { response: ok, abort: [], received: req.refCmdSN };
    }
    case TmfFunction.ABORT_TASK_SET:
    case TmfFunction.CLEAR_TASK_SET:
      if (!hasLun(req.lun)) return { response: TmfResponse.LUN_DOES_NOT_EXIST, abort: [] };
      return { response: ok, abort: [...tasks.values()].filter((t) => t.cmd.lun === req.lun) };
    case TmfFunction.LOGICAL_UNIT_RESET:
      if (!hasLun(req.lun)) return { response: TmfResponse.LUN_DOES_NOT_EXIST, abort: [] };
      return { response: ok, reset: 'lun', lun: req.lun };
    case TmfFunction.TARGET_WARM_RESET:
      return { response: ok, reset: 'target-warm' };
    case TmfFunction.TARGET_COLD_RESET:
      return { response: ok, reset: 'target-cold' };
    default:
      return { response: TmfResponse.NOT_SUPPORTED, abort: [] };
  }
}
