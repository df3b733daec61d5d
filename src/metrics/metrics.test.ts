import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveMetrics } from './serve.ts';
import { iscsiSessions } from './metrics.ts';

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
