import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeKeyValues, encodeKeyValues, TextKeyError } from '../iscsi/text-keys.ts';
import type { TextPdu } from '../iscsi/pdu/text.ts';
import { TextExchange, sendTargets, type ListedTarget, type TextSession } from './text-exchange.ts';

const disk: ListedTarget = { name: 'iqn.2026-12.test:disk', allows: () => true };
const tape: ListedTarget = { name: 'iqn.2026-12.test:tape', allows: (i) => i === 'iqn.2026-12.test:backup' };

function session(o: Partial<TextSession> = {}): TextSession {
  return {
    initiatorName: 'iqn.2026-12.test:host',
    sessionType: 'Discovery',
    portal: '10.0.0.1:3260,1',
    targets: () => [disk, tape],
    ...o,
  };
}

function req(data: Uint8Array, ttt = 0xffffffff): TextPdu {
  return { final: true, cont: false, immediate: true, itt: 1, ttt, sn: 0, expSN: 0, maxCmdSN: 0, data };
}

test('SendTargets=All lists the targets this initiator may see, in a discovery session only', () => {
  assert.deepEqual(sendTargets('All', session()), [
    ['TargetName', disk.name],
    ['TargetAddress', '10.0.0.1:3260,1'],
  ]);
  assert.deepEqual(sendTargets('All', session({ sessionType: 'Normal', target: disk })), []);
  assert.deepEqual(
    sendTargets('', session({ sessionType: 'Normal', target: disk })).map(([, v]) => v),
    [disk.name, '10.0.0.1:3260,1'],
  );
  assert.deepEqual(sendTargets(tape.name, session({ initiatorName: 'iqn.2026-12.test:backup' }))[0], [
    'TargetName',
    tape.name,
  ]);
});

test('other keys are NotUnderstood; malformed text throws TextKeyError', () => {
  const a = new TextExchange().answer(req(encodeKeyValues([['X-Vendor', '1']])), session(), 8192, () => 5);
  assert.deepEqual(decodeKeyValues(a.data), [['X-Vendor', 'NotUnderstood']]);
  assert.throws(
    () => new TextExchange().answer(req(Buffer.from('no-equals-sign\0')), session(), 8192, () => 5),
    TextKeyError,
  );
});

test('an answer longer than MaxRecvDataSegmentLength continues under one TTT', () => {
  const many: ListedTarget[] = Array.from({ length: 40 }, (_, i) => ({
    name: `iqn.2026-12.test:t${i}`,
    allows: () => true,
  }));
  const x = new TextExchange();
  const s = session({ targets: () => many });
  const first = x.answer(req(encodeKeyValues([['SendTargets', 'All']])), s, 512, () => 77);
  assert.deepEqual([first.more, first.ttt, first.data.length], [true, 77, 512]);
  const parts = [first.data];
  let next = first;
  while (next.more) {
    next = x.answer(req(new Uint8Array(0), next.ttt), s, 512, () => 78);
    parts.push(next.data);
  }
  assert.equal(next.ttt, 0xffffffff);
  const names = decodeKeyValues(Buffer.concat(parts)).filter(([k]) => k === 'TargetName');
  assert.equal(names.length, 40);
});
