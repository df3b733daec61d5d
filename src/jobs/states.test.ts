import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_STATES, TRANSITIONS, canTransition, isFinal, STATE_LABELS } from './states.ts';

test('job state table: final states have no way out, every other state can fail or be canceled', () => {
  for (const s of JOB_STATES) {
    if (isFinal(s)) assert.deepEqual(TRANSITIONS[s], [], s);
    else assert.ok(canTransition(s, 'failed') && canTransition(s, 'canceled'), s);
    assert.ok(STATE_LABELS[s].length > 0);
    for (const to of TRANSITIONS[s]) assert.ok(JOB_STATES.includes(to), `${s} → ${to}`);
  }
});

test('job state table: the backup path is a chain and nothing returns to queued', () => {
  const path = [
    'queued',
    'waiting-quiet',
    'planning',
    'waiting-drive',
    'mounting',
    'copying',
    'verifying',
    'done',
  ] as const;
  for (let i = 0; i + 1 < path.length; i++)
    assert.ok(canTransition(path[i], path[i + 1]), `${path[i]} → ${path[i + 1]}`);
  for (const s of JOB_STATES) assert.equal(canTransition(s, 'queued'), false, s);
  assert.equal(canTransition('done', 'failed'), false, 'a done job never becomes failed');
  assert.equal(canTransition('copying', 'waiting-quiet'), false);
});
