import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveMetrics } from './serve.ts';
import { iscsiSessions, metricsText, SessionTally } from './metrics.ts';

test('--metrics serves GET /metrics in the Prometheus text format, and nothing else', async () => {
  const m = await serveMetrics('127.0.0.1:0');
  try {
    iscsiSessions.inc({ type: 'Normal' });
    const res = await fetch(`http://127.0.0.1:${m.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE ferry_iscsi_sessions gauge$/m);
    assert.match(text, /^ferry_iscsi_sessions\{type="Normal"\} 1$/m);
    assert.match(text, /^process_cpu_seconds_total /m, 'the process metrics too');
    assert.equal((await fetch(`http://127.0.0.1:${m.port}/`)).status, 404);
  } finally {
    await m.close();
  }
});

test('--metrics names a bad address', async () => {
  await assert.rejects(serveMetrics('nonsense:port'), /--metrics "nonsense:port" is not HOST:PORT/);
});

test('session tallies sum into the counters when scraped, and stay counted after the session closes', async () => {
  const value = async (name: string, labels: string): Promise<number> =>
    Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(await metricsText())?.[1] ?? 0);
  const a = new SessionTally('iqn.test:t');
  const b = new SessionTally('iqn.test:t');
  a.commands += 3;
  b.commands += 2;
  a.lun(0).read += 4096;
  b.lun(0).written += 512;
  b.lun(1).read += 100;
  assert.equal(await value('ferry_iscsi_commands_total', 'target="iqn.test:t"'), 5);
  assert.equal(await value('ferry_lun_read_bytes_total', 'target="iqn.test:t",lun="0"'), 4096);
  a.close();
  a.commands += 100; // after close: no longer counted
  b.commands += 1;
  assert.equal(await value('ferry_iscsi_commands_total', 'target="iqn.test:t"'), 6);
  assert.equal(await value('ferry_lun_written_bytes_total', 'target="iqn.test:t",lun="0"'), 512);
  assert.equal(await value('ferry_lun_read_bytes_total', 'target="iqn.test:t",lun="1"'), 100);
  b.close();
  assert.equal(await value('ferry_iscsi_commands_total', 'target="iqn.test:t"'), 6, 'monotonic');
});
