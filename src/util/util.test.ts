import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteReader } from './byte-reader.ts';
import { ByteWriter } from './byte-writer.ts';
import { crc32c } from './crc32c.ts';
import { serialLt, serialGt, serialAdd } from './serial.ts';
import { parseSize, parseDuration, parseHostPort } from './units.ts';
import { DecodeError, UsageError } from './errors.ts';
import Fastify from 'fastify';
import { listenOrExplain } from './listen.ts';

test('crc32c matches the RFC 3720 B.4 vectors', () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  const s = new TextEncoder().encode('123456789');
  assert.equal(crc32c(s), 0xe3069283);
  assert.equal(crc32c(s.subarray(4), crc32c(s.subarray(0, 4))), 0xe3069283, 'chained');
});

test('ByteReader throws DecodeError with the offset on overrun and refuses u64 above 2^53', () => {
  const r = new ByteReader(Uint8Array.of(1, 2, 3));
  assert.equal(r.u16(), 0x0102);
  assert.throws(
    () => r.u16(),
    (e: unknown) => e instanceof DecodeError && e.offset === 2,
  );
  const big = new ByteReader(new Uint8Array(8).fill(0xff));
  assert.throws(() => big.u64(0), DecodeError);
  assert.equal(big.u64big(0), 0xffffffffffffffffn);
});

test('ByteWriter writes big-endian fields and back-patches', () => {
  const w = new ByteWriter(10).u8(1).u16(0x0203).u24(0x040506).skip(2);
  w.setU16(8, 0xabcd);
  assert.deepEqual([...w.buf], [1, 2, 3, 4, 5, 6, 0, 0, 0xab, 0xcd]);
  assert.throws(() => new ByteWriter(1).u16(1), RangeError);
});

test('serial arithmetic wraps at 2^32 (RFC 1982)', () => {
  assert.ok(serialLt(0xfffffffe, 1));
  assert.ok(serialGt(1, 0xfffffffe));
  assert.ok(!serialLt(5, 5));
  assert.equal(serialAdd(0xffffffff, 2), 1);
});

test('size, duration and address parsing give clear errors', () => {
  assert.equal(parseSize('64M'), 64 << 20);
  assert.equal(parseSize('2G'), 2 * 1024 ** 3);
  assert.equal(parseSize('4096'), 4096);
  assert.throws(() => parseSize('lots'), UsageError);
  assert.equal(parseDuration('3s'), 3000);
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('80'), 80_000);
  assert.throws(() => parseDuration('soon'), UsageError);
  assert.deepEqual(parseHostPort('127.0.0.1:3260', 1), { host: '127.0.0.1', port: 3260 });
  assert.deepEqual(parseHostPort('[::1]', 3260), { host: '::1', port: 3260 });
  assert.throws(() => parseHostPort('h:99999', 1), UsageError);
});

test('role configs refuse a bad iSCSI name with a message naming the field (RFC 7143 4.2.7)', async () => {
  const { resolveTargetConfig } = await import('../storage-node/config.ts');
  const { resolveMoverConfig } = await import('../mover/config.ts');
  assert.throws(
    () => resolveTargetConfig({ iqn: 'iqn.x:t' }, 'options'),
    (e: Error) => e instanceof UsageError && /iqn: not an iSCSI name/.test(e.message),
  );
  assert.throws(
    () => resolveMoverConfig({ iqn: 'mover', portals: ['127.0.0.1:3260'] }, 'options'),
    (e: Error) => e instanceof UsageError && /iqn: not an iSCSI name/.test(e.message),
  );
  for (const good of ['iqn.2026-11.dev.ferry:store', 'eui.02004567A425678D', 'naa.52004567BA64678D'])
    assert.equal(resolveTargetConfig({ iqn: good }).iqn, good);
});

test('GroupCommit: one flush at a time; what is added meanwhile goes out together, in order', async () => {
  const { GroupCommit } = await import('./group-commit.ts');
  const batches: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const gc = new GroupCommit<number>(async (b) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    batches.push(b);
    await new Promise((r) => setTimeout(r, 5));
    running--;
    if (b.includes(13)) throw new Error('disk full');
  });
  const first = gc.add(1); // starts a flush of [1]
  await Promise.resolve();
  const rest = [2, 3, 4].map((n) => gc.add(n)); // queued behind it: one batch
  await Promise.all([first, ...rest]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
  assert.equal(maxRunning, 1);
  await assert.rejects(gc.add(13), /disk full/);
  await gc.add(14); // the next batch is still flushed
  assert.deepEqual(batches.at(-1), [14]);
});

test('listenOrExplain: an address in use names the service and where to change it', async () => {
  const a = Fastify();
  const port = await listenOrExplain(a, '127.0.0.1', 0, 'the thing', '--thing');
  const b = Fastify();
  await assert.rejects(
    listenOrExplain(b, '127.0.0.1', port, 'the other thing', '--other'),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        `the other thing cannot listen on 127.0.0.1:${port}: another process uses that address; ` +
          'choose another (--other)',
  );
  await a.close();
  await b.close();
});
