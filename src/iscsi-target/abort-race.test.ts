import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { Target } from './target.ts';
import { TargetServer } from './server.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { encodeScsiCommand } from '../iscsi/pdu/scsi-command.ts';
import { encodeDataOut } from '../iscsi/pdu/data.ts';
import { decodeR2t, type R2tPdu } from '../iscsi/pdu/r2t.ts';
import type { RawPdu } from '../iscsi/pdu/bhs.ts';
import { pduPieces } from '../iscsi/framer.ts';
import { serialAdd } from '../util/serial.ts';
import { buildWrite10, buildRead10 } from '../scsi/cdb/sbc.ts';
import { buildTestUnitReady } from '../scsi/cdb/spc.ts';

// A LUN RESET from another session while a Data-Out PDU is half received must not hand that
// task's buffer to another WRITE while the rest of the PDU is still being framed into it
// (found in review: the second WRITE's data was overwritten by the first's).

const K = 64 << 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The session's private socket and sequence numbers, to send PDUs by hand. */
interface SessionInternals {
  socket: Socket;
  cmdSN: number;
  expStatSN: number;
  onR2t(pdu: RawPdu): void;
}

function byHand(session: InitiatorSession) {
  const s = session as unknown as SessionInternals;
  const r2ts: R2tPdu[] = [];
  const onR2t = s.onR2t.bind(s);
  s.onR2t = (pdu) => {
    r2ts.push(decodeR2t(pdu));
    onR2t(pdu);
  };
  const send = (pieces: Uint8Array[]) => {
    s.socket.cork();
    for (const p of pieces) s.socket.write(p);
    s.socket.uncork();
  };
  return {
    r2ts,
    send,
    write10(itt: number, lba: number, immediate: Uint8Array): void {
      const cdb = buildWrite10(lba, K / 512);
      const cmdSN = s.cmdSN;
      s.cmdSN = serialAdd(s.cmdSN, 1);
      send(
        pduPieces(
          encodeScsiCommand({
            immediate: false,
            final: true,
            read: false,
            write: true,
            attr: 1,
            lun: 0,
            itt,
            edtl: K,
            cmdSN,
            expStatSN: s.expStatSN,
            cdb,
            data: immediate,
          }),
          false,
          false,
        ),
      );
    },
    dataOut(itt: number, ttt: number, offset: number, data: Uint8Array): Uint8Array[] {
      return pduPieces(
        encodeDataOut({ final: true, lun: 0, itt, ttt, expStatSN: s.expStatSN, dataSN: 0, bufferOffset: offset, data }),
        false,
        false,
      );
    },
  };
}

async function until<T>(what: string, f: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = f();
    if (v !== undefined) return v;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test(
  'LUN RESET from another session mid Data-Out: the aborted task buffer is not reused until its PDU is ' + 'framed',
  async () => {
    const iqn = 'iqn.2026-11.dev.ferry:abort-race';
    const lu = new DiskLu(new MemoryDevice(512, 4096), { identity: luIdentity('abort-race|0') });
    const target = new Target({ name: iqn });
    target.addLun(0, lu);
    const server = new TargetServer({ targets: [target] });
    const { port } = await server.listen('127.0.0.1', 0);
    const login = (n: string) =>
      InitiatorSession.login({ host: '127.0.0.1', port, initiatorName: `iqn.2026-11.dev.ferry:${n}`, targetName: iqn });
    const [A, B, C] = [await login('a'), await login('b'), await login('c')];
    try {
      const a = byHand(A);
      const b = byHand(B);
      // A: WRITE of 64 KiB, no immediate data; half of its solicited Data-Out, then a pause.
      a.write10(0x1000, 0, new Uint8Array(0));
      const r = await until('R2T for A', () => a.r2ts[0]);
      const [hdr, data] = a.dataOut(0x1000, r.ttt, 0, new Uint8Array(K).fill(0xaa));
      a.send([hdr, data.subarray(0, 16 << 10)]);
      await sleep(50);
      await C.lunReset(0); // aborts A's task from another nexus
      await B.command(0, buildTestUnitReady(), { allowCheckCondition: true }); // B's unit attention
      // B: WRITE with 32 KiB of immediate data; its pooled buffer must not be A's.
      b.write10(0x2000, 100, new Uint8Array(32 << 10).fill(0xbb));
      await sleep(50);
      a.send([data.subarray(16 << 10)]); // the rest of A's PDU
      const rb = await until('R2T for B', () => b.r2ts[0]);
      b.send(b.dataOut(0x2000, rb.ttt, 32 << 10, new Uint8Array(32 << 10).fill(0xbb)));
      await sleep(100);
      const back = await C.command(0, buildRead10(100, K / 512), { inLength: K });
      assert.equal(
        back.data.findIndex((x) => x !== 0xbb),
        -1,
        'B wrote only 0xbb',
      );
      const a0 = await C.command(0, buildRead10(0, 100), { inLength: 100 * 512 });
      assert.equal(
        a0.data.findIndex((x) => x !== 0),
        -1,
        'the aborted WRITE wrote nothing (LBA 0-99)',
      );
    } finally {
      for (const s of [A, B, C]) await s.logout().catch(() => undefined);
      await server.close();
      await lu.close();
    }
  },
);
