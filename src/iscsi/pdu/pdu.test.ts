import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode, type RawPdu } from './bhs.ts';
import { decodeLun, encodeLun } from '../../scsi/lun.ts';
import { encodeLoginRequest, decodeLoginRequest, encodeLoginResponse, decodeLoginResponse } from './login.ts';
import { encodeScsiCommand, decodeScsiCommand } from './scsi-command.ts';
import { encodeScsiResponse, decodeScsiResponse } from './scsi-response.ts';
import { encodeDataIn, decodeDataIn, encodeDataOut, decodeDataOut } from './data.ts';
import { encodeR2t, decodeR2t } from './r2t.ts';
import { encodeNop, decodeNop } from './nop.ts';
import { encodeText, decodeText } from './text.ts';
import { encodeLogoutRequest, decodeLogoutRequest, encodeLogoutResponse, decodeLogoutResponse } from './logout.ts';
import { encodeTmfRequest, decodeTmfRequest, encodeTmfResponse, decodeTmfResponse } from './task-mgmt.ts';
import { encodeReject, decodeReject } from './reject.ts';

const raw = (p: RawPdu): RawPdu => ({ bhs: Uint8Array.from(p.bhs), ahs: p.ahs, data: p.data });

test('Login Request encodes to the RFC 7143 11.12 layout', () => {
  const isid = Uint8Array.of(0x80, 1, 2, 3, 4, 5);
  const pdu = encodeLoginRequest({
    transit: true,
    cont: false,
    csg: 1,
    nsg: 3,
    versionMax: 0,
    versionMin: 0,
    isid,
    tsih: 0x1234,
    itt: 0xa0b0c0d0,
    cid: 7,
    cmdSN: 0x01020304,
    expStatSN: 9,
    data: Buffer.from('a=b\0'),
  });
  const b = pdu.bhs;
  assert.equal(b[0], 0x43, 'I bit + opcode 03h');
  assert.equal(b[1], 0x87, 'T=1, CSG=1, NSG=3');
  assert.deepEqual([...b.subarray(5, 8)], [0, 0, 4], 'DataSegmentLength');
  assert.deepEqual([...b.subarray(8, 14)], [...isid]);
  assert.deepEqual([...b.subarray(14, 16)], [0x12, 0x34]);
  assert.deepEqual([...b.subarray(16, 20)], [0xa0, 0xb0, 0xc0, 0xd0]);
  assert.deepEqual([...b.subarray(20, 22)], [0, 7]);
  assert.deepEqual([...b.subarray(24, 28)], [1, 2, 3, 4]);
  const back = decodeLoginRequest(raw(pdu));
  assert.equal(back.transit, true);
  assert.equal(back.csg, 1);
  assert.equal(back.nsg, 3);
  assert.equal(back.itt, 0xa0b0c0d0);
  assert.equal(back.tsih, 0x1234);
});

test('every PDU family round-trips through its codec', () => {
  const lr = {
    transit: true,
    cont: false,
    csg: 0,
    nsg: 1,
    versionMax: 0,
    versionActive: 0,
    isid: Uint8Array.of(0x80, 0, 0, 0, 0, 1),
    tsih: 5,
    itt: 1,
    statSN: 2,
    expCmdSN: 3,
    maxCmdSN: 4,
    statusClass: 2,
    statusDetail: 1,
    data: new Uint8Array(0),
  };
  assert.deepEqual(
    { ...decodeLoginResponse(raw(encodeLoginResponse(lr))), isid: [...lr.isid] },
    { ...lr, isid: [...lr.isid] },
  );

  const cmd = {
    immediate: false,
    final: true,
    read: true,
    write: false,
    attr: 1,
    lun: 300,
    itt: 77,
    edtl: 4096,
    cmdSN: 0xfffffffe,
    expStatSN: 12,
    cdb: Buffer.from([0x28, 0, 0, 0, 0, 1, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]),
    data: new Uint8Array(0),
  };
  const c2 = decodeScsiCommand(raw(encodeScsiCommand(cmd)));
  assert.equal(c2.lun, 300);
  assert.equal(c2.cmdSN, 0xfffffffe);
  assert.deepEqual([...c2.cdb], [...cmd.cdb]);

  const rsp = {
    overflow: false,
    underflow: true,
    response: 0,
    status: 2,
    itt: 9,
    statSN: 10,
    expCmdSN: 11,
    maxCmdSN: 12,
    expDataSN: 1,
    residual: 512,
    sense: Uint8Array.of(0x70, 0, 5),
  };
  const r2 = decodeScsiResponse(raw(encodeScsiResponse(rsp)));
  assert.deepEqual({ ...r2, sense: [...r2.sense] }, { ...rsp, sense: [...rsp.sense] });

  const di = {
    final: true,
    ack: false,
    overflow: false,
    underflow: true,
    hasStatus: true,
    status: 0,
    lun: 1,
    itt: 5,
    ttt: 0xffffffff,
    statSN: 6,
    expCmdSN: 7,
    maxCmdSN: 8,
    dataSN: 3,
    bufferOffset: 8192,
    residual: 100,
    data: Uint8Array.of(1, 2, 3),
  };
  const d2 = decodeDataIn(raw(encodeDataIn(di)));
  assert.deepEqual({ ...d2, data: [...d2.data] }, { ...di, data: [1, 2, 3] });

  const dout = {
    final: false,
    lun: 2,
    itt: 5,
    ttt: 99,
    expStatSN: 4,
    dataSN: 1,
    bufferOffset: 512,
    data: Uint8Array.of(9),
  };
  const o2 = decodeDataOut(raw(encodeDataOut(dout)));
  assert.deepEqual({ ...o2, data: [...o2.data] }, { ...dout, data: [9] });

  const r2t = {
    lun: 0,
    itt: 1,
    ttt: 2,
    statSN: 3,
    expCmdSN: 4,
    maxCmdSN: 5,
    r2tSN: 6,
    bufferOffset: 7,
    desiredLength: 8,
  };
  assert.deepEqual(decodeR2t(raw(encodeR2t(r2t))), r2t);

  const nop = {
    immediate: false,
    lun: 0,
    itt: 1,
    ttt: 0xffffffff,
    sn: 5,
    expSN: 6,
    maxCmdSN: 7,
    data: Uint8Array.of(4, 4),
  };
  const n2 = decodeNop(raw(encodeNop(Opcode.NOP_IN, nop)));
  assert.deepEqual({ ...n2, data: [...n2.data] }, { ...nop, data: [4, 4] });

  const txt = {
    final: true,
    cont: false,
    immediate: true,
    itt: 3,
    ttt: 0xffffffff,
    sn: 1,
    expSN: 2,
    maxCmdSN: 0,
    data: Buffer.from('SendTargets=All\0'),
  };
  const t2 = decodeText(raw(encodeText(Opcode.TEXT_REQUEST, txt)));
  assert.equal(t2.immediate, true);
  assert.equal(Buffer.from(t2.data).toString(), 'SendTargets=All\0');

  const lo = { immediate: true, reason: 0, itt: 4, cid: 0, cmdSN: 8, expStatSN: 9 };
  assert.deepEqual(decodeLogoutRequest(raw(encodeLogoutRequest(lo))), lo);
  const lor = { response: 0, itt: 4, statSN: 1, expCmdSN: 2, maxCmdSN: 3, time2Wait: 0, time2Retain: 0 };
  assert.deepEqual(decodeLogoutResponse(raw(encodeLogoutResponse(lor))), lor);

  const tmf = {
    immediate: true,
    func: 5,
    lun: 3,
    itt: 1,
    referencedTaskTag: 0xffffffff,
    cmdSN: 2,
    expStatSN: 3,
    refCmdSN: 4,
    expDataSN: 0,
  };
  assert.deepEqual(decodeTmfRequest(raw(encodeTmfRequest(tmf))), tmf);
  const tmr = { response: 1, itt: 1, statSN: 2, expCmdSN: 3, maxCmdSN: 4 };
  assert.deepEqual(decodeTmfResponse(raw(encodeTmfResponse(tmr))), tmr);

  const header = encodeNop(Opcode.NOP_OUT, { ...nop, data: new Uint8Array(0) }).bhs;
  const rej = decodeReject(raw(encodeReject({ reason: 4, statSN: 1, expCmdSN: 2, maxCmdSN: 3, dataSN: 0, header })));
  assert.equal(rej.reason, 4);
  assert.deepEqual([...rej.header], [...header]);
});

test('LUN fields use SAM-5 peripheral (<256) and flat (≥256) addressing; other methods are unmapped', () => {
  assert.deepEqual([...encodeLun(5)], [0, 5, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeLun(0x123)], [0x41, 0x23, 0, 0, 0, 0, 0, 0]);
  const f = new Uint8Array(16);
  encodeLun(0x123, f, 8);
  assert.equal(decodeLun(f, 8), 0x123);
  f[8] = 0x80; // extended/logical unit addressing: not mapped
  assert.equal(decodeLun(f, 8), -1);
  f[8] = 0;
  f[9] = 1;
  f[12] = 1; // second level present
  assert.equal(decodeLun(f, 8), -1);
});
