// The metrics a backup moves, read from the registry (the same text /metrics serves): the
// server's (jobs, last success, bytes moved, cartridges, drives) and, with every role in this
// process, the node's (sessions, LUN bytes, EXTENDED COPY, quiesce wait).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { inTempDir } from '../../test/helpers/temp-dir.ts';
import { startJobsWorld } from './testing.ts';
import { metricsText } from '../metrics/metrics.ts';
import { spawnSync } from 'node:child_process';
import { requireTools } from '../../test/helpers/tools.ts';

/** Every sample of the text format as "name{labels}" → value. */
async function samples(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metricsText()).split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const sum = (s: Map<string, number>, prefix: string): number =>
  [...s].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((n, [, v]) => n + v, 0);

test('metrics: a backup and a restore count as done jobs and move node counters; they match the catalog', async (t) => {
  await inTempDir('ferry-metrics-', async (dir) => {
    const w = await startJobsWorld(dir, { iqn: 'iqn.2026-12.dev.ferry:metrics' });
    try {
      const src = await w.lun(1 << 20);
      const before = await samples();
      await src.dev.write(0, randomFillSync(new Uint8Array(1 << 20)));
      await src.dev.flush();
      const t0 = Date.now() / 1000;
      const job = await w.service.waitForJob((await w.service.startBackup({ volume: `store:${src.lun}` })).id);
      assert.equal(job.state, 'done', JSON.stringify(job.error));
      const after = await samples();
      const delta = (name: string): number => sum(after, name) - sum(before, name);

      assert.equal(delta('ferry_jobs_total'), 1);
      assert.equal(after.get('ferry_jobs_total{type="backup",state="done"}'), 1);
      assert.equal(delta('ferry_job_duration_seconds_count'), 1);
      const last = after.get(`ferry_job_last_success_timestamp_seconds{volume="store:${src.lun}"}`) ?? 0;
      assert.ok(last >= Math.floor(t0) && last <= Date.now() / 1000 + 1, `last success ${last}`);
      assert.ok(delta('ferry_moved_bytes_total') >= 1 << 20, 'the mover moved the volume');
      assert.ok([...after.keys()].some((k) => /^ferry_moved_bytes_total\{mover="[^"]+",direction="backup"\}$/.test(k)));
      assert.ok(sum(after, 'ferry_cartridges') > 0, 'cartridges are counted by pool and state');
      assert.ok(
        [...after.keys()].some((k) => k.startsWith('ferry_drive_busy{drive=')),
        'the drive it used',
      );
      assert.equal(sum(after, 'ferry_drive_busy'), 0, 'no drive is held once the job ended');

      assert.ok(sum(after, 'ferry_iscsi_sessions') >= 1, 'the workstation session at least');
      assert.ok(delta('ferry_lun_written_bytes_total') >= 1 << 20, 'the workstation wrote the volume over iSCSI');
      assert.ok(delta('ferry_xcopy_operations_total') >= 1);
      assert.equal(delta('ferry_xcopy_failures_total'), 0);
      assert.equal(delta('ferry_quiesce_wait_seconds_count'), 1);

      // A restore too; then every job counter, the bytes moved each way and the cartridge
      // counts equal what the catalog says.
      const restore = await w.service.waitForJob((await w.service.startRestore({ set: job.set!, to: 'store:new' })).id);
      assert.equal(restore.state, 'done', JSON.stringify(restore.error));
      const end = await samples();
      const jobs = await w.service.listJobs();
      const byKind = new Map<string, number>();
      for (const j of jobs) byKind.set(`${j.type} ${j.state}`, (byKind.get(`${j.type} ${j.state}`) ?? 0) + 1);
      for (const [k, n] of byKind) {
        const [type, state] = k.split(' ');
        const counted =
          (end.get(`ferry_jobs_total{type="${type}",state="${state}"}`) ?? 0) -
          (before.get(`ferry_jobs_total{type="${type}",state="${state}"}`) ?? 0);
        assert.equal(counted, n, `ferry_jobs_total{type="${type}",state="${state}"}`);
      }
      const moved = (direction: string) =>
        [...end]
          .filter(([k]) => k.startsWith('ferry_moved_bytes_total{') && k.includes(`direction="${direction}"`))
          .reduce((n, [, v]) => n + v, 0) -
        [...before]
          .filter(([k]) => k.startsWith('ferry_moved_bytes_total{') && k.includes(`direction="${direction}"`))
          .reduce((n, [, v]) => n + v, 0);
      assert.equal(moved('backup'), job.bytes, 'bytes moved by backups = the backup job row');
      assert.equal(moved('restore'), restore.bytes, 'bytes moved by restores = the restore job row');
      const carts = new Map<string, number>();
      for (const c of await w.service.listCartridges()) {
        const k = `ferry_cartridges{pool="${c.pool ?? 'scratch'}",state="${c.state}"}`;
        carts.set(k, (carts.get(k) ?? 0) + 1);
      }
      for (const [k, n] of carts) assert.equal(end.get(k), n, k);

      // Prometheus' own parser and linter read the text (Debian's prometheus package has promtool).
      // The only findings allowed are prom-client's own default gauges named *_total.
      if (requireTools(t, 'promtool')) {
        const r = spawnSync('promtool', ['check', 'metrics'], { input: await metricsText(), encoding: 'utf8' });
        const findings = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
        const ours = findings.filter((l) => !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l));
        assert.deepEqual(ours, [], 'promtool check metrics');
        assert.ok(r.status === 0 || findings.length > 0, `promtool exit ${r.status} without a finding`);
      }
    } finally {
      await w.close();
    }
  });
});
