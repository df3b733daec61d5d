// Bad input against a live target: thousands of malformed PDUs and random CDBs over many
// connections while a well-behaved initiator keeps writing and verifying on another LUN.
// The target must answer (Reject / CHECK CONDITION / status) or drop the bad connection,
// never crash, and never disturb the good session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startTestTarget, TEST_IQN } from '../../test/helpers/target.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { Framer, pduPieces } from '../iscsi/framer.ts';
import { Opcode, ittOf, opcodeOf, type RawPdu } from '../iscsi/pdu/bhs.ts';
import { dataInHasStatus } from '../iscsi/pdu/data.ts';
import { encodeLoginRequest, decodeLoginResponse } from '../iscsi/pdu/login.ts';
import { encodeScsiCommand } from '../iscsi/pdu/scsi-command.ts';
import { encodeKeyValues } from '../iscsi/text-keys.ts';
import { buildWrite10 } from '../scsi/cdb/sbc.ts';

/** xorshift32: reproducible randomness (the seed is printed on failure). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

class RawConn {
  readonly sock: Socket;
  readonly pdus: RawPdu[] = [];
  closed = false;
  private framer = new Framer({ headerDigest: false, dataDigest: false, maxDataSegment: 1 << 24 });
  private waiters: Array<() => void> = [];

  constructor(port: number) {
    this.sock = connect({ host: '127.0.0.1', port });
    this.sock.on('data', (c: Buffer) => {
      try {
        this.framer.push(c, (p) => {
          if ('data' in p) this.pdus.push(p);
        });
      } catch {
        this.sock.destroy();
      }
      this.wake();
    });
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async ready(): Promise<void> {
    await new Promise<void>((r, j) => {
      this.sock.once('connect', () => r());
      this.sock.once('error', j);
    });
  }

  send(bytes: Uint8Array | RawPdu): void {
    if (this.closed) return;
    if (bytes instanceof Uint8Array) this.sock.write(bytes);
    else for (const p of pduPieces(bytes, false, false)) this.sock.write(p);
  }

  /** Wait until `pred` holds over received PDUs, the socket closes, or the timeout passes. */
  async until(pred: () => boolean, ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred() && !this.closed && Date.now() < end) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return pred();
  }

  close(): void {
    this.sock.destroy();
  }
}

async function loggedIn(port: number, cmdSN: number): Promise<RawConn | undefined> {
  const c = new RawConn(port);
  await c.ready();
  const keys = encodeKeyValues([
    ['InitiatorName', 'iqn.2026-11.dev.ferry:fuzzer'],
    ['TargetName', TEST_IQN],
    ['SessionType', 'Normal'],
    ['MaxRecvDataSegmentLength', '65536'],
  ]);
  c.send(
    encodeLoginRequest({
      transit: true,
      cont: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      isid: randomBytes(6),
      tsih: 0,
      itt: 1,
      cid: 0,
      cmdSN,
      expStatSN: 0,
      data: keys,
    }),
  );
  const ok = await c.until(() => c.pdus.length > 0);
  if (!ok) return undefined;
  const res = decodeLoginResponse(c.pdus.shift()!);
  assert.equal(res.statusClass, 0, 'fuzzer login');
  return c;
}

test(
  'malformed PDUs and random CDBs get Reject / CHECK CONDITION or a dropped connection, and a good session is never ' +
    'disturbed',
  { timeout: 240_000 },
  async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const rand = rng(seed);
    const ri = (n: number) => Math.floor(rand() * n);
    const tgt = await startTestTarget({ disks: [8 << 20, 8 << 20] });
    let goodOps = 0;
    let stop = false;
    let goodError: unknown;
    const good = await InitiatorSession.login({
      host: tgt.host,
      port: tgt.port,
      initiatorName: 'iqn.2026-11.dev.ferry:good',
      targetName: TEST_IQN,
    });
    const dev = await RemoteBlockDevice.open(good, 1);
    const goodLoop = (async () => {
      try {
        while (!stop) {
          const lba = ri(dev.blockCount - 64);
          const data = randomBytes(64 * 512);
          await dev.write(lba, data);
          assert.ok(Buffer.from(await dev.read(lba, 64)).equals(data), 'good session read back what it wrote');
          goodOps++;
        }
      } catch (e) {
        goodError = e;
      }
    })();

    let answered = 0;
    let dropped = 0;
    let sent = 0;
    try {
      // 1. Garbage before or instead of login: the connection is dropped, nothing else happens.
      for (let i = 0; i < 40; i++) {
        const c = new RawConn(tgt.port);
        await c.ready();
        const kind = i % 4;
        if (kind === 0) c.send(randomBytes(1 + ri(200)));
        else if (kind === 1)
          c.send(randomBytes(47)); // truncated BHS, then close
        else if (kind === 2) {
          const bhs = Buffer.alloc(48);
          bhs[0] = 0x43;
          bhs[5] = 0xff; // login with a 16 MiB data segment
          c.send(bhs);
        } else {
          const bhs = randomBytes(48);
          bhs[0] = 0x01; // SCSI command before login
          c.send(bhs);
        }
        sent++;
        await c.until(() => false, kind === 1 ? 50 : 300);
        if (c.closed) dropped++;
        c.close();
      }

      // 2. After a good login: malformed and random PDUs. Each connection takes a batch.
      for (let round = 0; round < 100; round++) {
        const cmdSN = ri(0xffffffff);
        const c = await loggedIn(tgt.port, cmdSN);
        assert.ok(c, 'login of a fuzzing connection');
        let sn = cmdSN;
        let itt = 100;
        const expect = new Set<number>();
        const log: string[] = [];
        for (let k = 0; k < 40 && !c.closed; k++) {
          const what = ri(10);
          log.push(`${what}:${itt}`);
          sent++;
          if (what <= 4) {
            // A random CDB (random opcode, random fields) as a small read, in window.
            const cdb = randomBytes(16);
            if (rand() < 0.5)
              cdb[0] = [
                0x00, 0x03, 0x12, 0x1a, 0x25, 0x28, 0x2f, 0x35, 0x5e, 0x88, 0x8f, 0x9e, 0xa0, 0xa3, 0x42, 0x34, 0x90,
              ][ri(17)];
            if (cdb[0] === 0x04 || cdb[0] === 0x48) cdb[0] = 0x00; // FORMAT UNIT / SANITIZE: slow, covered by libiscsi
            const t = itt++;
            expect.add(t);
            log.push(Buffer.from(cdb).toString('hex'));
            c.send(
              encodeScsiCommand({
                immediate: false,
                final: true,
                read: true,
                write: false,
                attr: 1,
                lun: 0,
                itt: t,
                edtl: ri(4096),
                cmdSN: sn,
                expStatSN: 0,
                cdb,
                data: new Uint8Array(0),
              }),
            );
            sn = (sn + 1) >>> 0;
          } else if (what === 5) {
            // Out-of-window CmdSN: silently dropped (RFC 7143 3.2.2.1), must not consume a CmdSN.
            const t = itt++;
            c.send(
              encodeScsiCommand({
                immediate: false,
                final: true,
                read: false,
                write: false,
                attr: 1,
                lun: 0,
                itt: t,
                edtl: 0,
                cmdSN: (sn + 1000 + ri(1000)) >>> 0,
                expStatSN: 0,
                cdb: new Uint8Array(16),
                data: new Uint8Array(0),
              }),
            );
          } else if (what === 6) {
            // Unknown or target-only opcode: Reject.
            const bhs = Buffer.alloc(48);
            bhs[0] = [0x07, 0x0b, 0x1f, 0x20, 0x21, 0x3f, 0x10][ri(7)];
            bhs[1] = 0x80;
            bhs.writeUInt32BE(itt++, 16);
            c.send({ bhs, ahs: new Uint8Array(0), data: new Uint8Array(0) });
          } else if (what === 7) {
            // Data-Out for a task that does not exist: discarded.
            const bhs = Buffer.alloc(48);
            bhs[0] = 0x05;
            bhs[1] = 0x80;
            bhs.writeUInt32BE(0xdead0000 + ri(100), 16);
            bhs.writeUIntBE(512, 5, 3); // DataSegmentLength
            c.send({ bhs, ahs: new Uint8Array(0), data: randomBytes(512) });
          } else if (what === 8) {
            // A BHS of random bytes with a sane length.
            const bhs = randomBytes(48);
            bhs[4] = 0;
            bhs[5] = 0;
            bhs[6] = 0;
            bhs[7] = 0;
            // Not a TMF or Logout: those legitimately abort our tasks or end the session.
            if (opcodeOf(bhs) === 0x02 || opcodeOf(bhs) === 0x06) bhs[0] = 0x3e;
            c.send(bhs);
          } else {
            // A write whose Data-Out breaks the sequence rules (wrong DataSN / offset).
            const t = itt++;
            expect.add(t);
            const cdb = buildWrite10(ri(1000), 2);
            c.send(
              encodeScsiCommand({
                immediate: false,
                final: true,
                read: false,
                write: true,
                attr: 1,
                lun: 0,
                itt: t,
                edtl: 1024,
                cmdSN: sn,
                expStatSN: 0,
                cdb,
                data: new Uint8Array(0),
              }),
            );
            sn = (sn + 1) >>> 0;
            const dout = Buffer.alloc(48);
            dout[0] = 0x05;
            dout[1] = 0x80;
            dout.writeUInt32BE(t, 16);
            dout.writeUInt32BE(0xffffffff, 20);
            dout.writeUInt32BE(7, 36); // DataSN 7, not 0
            dout.writeUIntBE(512, 5, 3);
            c.send({ bhs: dout, ahs: new Uint8Array(0), data: randomBytes(512) });
          }
        }
        // Every in-window command gets its status (SCSI Response or Data-In with S), unless the
        // target dropped this connection for a framing fault.
        const answeredTags = (): Set<number> => {
          const got = new Set<number>();
          for (const p of c.pdus) {
            const op = opcodeOf(p.bhs);
            if (op === Opcode.SCSI_RESPONSE || (op === Opcode.DATA_IN && dataInHasStatus(p.bhs))) got.add(ittOf(p.bhs));
          }
          return got;
        };
        await c.until(() => [...expect].every((t) => answeredTags().has(t)), 10_000);
        if (c.closed) dropped++;
        else {
          const got = answeredTags();
          for (const t of expect)
            assert.ok(
              got.has(t),
              `command ITT ${t} was answered (seed ${seed}); sent ${log.join(' ')}; got ` +
                `${c.pdus.map((p) => `${opcodeOf(p.bhs).toString(16)}/${ittOf(p.bhs)}`).join(' ')}`,
            );
          answered += expect.size;
        }
        c.close();
      }
    } finally {
      stop = true;
      await goodLoop;
      await good.logout();
      await tgt.close();
    }
    assert.equal(goodError, undefined, `the good session kept working (seed ${seed})`);
    assert.ok(goodOps > 0);
    assert.ok(answered > 500, `answered ${answered} commands`);
    console.log(
      `fuzz seed ${seed}: ${sent} bad inputs, ${answered} commands answered, ${dropped} connections dropped, good ` +
        `session did ${goodOps} write+verify cycles`,
    );
  },
);

test('a stalled initiator that never reads does not block other sessions', { timeout: 60_000 }, async () => {
  const tgt = await startTestTarget({ disks: [16 << 20] });
  try {
    const stalled = await InitiatorSession.login({
      host: tgt.host,
      port: tgt.port,
      initiatorName: 'iqn.2026-11.dev.ferry:stalled',
      targetName: TEST_IQN,
    });
    const sdev = await RemoteBlockDevice.open(stalled, 0);
    // Pause its socket: the target's writes back up; its reads never complete.
    (stalled as unknown as { socket: Socket }).socket.pause();
    const pending = sdev.read(0, 16 << 11).catch(() => undefined);
    const other = await InitiatorSession.login({
      host: tgt.host,
      port: tgt.port,
      initiatorName: 'iqn.2026-11.dev.ferry:other',
      targetName: TEST_IQN,
    });
    const dev = await RemoteBlockDevice.open(other, 0);
    for (let i = 0; i < 20; i++) {
      const data = randomBytes(256 << 10);
      await dev.write(i * 512, data);
      assert.ok(Buffer.from(await dev.read(i * 512, 512)).equals(data));
    }
    await other.logout();
    stalled.close();
    await pending;
  } finally {
    await tgt.close();
  }
});
