import type { RawPdu } from '../iscsi/pdu/bhs.ts';
import type { ScsiCommandPdu } from '../iscsi/pdu/scsi-command.ts';
import { encodeDataIn } from '../iscsi/pdu/data.ts';
import { encodeScsiResponse } from '../iscsi/pdu/scsi-response.ts';
import type { SessionParams } from '../iscsi/negotiation.ts';
import { type ScsiResult, ScsiStatus } from '../scsi/task.ts';

/** The sequence numbers a response carries: StatSN is taken only by PDUs that carry status. */
export interface ResponseNumbers {
  nextStatSN(): number;
  expCmdSN(): number;
  maxCmdSN(): number;
}

export interface Residual {
  readonly overflow: boolean;
  readonly underflow: boolean;
  readonly residual: number;
}

/**
 * Residuals of a completed command (RFC 7143 11.4.5, SAM-5 5.4): what the CDB asked to transfer
 * against the initiator's expected length, and, for a read, the Data-In actually sent.
 */
export function residualOf(cmd: ScsiCommandPdu, result: ScsiResult, dataInSent: number, readDir: boolean): Residual {
  const dataIn = result.dataIn?.length ?? 0;
  const transfer = result.transferLength ?? (readDir ? dataIn : cmd.write ? cmd.edtl : 0);
  if (transfer > cmd.edtl) return { overflow: true, underflow: false, residual: transfer - cmd.edtl };
  // A read that sent less than expected is short by what it did not send.
  if (readDir && dataInSent < cmd.edtl) return { overflow: false, underflow: true, residual: cmd.edtl - dataInSent };
  if (transfer < cmd.edtl) return { overflow: false, underflow: true, residual: cmd.edtl - transfer };
  return { overflow: false, underflow: false, residual: 0 };
}

/**
 * The PDUs that answer a SCSI command: its Data-In, split at the initiator's
 * MaxRecvDataSegmentLength with the F bit at each MaxBurstLength (RFC 7143 11.7.1), then its
 * status: in the last Data-In when the command is GOOD and has no sense (phase collapse,
 * 11.7.4), else in a SCSI Response (11.4). `r2tsSent` is a WRITE's ExpDataSN (11.4.8).
 * `lastDataIn` is the index of the last Data-In PDU, -1 when there is none: once it has been sent,
 * the LU's Data-In buffer may be reused.
 */
export function buildScsiResponse(
  cmd: ScsiCommandPdu,
  result: ScsiResult,
  params: SessionParams,
  sn: ResponseNumbers,
  r2tsSent: number,
): { pdus: RawPdu[]; lastDataIn: number } {
  const dataIn = result.dataIn ?? new Uint8Array(0);
  const readDir = cmd.read || (!cmd.write && dataIn.length > 0);
  const sendLen = readDir ? Math.min(dataIn.length, cmd.edtl) : 0;
  const { overflow, underflow, residual } = residualOf(cmd, result, sendLen, readDir);
  const good = result.status === ScsiStatus.GOOD || result.status === ScsiStatus.CONDITION_MET;
  const collapse = sendLen > 0 && !result.sense && good;
  const pdus: RawPdu[] = [];
  let dataSN = 0;
  const burst = params.maxBurstLength;
  let burstLeft = burst;
  for (let off = 0; off < sendLen;) {
    const n = Math.min(params.peerMaxRecvDataSegmentLength, sendLen - off, burstLeft);
    const last = off + n === sendLen;
    burstLeft -= n;
    const final = last || burstLeft === 0;
    if (burstLeft === 0) burstLeft = burst;
    const withStatus = last && collapse;
    pdus.push(
      encodeDataIn({
        final,
        ack: false,
        overflow: withStatus && overflow,
        underflow: withStatus && underflow,
        hasStatus: withStatus,
        status: withStatus ? result.status : 0,
        lun: Math.max(0, cmd.lun),
        itt: cmd.itt,
        ttt: 0xffffffff,
        statSN: withStatus ? sn.nextStatSN() : 0,
        expCmdSN: sn.expCmdSN(),
        maxCmdSN: sn.maxCmdSN(),
        dataSN: dataSN++,
        bufferOffset: off,
        residual: withStatus ? residual : 0,
        data: dataIn.subarray(off, off + n),
      }),
    );
    off += n;
  }
  const lastDataIn = pdus.length - 1;
  if (collapse) return { pdus, lastDataIn };
  pdus.push(
    encodeScsiResponse({
      overflow,
      underflow,
      response: 0,
      status: result.status,
      itt: cmd.itt,
      statSN: sn.nextStatSN(),
      expCmdSN: sn.expCmdSN(),
      maxCmdSN: sn.maxCmdSN(),
      expDataSN: readDir ? dataSN : r2tsSent,
      residual,
      sense: result.sense ?? new Uint8Array(0),
    }),
  );
  return { pdus, lastDataIn };
}
