import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { FerryError } from '../util/errors.ts';
import {
  JobStateError,
  addJobEvent,
  createJob,
  getJob,
  interruptRunningJobs,
  listJobEvents,
  listJobs,
  transitionJob,
  updateJobProgress,
} from './queries/jobs.ts';
import { testBoth } from './testing.ts';

testBoth('createJob records the job and a first event; listJobs filters, newest first', async ({ db }) => {
  const a = await createJob(db, { type: 'backup', volumeId: 'store:0', params: { mode: 'used' }, bytesTotal: 10 });
  const b = await createJob(db, { type: 'verify', params: { setId: 3 } });
  assert.equal(a.state, 'queued');
  assert.deepEqual(a.params, { mode: 'used' });
  assert.equal(a.bytesTotal, 10);
  assert.equal(a.startedAt, null);
  assert.ok(b.id > a.id);
  assert.deepEqual(
    (await listJobs(db)).map((j) => j.id),
    [b.id, a.id],
  );
  assert.deepEqual(
    (await listJobs(db, { type: 'backup' })).map((j) => j.id),
    [a.id],
  );
  const active = await listJobs(db, { volumeId: 'store:0', state: ['queued', 'copying'] });
  assert.deepEqual(
    active.map((j) => j.id),
    [a.id],
  );
  assert.deepEqual(await listJobs(db, { state: [] }), []);
  assert.deepEqual(
    (await listJobs(db, { limit: 1 })).map((j) => j.id),
    [b.id],
  );
  const events = await listJobEvents(db, a.id);
  assert.equal(events.length, 1);
  assert.equal(events[0].kind, 'state');
  assert.equal(events[0].state, 'queued');
  assert.equal(await getJob(db, 12345), undefined);
});

testBoth('transitionJob moves from the given state only, writes an event, and finishes a job', async ({ db }) => {
  const job = await createJob(db, { type: 'backup', volumeId: 'store:0', params: {} });
  const w = await transitionJob(db, job.id, 'queued', 'waiting for quiet writes', {
    message: 'waiting',
    waitingFor: 'no writes to store:0 for 3 s',
    at: '2024-05-01T10:00:00Z',
    data: { quietMs: 3000 },
  });
  assert.equal(w.waitingFor, 'no writes to store:0 for 3 s');
  assert.equal(w.startedAt, '2024-05-01T10:00:00.000Z');
  const p = await transitionJob(db, job.id, 'waiting for quiet writes', 'planning', {
    message: 'planning',
    at: '2024-05-01T10:00:05Z',
  });
  assert.equal(p.waitingFor, null, 'cleared by a transition that waits for nothing');
  assert.equal(p.startedAt, '2024-05-01T10:00:00.000Z', 'started_at is set once');
  await assert.rejects(
    transitionJob(db, job.id, 'queued', 'mounting', { message: 'x' }),
    (e: unknown) =>
      e instanceof JobStateError &&
      e.code === 'ERR_JOB_STATE' &&
      e.actual === 'planning' &&
      e.message.includes('queued') &&
      e.message.includes('planning'),
  );
  await assert.rejects(
    transitionJob(db, 999, 'queued', 'planning', { message: 'x' }),
    (e: unknown) => e instanceof FerryError && e.code === 'ERR_CATALOG_NOT_FOUND',
  );
  await updateJobProgress(db, job.id, { bytesDone: 5, bytesTotal: 9, cartridge: 'FER001L8', drive: 'vtl/1' });
  const done = await transitionJob(db, job.id, 'planning', 'done', {
    message: 'done',
    at: '2024-05-01T10:01:00Z',
    setId: 7,
    result: { bytes: 9 },
  });
  assert.deepEqual(
    [done.state, done.endedAt, done.setId, done.result, done.bytesDone, done.bytesTotal, done.cartridge, done.drive],
    ['done', '2024-05-01T10:01:00.000Z', 7, { bytes: 9 }, 5, 9, 'FER001L8', 'vtl/1'],
  );
  const events = await listJobEvents(db, job.id);
  assert.deepEqual(
    events.map((e) => e.state),
    ['queued', 'waiting for quiet writes', 'planning', 'done'],
  );
  assert.deepEqual(events[1].data, { quietMs: 3000 });
  assert.deepEqual(
    (await listJobEvents(db, job.id, events[1].id)).map((e) => e.state),
    ['planning', 'done'],
  );
  await assert.rejects(updateJobProgress(db, 999, { bytesDone: 1 }), /not in the catalog/);
});

testBoth(
  'transitionJob writes state and event in one transaction: a failing event insert keeps the state',
  async ({ db }) => {
    const job = await createJob(db, { type: 'restore', params: {} });
    await sql
      .raw(
        `CREATE TRIGGER boom BEFORE INSERT ON job_events WHEN NEW.message = 'boom'
    BEGIN SELECT RAISE(ABORT, 'boom'); END`,
      )
      .execute(db);
    await assert.rejects(transitionJob(db, job.id, 'queued', 'planning', { message: 'boom' }), /boom/);
    const after = await getJob(db, job.id);
    assert.equal(after?.state, 'queued');
    assert.equal(after?.startedAt, null);
    assert.equal((await listJobEvents(db, job.id)).length, 1);
    // Inside the caller's transaction it joins that transaction.
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await transitionJob(trx, job.id, 'queued', 'planning', { message: 'ok' });
        await addJobEvent(trx, job.id, { kind: 'note', message: 'boom' });
      }),
      /boom/,
    );
    assert.equal((await getJob(db, job.id))?.state, 'queued');
  },
);

testBoth('interruptRunningJobs fails every unfinished job with the message', async ({ db }) => {
  const a = await createJob(db, { type: 'backup', params: {} });
  const b = await createJob(db, { type: 'backup', params: {} });
  const c = await createJob(db, { type: 'verify', params: {} });
  await transitionJob(db, b.id, 'queued', 'copying', { message: 'copy' });
  await transitionJob(db, c.id, 'queued', 'canceled', { message: 'canceled by user' });
  const ids = await interruptRunningJobs(db, '2024-05-02T00:00:00Z', 'server restarted');
  assert.deepEqual(ids, [a.id, b.id]);
  for (const id of ids) {
    const j = await getJob(db, id);
    assert.deepEqual(
      [j?.state, j?.errorCode, j?.error, j?.endedAt],
      ['failed', 'ERR_INTERRUPTED', 'server restarted', '2024-05-02T00:00:00.000Z'],
    );
    const last = (await listJobEvents(db, id)).at(-1);
    assert.equal(last?.message, 'server restarted');
  }
  assert.equal((await getJob(db, c.id))?.state, 'canceled');
  assert.deepEqual(await interruptRunningJobs(db, new Date(), 'again'), []);
});
