import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, stateLine } from './job-progress.ts';
import type { JobProgress } from '../jobs/types.ts';

const base: JobProgress = {
  phase: 'queued',
  waitingFor: null,
  bytesDone: 0,
  bytesTotal: 0,
  mbPerSecond: 0,
  etaSeconds: null,
  cartridge: null,
  lastWriteMsAgo: null,
};

test('progressLine: waiting for quiet writes shows the time since the last write, ticking', () => {
  const waitingFor = '3 s without writes to store:0';
  const p: JobProgress = { ...base, phase: 'waiting-quiet', waitingFor, lastWriteMsAgo: 1200 };
  assert.equal(progressLine(p), 'waiting for 3 s without writes to store:0 — last write 1.2 s ago');
  assert.equal(progressLine(p, 650), 'waiting for 3 s without writes to store:0 — last write 1.9 s ago');
  const own = { ...p, waitingFor: 'waiting for 2 s without writes to store:3 (timeout 80 s)', lastWriteMsAgo: null };
  assert.equal(progressLine(own), 'waiting for 2 s without writes to store:3 (timeout 80 s)');
  const drive = progressLine({ ...base, phase: 'waiting-drive', waitingFor: 'a free drive in vtl' });
  assert.equal(drive, 'waiting for a free drive in vtl');
});

test('progressLine: phase, bar, bytes, MB/s, ETA and cartridge while copying', () => {
  const p: JobProgress = {
    ...base,
    phase: 'copying',
    bytesDone: 256 * 1024 ** 2,
    bytesTotal: 1024 ** 3,
    mbPerSecond: 480.25,
    etaSeconds: 95,
    cartridge: 'FER001L8',
  };
  assert.equal(
    progressLine(p),
    'copying    [██████░░░░░░░░░░░░░░░░░░]  25%  256.0 MiB/1.0 GiB  480.3 MB/s  ETA 1m35s  FER001L8',
  );
  assert.equal(progressLine({ ...base, phase: 'mounting', cartridge: 'FER002L8' }), 'mounting   FER002L8');
});

test('stateLine: one line per state change', () => {
  const message = 'loading FER001L8';
  const e = { id: 3, job: 7, at: '', kind: 'state' as const, state: 'mounting' as const, message, data: null };
  assert.equal(stateLine(e), 'job 7: mounting: loading FER001L8');
  assert.equal(stateLine({ ...e, state: 'copying', message: 'copying' }), 'job 7: copying');
  const quiet = stateLine({ ...e, state: 'waiting-quiet', message: 'waiting for 3 s without writes' });
  assert.equal(quiet, 'job 7: waiting for 3 s without writes');
});
