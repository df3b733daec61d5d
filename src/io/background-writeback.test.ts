import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackgroundWriteback } from './background-writeback.ts';

const eio = (): Error => Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });

test('an explicit sync that failed once fails every later syncWith (the kernel reports the error once)', async () => {
  const passed: Error[] = [];
  const wb = new BackgroundWriteback({ datasync: () => Promise.resolve() }, 0, (e) => passed.push(e));
  const first = eio();
  let syncs = 0;
  const syncNow = (): Promise<void> => (++syncs === 1 ? Promise.reject(first) : Promise.resolve());
  const check = (): void => undefined;
  await assert.rejects(wb.syncWith(syncNow, check), (e) => e === first);
  await assert.rejects(wb.syncWith(syncNow, check), (e) => e === first, 'the next sync would succeed');
  assert.equal(syncs, 1, 'no sync runs after the failure');
  assert.deepEqual(passed, [first], 'onError hears of it, as of a background failure');
});

test('a sync that succeeds while a concurrent one fails still fails', async () => {
  const wb = new BackgroundWriteback({ datasync: () => Promise.resolve() }, 0);
  let release!: () => void;
  const late = new Promise<void>((r) => (release = r));
  const ok = wb.syncWith(
    () => late, // succeeds after the other sync took the error
    () => undefined,
  );
  await assert.rejects(
    wb.syncWith(
      () => Promise.reject(eio()),
      () => undefined,
    ),
    /EIO/,
  );
  release();
  await assert.rejects(ok, /EIO/);
});
