import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskAttr, type ScsiCommandPdu } from '../iscsi/pdu/scsi-command.ts';
import { TmfFunction, TmfResponse, type TmfRequest } from '../iscsi/pdu/task-mgmt.ts';
import { CmdSnWindow } from '../iscsi/cmdsn-window.ts';
import { defaultParams } from '../iscsi/negotiation.ts';
import { TaskSet, newTask, type OrderedLu, type TargetTask } from './task-set.ts';
import { decideTaskManagement } from './task-management.ts';
import { WriteAssembly } from './write-assembly.ts';

function cmd(itt: number, attr: number, lun = 0): ScsiCommandPdu {
  return {
    immediate: false,
    final: true,
    read: false,
    write: false,
    attr,
    lun,
    itt,
    edtl: 0,
    cmdSN: itt,
    expStatSN: 0,
    cdb: new Uint8Array(16),
    data: new Uint8Array(0),
  };
}

function setup(lu: OrderedLu = {}): { set: TaskSet; started: number[]; add(c: ScsiCommandPdu): TargetTask } {
  const started: number[] = [];
  const set = new TaskSet(
    () => lu,
    (t) => started.push(t.cmd.itt),
  );
  return {
    set,
    started,
    add(c) {
      const t = newTask(c);
      set.add(t);
      set.admit(t);
      return t;
    },
  };
}

test('SIMPLE tasks start at once; an ORDERED one waits for every older task, and younger ones wait for it', () => {
  const s = setup();
  const a = s.add(cmd(1, TaskAttr.SIMPLE));
  s.add(cmd(2, TaskAttr.SIMPLE));
  const o = s.add(cmd(3, TaskAttr.ORDERED));
  s.add(cmd(4, TaskAttr.SIMPLE));
  s.add(cmd(5, TaskAttr.SIMPLE, 1));
  assert.deepEqual(s.started, [1, 2, 5], 'another LU is not held');
  s.set.finish(a);
  assert.deepEqual(s.started, [1, 2, 5]);
  s.set.finish(s.set.get(2)!);
  assert.deepEqual(s.started, [1, 2, 5, 3]);
  s.set.finish(o);
  assert.deepEqual(s.started, [1, 2, 5, 3, 4]);
});

test('HEAD OF QUEUE waits for none', () => {
  const s = setup();
  s.add(cmd(1, TaskAttr.ORDERED));
  s.add(cmd(2, TaskAttr.SIMPLE));
  s.add(cmd(3, TaskAttr.HEAD_OF_QUEUE));
  assert.deepEqual(s.started, [1, 3]);
});

test('on an LU that applies commands in call order, an ORDERED task waits only for older ones to start', () => {
  const s = setup({ appliesInCallOrder: () => true });
  s.add(cmd(1, TaskAttr.ORDERED));
  s.add(cmd(2, TaskAttr.ORDERED));
  s.add(cmd(3, TaskAttr.ORDERED));
  assert.deepEqual(s.started, [1, 2, 3]);
});

test('a WRITE waits for its data; a failed one starts to answer', () => {
  const s = setup();
  const c = { ...cmd(1, TaskAttr.SIMPLE), write: true, edtl: 4096 };
  const t = newTask(c);
  t.write = new WriteAssembly(Buffer.alloc(4096), 0, true, defaultParams());
  s.set.add(t);
  s.set.admit(t);
  assert.deepEqual(s.started, []);
  s.set.kick(t, true);
  assert.deepEqual(s.started, [1]);
});

test('an aborted task that had not started is gone and lets younger ones start', () => {
  const s = setup();
  s.add(cmd(1, TaskAttr.SIMPLE));
  const o = s.add(cmd(2, TaskAttr.ORDERED));
  s.add(cmd(3, TaskAttr.SIMPLE));
  s.set.abort(o, new Error('aborted'));
  assert.equal(o.abort.signal.aborted, true);
  assert.equal(s.set.get(2), undefined);
  s.set.finish(s.set.get(1)!);
  assert.deepEqual(s.started, [1, 3]);
});

function tmf(func: number, over: Partial<TmfRequest> = {}): TmfRequest {
  return {
    immediate: true,
    func,
    lun: 0,
    itt: 99,
    referencedTaskTag: 0,
    cmdSN: 20,
    expStatSN: 0,
    refCmdSN: 0,
    expDataSN: 0,
    ...over,
  };
}

test('ABORT TASK of a finished task: TASK DOES NOT EXIST, and nothing is aborted', () => {
  const s = setup();
  const done = s.add(cmd(7, TaskAttr.SIMPLE));
  const other = s.add(cmd(8, TaskAttr.SIMPLE));
  s.set.finish(done);
  const w = new CmdSnWindow();
  w.reset(20, 40); // CmdSN 7 was taken long ago
  const d = decideTaskManagement(
    tmf(TmfFunction.ABORT_TASK, { referencedTaskTag: 7, refCmdSN: 7 }),
    s.set,
    w,
    () => true,
  );
  assert.deepEqual(d, { response: TmfResponse.TASK_DOES_NOT_EXIST, abort: [] });
  assert.equal(other.aborted, false);
});

test('ABORT TASK of a live task aborts it; of one not yet received (RefCmdSN in the window) is complete', () => {
  const s = setup();
  const live = s.add(cmd(7, TaskAttr.SIMPLE));
  const w = new CmdSnWindow();
  w.reset(7, 40);
  const d = decideTaskManagement(
    tmf(TmfFunction.ABORT_TASK, { referencedTaskTag: 7, refCmdSN: 7 }),
    s.set,
    w,
    () => true,
  );
  assert.deepEqual(d, { response: TmfResponse.FUNCTION_COMPLETE, abort: [live] });
  const ahead = decideTaskManagement(
    tmf(TmfFunction.ABORT_TASK, { referencedTaskTag: 12, refCmdSN: 12 }),
    s.set,
    w,
    () => true,
  );
  assert.deepEqual(ahead, { response: TmfResponse.FUNCTION_COMPLETE, abort: [], received: 12 });
});

test('task set and LU functions name the LUN; unknown LUNs and functions are answered', () => {
  const s = setup();
  const a = s.add(cmd(1, TaskAttr.SIMPLE, 0));
  s.add(cmd(2, TaskAttr.SIMPLE, 1));
  const w = new CmdSnWindow();
  const has = (lun: number): boolean => lun < 2;
  assert.deepEqual(decideTaskManagement(tmf(TmfFunction.ABORT_TASK_SET), s.set, w, has), {
    response: TmfResponse.FUNCTION_COMPLETE,
    abort: [a],
  });
  assert.deepEqual(decideTaskManagement(tmf(TmfFunction.LOGICAL_UNIT_RESET, { lun: 5 }), s.set, w, has), {
    response: TmfResponse.LUN_DOES_NOT_EXIST,
    abort: [],
  });
  assert.deepEqual(decideTaskManagement(tmf(TmfFunction.LOGICAL_UNIT_RESET, { lun: 1 }), s.set, w, has), {
    response: TmfResponse.FUNCTION_COMPLETE,
    reset: 'lun',
    lun: 1,
  });
  assert.deepEqual(decideTaskManagement(tmf(TmfFunction.TASK_REASSIGN), s.set, w, has), {
    response: TmfResponse.NOT_SUPPORTED,
    abort: [],
  });
});

test('a task aborted while it waited for its CmdSN turn does not hold its LU when the turn comes', () => {
  const s = setup();
  const early = newTask(cmd(2, TaskAttr.ORDERED));
  s.set.add(early);
  s.set.abort(early, new Error('aborted'));
  s.set.admit(early); // its CmdSN turn comes after the abort
  s.add(cmd(3, TaskAttr.ORDERED));
  assert.deepEqual(s.started, [3]);
});
