// The target session core with no socket: PDUs in through receive(), PDUs out through a link
// that records them (the way ssh2's protocol object is tested).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Opcode, opcodeOf, type RawPdu } from '../iscsi/pdu/bhs.ts';
import { Stage, encodeLoginRequest, decodeLoginResponse } from '../iscsi/pdu/login.ts';
import { encodeScsiCommand, TaskAttr } from '../iscsi/pdu/scsi-command.ts';
import { decodeScsiResponse } from '../iscsi/pdu/scsi-response.ts';
import { decodeR2t } from '../iscsi/pdu/r2t.ts';
import { encodeDataOut } from '../iscsi/pdu/data.ts';
import { encodeTmfRequest, decodeTmfResponse, TmfFunction, TmfResponse } from '../iscsi/pdu/task-mgmt.ts';
import { encodeKeyValues, type KeyValues } from '../iscsi/text-keys.ts';
import { DEFAULT_TARGET_LIMITS } from '../iscsi/negotiation.ts';
import { decodeSense, SenseKey } from '../scsi/sense.ts';
import { ScsiStatus, type LogicalUnit, type ScsiTask } from '../scsi/task.ts';
import { buildTestUnitReady } from '../scsi/cdb/spc.ts';
import { buildWrite10 } from '../scsi/cdb/sbc.ts';
import { Target } from './target.ts';
import { TargetSession, type SessionHost, type SessionLink, type SessionPeer } from './session.ts';

const TARGET = 'iqn.2026-12.test:core';

/** An LU that records what it ran, and completes each command when told to. */
class RecordingLu implements LogicalUnit {
  readonly deviceType = 0;
  readonly ran: { cdb0: number; dataOut: number }[] = [];
  execute(task: ScsiTask): Promise<{ status: number }> {
    this.ran.push({ cdb0: task.cdb[0], dataOut: task.dataOut.length });
    return Promise.resolve({ status: ScsiStatus.GOOD });
  }
  reset(): void {}
  nexusLost(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A leading Login Request straight to full feature, naming TARGET, with `keys` offered. */
function login(cmdSN: number, keys: KeyValues): RawPdu {
  return encodeLoginRequest({
    transit: true,
    cont: false,
    csg: Stage.OPERATIONAL,
    nsg: Stage.FULL_FEATURE,
    versionMax: 0,
    versionMin: 0,
    isid: Uint8Array.from([0x80, 0, 0, 0, 0, 1]),
    tsih: 0,
    itt: 1,
    cid: 0,
    cmdSN,
    expStatSN: 0,
    data: encodeKeyValues([['InitiatorName', 'iqn.2026-12.test:host'], ['TargetName', TARGET], ...keys]),
  });
}

function setup(loggedIn = true): { session: TargetSession; out: RawPdu[]; lu: RecordingLu; dropped: string[] } {
  const target = new Target({ name: TARGET });
  const lu = new RecordingLu();
  target.addLun(0, lu);
  const peers: SessionPeer[] = [];
  const host: SessionHost = {
    limits: { ...DEFAULT_TARGET_LIMITS, initialR2T: true },
    portalGroupTag: 1,
    findTarget: (n) => (n === TARGET ? target : undefined),
    targets: () => [target],
    registerSession: (peer) => (peers.push(peer), 1),
    connections: () => peers,
  };
  const out: RawPdu[] = [];
  const dropped: string[] = [];
  const link: SessionLink = {
    send: (pdu, sent) => (out.push(pdu), sent?.()),
    holdTurn: () => {},
    loggedIn: () => {},
    end: () => {},
    drop: (reason) => dropped.push(reason),
    portal: () => '127.0.0.1:3260,1',
  };
  const session = new TargetSession(host, link, pino({ level: 'silent' }));
  if (!loggedIn) return { session, out, lu, dropped };
  session.receive(login(100, [['MaxBurstLength', '8192']]));
  assert.equal(decodeLoginResponse(out.shift()!).statusClass, 0);
  return { session, out, lu, dropped };
}

function command(itt: number, cmdSN: number, write = 0): RawPdu {
  const cdb = write ? buildWrite10(0, write / 512) : buildTestUnitReady();
  return encodeScsiCommand({
    immediate: false,
    final: true,
    read: false,
    write: write > 0,
    attr: TaskAttr.SIMPLE,
    lun: 0,
    itt,
    edtl: write,
    cmdSN,
    expStatSN: 0,
    cdb,
    data: new Uint8Array(0),
  });
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('commands run in CmdSN order; one outside the window is dropped without an answer', async () => {
  const { session, out, lu } = setup();
  session.receive(command(11, 101));
  session.receive(command(12, 100 + 64)); // MaxCmdSN is 163
  session.receive(command(10, 100));
  await settle();
  assert.deepEqual(
    out.map((p) => decodeScsiResponse(p).itt),
    [10, 11],
  );
  assert.equal(lu.ran.length, 2);
});

test('a WRITE gets R2Ts of MaxBurstLength; a Data-Out past the burst fails it with ABORTED COMMAND', async () => {
  const { session, out, lu } = setup();
  session.receive(command(20, 100, 16384));
  const r2t = decodeR2t(out.shift()!);
  assert.deepEqual([r2t.bufferOffset, r2t.desiredLength], [0, 8192]);
  session.receive(
    encodeDataOut({
      final: true,
      lun: 0,
      itt: 20,
      ttt: r2t.ttt,
      expStatSN: 0,
      dataSN: 0,
      bufferOffset: 0,
      data: new Uint8Array(8192 + 512),
    }),
  );
  await settle();
  assert.equal(lu.ran.length, 0, 'the LU never sees the write');
  const res = decodeScsiResponse(out.shift()!);
  assert.equal(res.status, ScsiStatus.CHECK_CONDITION);
  assert.equal(decodeSense(res.sense)?.key, SenseKey.ABORTED_COMMAND);
});

test('ABORT TASK of a finished task answers TASK DOES NOT EXIST', async () => {
  const { session, out } = setup();
  session.receive(command(30, 100));
  await settle();
  assert.equal(opcodeOf(out.shift()!.bhs), Opcode.SCSI_RESPONSE);
  session.receive(
    encodeTmfRequest({
      immediate: true,
      func: TmfFunction.ABORT_TASK,
      lun: 0,
      itt: 31,
      referencedTaskTag: 30,
      cmdSN: 101,
      expStatSN: 0,
      refCmdSN: 100,
      expDataSN: 0,
    }),
  );
  assert.equal(decodeTmfResponse(out.shift()!).response, TmfResponse.TASK_DOES_NOT_EXIST);
});

test('a PDU other than login before login completes drops the connection', () => {
  const { session, out, dropped } = setup(false);
  session.receive(command(1, 0));
  assert.deepEqual(dropped, ['opcode 0x1 before login completed']);
  assert.equal(out.length, 0);
});

test('ABORT TASK of a command not yet received takes its CmdSN as received: the commands behind it run', async () => {
  const { session, out, lu } = setup();
  session.receive(command(41, 101)); // waits for CmdSN 100, which never comes
  session.receive(
    encodeTmfRequest({
      immediate: true,
      func: TmfFunction.ABORT_TASK,
      lun: 0,
      itt: 42,
      referencedTaskTag: 40,
      cmdSN: 102,
      expStatSN: 0,
      refCmdSN: 100,
      expDataSN: 0,
    }),
  );
  await settle();
  const kinds = out.map((p) => opcodeOf(p.bhs));
  assert.deepEqual(kinds.sort(), [Opcode.SCSI_RESPONSE, Opcode.TASK_MGMT_RESPONSE].sort());
  const tmf = out.find((p) => opcodeOf(p.bhs) === Opcode.TASK_MGMT_RESPONSE)!;
  assert.equal(decodeTmfResponse(tmf).response, TmfResponse.FUNCTION_COMPLETE);
  assert.equal(lu.ran.length, 1, 'CmdSN 101 ran');
  out.length = 0;
  session.receive(command(40, 100)); // the aborted command, late: dropped
  await settle();
  assert.deepEqual([out.length, lu.ran.length], [0, 1]);
});

test('the final Login Response leaves before the link is told the session is logged in (digests after it)', () => {
  const target = new Target({ name: TARGET });
  const events: string[] = [];
  const host: SessionHost = {
    limits: DEFAULT_TARGET_LIMITS,
    portalGroupTag: 1,
    findTarget: (n) => (n === TARGET ? target : undefined),
    targets: () => [target],
    registerSession: () => 1,
    connections: () => [],
  };
  const link: SessionLink = {
    send: (pdu) => void events.push(`send 0x${opcodeOf(pdu.bhs).toString(16)}`),
    holdTurn: () => {},
    loggedIn: () => void events.push('loggedIn'),
    end: () => {},
    drop: () => {},
    portal: () => '',
  };
  const session = new TargetSession(host, link, pino({ level: 'silent' }));
  session.receive(login(1, [['HeaderDigest', 'CRC32C']]));
  assert.deepEqual(events, ['send 0x23', 'loggedIn']);
});
