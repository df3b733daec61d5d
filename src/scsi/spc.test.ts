import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from './disk-lu.ts';
import { luIdentity } from './identity.ts';
import { makeTask, cdb, outcome, nexusA, nexusB, targetOf, type TaskOptions } from '../../test/helpers/scsi.ts';
import { makeNexus, type LogicalUnit, type ScsiResult } from './task.ts';
import { unmappedLun } from './spc.ts';
import { decodeLunList, encodeLun, encodeLunList } from './lun.ts';
import { decodeSense } from './sense.ts';
import { buildRead10, buildWrite10 } from './cdb/sbc.ts';
import {
  buildInquiry,
  buildModeSelect6,
  buildModeSense10,
  buildModeSense6,
  buildPersistentReserveIn,
  buildPersistentReserveOut,
  buildRelease6,
  buildReportLuns,
  buildReportSupportedOpcodes,
  buildReportSupportedTmfs,
  buildRequestSense,
  buildReserve6,
  buildTestUnitReady,
} from './cdb/spc.ts';

function disk(): { lu: DiskLu; run: (c: Uint8Array, o?: TaskOptions) => Promise<ScsiResult> } {
  const lu = new DiskLu(new MemoryDevice(512, 2048), { identity: luIdentity('iqn.x|/img') });
  const luns = new Map<number, LogicalUnit>([
    [0, lu],
    [3, lu],
    [300, lu],
  ]);
  return { lu, run: (c, o = {}) => lu.execute(makeTask(c, { target: targetOf(luns), ...o })) };
}

async function ready(): Promise<ReturnType<typeof disk>> {
  const d = disk();
  await d.run(buildTestUnitReady());
  await d.run(buildTestUnitReady(), { nexus: nexusB });
  return d;
}

test('luIdentity is stable per seed and an NAA 6h designator', () => {
  const a = luIdentity('iqn.2026-11.dev.ferry:store|/data/disk0.img');
  const b = luIdentity('iqn.2026-11.dev.ferry:store|/data/disk0.img');
  const c = luIdentity('iqn.2026-11.dev.ferry:store|/data/disk1.img');
  assert.deepEqual(a.naa, b.naa);
  assert.equal(a.serial, b.serial);
  assert.notDeepEqual(a.naa, c.naa);
  assert.equal(a.naa.length, 16);
  assert.equal(a.naa[0] >> 4, 6);
});

test('standard INQUIRY: VERSION 06h, RMB, version descriptors, allocation length', async () => {
  const { run } = await ready();
  const r = await run(buildInquiry(255));
  const d = r.dataIn!;
  assert.equal(d.length, 96);
  assert.equal(d[0], 0);
  assert.equal(d[1] & 0x80, 0x80);
  assert.equal(d[2], 6);
  assert.equal(d[3] & 0x0f, 2);
  assert.equal(d[4], 91);
  assert.equal(new TextDecoder().decode(d.subarray(8, 16)), 'FERRY   ');
  const versions = [0, 1, 2, 3].map((i) => (d[58 + 2 * i] << 8) | d[59 + 2 * i]);
  assert.deepEqual(versions, [0x00a0, 0x0960, 0x0460, 0x04c0]);
  assert.equal((await run(buildInquiry(5))).dataIn!.length, 5);
  // Deliberately malformed: a PAGE CODE with EVPD=0.
  assert.equal(outcome(await run(cdb(0x12, 0, 0x80, 0, 255, 0))), '5/24/00');
  assert.equal(outcome(await run(buildInquiry(255, 0x99))), '5/24/00');
});

test('VPD 83h: exactly one NAA (assoc LU), last among types 0–3; VPD 80h serial', async () => {
  const { run, lu } = await ready();
  const d = (await run(buildInquiry(255, 0x83))).dataIn!;
  const descs: Array<{ assoc: number; type: number; id: Uint8Array }> = [];
  for (let at = 4; at < 4 + ((d[2] << 8) | d[3]); at += 4 + d[at + 3])
    descs.push({ assoc: (d[at + 1] >> 4) & 3, type: d[at + 1] & 0x0f, id: d.slice(at + 4, at + 4 + d[at + 3]) });
  const naa = descs.filter((x) => x.type === 3);
  assert.equal(naa.length, 1);
  assert.equal(naa[0].assoc, 0);
  assert.deepEqual(naa[0].id, lu.spc.identity.naa);
  const low = descs.filter((x) => x.type <= 3);
  assert.equal(low[low.length - 1].type, 3);
  assert.ok(descs.some((x) => x.type === 4 && x.assoc === 1));
  assert.ok(descs.some((x) => x.type === 8 && x.assoc === 2));
  const s = (await run(buildInquiry(255, 0x80))).dataIn!;
  assert.equal(new TextDecoder().decode(s.subarray(4)), lu.spc.identity.serial);
});

test('extra VPD pages registered by other modules are listed in ascending order', async () => {
  const { run, lu } = await ready();
  lu.spc.vpd.set(0x8f, () => Uint8Array.of(1, 2, 3));
  const d = (await run(buildInquiry(255, 0x00))).dataIn!;
  assert.deepEqual([...d.subarray(4)], [0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2]);
  assert.deepEqual([...(await run(buildInquiry(255, 0x8f))).dataIn!], [0, 0x8f, 0, 3, 1, 2, 3]);
});

test('REPORT LUNS: SAM LUN encoding and allocation length', async () => {
  assert.deepEqual([...encodeLun(5)], [0, 5, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeLun(300)], [0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
  const { run } = await ready();
  const d = (await run(buildReportLuns(1024))).dataIn!;
  assert.deepEqual([...d], [...encodeLunList([0, 3, 300])]);
  assert.equal(d[3], 24);
  assert.deepEqual(decodeLunList(d), [0, 3, 300], 'the initiator reads back what the target sent');
  assert.deepEqual(
    decodeLunList(d.subarray(0, 20)),
    [0],
    'a list cut short by the allocation length gives the whole entries only',
  );
  const odd = encodeLunList([1]);
  odd[8] = 0x80; // logical unit addressing: not one Ferry maps
  assert.deepEqual(decodeLunList(odd), []);
  assert.equal(outcome(await run(buildReportLuns(8))), '5/24/00');
});

test('unmapped LUN: INQUIRY PQ 011b/PDT 1Fh, other commands 05/25/00', () => {
  const t = (c: Uint8Array): ScsiResult => unmappedLun(makeTask(c, { lun: 7, target: targetOf(new Map()) }));
  assert.equal(t(buildInquiry(36)).dataIn![0], 0x7f);
  assert.equal(outcome(t(buildTestUnitReady())), '5/25/00');
  assert.equal(outcome(t(buildRead10(0, 1))), '5/25/00');
});

test(
  'unit attentions: power-on per new nexus, LUN reset reaches every nexus, REQUEST SENSE reports and ' + 'clears',
  async () => {
    const { run, lu } = disk();
    assert.equal(outcome(await run(buildTestUnitReady())), '6/29/00');
    assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
    // INQUIRY neither reports nor clears a unit attention.
    assert.equal(outcome(await run(buildInquiry(36), { nexus: nexusB })), 'GOOD');
    assert.equal(outcome(await run(buildTestUnitReady(), { nexus: nexusB })), '6/29/00');
    lu.reset('lun', nexusA);
    const rs = await run(buildRequestSense(252));
    const s = decodeSense(rs.dataIn!);
    assert.deepEqual([s.key, s.asc, s.ascq], [6, 0x29, 0x03]);
    assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
    assert.equal(outcome(await run(buildTestUnitReady(), { nexus: nexusB })), '6/29/03');
    // REQUEST SENSE with nothing pending: NO SENSE; DESC=1: descriptor format.
    const none = (await run(buildRequestSense(252, { desc: true }))).dataIn!;
    assert.equal(none[0], 0x72);
    assert.equal(none[1], 0);
    lu.capacityChanged();
    assert.equal(outcome(await run(buildTestUnitReady())), '6/2a/09');
  },
);

test('mode pages: all pages, control page, changeable mask, bad page code, saved values', async () => {
  const { run } = await ready();
  const all = (await run(buildModeSense6(0x3f))).dataIn!;
  assert.equal(all[0], all.length - 1);
  assert.equal(all[3], 8, 'block descriptor');
  const pages: number[] = [];
  for (let at = 4 + 8; at < all.length; at += 2 + all[at + 1]) pages.push(all[at] & 0x3f);
  assert.deepEqual(pages, [0x01, 0x08, 0x0a, 0x1c]);
  const ctl = (await run(buildModeSense6(0x0a, { dbd: true }))).dataIn!;
  assert.equal(ctl[3], 0, 'DBD');
  assert.equal(ctl[4], 0x0a);
  assert.equal(ctl[5], 0x0a);
  const mask = (await run(buildModeSense6(0x0a, { dbd: true, pageControl: 1 }))).dataIn!;
  assert.equal(mask[4 + 4], 0x08, 'SWP changeable');
  assert.equal(mask[4 + 2], 0x04, 'D_SENSE changeable');
  assert.equal(outcome(await run(buildModeSense6(0x3e))), '5/24/00');
  assert.equal(outcome(await run(buildModeSense6(0x0a, { pageControl: 3 }))), '5/39/00');
  assert.equal((await run(buildModeSense6(0x3f, { allocationLength: 4 }))).dataIn!.length, 4);
  const ms10 = (await run(buildModeSense10(0x3f, { llbaa: true, allocationLength: 512 }))).dataIn!;
  assert.equal(ms10[4] & 1, 1, 'LONGLBA');
  assert.equal((ms10[6] << 8) | ms10[7], 16);
  // MODE SELECT changing a non-changeable bit: 05/26/00.
  const param = new Uint8Array(4 + 12);
  param.set(ctl.subarray(4), 4);
  param[4 + 5] &= ~0x40; // TAS is not changeable
  assert.equal(outcome(await run(buildModeSelect6(param.length), { dataOut: param })), '5/26/00');
});

test('REPORT SUPPORTED OPERATION CODES: all, one command, service actions, RCTD', async () => {
  const { run } = await ready();
  const all = (await run(buildReportSupportedOpcodes(65535))).dataIn!;
  const len = new DataView(all.buffer, all.byteOffset).getUint32(0);
  assert.equal(all.length, 4 + len);
  const descs: Array<[number, number, boolean]> = [];
  for (let at = 4; at < all.length; at += 8)
    descs.push([all[at], (all[at + 2] << 8) | all[at + 3], !!(all[at + 5] & 1)]);
  assert.ok(
    descs.some(([op, sa, sv]) => op === 0x48 && sa === 2 && sv),
    'SANITIZE BLOCK ERASE',
  );
  assert.ok(descs.some(([op, , sv]) => op === 0x28 && !sv));
  assert.ok(descs.every(([, sa, sv]) => sv || sa === 0));
  const one = (await run(buildReportSupportedOpcodes(512, { option: 1, opcode: 0x28 }))).dataIn!;
  assert.equal(one[1] & 7, 3);
  assert.equal((one[2] << 8) | one[3], 10);
  assert.equal(one[4], 0x28);
  assert.equal(outcome(await run(buildReportSupportedOpcodes(512, { option: 1, opcode: 0x9e }))), '5/24/00');
  assert.equal(outcome(await run(buildReportSupportedOpcodes(512, { option: 2, opcode: 0x28 }))), '5/24/00');
  const sa = (await run(buildReportSupportedOpcodes(512, { option: 2, opcode: 0x9e, serviceAction: 0x10 }))).dataIn!;
  assert.equal(sa[4], 0x9e);
  assert.equal(sa[5], 0x10);
  const missing = (await run(buildReportSupportedOpcodes(512, { option: 1, opcode: 0xee }))).dataIn!;
  assert.equal(missing[1] & 7, 1);
  const rctd = (await run(buildReportSupportedOpcodes(65535, { rctd: true }))).dataIn!;
  assert.equal(rctd[4 + 5] & 2, 2);
  assert.equal(rctd[4 + 9], 0x0a);
  const tmf = (await run(buildReportSupportedTmfs(4))).dataIn!;
  assert.equal(tmf[0] & 0x80, 0x80);
});

test('RESERVE(6)/RELEASE(6) between two nexuses; reset and nexus loss release', async () => {
  const { run, lu } = await ready();
  assert.equal(outcome(await run(buildReserve6())), 'GOOD');
  assert.equal(outcome(await run(buildRead10(0, 1), { nexus: nexusB })), 'RESERVATION CONFLICT');
  assert.equal(outcome(await run(buildTestUnitReady(), { nexus: nexusB })), 'RESERVATION CONFLICT');
  assert.equal(outcome(await run(buildInquiry(36), { nexus: nexusB })), 'GOOD');
  assert.equal(outcome(await run(buildReserve6(), { nexus: nexusB })), 'RESERVATION CONFLICT');
  assert.equal(outcome(await run(buildRelease6(), { nexus: nexusB })), 'GOOD');
  assert.equal(
    outcome(await run(buildTestUnitReady(), { nexus: nexusB })),
    'RESERVATION CONFLICT',
    'RELEASE by a non-holder changes nothing',
  );
  assert.equal(outcome(await run(buildRead10(0, 1))), 'GOOD');
  lu.nexusLost(nexusA);
  assert.equal(outcome(await run(buildTestUnitReady(), { nexus: nexusB })), 'GOOD');
  assert.equal(outcome(await run(buildReserve6(), { nexus: nexusB })), 'GOOD');
  lu.reset('lun', nexusA);
  assert.equal(outcome(await run(buildTestUnitReady())), '6/29/00');
  assert.equal(outcome(await run(buildTestUnitReady())), 'GOOD');
});

function prOut(sa: number, type: number, key: bigint, saKey: bigint): [Uint8Array, Uint8Array] {
  const p = new Uint8Array(24);
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, key);
  dv.setBigUint64(8, saKey);
  return [buildPersistentReserveOut(sa, 24, { type }), p];
}

async function readReservation(
  run: (c: Uint8Array, o?: TaskOptions) => Promise<ScsiResult>,
  nexus = nexusA,
): Promise<{ gen: number; key?: bigint; type?: number }> {
  const d = (await run(buildPersistentReserveIn(1, 255), { nexus })).dataIn!;
  const dv = new DataView(d.buffer, d.byteOffset);
  if (dv.getUint32(4) === 0) return { gen: dv.getUint32(0) };
  return { gen: dv.getUint32(0), key: dv.getBigUint64(8), type: d[21] & 0x0f };
}

async function readKeys(
  run: (c: Uint8Array, o?: TaskOptions) => Promise<ScsiResult>,
  nexus = nexusA,
): Promise<bigint[]> {
  const d = (await run(buildPersistentReserveIn(0, 255), { nexus })).dataIn!;
  const dv = new DataView(d.buffer, d.byteOffset);
  const n = dv.getUint32(4) / 8;
  return Array.from({ length: n }, (_, i) => dv.getBigUint64(8 + 8 * i));
}

test('persistent reservations: register, reserve, access per type, release, preempt, clear', async () => {
  const { run } = await ready();
  const go = async (nexus: typeof nexusA, sa: number, type: number, key: bigint, saKey: bigint): Promise<string> => {
    const [c, p] = prOut(sa, type, key, saKey);
    return outcome(await run(c, { nexus, dataOut: p }));
  };
  const read = (nexus: typeof nexusA): Promise<string> => run(buildRead10(0, 1), { nexus }).then(outcome);
  const write = (nexus: typeof nexusA): Promise<string> =>
    run(buildWrite10(9, 1), { nexus, dataOut: new Uint8Array(512) }).then(outcome);
  assert.equal(await go(nexusA, 6, 0, 0n, 0xaan), 'GOOD');
  assert.equal(await go(nexusB, 0, 0, 0n, 0xbbn), 'GOOD');
  assert.equal(await go(nexusB, 0, 0, 0x11n, 0xbcn), 'RESERVATION CONFLICT', 'REGISTER with a wrong key');
  assert.deepEqual((await readKeys(run)).sort(), [0xaan, 0xbbn]);
  const expect: Record<number, [string, string, string, string]> = {
    // type: registered B read/write, unregistered B read/write (libiscsi ProutReserve.Access*)
    1: ['GOOD', 'RESERVATION CONFLICT', 'GOOD', 'RESERVATION CONFLICT'],
    3: ['RESERVATION CONFLICT', 'RESERVATION CONFLICT', 'RESERVATION CONFLICT', 'RESERVATION CONFLICT'],
    5: ['GOOD', 'GOOD', 'GOOD', 'RESERVATION CONFLICT'],
    6: ['GOOD', 'GOOD', 'RESERVATION CONFLICT', 'RESERVATION CONFLICT'],
    7: ['GOOD', 'GOOD', 'GOOD', 'RESERVATION CONFLICT'],
    8: ['GOOD', 'GOOD', 'RESERVATION CONFLICT', 'RESERVATION CONFLICT'],
  };
  for (const [t, [rr, rw, ur, uw]] of Object.entries(expect)) {
    const type = Number(t);
    assert.equal(await go(nexusA, 1, type, 0xaan, 0n), 'GOOD');
    const rr2 = await readReservation(run);
    assert.equal(rr2.type, type);
    assert.equal(rr2.key, type >= 7 ? 0n : 0xaan);
    assert.equal(await read(nexusA), 'GOOD');
    assert.equal(await write(nexusA), 'GOOD');
    assert.equal(await read(nexusB), rr, `type ${type} registered read`);
    assert.equal(await write(nexusB), rw, `type ${type} registered write`);
    assert.equal(await go(nexusB, 0, 0, 0xbbn, 0n), 'GOOD');
    await run(buildTestUnitReady(), { nexus: nexusB }); // consume any 2A/04
    assert.equal(await read(nexusB), ur, `type ${type} unregistered read`);
    assert.equal(await write(nexusB), uw, `type ${type} unregistered write`);
    assert.equal(await go(nexusA, 2, type, 0xaan, 0n), 'GOOD');
    assert.equal((await readReservation(run)).type, undefined);
    assert.equal(await go(nexusB, 6, 0, 0n, 0xbbn), 'GOOD');
    await run(buildTestUnitReady(), { nexus: nexusB });
  }
  // RELEASE with the wrong type: 05/26/04.
  assert.equal(await go(nexusA, 1, 1, 0xaan, 0n), 'GOOD');
  assert.equal(await go(nexusA, 2, 3, 0xaan, 0n), '5/26/04');
  // Unregistering the holder releases the reservation.
  assert.equal(await go(nexusA, 0, 0, 0xaan, 0n), 'GOOD');
  assert.equal((await readReservation(run)).type, undefined);
  // PREEMPT: B takes A's registration away.
  assert.equal(await go(nexusA, 6, 0, 0n, 0xaan), 'GOOD');
  assert.equal(await go(nexusA, 1, 3, 0xaan, 0n), 'GOOD');
  assert.equal(await go(nexusB, 4, 3, 0xbbn, 0xaan), 'GOOD');
  assert.deepEqual(await readKeys(run, nexusB), [0xbbn]);
  const rr = await readReservation(run, nexusB);
  assert.equal(rr.key, 0xbbn);
  assert.equal(outcome(await run(buildTestUnitReady())), '6/2a/05', 'the preempted nexus is told');
  assert.equal(await go(nexusA, 1, 3, 0xaan, 0n), 'RESERVATION CONFLICT');
  // CLEAR removes everything.
  assert.equal(await go(nexusA, 6, 0, 0n, 0xaan), 'GOOD');
  assert.equal(await go(nexusB, 3, 0, 0xbbn, 0n), 'GOOD');
  assert.deepEqual(await readKeys(run, nexusB), []);
  assert.equal(outcome(await run(buildTestUnitReady())), '6/2a/03');
  // Parameter list length must be 24; APTPL unsupported.
  assert.equal(outcome(await run(buildPersistentReserveOut(6, 20), { dataOut: new Uint8Array(20) })), '5/1a/00');
  const [c, p] = prOut(6, 0, 0n, 5n);
  p[20] = 1;
  assert.equal(outcome(await run(c, { dataOut: p })), '5/26/00');
  // PR IN: REPORT CAPABILITIES, READ FULL STATUS, bad service action.
  const caps = (await run(buildPersistentReserveIn(2, 255))).dataIn!;
  assert.equal((caps[0] << 8) | caps[1], 8);
  assert.equal(caps[4], 0xea);
  assert.equal(caps[5], 0x01);
  assert.equal(await go(nexusA, 6, 0, 0n, 0x77n), 'GOOD');
  const full = (await run(buildPersistentReserveIn(3, 255))).dataIn!;
  assert.equal(new DataView(full.buffer, full.byteOffset).getBigUint64(8), 0x77n);
  assert.deepEqual(full.subarray(32, 32 + nexusA.transportId.length), nexusA.transportId);
  assert.equal(outcome(await run(buildPersistentReserveIn(4, 255))), '5/24/00');
  // RESERVE(6) conflicts while registrations exist.
  assert.equal(outcome(await run(buildReserve6(), { nexus: nexusB })), 'RESERVATION CONFLICT');
});

test('a third nexus from the same initiator name but another ISID is a different I_T nexus', async () => {
  const { run } = await ready();
  const other = makeNexus(nexusA.initiatorName, '400000000099', nexusA.targetName, 1);
  assert.equal(outcome(await run(buildTestUnitReady(), { nexus: other })), '6/29/00');
  await run(buildReserve6());
  assert.equal(outcome(await run(buildTestUnitReady(), { nexus: other })), 'RESERVATION CONFLICT');
});

test('REGISTER AND MOVE hands the reservation to the nexus named by TransportID', async () => {
  const { run } = await ready();
  const reg = prOut(6, 0, 0n, 0xa1n);
  assert.equal(outcome(await run(reg[0], { dataOut: reg[1] })), 'GOOD');
  const res = prOut(1, 1, 0xa1n, 0n);
  assert.equal(outcome(await run(res[0], { dataOut: res[1] })), 'GOOD');
  const tid = nexusB.transportId;
  const p = new Uint8Array(24 + tid.length);
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, 0xa1n);
  dv.setBigUint64(8, 0xb2n);
  p[17] = 0x02; // UNREG
  dv.setUint16(18, 1);
  dv.setUint32(20, tid.length);
  p.set(tid, 24);
  // Not the holder: conflict.
  assert.equal(
    outcome(await run(buildPersistentReserveOut(7, p.length, { type: 1 }), { nexus: nexusB, dataOut: p })),
    'RESERVATION CONFLICT',
  );
  assert.equal(outcome(await run(buildPersistentReserveOut(7, p.length, { type: 1 }), { dataOut: p })), 'GOOD');
  assert.deepEqual(await readKeys(run, nexusB), [0xb2n]);
  const rr = await readReservation(run, nexusB);
  assert.equal(rr.key, 0xb2n);
  assert.equal(rr.type, 1);
  // B now holds a Write Exclusive reservation: A (unregistered) cannot write, B can.
  const w = buildWrite10(9, 1);
  assert.equal(outcome(await run(w, { dataOut: new Uint8Array(512) })), 'RESERVATION CONFLICT');
  assert.equal(outcome(await run(w, { nexus: nexusB, dataOut: new Uint8Array(512) })), 'GOOD');
});
