import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { ThreadedSha256 } from './threaded-sha256.ts';

test('the threaded SHA-256 of a stream of buffers equals createHash over the same bytes, in order', async () => {
  const h = new ThreadedSha256(1 << 20, 3);
  const ref = createHash('sha256');
  try {
    // Lengths that vary, so a buffer handed back and refilled must never carry old bytes.
    for (const length of [1 << 20, 1, 4095, 0, 777_777, 1 << 20, 12_345, 65_536, 1 << 20, 3]) {
      const b = await h.buffer();
      randomFillSync(b, 0, length);
      ref.update(b.subarray(0, length));
      h.update(b, length);
      assert.equal(b.length, 0, 'the buffer went to the worker (transferred, not copied)');
    }
    assert.equal(await h.digest(), ref.digest('hex'));
  } finally {
    await h.close();
  }
});

test('a buffer larger than the others is handed out when asked for, and the digest stays right', async () => {
  const h = new ThreadedSha256(1024, 2);
  const ref = createHash('sha256');
  try {
    for (const length of [1024, 5000, 10, 1 << 16, 1024]) {
      const b = await h.buffer(length);
      assert.ok(b.length >= length, `asked for ${length}, got ${b.length}`);
      randomFillSync(b, 0, length);
      ref.update(b.subarray(0, length));
      h.update(b, length);
    }
    assert.equal(await h.digest(), ref.digest('hex'));
  } finally {
    await h.close();
  }
});

test('a buffer that is not one of its own is refused; closing fails whoever waits', async () => {
  const h = new ThreadedSha256(4096, 1);
  const b = await h.buffer();
  assert.throws(() => h.update(b.subarray(1), 10), /not a buffer from buffer\(\)/);
  h.update(b, 4096);
  const waiting = h.buffer(); // the only buffer is with the worker
  const refused = assert.rejects(waiting, /closed/);
  await h.close();
  await refused;
  await assert.rejects(h.digest(), /closed/);
});
