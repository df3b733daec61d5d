import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, truncateSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { Cartridge } from './cartridge.ts';
import { CartridgeLayout, ObjectKind, decodeEntry, encodeEntry, decodeLabel, encodeLabel } from './cartridge-format.ts';
import { CartridgeTapeDevice } from './cartridge-tape-device.ts';

function tmp(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cart-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic record content: record i is `len` bytes of a pattern seeded by i. */
function record(i: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 31 + j * 7) & 0xff;
  return b;
}

async function readAll(path: string): Promise<Array<Uint8Array | 'FM'>> {
  const dev = await CartridgeTapeDevice.open(path);
  const out: Array<Uint8Array | 'FM'> = [];
  const buf = new Uint8Array(4 << 20);
  for (;;) {
    const r = await dev.read(buf);
    if (r.kind === 'eod') break;
    out.push(r.kind === 'filemark' ? 'FM' : buf.slice(0, r.bytes));
  }
  await dev.close();
  return out;
}

test('label and index entry codecs round-trip and reject torn copies', () => {
  const label = {
    barcode: 'FER001L8',
    mediumSerial: 'S1',
    capacityBytes: 1 << 30,
    earlyWarningBytes: 1 << 20,
    writeProtected: true,
    loadCount: 7,
    createdMs: 1234,
    densityCode: 0x5e,
  };
  const enc = encodeLabel(label, 9);
  assert.deepEqual(decodeLabel(enc), { label, seq: 9 });
  enc[100] ^= 1;
  assert.equal(decodeLabel(enc), undefined);
  const e = { kind: ObjectKind.DATA, gen: 3, firstId: 10, dataOffset: 4096, count: 4, blockLength: 1024 };
  const eb = encodeEntry(e);
  assert.equal(eb.length, CartridgeLayout.ENTRY_BYTES);
  assert.deepEqual(decodeEntry(eb), e);
  eb[9] ^= 0x40;
  assert.equal(decodeEntry(eb), undefined);
});

test('records and filemarks survive reopen; index answers by object id and file number', async () => {
  const t = tmp();
  try {
    const path = join(t.dir, 'a.cart');
    const c = await Cartridge.create(path, { barcode: 'FER001L8', capacityBytes: 1 << 20 });
    await c.append(ObjectKind.DATA, 1, 100, record(0, 100));
    await c.append(ObjectKind.DATA, 3, 512, new Uint8Array(1536).fill(9));
    await c.append(ObjectKind.FILEMARK, 2, 0);
    await c.append(ObjectKind.DATA, 1, 7, record(1, 7));
    await c.close();
    const d = await Cartridge.open(path);
    assert.equal(d.objectCount, 7);
    assert.equal(d.usedBytes, 100 + 1536 + 7);
    assert.equal(d.filemarkCount, 2);
    assert.equal(d.runIndexOf(2), 1);
    assert.equal(d.runIndexOf(5), 2);
    assert.equal(d.runIndexOf(7), -1);
    assert.equal(d.fileNumberAt(4), 0);
    assert.equal(d.fileNumberAt(5), 1);
    assert.equal(d.fileNumberAt(6), 2);
    assert.equal(d.filemarkId(0), 4);
    assert.equal(d.filemarkId(1), 5);
    assert.equal(d.filemarkId(2), -1);
    assert.equal(d.label.barcode, 'FER001L8');
    await d.close();
  } finally {
    t.done();
  }
});

/** Make the cartridge's next fsync fail with EIO, once: the kernel reports a lost write-back to one fsync only. */
function failNextFsync(c: Cartridge): void {
  const fh = (c as unknown as { fh: { sync(): Promise<void> } }).fh;
  const orig = fh.sync.bind(fh);
  fh.sync = () => {
    fh.sync = orig;
    return Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
  };
}

test('an fsync that failed once fails every later sync and write: lost records never reported durable', async () => {
  const t = tmp();
  try {
    const c = await Cartridge.create(join(t.dir, 's.cart'), { barcode: 'S', capacityBytes: 1 << 20 });
    await c.append(ObjectKind.DATA, 1, 100, record(0, 100));
    failNextFsync(c);
    await assert.rejects(c.sync(), /EIO/);
    await assert.rejects(c.sync(), /EIO/, 'the next fsync succeeds: sync() must not report the record durable');
    await assert.rejects(c.append(ObjectKind.FILEMARK, 1, 0), /an earlier write failed \(EIO/);
    await c.close();
  } finally {
    t.done();
  }
});

test('a failed label fsync fails the next sync: it may have taken the write-back error of the data', async () => {
  const t = tmp();
  try {
    const c = await Cartridge.create(join(t.dir, 'l.cart'), { barcode: 'L', capacityBytes: 1 << 20 });
    await c.append(ObjectKind.DATA, 1, 100, record(0, 100));
    failNextFsync(c);
    await assert.rejects(c.updateLabel({ loadCount: 1 }), /EIO/);
    await assert.rejects(c.sync(), /EIO/);
    await c.close();
  } finally {
    t.done();
  }
});

test('writing in the middle truncates, and the old tail never comes back after reopen', async () => {
  const t = tmp();
  try {
    const path = join(t.dir, 'a.cart');
    const c = await Cartridge.create(path, { barcode: 'X', capacityBytes: 1 << 20 });
    for (let i = 0; i < 6; i++) await c.append(ObjectKind.DATA, 1, 64, record(i, 64));
    await c.truncate(2);
    // Same length as the old record 2: the stale entries would line up if generations did not stop them.
    await c.append(ObjectKind.DATA, 1, 64, record(100, 64));
    await c.close();
    const got = await readAll(path);
    assert.deepEqual(got, [record(0, 64), record(1, 64), record(100, 64)]);
    // Split a fixed run in the middle.
    const d = await Cartridge.open(path);
    await d.truncate(1);
    await d.append(ObjectKind.DATA, 4, 16, new Uint8Array(64).fill(5));
    await d.close();
    const got2 = await readAll(path);
    // In variable mode each 16-byte block of the fixed run reads as one record.
    assert.deepEqual(got2, [record(0, 64), ...Array.from({ length: 4 }, () => new Uint8Array(16).fill(5))]);
  } finally {
    t.done();
  }
});

test('simulated crash: a torn index entry or missing entry drops only the unacknowledged record', async () => {
  const t = tmp();
  try {
    const path = join(t.dir, 'a.cart');
    const c = await Cartridge.create(path, { barcode: 'X', capacityBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) await c.append(ObjectKind.DATA, 1, 200, record(i, 200));
    await c.append(ObjectKind.FILEMARK, 1, 0);
    await c.close();
    const indexBase = CartridgeLayout.DATA_BASE + (1 << 20);
    const E = CartridgeLayout.ENTRY_BYTES;
    assert.equal(statSync(path).size, indexBase + 6 * E);
    // Torn last entry (half written): the filemark is gone, the records stay.
    truncateSync(path, indexBase + 5 * E + 20);
    let got = await readAll(path);
    assert.equal(got.length, 5);
    got.forEach((r, i) => assert.deepEqual(r, record(i, 200)));
    // Entry 4 overwritten with garbage (a write cut off mid-sector): records 0..3 remain.
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(E).fill(0xab), 0, E, indexBase + 4 * E);
    closeSync(fd);
    got = await readAll(path);
    assert.equal(got.length, 4);
    // Appending after the crash works, and old slots beyond do not rejoin.
    const d = await Cartridge.open(path);
    await d.append(ObjectKind.DATA, 1, 200, record(9, 200));
    await d.close();
    got = await readAll(path);
    assert.deepEqual(got.at(-1), record(9, 200));
    assert.equal(got.length, 5);
  } finally {
    t.done();
  }
});

test('a torn label copy falls back to the other one', async () => {
  const t = tmp();
  try {
    const path = join(t.dir, 'a.cart');
    const c = await Cartridge.create(path, { barcode: 'OLD', capacityBytes: 1 << 16 });
    await c.updateLabel({ barcode: 'NEW' });
    await c.close();
    const raw = readFileSync(path).subarray(0, 4096);
    const seqA = decodeLabel(raw.subarray(0, 2048))?.seq;
    const seqB = decodeLabel(raw.subarray(2048))?.seq;
    const newerAt = (seqA ?? 0) > (seqB ?? 0) ? 0 : 2048;
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(64), 0, 64, newerAt + 100);
    closeSync(fd);
    const d = await Cartridge.open(path);
    assert.equal(d.label.barcode, 'OLD');
    await d.close();
  } finally {
    t.done();
  }
});

test('property: any sequence of appends, truncations and reopens reads back like a model tape', async () => {
  const t = tmp();
  let n = 0;
  try {
    const op = fc.oneof(
      fc.record({ t: fc.constant('rec' as const), len: fc.integer({ min: 1, max: 300 }) }),
      fc.record({ t: fc.constant('fm' as const), count: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ t: fc.constant('cut' as const), at: fc.nat(40) }),
      fc.record({ t: fc.constant('reopen' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const path = join(t.dir, `p${n++}.cart`);
        let c = await Cartridge.create(path, { barcode: 'P', capacityBytes: 1 << 20 });
        const model: Array<Uint8Array | 'FM'> = [];
        let seed = 0;
        for (const o of ops) {
          if (o.t === 'rec') {
            const r = record(seed++, o.len);
            await c.append(ObjectKind.DATA, 1, o.len, r);
            model.push(r);
          } else if (o.t === 'fm') {
            await c.append(ObjectKind.FILEMARK, o.count, 0);
            for (let i = 0; i < o.count; i++) model.push('FM');
          } else if (o.t === 'cut') {
            await c.truncate(o.at);
            model.length = Math.min(model.length, o.at);
          } else {
            await c.close();
            c = await Cartridge.open(path);
          }
          assert.equal(c.objectCount, model.length);
        }
        await c.close();
        assert.deepEqual(await readAll(path), model);
        rmSync(path);
      }),
      { numRuns: 60 },
    );
  } finally {
    t.done();
  }
});

// A child process streams records and prints "ack i" after each write resolves; we SIGKILL it
// mid-stream. Every acknowledged record must read back.
const CHILD = `
import { Cartridge } from ${JSON.stringify(new URL('./cartridge.ts', import.meta.url).href)};
import { ObjectKind } from ${JSON.stringify(new URL('./cartridge-format.ts', import.meta.url).href)};
import { writeSync } from 'node:fs';
const c = await Cartridge.open(process.argv.at(-1));
// Acks go straight to the pipe, waiting while it is full (the fd is non-blocking: EAGAIN). Small
// records are written inline, so this loop never yields to the event loop, and process.stdout
// would hold its acks back while the writer runs to the end of the medium.
const pause = new Int32Array(new SharedArrayBuffer(4));
const ack = (i) => {
  for (;;) {
    try {
      return writeSync(1, 'ack ' + i + '\\n'); // under PIPE_BUF: all or nothing
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
};
const big = process.env.BIG_RECORDS === '1';
const inFlight = [];
for (let i = 0; ; i++) {
  const len = (big ? 1 << 21 : 1000) + (i % 7) * 333;
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 31 + j * 7) & 0xff;
  if (big) {
    // Records above the inline limit, several in flight: the batched thread-pool path.
    const { done } = await c.appendPipelined(ObjectKind.DATA, 1, len, b);
    inFlight.push(done.then(() => ack(i)));
    if (inFlight.length >= 4) await inFlight.shift();
    continue;
  }
  await c.append(ObjectKind.DATA, 1, len, b);
  if (i % 10 === 9) await c.append(ObjectKind.FILEMARK, 1, 0);
  ack(i);
}
`;

for (const big of [false, true]) {
  test(
    `SIGKILL of a writer mid-stream (${big ? '2 MiB records, 4 in flight' : 'small records'}): the cartridge loads ` +
      `and every acknowledged record reads back`,
    async () => {
      const t = tmp();
      try {
        const path = join(t.dir, 'k.cart');
        await (await Cartridge.create(path, { barcode: 'K', capacityBytes: 256 << 20 })).close();
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, path], {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, BIG_RECORDS: big ? '1' : '0' },
        });
        let acked = -1;
        let buf = '';
        await new Promise<void>((resolve) => {
          child.stdout.on('data', (d: Buffer) => {
            buf += d.toString();
            const lines = buf.split('\n');
            buf = lines.pop() ?? '';
            for (const l of lines) acked = Number(l.slice(4));
            if (acked >= (big ? 40 : 400) && !child.killed) child.kill('SIGKILL');
          });
          child.on('exit', () => resolve());
        });
        assert.ok(acked >= (big ? 40 : 400), `child acknowledged ${acked} records`);
        const got = (await readAll(path)).filter((r) => r !== 'FM');
        assert.ok(got.length >= acked + 1, `read back ${got.length} records, ${acked + 1} acknowledged`);
        // Buffer#equals, not deepEqual: a diff of 2 MiB arrays takes minutes to print.
        for (let i = 0; i <= acked; i++)
          assert.ok(
            Buffer.from(got[i] as Uint8Array).equals(Buffer.from(record(i, (big ? 1 << 21 : 1000) + (i % 7) * 333))),
            `record ${i} differs`,
          );
      } finally {
        t.done();
      }
    },
  );
}
