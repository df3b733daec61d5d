import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultParams, type SessionParams } from '../iscsi/negotiation.ts';
import { UNSOLICITED_TTT, WriteAssembly } from './write-assembly.ts';

function params(p: Partial<SessionParams>): SessionParams {
  return { ...defaultParams(), ...p };
}

let ttts = 100;
const newTtt = (): number => ttts++;

test('R2Ts solicit the rest in MaxBurstLength pieces, one at a time, and the data lands in order', () => {
  const w = new WriteAssembly(Buffer.alloc(10_000), 1000, true, params({ maxBurstLength: 4096 }));
  const first = w.nextR2t(4096, newTtt)!;
  assert.deepEqual({ ...first, ttt: 0 }, { ttt: 0, offset: 1000, length: 4096, r2tSN: 0 });
  assert.equal(w.nextR2t(4096, newTtt), undefined, 'MaxOutstandingR2T = 1');
  const slice = w.landing(first.ttt, 1000, 2048)!;
  assert.equal(slice.length, 2048);
  slice.fill(7);
  assert.equal(w.accept({ ttt: first.ttt, dataSN: 0, bufferOffset: 1000, final: false }, slice), undefined);
  assert.equal(
    w.accept({ ttt: first.ttt, dataSN: 1, bufferOffset: 3048, final: true }, Buffer.alloc(2048, 8)),
    undefined,
  );
  const second = w.nextR2t(4096, newTtt)!;
  assert.deepEqual([second.offset, second.length, second.r2tSN], [5096, 4096, 1]);
  w.accept({ ttt: second.ttt, dataSN: 0, bufferOffset: 5096, final: true }, Buffer.alloc(4096, 9));
  const third = w.nextR2t(4096, newTtt)!;
  assert.deepEqual([third.offset, third.length], [9192, 808]);
  w.accept({ ttt: third.ttt, dataSN: 0, bufferOffset: 9192, final: true }, Buffer.alloc(808, 10));
  assert.equal(w.complete, true);
  assert.equal(w.r2tsSent, 3);
  assert.equal(w.buf[1000], 7);
  assert.equal(w.buf[3048], 8);
  assert.equal(w.buf[9999], 10);
});

test('a Data-Out past the R2T burst breaks the sequence', () => {
  const w = new WriteAssembly(Buffer.alloc(8192), 0, true, params({}));
  const r = w.nextR2t(4096, newTtt)!;
  assert.equal(w.landing(r.ttt, 0, 4097), undefined, 'not placed in the buffer');
  assert.match(
    w.accept({ ttt: r.ttt, dataSN: 0, bufferOffset: 0, final: true }, Buffer.alloc(4097))!,
    /outside the R2T \[0, 4096\)/,
  );
  assert.equal(w.received, 0);
});

test('unsolicited data past FirstBurstLength breaks the sequence', () => {
  const w = new WriteAssembly(Buffer.alloc(65536), 512, false, params({ initialR2T: false, firstBurstLength: 8192 }));
  assert.equal(
    w.accept({ ttt: UNSOLICITED_TTT, dataSN: 0, bufferOffset: 512, final: false }, Buffer.alloc(4096)),
    undefined,
  );
  assert.match(
    w.accept({ ttt: UNSOLICITED_TTT, dataSN: 1, bufferOffset: 4608, final: true }, Buffer.alloc(4096))!,
    /unsolicited data at offset 4608\+4096 outside \[4608, 8192\)/,
  );
  const r = w.nextR2t(262144, newTtt)!;
  assert.deepEqual([r.offset, r.length], [8192, 65536 - 8192], 'the R2T starts after the first burst');
});

test('with InitialR2T=Yes or the F bit, no unsolicited Data-Out is allowed', () => {
  for (const [p, final] of [
    [params({ initialR2T: true }), false],
    [params({ initialR2T: false }), true],
  ] as const) {
    const w = new WriteAssembly(Buffer.alloc(4096), 0, final, p);
    assert.match(
      w.accept({ ttt: UNSOLICITED_TTT, dataSN: 0, bufferOffset: 0, final: true }, Buffer.alloc(512))!,
      /outside \[0, 0\)/,
    );
  }
});

test('DataSN, offset, the F bit and the TTT are checked', () => {
  const w = new WriteAssembly(Buffer.alloc(4096), 0, true, params({}));
  const r = w.nextR2t(4096, newTtt)!;
  const d = Buffer.alloc(1024);
  assert.match(
    w.accept({ ttt: r.ttt + 1, dataSN: 0, bufferOffset: 0, final: false }, d)!,
    /unknown target transfer tag/,
  );
  assert.match(w.accept({ ttt: r.ttt, dataSN: 1, bufferOffset: 0, final: false }, d)!, /DataSN 1, expected 0/);
  assert.match(w.accept({ ttt: r.ttt, dataSN: 0, bufferOffset: 1024, final: false }, d)!, /outside the R2T/);
  assert.match(w.accept({ ttt: r.ttt, dataSN: 0, bufferOffset: 0, final: true }, d)!, /F bit before/);
  assert.equal(w.accept({ ttt: r.ttt, dataSN: 0, bufferOffset: 0, final: false }, d), undefined);
  assert.match(
    w.accept({ ttt: r.ttt, dataSN: 1, bufferOffset: 1024, final: false }, Buffer.alloc(3072))!,
    /complete without the F bit/,
  );
});

test('a stopped assembly solicits and places nothing', () => {
  const w = new WriteAssembly(Buffer.alloc(4096), 0, true, params({}));
  const r = w.nextR2t(4096, newTtt)!;
  w.stop();
  assert.equal(w.landing(r.ttt, 0, 512), undefined);
  assert.equal(w.nextR2t(4096, newTtt), undefined);
});

test('landing refuses unsolicited data past FirstBurstLength, a wrong TTT or a wrong offset', () => {
  const w = new WriteAssembly(Buffer.alloc(65536), 0, false, params({ initialR2T: false, firstBurstLength: 8192 }));
  assert.equal(w.landing(UNSOLICITED_TTT, 0, 8192)?.length, 8192);
  assert.equal(w.landing(UNSOLICITED_TTT, 0, 8193), undefined, 'past the first burst');
  assert.equal(w.landing(UNSOLICITED_TTT, 512, 512), undefined, 'not the next offset');
  assert.equal(w.landing(12345, 0, 512), undefined, 'no R2T with that TTT');
});

test('immediate data of the whole write: complete at once, no R2T', () => {
  const w = new WriteAssembly(Buffer.alloc(4096), 4096, true, params({}));
  assert.equal(w.complete, true);
  assert.equal(w.nextR2t(262144, newTtt), undefined);
  assert.equal(w.r2tsSent, 0);
});
