import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDataIn } from '../iscsi/pdu/data.ts';
import { decodeScsiResponse } from '../iscsi/pdu/scsi-response.ts';
import { Opcode, opcodeOf } from '../iscsi/pdu/bhs.ts';
import { TaskAttr, type ScsiCommandPdu } from '../iscsi/pdu/scsi-command.ts';
import { defaultParams } from '../iscsi/negotiation.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { buildScsiResponse, residualOf, type ResponseNumbers } from './scsi-response-builder.ts';

function read(edtl: number): ScsiCommandPdu {
  return {
    immediate: false,
    final: true,
    read: true,
    write: false,
    attr: TaskAttr.SIMPLE,
    lun: 0,
    itt: 5,
    edtl,
    cmdSN: 1,
    expStatSN: 0,
    cdb: new Uint8Array(16),
    data: new Uint8Array(0),
  };
}

function numbers(): ResponseNumbers & { taken: number } {
  let sn = 1000;
  return {
    taken: 0,
    nextStatSN() {
      this.taken++;
      return sn++;
    },
    expCmdSN: () => 2,
    maxCmdSN: () => 65,
  };
}

test('Data-In is split at MaxRecvDataSegmentLength, F at each MaxBurstLength, status in the last PDU', () => {
  const params = { ...defaultParams(), peerMaxRecvDataSegmentLength: 4096, maxBurstLength: 8192 };
  const data = Buffer.alloc(20_000, 1);
  const sn = numbers();
  const { pdus, lastDataIn } = buildScsiResponse(
    read(20_000),
    { status: ScsiStatus.GOOD, dataIn: data },
    params,
    sn,
    0,
  );
  assert.equal(lastDataIn, 4, 'the last Data-In carries the status');
  const ins = pdus.map(decodeDataIn);
  assert.deepEqual(
    ins.map((d) => [d.bufferOffset, d.data.length, d.final, d.hasStatus, d.dataSN]),
    [
      [0, 4096, false, false, 0],
      [4096, 4096, true, false, 1],
      [8192, 4096, false, false, 2],
      [12288, 4096, true, false, 3],
      [16384, 3616, true, true, 4],
    ],
  );
  assert.equal(sn.taken, 1, 'one StatSN, for the PDU with status');
  assert.equal(ins[4].statSN, 1000);
});

test('a short read reports an underflow with the bytes not sent', () => {
  const { pdus } = buildScsiResponse(
    read(8192),
    { status: ScsiStatus.GOOD, dataIn: Buffer.alloc(512) },
    defaultParams(),
    numbers(),
    0,
  );
  const last = decodeDataIn(pdus[pdus.length - 1]);
  assert.deepEqual([last.underflow, last.overflow, last.residual], [true, false, 7680]);
});

test('CHECK CONDITION after Data-In goes in a SCSI Response with the sense and ExpDataSN', () => {
  const sense = Buffer.from([0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0]);
  const { pdus, lastDataIn } = buildScsiResponse(
    read(1024),
    { status: ScsiStatus.CHECK_CONDITION, dataIn: Buffer.alloc(1024), sense },
    defaultParams(),
    numbers(),
    0,
  );
  assert.equal(lastDataIn, 0, 'the Data-In buffer is free before the status goes');
  assert.deepEqual(
    pdus.map((p) => opcodeOf(p.bhs)),
    [Opcode.DATA_IN, Opcode.SCSI_RESPONSE],
  );
  assert.equal(decodeDataIn(pdus[0]).hasStatus, false);
  const r = decodeScsiResponse(pdus[1]);
  assert.equal(r.status, ScsiStatus.CHECK_CONDITION);
  assert.deepEqual(Buffer.from(r.sense), sense);
  assert.equal(r.expDataSN, 1);
});

test('residuals: the CDB asked for more than expected (overflow) or less (underflow)', () => {
  const c = { ...read(4096), read: false, write: true };
  assert.deepEqual(residualOf(c, { status: 0, transferLength: 8192 }, 0, false), {
    overflow: true,
    underflow: false,
    residual: 4096,
  });
  assert.deepEqual(residualOf(c, { status: 0, transferLength: 1024 }, 0, false), {
    overflow: false,
    underflow: true,
    residual: 3072,
  });
  assert.deepEqual(residualOf(c, { status: 0 }, 0, false), { overflow: false, underflow: false, residual: 0 });
});

test('a read overflow is truncated to EDTL and reported in the collapsed Data-In; a WRITE answers its R2Ts', () => {
  const big = buildScsiResponse(
    read(1024),
    { status: ScsiStatus.GOOD, dataIn: Buffer.alloc(4096), transferLength: 4096 },
    defaultParams(),
    numbers(),
    0,
  );
  const d = decodeDataIn(big.pdus[0]);
  assert.deepEqual([big.pdus.length, d.data.length, d.hasStatus, d.overflow, d.residual], [1, 1024, true, true, 3072]);
  const w = { ...read(65536), read: false, write: true };
  const wr = buildScsiResponse(w, { status: ScsiStatus.GOOD }, defaultParams(), numbers(), 3);
  assert.equal(wr.lastDataIn, -1, 'no Data-In: the result is released at once');
  assert.equal(decodeScsiResponse(wr.pdus[0]).expDataSN, 3);
});
