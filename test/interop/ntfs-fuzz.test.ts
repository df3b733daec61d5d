// Bad input: mutated real images (boot sector, MFT records, index blocks), truncated images and
// random bytes. Every operation either works or throws NtfsFormatError naming a record or a byte
// offset; nothing hangs, crashes or throws anything else. Plus the two crafted cases the issue
// names: a cyclic attribute list and an index loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { MemoryDevice } from '../../src/block/memory-device.ts';
import { usedClusters } from '../../src/ntfs/bitmap.ts';
import { NtfsFormatError } from '../../src/ntfs/errors.ts';
import { buildPlan } from '../../src/ntfs/plan.ts';
import { AttrType } from '../../src/ntfs/record.ts';
import { streamContent } from '../../src/ntfs/stream.ts';
import { resolvePath, walk, type SkippedRecord } from '../../src/ntfs/tree.ts';
import { applyFixups, RecordMagic } from '../../src/ntfs/fixup.ts';
import { readContent } from '../../src/ntfs/stream.ts';
import {
  findAttr,
  toContent,
  loadFile,
  openVolume,
  readRecord,
  type NtfsAttr,
  type Volume,
} from '../../src/ntfs/volume.ts';
import { ntfsImages } from './ntfs-images.ts';

/** Mulberry32: a seeded PRNG so a failure can be replayed (the seed is in the test name). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectNamed(e: unknown, where: string): void {
  if (!(e instanceof NtfsFormatError))
    throw new Error(`${where}: not an NtfsFormatError: ${e instanceof Error ? e.stack : String(e)}`);
  assert.ok(
    e.record !== undefined || e.byteOffset !== undefined,
    `${where}: error names neither record nor offset: ${e.message}`,
  );
}

const READ_CAP = 1 << 20;

/** Everything a user can ask of a volume; returns how many operations threw a (well-formed) error. */
async function exercise(dev: MemoryDevice, where: string): Promise<number> {
  let vol: Volume;
  try {
    vol = await openVolume(dev);
  } catch (e) {
    expectNamed(e, where);
    return 1;
  }
  let errors = 0;
  const skipped: SkippedRecord[] = [];
  try {
    const root = await resolvePath(vol, '/');
    for await (const { entry, file } of walk(vol, root, '/', {
      recursive: true,
      system: true,
      onError: (s) => skipped.push(s),
    })) {
      for (const name of ['', ...entry.streams.map((s) => s.name)]) {
        const a = findAttr(file, AttrType.DATA, name);
        if (!a) continue;
        try {
          for await (const c of streamContent(vol, a, 0, Math.min(a.dataSize, READ_CAP))) assert.ok(c.length > 0);
        } catch (e) {
          expectNamed(e, `${where} read ${entry.path}`);
          errors++;
        }
      }
    }
  } catch (e) {
    expectNamed(e, `${where} walk`);
    errors++;
  }
  for (const s of skipped)
    assert.ok(
      s.code.startsWith('ERR_NTFS_') && (s.record !== undefined || /byte offset/.test(s.message)),
      `${where}: skipped without a record: ${JSON.stringify(s)}`,
    );
  for (const op of [() => usedClusters(vol), () => buildPlan(vol, { blockSize: 512 })]) {
    try {
      await op();
    } catch (e) {
      expectNamed(e, `${where} ${op.toString()}`);
      errors++;
    }
  }
  return errors + skipped.length;
}

/** Byte ranges holding metadata: boot sector, the first MFT records, the root's INDX blocks. */
async function metadataRanges(bytes: Uint8Array): Promise<[number, number][]> {
  const vol = await openVolume(new MemoryDevice(512, bytes));
  const cs = vol.geo.clusterSize;
  const ranges: [number, number][] = [[0, 512]];
  for (const r of vol.mft.runs.slice(0, 2))
    ranges.push([r.lcn * cs, Math.min(r.length * cs, 256 * vol.geo.recordSize)]);
  const root = await loadFile(vol, 5);
  for (const r of findAttr(root, AttrType.INDEX_ALLOCATION, '$I30')?.runs ?? [])
    if (r.lcn >= 0) ranges.push([r.lcn * cs, r.length * cs]);
  return ranges;
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff];

const SEED = Number(process.env.FERRY_FUZZ_SEED ?? 1234);
const SCALE = Number(process.env.FERRY_FUZZ_SCALE ?? 1);

for (const [name, base] of [
  ['secure', 500],
  ['frag', 300],
  ['c512', 40],
  ['main', 60],
] as const) {
  const iterations = Math.round(base * SCALE);
  test(
    `fuzz ${name}: ${iterations} mutated images (seed ${SEED}, FERRY_FUZZ_SEED to change)`,
    { timeout: 120_000 },
    async (t) => {
      const imgs = ntfsImages(t);
      if (!imgs) return;
      const bytes = new Uint8Array(await readFile(imgs[name]));
      const ranges = await metadataRanges(bytes);
      const rnd = prng(SEED);
      const pick = (n: number): number => Math.floor(rnd() * n);
      let erroring = 0;
      for (let i = 0; i < iterations; i++) {
        const saved: [number, number][] = [];
        const [start, len] = ranges[pick(ranges.length)];
        const edits = 1 + pick(4);
        for (let k = 0; k < edits; k++) {
          const at = start + pick(len - 4);
          for (let j = 0; j < 4; j++) saved.push([at + j, bytes[at + j]]);
          const view = new DataView(bytes.buffer, bytes.byteOffset);
          const mode = pick(3);
          if (mode === 0) bytes[at] ^= 1 << pick(8);
          else if (mode === 1) view.setUint16(at, INTERESTING[pick(INTERESTING.length)] & 0xffff, true);
          else view.setUint32(at, INTERESTING[pick(INTERESTING.length)], true);
        }
        try {
          erroring += (await exercise(new MemoryDevice(512, bytes), `${name} iteration ${i}`)) > 0 ? 1 : 0;
        } finally {
          for (let k = saved.length - 1; k >= 0; k--) bytes[saved[k][0]] = saved[k][1];
        }
      }
      t.diagnostic(`${erroring} of ${iterations} mutated images reported errors`);
      assert.ok(erroring > 0, 'the mutations must reach parsed structures');
    },
  );
}

test('truncated images and random bytes', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const bytes = new Uint8Array(await readFile(imgs.secure));
  const rnd = prng(99);
  for (const cut of [0, 512, 4096, 20480, 1 << 20, 8 << 20, bytes.length - 4096]) {
    const dev = new MemoryDevice(512, bytes.subarray(0, cut));
    assert.ok((await exercise(dev, `truncated at ${cut}`)) > 0, `cut at ${cut} must be reported`);
  }
  await assert.rejects(
    openVolume(new MemoryDevice(512, bytes.subarray(0, bytes.length - 4096))),
    /shorter than the volume/,
  );
  const noise = new Uint8Array(1 << 20).map(() => Math.floor(rnd() * 256));
  await assert.rejects(
    openVolume(new MemoryDevice(512, noise)),
    (e: unknown) => e instanceof NtfsFormatError && e.code === 'ERR_NTFS_BOOT' && e.byteOffset === 3,
  );
});

/** Volume byte offset of byte `pos` of a non-resident attribute. */
function diskOffset(vol: Volume, runs: readonly { vcn: number; lcn: number; length: number }[], pos: number): number {
  const cs = vol.geo.clusterSize;
  const r = runs.find((x) => pos >= x.vcn * cs && pos < (x.vcn + x.length) * cs);
  assert.ok(r && r.lcn >= 0, `byte ${pos} is mapped`);
  return r.lcn * cs + pos - r.vcn * cs;
}

/** Volume byte offset of byte `i` of a resident attribute's value. */
function residentOffset(vol: Volume, a: NtfsAttr, i: number): number {
  const ext = a.extents[0];
  assert.ok(a.value);
  const at =
    diskOffset(vol, vol.mft.runs, ext.record * vol.geo.recordSize) +
    ext.offset +
    (a.value.byteOffset - ext.raw.byteOffset) +
    i;
  assert.ok(at % 512 < 510, 'not on a fixup position');
  return at;
}

test('a cyclic attribute list is reported naming the record', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const bytes = new Uint8Array(await readFile(imgs.main));
  const dev = new MemoryDevice(512, bytes);
  let vol = await openVolume(dev);
  const f = await resolvePath(vol, '/manylinks');
  const list = (await readRecord(vol, f.record)).attrs.find((x) => x.type === AttrType.ATTRIBUTE_LIST);
  assert.ok(list, 'manylinks has an attribute list');
  const v = await readContent(vol, toContent(list), 0, list.dataSize);
  const len0 = new DataView(v.buffer, v.byteOffset).getUint16(4, true);
  const len1 = new DataView(v.buffer, v.byteOffset).getUint16(len0 + 4, true);
  assert.equal(len0, len1, 'first two entries have the same length');
  // The second entry becomes a copy of the first: the same attribute named twice.
  const patch = v.slice(0, len0);
  for (let i = 0; i < len0; i++) {
    const at = list.resident
      ? residentOffset(vol, { value: list.value, extents: [list] } as unknown as NtfsAttr, len0 + i)
      : diskOffset(vol, list.runs, len0 + i);
    bytes[at] = patch[i];
  }
  vol = await openVolume(dev);
  await assert.rejects(
    loadFile(vol, f.record),
    (e: unknown) =>
      e instanceof NtfsFormatError && e.record === f.record && /same attribute twice \(cycle\)/.test(e.message),
  );
});

test('an index loop is reported naming the directory record', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const bytes = new Uint8Array(await readFile(imgs.c512));
  const dev = new MemoryDevice(512, bytes);
  let vol = await openVolume(dev);
  const dir = await resolvePath(vol, '/dir');
  const root = findAttr(dir, AttrType.INDEX_ROOT, '$I30');
  const alloc = findAttr(dir, AttrType.INDEX_ALLOCATION, '$I30');
  assert.ok(root?.value && alloc);
  const slots = (buf: Uint8Array, header: number): number[] => {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const out: number[] = [];
    for (let at = header + view.getUint32(header, true); ;) {
      const len = view.getUint16(at + 8, true);
      const flags = view.getUint32(at + 12, true);
      if (flags & 1) out.push(at + len - 8);
      if (flags & 2) return out;
      at += len;
    }
  };
  // Two subnode pointers to one INDX block: in the root if it has two, else in the block below it.
  let rootSlots = slots(root.value, 0x10);
  let buf = root.value;
  let abs = (p: number): number => residentOffset(vol, root, p);
  if (rootSlots.length < 2) {
    const blockSize = new DataView(root.value.buffer, root.value.byteOffset).getUint32(8, true);
    const unit = blockSize >= vol.geo.clusterSize ? vol.geo.clusterSize : 512;
    const vcn = Number(new DataView(root.value.buffer, root.value.byteOffset).getBigUint64(rootSlots[0], true));
    buf = await readContent(vol, alloc, vcn * unit, blockSize);
    applyFixups(buf, RecordMagic.INDX, { byteOffset: 0 });
    rootSlots = slots(buf, 0x18);
    abs = (p: number): number => {
      const at = diskOffset(vol, alloc.runs, vcn * unit + p);
      assert.ok(p % 512 < 510, 'not on a fixup position');
      return at;
    };
  }
  assert.ok(rootSlots.length >= 2, 'a node with two subnodes');
  const target = buf.slice(rootSlots[0], rootSlots[0] + 8);
  for (let i = 0; i < 8; i++) bytes[abs(rootSlots[1] + i)] = target[i];
  vol = await openVolume(dev);
  const skipped: SkippedRecord[] = [];
  for await (const x of walk(vol, await resolvePath(vol, '/'), '/', {
    recursive: true,
    onError: (s) => skipped.push(s),
  }))
    void x;
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0].record, dir.record);
  assert.match(skipped[0].message, /index loop: INDX block at VCN \d+ reached twice/);
});

test('a torn $MFT record 0 is read from $MFTMirr, with a warning naming it', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs) return;
  const bytes = new Uint8Array(await readFile(imgs.secure));
  const clean = await openVolume(new MemoryDevice(512, bytes));
  const mftAt = clean.geo.mftLcn * clean.geo.clusterSize;
  bytes[mftAt + 510] ^= 0xff;
  const vol = await openVolume(new MemoryDevice(512, bytes));
  assert.equal(vol.warnings.length, 1);
  assert.equal(vol.warnings[0].record, 0);
  assert.equal(vol.warnings[0].byteOffset, mftAt + 510);
  assert.deepEqual(vol.mft.runs, clean.mft.runs);
  const names: string[] = [];
  for await (const { entry } of walk(vol, await resolvePath(vol, '/'), '/', {
    recursive: true,
    onError: () => assert.fail('no skipped records'),
  }))
    names.push(entry.path);
  assert.deepEqual(names.sort(), ['/perm0', '/perm1', '/perm2', '/perm3']);
});
