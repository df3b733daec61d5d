import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOLE } from './data-runs.ts';
import { mergeExtents } from './plan.ts';
import { readContent, streamContent, type AttrContent, type ClusterSource } from './stream.ts';

const CS = 512;
/** Cluster n holds bytes (n + i) & 0xff; counts reads. */
function source(): ClusterSource & { reads: number } {
  const s = {
    clusterSize: CS,
    reads: 0,
    async readClusters(lcn: number, count: number): Promise<Uint8Array> {
      s.reads++;
      const out = new Uint8Array(count * CS);
      for (let c = 0; c < count; c++) for (let i = 0; i < CS; i++) out[c * CS + i] = (lcn + c + i) & 0xff;
      return out;
    },
  };
  return s;
}
const expectCluster = (lcn: number): number[] => Array.from({ length: CS }, (_, i) => (lcn + i) & 0xff);

const attr = (o: Partial<AttrContent>): AttrContent => ({
  resident: false,
  flags: 0,
  compressionUnit: 0,
  dataSize: 0,
  initializedSize: 0,
  runs: [],
  ...o,
});

test('holes read as zeros and runs map VCNs to LCNs', async () => {
  const a = attr({
    dataSize: 3 * CS,
    initializedSize: 3 * CS,
    runs: [
      { vcn: 0, lcn: 10, length: 1 },
      { vcn: 1, lcn: HOLE, length: 1 },
      { vcn: 2, lcn: 3, length: 1 },
    ],
  });
  const got = await readContent(source(), a, 0, 3 * CS);
  assert.deepEqual([...got.subarray(0, CS)], expectCluster(10));
  assert.ok(got.subarray(CS, 2 * CS).every((b) => b === 0));
  assert.deepEqual([...got.subarray(2 * CS)], expectCluster(3));
  // an unaligned middle range
  assert.deepEqual([...(await readContent(source(), a, 2 * CS + 5, 7))], expectCluster(3).slice(5, 12));
});

test('bytes from the initialized size to the data size are zeros, and nothing is read for them', async () => {
  const src = source();
  const a = attr({ dataSize: 4 * CS, initializedSize: CS + 100, runs: [{ vcn: 0, lcn: 50, length: 4 }] });
  const got = await readContent(src, a, 0, 4 * CS);
  assert.deepEqual([...got.subarray(CS, CS + 100)], expectCluster(51).slice(0, 100));
  assert.ok(got.subarray(CS + 100).every((b) => b === 0));
  const before = src.reads;
  assert.ok((await readContent(src, a, 2 * CS, CS)).every((b) => b === 0));
  assert.equal(src.reads, before);
});

test('compressed units: all hole, raw, and LZNT1', async () => {
  // unit = 16 clusters. Unit 0: first cluster a hole (zeros); unit 1: 16 real clusters (raw); unit 2: 1 real + 15 hole
  // (LZNT1).
  const lz = new Uint8Array(CS);
  lz.set([0x05, 0xb0, 0x08, 0x61, 0x62, 0x63, 0x06, 0x20]); // "abcabcabcabc"
  const src: ClusterSource = {
    clusterSize: CS,
    readClusters: async (lcn, count) => (lcn === 900 ? lz : source().readClusters(lcn, count)),
  };
  const a = attr({
    flags: 1,
    compressionUnit: 4,
    dataSize: 48 * CS,
    initializedSize: 48 * CS,
    runs: [
      { vcn: 0, lcn: HOLE, length: 16 },
      { vcn: 16, lcn: 100, length: 16 },
      { vcn: 32, lcn: 900, length: 1 },
      { vcn: 33, lcn: HOLE, length: 15 },
    ],
  });
  const parts: Uint8Array[] = [];
  for await (const c of streamContent(src, a)) parts.push(c);
  const all = Buffer.concat(parts);
  assert.equal(all.length, 48 * CS);
  assert.ok(all.subarray(0, 16 * CS).every((b) => b === 0));
  assert.deepEqual([...all.subarray(16 * CS, 17 * CS)], expectCluster(100));
  assert.deepEqual([...all.subarray(31 * CS, 32 * CS)], expectCluster(115));
  assert.equal(all.subarray(32 * CS, 32 * CS + 12).toString(), 'abcabcabcabc');
  assert.ok(all.subarray(32 * CS + 12).every((b) => b === 0));
});

test('a VCN no run maps is an error, not zeros', async () => {
  const a = attr({ record: 44, dataSize: 4 * CS, initializedSize: 4 * CS, runs: [{ vcn: 0, lcn: 1, length: 2 }] });
  await assert.rejects(readContent(source(), a, 0, 4 * CS), /record 44.*no run maps VCN 2/);
});

test('mergeExtents sorts and joins overlapping and adjacent ranges', () => {
  assert.deepEqual(
    mergeExtents([
      [10, 5],
      [0, 2],
      [2, 3],
      [12, 10],
      [40, 1],
    ]),
    [
      [0, 5],
      [10, 12],
      [40, 1],
    ],
  );
});

test('msToIso formats like Date.toISOString', async () => {
  const { msToIso } = await import('./values.ts');
  for (const ms of [
    0, 1, 999, 86399999, 951782400000, 1790000000123, -11644473600000, 253402300799999, -1, 4102444800000,
  ]) {
    assert.equal(msToIso(ms), new Date(ms).toISOString(), String(ms));
  }
});

test('a source with readClustersInto gives the same bytes as one without', async () => {
  const plain = source();
  let into = 0;
  const direct: ClusterSource = {
    clusterSize: CS,
    readClusters: plain.readClusters,
    async readClustersInto(lcn, target) {
      into++;
      target.set(await plain.readClusters(lcn, target.length / CS));
    },
  };
  const a = attr({
    dataSize: 5 * CS - 7,
    initializedSize: 5 * CS - 7,
    runs: [
      { vcn: 0, lcn: 10, length: 2 },
      { vcn: 2, lcn: HOLE, length: 1 },
      { vcn: 3, lcn: 40, length: 2 },
    ],
  });
  for (const [off, len] of [
    [0, 5 * CS - 7],
    [3, 700],
    [CS, 3 * CS],
  ]) {
    assert.deepEqual(await readContent(direct, a, off, len), await readContent(source(), a, off, len));
  }
  assert.ok(into > 0);
});
