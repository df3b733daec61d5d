import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Target } from './target.ts';
import { TargetServer } from './server.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { encodeScsiCommand, TaskAttr } from '../iscsi/pdu/scsi-command.ts';
import { encodeDataOut } from '../iscsi/pdu/data.ts';
import { decodeR2t, type R2tPdu } from '../iscsi/pdu/r2t.ts';
import type { RawPdu } from '../iscsi/pdu/bhs.ts';
import { pduPieces } from '../iscsi/framer.ts';
import { serialAdd } from '../util/serial.ts';
import { ScsiStatus, type LogicalUnit, type ScsiResult, type ScsiTask } from '../scsi/task.ts';

// SAM-5 8.6 task attributes are kept in CmdSN order, whatever order the data comes in: a WRITE
// whose data is all immediate must not overtake an older ORDERED WRITE still waiting for its
// R2T data (found end to end: a mover's pipelined tape WRITEs landed out of order on tape).

const K = 64 << 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An LU that records the order tasks reach it, by the tag byte each CDB carries in byte 1. */
class RecordingLu implements LogicalUnit {
  readonly deviceType = 0;
  readonly order: number[] = [];
  /** Tags whose execution stays open until released (to see what waits for what). */
  readonly held = new Map<number, () => void>();
  hold = new Set<number>();
  appliesInCallOrder?: (cdb: Uint8Array) => boolean;
  async execute(task: ScsiTask): Promise<ScsiResult> {
    const tag = task.cdb[1];
    this.order.push(tag);
    if (this.hold.has(tag)) await new Promise<void>((r) => this.held.set(tag, r));
    return { status: ScsiStatus.GOOD, transferLength: task.dataOut.length };
  }
  reset(): void {}
  nexusLost(): void {}
  async close(): Promise<void> {}
}

interface SessionInternals {
  socket: Socket;
  cmdSN: number;
  expStatSN: number;
  onR2t(pdu: RawPdu): void;
}

/** Send SCSI Command PDUs by hand (an opcode-0xc1 vendor CDB whose byte 1 is a tag). */
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
    /** A command with `edtl` bytes out, `immediate` of them sent with it; tag = itt & 0xff. */
    command(itt: number, attr: number, edtl: number, immediate: Uint8Array): void {
      const cdb = Uint8Array.of(0xc1, itt & 0xff, 0, 0, 0, 0);
      const cmdSN = s.cmdSN;
      s.cmdSN = serialAdd(s.cmdSN, 1);
      const pdu = encodeScsiCommand({
        immediate: false,
        final: true,
        read: false,
        write: edtl > 0,
        attr,
        lun: 0,
        itt,
        edtl,
        cmdSN,
        expStatSN: s.expStatSN,
        cdb,
        data: immediate,
      });
      send(pduPieces(pdu, false, false));
    },
    dataOut(itt: number, ttt: number, offset: number, data: Uint8Array): void {
      send(
        pduPieces(
          encodeDataOut({
            final: true,
            lun: 0,
            itt,
            ttt,
            expStatSN: s.expStatSN,
            dataSN: 0,
            bufferOffset: offset,
            data,
          }),
          false,
          false,
        ),
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

async function withTarget(fn: (lu: RecordingLu, h: ReturnType<typeof byHand>) => Promise<void>): Promise<void> {
  const iqn = 'iqn.2026-12.dev.ferry:task-attributes';
  const lu = new RecordingLu();
  const target = new Target({ name: iqn });
  target.addLun(0, lu);
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  const s = await InitiatorSession.login({
    host: '127.0.0.1',
    port,
    initiatorName: 'iqn.2026-12.dev.ferry:ta',
    targetName: iqn,
  });
  try {
    await fn(lu, byHand(s));
  } finally {
    for (const release of lu.held.values()) release();
    await s.logout().catch(() => undefined);
    await server.close();
  }
}

test(
  'an ORDERED WRITE sent whole as immediate data waits for the older ORDERED WRITE still waiting for its R2T ' + 'data',
  async () => {
    await withTarget(async (lu, h) => {
      h.command(1, TaskAttr.ORDERED, K, new Uint8Array(0)); // all of its data on R2T
      const r2t = await until('R2T for tag 1', () => h.r2ts.find((r) => r.itt === 1));
      h.command(2, TaskAttr.ORDERED, 4096, new Uint8Array(4096)); // complete on arrival
      await sleep(50);
      assert.deepEqual(lu.order, [], 'tag 2 has not run before tag 1');
      h.dataOut(1, r2t.ttt, 0, new Uint8Array(K));
      await until('both ran', () => (lu.order.length === 2 ? true : undefined));
      assert.deepEqual(lu.order, [1, 2]);
    });
  },
);

test(
  'SIMPLE tasks wait for an older ORDERED task to complete; HEAD OF QUEUE does not; SIMPLE tasks do not wait for ' +
    'each other',
  async () => {
    await withTarget(async (lu, h) => {
      lu.hold = new Set([1, 2]);
      h.command(1, TaskAttr.SIMPLE, 0, new Uint8Array(0));
      h.command(2, TaskAttr.ORDERED, 0, new Uint8Array(0));
      h.command(3, TaskAttr.SIMPLE, 0, new Uint8Array(0));
      h.command(4, TaskAttr.HEAD_OF_QUEUE, 0, new Uint8Array(0));
      await until('tag 4 ran', () => (lu.order.includes(4) ? true : undefined));
      assert.deepEqual(lu.order, [1, 4], 'the ORDERED task waits for the older SIMPLE one; head of queue runs at once');
      lu.held.get(1)!();
      await until('tag 2 ran', () => (lu.order.includes(2) ? true : undefined));
      await sleep(30);
      assert.deepEqual(lu.order, [1, 4, 2], 'the younger SIMPLE task waits while the ORDERED one runs');
      lu.held.get(2)!();
      await until('tag 3 ran', () => (lu.order.includes(3) ? true : undefined));
      assert.deepEqual(lu.order, [1, 4, 2, 3]);
      lu.hold = new Set([5]);
      h.command(5, TaskAttr.SIMPLE, 0, new Uint8Array(0));
      h.command(6, TaskAttr.SIMPLE, 0, new Uint8Array(0));
      await until('tags 5 and 6 ran', () => (lu.order.length === 6 ? true : undefined));
      assert.deepEqual(lu.order.slice(4), [5, 6], 'SIMPLE tasks run side by side');
    });
  },
);

test(
  'on an LU that applies commands in call order, an ORDERED task starts once the older one has started, not ' +
    'completed',
  async () => {
    await withTarget(async (lu, h) => {
      lu.appliesInCallOrder = () => true;
      lu.hold = new Set([1]);
      h.command(1, TaskAttr.ORDERED, 0, new Uint8Array(0));
      h.command(2, TaskAttr.ORDERED, 0, new Uint8Array(0));
      await until('tag 2 ran', () => (lu.order.includes(2) ? true : undefined));
      assert.deepEqual(lu.order, [1, 2], 'in CmdSN order, the second while the first is still open');
      // Data order still rules the start: an immediate WRITE waits for the older one's R2T data.
      h.command(3, TaskAttr.ORDERED, K, new Uint8Array(0));
      const r2t = await until('R2T for tag 3', () => h.r2ts.find((r) => r.itt === 3));
      h.command(4, TaskAttr.ORDERED, 4096, new Uint8Array(4096));
      await sleep(50);
      assert.deepEqual(lu.order, [1, 2], 'tag 4 waits for tag 3 to start');
      h.dataOut(3, r2t.ttt, 0, new Uint8Array(K));
      await until('tags 3 and 4 ran', () => (lu.order.length === 4 ? true : undefined));
      assert.deepEqual(lu.order, [1, 2, 3, 4]);
    });
  },
);
