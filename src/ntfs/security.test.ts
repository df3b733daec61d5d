import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NtfsFormatError } from './errors.ts';
import { decodeSecurityDescriptor, indexSds, securityHash, sidString } from './security.ts';

// Test-only encoders (MS-DTYP 2.4.2 SID, 2.4.5 ACL, 2.4.6 self-relative descriptor).
function sid(authority: number, subs: number[]): number[] {
  const out = [1, subs.length];
  for (let i = 5; i >= 0; i--) out.push(Math.floor(authority / 256 ** i) % 256);
  for (const s of subs) out.push(s & 0xff, (s >>> 8) & 0xff, (s >>> 16) & 0xff, s >>> 24);
  return out;
}
const u16 = (v: number): number[] => [v & 0xff, v >> 8];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

function descriptor(
  owner: number[],
  group: number[],
  aces: { type: number; mask: number; sid: number[] }[],
): Uint8Array {
  const aceBytes = aces.flatMap((a) => [a.type, 0, ...u16(8 + a.sid.length), ...u32(a.mask), ...a.sid]);
  const acl = [2, 0, ...u16(8 + aceBytes.length), ...u16(aces.length), 0, 0, ...aceBytes];
  const dacl = 20;
  const ownerAt = dacl + acl.length;
  const groupAt = ownerAt + owner.length;
  return new Uint8Array([
    1,
    0,
    ...u16(0x8004),
    ...u32(ownerAt),
    ...u32(groupAt),
    ...u32(0),
    ...u32(dacl),
    ...acl,
    ...owner,
    ...group,
  ]);
}

const ADMINS = sid(5, [32, 544]);
const SYSTEM = sid(5, [18]);
const EVERYONE = sid(1, [0]);

test('SIDs print in the S-1-… form, large authorities in hex (MS-DTYP 2.4.2.1)', () => {
  assert.equal(sidString(new Uint8Array(ADMINS), 0, ADMINS.length, {}), 'S-1-5-32-544');
  assert.equal(sidString(new Uint8Array(EVERYONE), 0, EVERYONE.length, {}), 'S-1-1-0');
  const big = sid(2 ** 40 + 5, [7]);
  assert.equal(sidString(new Uint8Array(big), 0, big.length, {}), 'S-1-0x010000000005-7');
  assert.throws(() => sidString(new Uint8Array(ADMINS), 0, ADMINS.length - 1, { record: 9 }), NtfsFormatError);
});

test('a self-relative descriptor decodes to control, owner, group and DACL entries', () => {
  const sd = decodeSecurityDescriptor(
    descriptor(ADMINS, SYSTEM, [
      { type: 0, mask: 0x1f01ff, sid: EVERYONE },
      { type: 1, mask: 0x10000, sid: ADMINS },
    ]),
  );
  assert.deepEqual(sd, {
    control: 0x8004,
    owner: 'S-1-5-32-544',
    group: 'S-1-5-18',
    dacl: {
      revision: 2,
      aces: [
        { type: 0, flags: 0, mask: 0x1f01ff, sid: 'S-1-1-0' },
        { type: 1, flags: 0, mask: 0x10000, sid: 'S-1-5-32-544' },
      ],
    },
  });
});

test('damaged descriptors are errors naming the offset, never a crash', () => {
  const good = descriptor(ADMINS, SYSTEM, [{ type: 0, mask: 1, sid: EVERYONE }]);
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(
      () => decodeSecurityDescriptor(good.subarray(0, cut), { record: 9, byteOffset: 100 }),
      (e: unknown) => e instanceof NtfsFormatError && e.record === 9,
    );
  }
  const bad = new Uint8Array(good);
  bad[4] = 0xff; // owner offset past the end
  assert.throws(
    () => decodeSecurityDescriptor(bad, { byteOffset: 100 }),
    (e: unknown) => e instanceof NtfsFormatError && e.byteOffset === 104,
  );
});

/** A $SDS stream: entries in the first 256 KiB block, mirrored in the second. */
function sds(entries: { id: number; sd: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(0x80000);
  let pos = 0;
  for (const { id, sd } of entries) {
    const head = [...u32(securityHash(sd)), ...u32(id), ...u32(pos), ...u32(0), ...u32(20 + sd.length)];
    out.set(head, pos);
    out.set(sd, pos + 20);
    pos += (20 + sd.length + 15) & ~15;
  }
  out.copyWithin(0x40000, 0, 0x40000);
  return out;
}

test('$SDS entries are indexed by security id; a damaged entry comes from its mirror or is reported alone', () => {
  const a = descriptor(ADMINS, SYSTEM, [{ type: 0, mask: 1, sid: EVERYONE }]);
  const b = descriptor(SYSTEM, ADMINS, []);
  const c = descriptor(EVERYONE, EVERYONE, [{ type: 0, mask: 2, sid: ADMINS }]);
  const stream = sds([
    { id: 0x100, sd: a },
    { id: 0x101, sd: b },
    { id: 0x102, sd: c },
  ]);
  const clean = indexSds(stream);
  assert.deepEqual([...clean.entries.keys()], [0x100, 0x101, 0x102]);
  assert.deepEqual(clean.problems, []);
  assert.equal(clean.descriptor(0x101)?.owner, 'S-1-5-18');

  const at1 = clean.get(0x101)?.offset ?? -1;
  const torn = new Uint8Array(stream);
  torn[at1 + 30] ^= 0xff; // descriptor byte: hash mismatch, mirror intact
  const fromMirror = indexSds(torn);
  assert.deepEqual([...fromMirror.entries.keys()], [0x100, 0x101, 0x102]);
  assert.equal(fromMirror.problems.length, 1);
  assert.match(fromMirror.problems[0].message, /hash.*mirror is used/);

  const wiped = new Uint8Array(stream);
  wiped.fill(0, at1, at1 + 20); // the primary's header zeroed (looks unused): the mirror has it
  const fromWiped = indexSds(wiped);
  assert.deepEqual([...fromWiped.entries.keys()], [0x100, 0x101, 0x102]);
  assert.match(fromWiped.problems[0]?.message ?? '', /mirror is used/);

  torn[0x40000 + at1 + 0x10] = 0xff; // and the mirror's length
  torn[at1 + 0x10] = 0xff; // and the primary's header
  const lost = indexSds(torn);
  assert.deepEqual([...lost.entries.keys()], [0x100, 0x102], 'the entry after the damaged one is still found');
  assert.equal(lost.problems.length, 1, 'one report for the damaged entry, not one per byte scanned');
  assert.equal(lost.problems[0].record, 9);
});

test('indexSds never throws on damaged streams, and keeps only entries whose hash matches (property)', () => {
  const a = descriptor(ADMINS, SYSTEM, [{ type: 0, mask: 1, sid: EVERYONE }]);
  const b = descriptor(SYSTEM, ADMINS, [{ type: 1, mask: 2, sid: EVERYONE }]);
  const stream = sds([
    { id: 0x100, sd: a },
    { id: 0x101, sd: b },
  ]);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 0x7ffff }), fc.integer({ min: 0, max: 255 })), { maxLength: 20 }),
      fc.integer({ min: 0, max: 0x80000 }),
      (edits, cut) => {
        const s = new Uint8Array(stream.subarray(0, cut));
        for (const [at, v] of edits) if (at < s.length) s[at] = v;
        const store = indexSds(s);
        for (const e of store.entries.values()) assert.equal(securityHash(e.bytes), e.hash);
      },
    ),
    { numRuns: 200 },
  );
});
