import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CmdSnWindow } from './cmdsn-window.ts';

test('target: commands run in CmdSN order, whatever order they arrive in', () => {
  const w = new CmdSnWindow();
  w.reset(10, 13);
  const ran: number[] = [];
  assert.equal(
    w.admit(12, () => ran.push(12)),
    true,
  );
  assert.equal(
    w.admit(11, () => ran.push(11)),
    true,
  );
  assert.equal(ran.length, 0, 'nothing runs before ExpCmdSN arrives');
  assert.equal(
    w.admit(10, () => ran.push(10)),
    true,
  );
  assert.deepEqual(ran, [10, 11, 12]);
  assert.equal(w.exp, 13);
});

test('target: a CmdSN outside the window is dropped and does not move it', () => {
  const w = new CmdSnWindow();
  w.reset(100, 103);
  const ran: number[] = [];
  assert.equal(
    w.admit(104, () => ran.push(104)),
    false,
    'past MaxCmdSN',
  );
  assert.equal(
    w.admit(99, () => ran.push(99)),
    false,
    'before ExpCmdSN (already taken)',
  );
  assert.equal(ran.length, 0);
  assert.equal(w.exp, 100);
  assert.equal(w.includes(103), true);
  assert.equal(w.includes(104), false);
});

test('target: the window wraps at 2^32 (RFC 1982 serial arithmetic)', () => {
  const w = new CmdSnWindow();
  w.reset(0xfffffffe, 1);
  const ran: number[] = [];
  for (const sn of [0, 0xffffffff, 1, 0xfffffffe])
    assert.equal(
      w.admit(sn, () => ran.push(sn)),
      true,
    );
  assert.deepEqual(ran, [0xfffffffe, 0xffffffff, 0, 1]);
  assert.equal(w.exp, 2);
  assert.equal(w.includes(2), false, 'MaxCmdSN 1 is now behind ExpCmdSN: the window is closed');
});

test('target: MaxCmdSN advertises room for the commands not in progress, and never shrinks', () => {
  const w = new CmdSnWindow();
  w.reset(50, 50 + 63);
  assert.equal(w.advertise(64, 0), 113);
  w.admit(50, () => {});
  assert.equal(w.advertise(64, 1), 113, 'one in progress: ExpCmdSN + 62');
  assert.equal(w.advertise(64, 0), 114, 'done: one more');
  assert.equal(w.advertise(64, 64), 114, 'busy again: MaxCmdSN does not go back');
});

test('initiator: follows the window, ignores a pair that goes back or is invalid', () => {
  const w = new CmdSnWindow();
  w.reset(5, 8);
  assert.equal(w.allows(8), true);
  assert.equal(w.allows(9), false, 'past MaxCmdSN: wait');
  w.update(6, 10);
  assert.deepEqual([w.exp, w.max], [6, 10]);
  w.update(5, 9);
  assert.deepEqual([w.exp, w.max], [6, 10], 'stale numbers do not move it back');
  w.update(20, 12);
  assert.deepEqual([w.exp, w.max], [6, 10], 'MaxCmdSN < ExpCmdSN - 1: ignored (RFC 7143 4.2.2.1)');
  w.update(11, 10);
  assert.deepEqual([w.exp, w.max], [11, 10], 'MaxCmdSN = ExpCmdSN - 1: a closed window, taken');
  assert.equal(w.allows(11), false);
});

test('target: a CmdSN already waiting is not taken twice; one considered received is passed over', () => {
  const w = new CmdSnWindow();
  w.reset(1, 10);
  const ran: string[] = [];
  assert.equal(
    w.admit(3, () => ran.push('first 3')),
    true,
  );
  assert.equal(
    w.admit(3, () => ran.push('second 3')),
    false,
  );
  w.consider(2); // ABORT TASK of CmdSN 2, not yet here
  w.admit(1, () => ran.push('1'));
  assert.deepEqual(ran, ['1', 'first 3']);
  assert.equal(w.exp, 4);
  assert.equal(
    w.admit(2, () => ran.push('late 2')),
    false,
    'the aborted command, arriving late, is dropped',
  );
});

test('target: a command that clears the window (teardown) stops the ones queued behind it', () => {
  const w = new CmdSnWindow();
  w.reset(1, 10);
  const ran: number[] = [];
  w.admit(2, () => ran.push(2));
  w.admit(1, () => {
    ran.push(1);
    w.clear();
  });
  assert.deepEqual(ran, [1]);
});
