// Both login state machines, with no socket: the initiator's against the target's, and the
// target's rules one by one (RFC 7143 6.3, 11.12, 11.13, 12.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type LoginRequest, type LoginResponse, LoginStatus, Stage } from './pdu/login.ts';
import { decodeKeyValues, encodeKeyValues, getKey, type KeyValues } from './text-keys.ts';
import { DEFAULT_INITIATOR_OFFER, DEFAULT_TARGET_LIMITS } from './negotiation.ts';
import { InitiatorLoginFsm, type InitiatorLoginOptions, type InitiatorLoginStep } from './initiator-login-fsm.ts';
import { TargetLoginFsm, type LoginOutcome } from './target-login-fsm.ts';
import type { ChapSecret } from './chap.ts';

const TARGET = 'iqn.2026-12.test:disk';
const INITIATOR = 'iqn.2026-12.test:host';
const ISID = Uint8Array.from([0x80, 1, 2, 3, 4, 5]);

interface TargetConfig {
  chap?: ChapSecret;
  mutualChap?: ChapSecret;
  allowed?: string[];
}

function targetFsm(cfg: TargetConfig = {}): TargetLoginFsm {
  return new TargetLoginFsm({
    limits: DEFAULT_TARGET_LIMITS,
    portalGroupTag: 1,
    findTarget: (name) =>
      name === TARGET
        ? { chap: cfg.chap, mutualChap: cfg.mutualChap, allows: (i) => !cfg.allowed || cfg.allowed.includes(i) }
        : undefined,
  });
}

function initiatorFsm(o: Partial<InitiatorLoginOptions> = {}): InitiatorLoginFsm {
  return new InitiatorLoginFsm({
    initiatorName: INITIATOR,
    targetName: TARGET,
    offer: { ...DEFAULT_INITIATOR_OFFER, maxRecvDataSegmentLength: 65536 },
    isid: ISID,
    itt: 1,
    cmdSN: 77,
    ...o,
  });
}

/** The target's answer as the wire would carry it. */
function response(out: LoginOutcome, statSN: number): LoginResponse {
  return { ...out.response, tsih: out.kind === 'complete' ? 9 : 0, statSN, expCmdSN: 77, maxCmdSN: 140 };
}

/** Run both machines against each other until one ends. */
function converse(
  ini: InitiatorLoginFsm,
  tgt: TargetLoginFsm,
): { end: InitiatorLoginStep; target: LoginOutcome; requests: LoginRequest[] } {
  const requests: LoginRequest[] = [];
  let req = ini.start();
  for (let statSN = 500; ; statSN++) {
    requests.push(req);
    const out = tgt.handle(req);
    const step = ini.handle(response(out, statSN));
    if (step.kind !== 'send') return { end: step, target: out, requests };
    assert.ok(requests.length < 10, 'login does not end');
    req = step.request;
  }
}

test('without CHAP: one operational exchange to full feature, with negotiated parameters', () => {
  const { end, target, requests } = converse(initiatorFsm(), targetFsm());
  assert.equal(end.kind, 'complete');
  assert.equal(target.kind, 'complete');
  assert.deepEqual(
    requests.map((r) => [r.csg, r.nsg, r.transit, r.cmdSN]),
    [[Stage.OPERATIONAL, Stage.FULL_FEATURE, true, 77]],
  );
  if (end.kind !== 'complete' || target.kind !== 'complete') return;
  assert.equal(end.tsih, 9);
  assert.equal(end.params.peerMaxRecvDataSegmentLength, DEFAULT_TARGET_LIMITS.maxRecvDataSegmentLength);
  assert.equal(target.result.params.peerMaxRecvDataSegmentLength, 65536);
  assert.equal(end.params.immediateData, target.result.params.immediateData);
  assert.equal(end.params.maxBurstLength, target.result.params.maxBurstLength);
});

test('CHAP and mutual CHAP: security stage first, then operational; ExpStatSN follows the responses', () => {
  const secret: ChapSecret = { user: 'host', secret: 'host-secret-12' };
  const back: ChapSecret = { user: 'disk', secret: 'disk-secret-34' };
  const { end, requests } = converse(
    initiatorFsm({ chap: secret, mutualChap: back }),
    targetFsm({ chap: secret, mutualChap: back }),
  );
  assert.equal(end.kind, 'complete');
  assert.deepEqual(
    requests.map((r) => [r.csg, r.transit, decodeKeyValues(r.data).map(([k]) => k)[0]]),
    [
      [Stage.SECURITY, false, 'InitiatorName'],
      [Stage.SECURITY, false, 'CHAP_A'],
      [Stage.SECURITY, true, 'CHAP_N'],
      [Stage.OPERATIONAL, true, 'HeaderDigest'],
    ],
  );
  assert.deepEqual(
    requests.map((r) => r.expStatSN),
    [0, 501, 502, 503],
  );
});

test('a wrong CHAP secret fails on the target, and the initiator says so', () => {
  const { end, target } = converse(
    initiatorFsm({ chap: { user: 'host', secret: 'not-the-secret' } }),
    targetFsm({ chap: { user: 'host', secret: 'host-secret-12' } }),
  );
  assert.equal(target.kind, 'failed');
  assert.deepEqual(end, {
    kind: 'failed',
    message: `login to ${TARGET} refused: status class 2 detail 1 (authentication failure)`,
  });
});

test('a target that fails mutual CHAP is refused by the initiator', () => {
  const secret: ChapSecret = { user: 'host', secret: 'host-secret-12' };
  const { end } = converse(
    initiatorFsm({ chap: secret, mutualChap: { user: 'disk', secret: 'expected-secret' } }),
    targetFsm({ chap: secret, mutualChap: { user: 'disk', secret: 'other-secret-99' } }),
  );
  assert.deepEqual(end, { kind: 'failed', message: 'the target failed mutual CHAP authentication' });
});

test('an unknown target or a refused initiator is named in the failure', () => {
  const unknown = converse(initiatorFsm({ targetName: 'iqn.2026-12.test:nope' }), targetFsm());
  assert.match(unknown.end.kind === 'failed' ? unknown.end.message : '', /refused: .*\(target not found\)/);
  const refused = converse(initiatorFsm(), targetFsm({ allowed: ['iqn.2026-12.test:other'] }));
  assert.match(refused.end.kind === 'failed' ? refused.end.message : '', /initiator not allowed/);
});

test('a discovery session offers only the keys that apply to it', () => {
  const { end, requests } = converse(initiatorFsm({ targetName: undefined }), targetFsm());
  assert.equal(end.kind, 'complete');
  const keys = decodeKeyValues(requests[0].data).map(([k]) => k);
  assert.deepEqual(keys, ['InitiatorName', 'SessionType', 'HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength']);
});

function request(keys: KeyValues, over: Partial<LoginRequest> = {}): LoginRequest {
  return {
    transit: true,
    cont: false,
    csg: Stage.OPERATIONAL,
    nsg: Stage.FULL_FEATURE,
    versionMax: 0,
    versionMin: 0,
    isid: ISID,
    tsih: 0,
    itt: 1,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
    data: encodeKeyValues(keys),
    ...over,
  };
}

const NAMES: KeyValues = [
  ['InitiatorName', INITIATOR],
  ['TargetName', TARGET],
];

function status(out: LoginOutcome): readonly [number, number] {
  return [out.response.statusClass, out.response.statusDetail];
}

test('target: a login naming a TSIH this target does not have is refused (SESSION DOES NOT EXIST)', () => {
  const out = targetFsm().handle(request(NAMES, { tsih: 0x1234 }));
  assert.equal(out.kind, 'failed');
  assert.deepEqual(status(out), LoginStatus.SESSION_DOES_NOT_EXIST);
});

test('target: CHAP required but the initiator starts in the operational stage', () => {
  const out = targetFsm({ chap: { user: 'u', secret: 'sssssssssssss' } }).handle(request(NAMES));
  assert.equal(out.kind, 'failed');
  assert.deepEqual(status(out), LoginStatus.AUTHENTICATION_FAILURE);
});

test('target: missing InitiatorName, a bad stage transition and an unsupported version', () => {
  assert.deepEqual(status(targetFsm().handle(request([['TargetName', TARGET]]))), LoginStatus.MISSING_PARAMETER);
  assert.deepEqual(
    status(targetFsm().handle(request(NAMES, { csg: Stage.OPERATIONAL, nsg: Stage.SECURITY }))),
    LoginStatus.INITIATOR_ERROR,
  );
  assert.deepEqual(status(targetFsm().handle(request(NAMES, { versionMin: 1 }))), LoginStatus.UNSUPPORTED_VERSION);
});

test('target: text split over PDUs (C bit) is gathered before it is read', () => {
  const fsm = targetFsm();
  const text = Buffer.from(encodeKeyValues(NAMES));
  const first = fsm.handle(request([], { cont: true, transit: false, data: text.subarray(0, 10) }));
  assert.equal(first.kind, 'continue');
  const out = fsm.handle(request([], { data: text.subarray(10) }));
  assert.equal(out.kind, 'complete');
  assert.equal(getKey(decodeKeyValues(out.response.data), 'TargetPortalGroupTag'), '1');
});

test('target: the TSIH refusal has T=0 and NSG 0 (reserved)', () => {
  const out = targetFsm().handle(request(NAMES, { tsih: 7 }));
  assert.deepEqual([out.response.transit, out.response.nsg], [false, 0]);
});

test('initiator: a target that chooses no CHAP is refused when mutual CHAP was asked for', () => {
  const secret: ChapSecret = { user: 'host', secret: 'host-secret-12' };
  const { end } = converse(
    initiatorFsm({ chap: secret, mutualChap: { user: 'disk', secret: 'disk-secret-34' } }),
    targetFsm(),
  );
  assert.equal(end.kind, 'failed');
  assert.match(end.kind === 'failed' ? end.message : '', /chose no CHAP.*mutual CHAP/);
  const oneWay = converse(initiatorFsm({ chap: secret }), targetFsm());
  assert.equal(oneWay.end.kind, 'complete', 'one-way CHAP: a target that needs none is fine');
});

test('initiator: operational answers over several rounds are applied, then an empty request follows', () => {
  const ini = initiatorFsm();
  const first = ini.start();
  const partial: LoginResponse = {
    ...response(targetFsm().handle(first), 500),
    transit: false,
    nsg: 0,
    data: encodeKeyValues([['MaxBurstLength', '131072']]),
  };
  const step = ini.handle(partial);
  assert.equal(step.kind, 'send');
  if (step.kind !== 'send') return;
  assert.deepEqual(
    [step.request.csg, step.request.transit, step.request.data.length, step.request.expStatSN],
    [Stage.OPERATIONAL, true, 0, 501],
  );
  assert.equal(ini.params.maxBurstLength, 131072);
});
