import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from './disk-lu.ts';
import { luIdentity } from './identity.ts';
import { makeTask, nexusA, nexusB } from '../../test/helpers/scsi.ts';
import { decodeSense } from './sense.ts';
import { ScsiStatus } from './task.ts';
import { SBC_COMMANDS, decodeUnmapList } from './sbc.ts';
import {
  decodeCompareAndWriteCdb,
  decodeRw10Cdb,
  decodeRw12Cdb,
  decodeRw16Cdb,
  decodeRw6Cdb,
  decodeUnmapCdb,
  decodeVerify10Cdb,
  decodeVerify12Cdb,
  decodeVerify16Cdb,
  decodeWriteAtomic16Cdb,
  decodeWriteSame10Cdb,
  decodeWriteSame16Cdb,
} from './cdb/sbc.ts';

/** xorshift32: a seeded generator so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const BLOCKS = 64;
const BS = 512;
const CDB_LENGTH: Record<number, number> = {};
for (const [op, e] of SBC_COMMANDS) CDB_LENGTH[op] = e.cdbLength;

/** The LBA ranges a CDB (and its Data-Out) names for writing; undefined = no medium write allowed. */
function allowedWrites(cdb: Uint8Array, dataOut: Uint8Array): Array<[number, number]> {
  const safe = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const range = (c: { lba: number; blockCount: number } | undefined): Array<[number, number]> =>
    c ? [[c.lba, c.lba + c.blockCount]] : [];
  switch (cdb[0]) {
    case 0x0a:
      return range(safe(() => decodeRw6Cdb(cdb)));
    case 0x2a:
      return range(safe(() => decodeRw10Cdb(cdb)));
    case 0xaa:
      return range(safe(() => decodeRw12Cdb(cdb)));
    case 0x8a:
    case 0x8b:
      return range(safe(() => decodeRw16Cdb(cdb)));
    case 0x9c:
      return range(safe(() => decodeWriteAtomic16Cdb(cdb)));
    case 0x2e:
      return range(safe(() => decodeVerify10Cdb(cdb)));
    case 0xae:
      return range(safe(() => decodeVerify12Cdb(cdb)));
    case 0x8e:
      return range(safe(() => decodeVerify16Cdb(cdb)));
    case 0x89:
      return range(safe(() => decodeCompareAndWriteCdb(cdb)));
    case 0x41:
    case 0x93: {
      const c = safe(() => (cdb[0] === 0x41 ? decodeWriteSame10Cdb(cdb) : decodeWriteSame16Cdb(cdb)));
      return c ? [[c.lba, c.blockCount === 0 ? BLOCKS : c.lba + c.blockCount]] : [];
    }
    case 0x42: {
      const c = safe(() => decodeUnmapCdb(cdb));
      const list = c ? safe(() => decodeUnmapList(dataOut.subarray(0, c.parameterListLength))) : undefined;
      return (list ?? []).map((d) => [d.lba, d.lba + d.blockCount]);
    }
    case 0x48:
      return [[0, BLOCKS]]; // SANITIZE: the whole medium
    default:
      return [];
  }
}

function validCdbFor(op: number, r: () => number): Uint8Array {
  const len = CDB_LENGTH[op] ?? 16;
  const c = new Uint8Array(Math.max(len, 16));
  c[0] = op;
  // Mostly small in-range numbers, sometimes wild bytes.
  for (let i = 1; i < len; i++) c[i] = r() < 0.7 ? (r() < 0.5 ? 0 : Math.floor(r() * 4)) : Math.floor(r() * 256);
  if (r() < 0.8) {
    // Shape it like a read/write CDB: small LBA near the device, small length.
    const [lbaLo, lbaHi, lenLo, lenHi] = { 6: [2, 3, 4, 4], 10: [2, 5, 7, 8], 12: [2, 5, 6, 9], 16: [2, 9, 10, 13] }[
      len
    ] ?? [2, 9, 10, 13];
    if (len !== 6) c[1] &= 0x1f;
    else c[1] = 0;
    for (let i = lbaLo; i <= lenHi; i++) c[i] = 0;
    c[lbaHi] = Math.floor(r() * (BLOCKS + 4));
    c[lenHi] = Math.floor(r() * 6);
    if (lenLo === lenHi && len === 6 && c[4] === 0) c[4] = 1;
  }
  return c;
}

test(
  'fuzz: thousands of random and mutated CDBs give well-formed statuses and never write outside the named ' + 'LBAs',
  async () => {
    const r = rng(0xfe77);
    const dev = new MemoryDevice(BS, BLOCKS);
    let internalErrors = 0;
    const lu = new DiskLu(dev, {
      identity: luIdentity('fuzz'),
      sanitizeBytesPerSecond: 2 ** 40,
      onInternalError: () => internalErrors++,
    });
    const writes: Array<[number, number]> = [];
    const realWrite = dev.write.bind(dev);
    dev.write = async (lba, data) => {
      writes.push([lba, lba + data.length / BS]);
      return realWrite(lba, data);
    };
    const opcodes = [...SBC_COMMANDS.keys()];
    const allowedStatus = new Set<number>([
      ScsiStatus.GOOD,
      ScsiStatus.CHECK_CONDITION,
      ScsiStatus.CONDITION_MET,
      ScsiStatus.RESERVATION_CONFLICT,
      ScsiStatus.TASK_ABORTED,
    ]);
    const N = 6000;
    let mediumWrites = 0;
    for (let i = 0; i < N; i++) {
      const pick = r();
      let cdb: Uint8Array;
      if (pick < 0.1) cdb = Uint8Array.from({ length: Math.floor(r() * 17) }, () => Math.floor(r() * 256));
      else cdb = validCdbFor(opcodes[Math.floor(r() * opcodes.length)], r);
      const dataOut =
        r() < 0.5
          ? new Uint8Array(0)
          : Uint8Array.from({ length: Math.floor(r() * 4) * BS + (r() < 0.2 ? Math.floor(r() * 40) : 0) }, () =>
              Math.floor(r() * 256),
            );
      // Make UNMAP parameter lists plausible now and then.
      if (cdb[0] === 0x42 && dataOut.length >= 24 && r() < 0.7) {
        const dv = new DataView(dataOut.buffer);
        dv.setUint16(0, 22);
        dv.setUint16(2, 16);
        dv.setBigUint64(8, BigInt(Math.floor(r() * BLOCKS)));
        dv.setUint32(16, Math.floor(r() * 8));
        cdb[7] = 0;
        cdb[8] = 24;
      }
      const ac = new AbortController();
      if (r() < 0.02) ac.abort();
      writes.length = 0;
      const task = makeTask(cdb, {
        nexus: r() < 0.5 ? nexusA : nexusB,
        dataOut,
        signal: ac.signal,
        expectedInLength: Math.floor(r() * 8192),
      });
      const res = await lu.execute(task);
      assert.ok(allowedStatus.has(res.status), `status ${res.status} for ${Buffer.from(cdb).toString('hex')}`);
      if (res.status === ScsiStatus.CHECK_CONDITION) {
        assert.ok(res.sense && res.sense.length >= 18);
        const s = decodeSense(res.sense);
        assert.ok(s.key > 0 && s.key <= 0xe, `sense key ${s.key}`);
      }
      if (res.dataIn) assert.ok(res.dataIn instanceof Uint8Array);
      if (writes.length) mediumWrites++;
      const allowed = allowedWrites(cdb, dataOut);
      for (const [a, b] of writes) {
        assert.ok(
          allowed.some(([lo, hi]) => a >= lo && b <= hi),
          `write [${a},${b}) outside ${JSON.stringify(allowed)} for ${Buffer.from(cdb).toString('hex')}`,
        );
      }
      // Keep the LU usable: reload the medium, drop reservations and software write protection.
      if (!lu.mediumPresent || lu.spc.reserve6 || lu.spc.softwareWriteProtect || lu.preventers.size) {
        lu.preventers.clear();
        lu.mediumPresent = true;
        lu.spc.reserve6 = undefined;
        lu.spc.modePages.resetToDefaults();
      }
      await lu.sanitizing;
    }
    assert.equal(internalErrors, 0, 'no handler bug turned into HARDWARE ERROR');
    assert.ok(mediumWrites > N / 50, `only ${mediumWrites} commands wrote the medium: the fuzzer is too timid`);
  },
);
