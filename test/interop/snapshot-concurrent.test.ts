// Snapshots under concurrent writers: several workstations write random blocks of a disk LUN
// over iSCSI, without pause, while the management API creates crash-consistent snapshots and
// deletes some of them (oldest, middle, newest). Each snapshot, read over iSCSI as its own LUN
// and digested on the node, is the LUN at one instant, and stays so while others are deleted.
// Needs no outside tool: the storage node runs in this process, our initiator does the I/O.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { resolveTargetConfig } from '../../src/storage-node/config.ts';
import { startStorageNode, type StorageNode } from '../../src/storage-node/storage-node.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { SnapshotApiClient } from '../../src/storage-node/api-client.ts';
import type { SnapshotRecord } from '../../src/storage-node/node-control.ts';

const IQN = 'iqn.2026-11.dev.ferry:snap-concurrent';
const TOKEN = 'snapshot-concurrent-token-0123456789';
const BS = 512;
const BLOCKS = 8192; // 4 MiB: 64 snapshot chunks of 64 KiB
const HOT = 512; // half the writes land in the first 4 chunks: blocks overwritten many times
const WRITERS = 4;
const MAX_IO = 16; // blocks per write: 1..16, anywhere (so also across chunk boundaries)
const ROUNDS = 6;
// Writes completed between snapshots (counted, never timed): few enough that each round leaves
// some chunks untouched, so snapshots read through their successors' stores and the LUN.
const WRITES_PER_ROUND = 100;
const WHOLE = [{ lba: 0, blocks: BLOCKS }];

/*
 * How "the LUN at its instant" is known while the writers never stop.
 *
 * One logical clock, ticked by this test: a write gets `issued` before its WRITE is handed to
 * the initiator and `completed` when its GOOD status came back; a snapshot gets `ts` before
 * the API request is sent and `te` when the answer came back. The node's write gate freezes
 * one instant between ts and te: a write that completed before ts is in the snapshot, one
 * issued after te is not, and one in between (ambiguous) may be either, but as a whole.
 *
 * Writers never write a block another writer is writing (a busy map; blocks of one chunk are
 * still written concurrently), so each block has a linear history of writes, in device order.
 * Every block of every write holds (write id, lba) repeated, so a block read back names the one
 * write it comes from. For each block the snapshot must hold the last write completed before
 * ts or a later ambiguous one; never an older one (lost write) nor one issued after te (a write
 * leaking into the snapshot). What the blocks show decides each ambiguous write in or out;
 * then (1) a write must be in everywhere or out everywhere (not torn), and (2) the cut is one
 * instant: no write that is out completed before a write that is in was issued. From the
 * decided writes the expected image is built from the model alone, compared byte for byte with
 * the image read over iSCSI, and its SHA-256 with the node's digest.
 */
interface Write {
  id: number;
  lba: number;
  blocks: number;
  issued: number;
  /** Infinity while in flight. */
  completed: number;
}
interface Snap {
  rec: SnapshotRecord;
  round: number;
  expected: Buffer;
  sha: string;
}

/** Deterministic PRNG (mulberry32): the seed is in every failure message. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Blocks [lba, lba+blocks) as write `id` writes them: every block holds (id, its lba) repeated. */
function stamp(id: number, lba: number, blocks: number, into?: Buffer, at = 0): Buffer {
  const b = into ?? Buffer.alloc(blocks * BS);
  for (let k = 0; k < blocks; k++) {
    for (let i = 0; i < BS; i += 8) {
      b.writeUInt32BE(id, at + k * BS + i);
      b.writeUInt32BE(lba + k, at + k * BS + i + 4);
    }
  }
  return b;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function startNode(): Promise<{ dir: string; node: StorageNode; port: number; client: SnapshotApiClient }> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-snap-concurrent-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, TOKEN);
  const cfg = resolveTargetConfig({
    listen: '127.0.0.1:0',
    iqn: IQN,
    blockSize: BS,
    disks: [{ path: join(dir, 'disk0.img'), size: BLOCKS * BS }],
    api: '127.0.0.1:0',
    apiTokenFile: tokenFile,
    logLevel: 'silent',
  });
  try {
    const node = await startStorageNode(cfg, pino({ level: 'silent' }));
    return {
      dir,
      node,
      port: node.address.port,
      client: new SnapshotApiClient(`http://127.0.0.1:${node.api!.port}`, TOKEN),
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

test(
  'concurrent iSCSI writers while crash-consistent snapshots are created and deleted: each snapshot is the LUN at ' +
    'its ' +
    'instant, over iSCSI and by digest',
  { timeout: 300_000 },
  async (t) => {
    const seed = Number(process.env.FERRY_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = prng(seed);
    const where = `(seed ${seed}; FERRY_TEST_SEED=${seed} to reuse it)`;
    const { dir, node, port, client } = await startNode();
    const sessions: InitiatorSession[] = [];
    let stop = false;
    let writers: Array<Promise<void>> = [];
    try {
      const login = async (name: string): Promise<InitiatorSession> => {
        const s = await InitiatorSession.login({
          host: '127.0.0.1',
          port,
          initiatorName: `iqn.2026-11.dev.ferry:${name}`,
          targetName: IQN,
        });
        sessions.push(s);
        return s;
      };
      const disks: RemoteBlockDevice[] = [];
      for (let w = 0; w < WRITERS; w++) disks.push(await RemoteBlockDevice.open(await login(`ws${w}`), 0));
      const reader = await login('mover');

      // ---- the model ----
      let clock = 0;
      // id 0: never written (zeros)
      const writes: Write[] = [{ id: 0, lba: 0, blocks: 0, issued: -Infinity, completed: -Infinity }];
      const history: number[][] = Array.from({ length: BLOCKS }, () => []);
      const busy = new Uint8Array(BLOCKS);
      let completedWrites = 0;
      let failed: unknown;

      const pick = (): { lba: number; blocks: number } => {
        for (;;) {
          const blocks = 1 + rnd(MAX_IO);
          const lba = rnd(2) === 0 ? rnd(HOT - blocks + 1) : rnd(BLOCKS - blocks + 1);
          if (!busy.subarray(lba, lba + blocks).some((x) => x)) return { lba, blocks };
        }
      };
      writers = disks.map(async (d) => {
        try {
          while (!stop) {
            const { lba, blocks } = pick();
            const w: Write = { id: writes.length, lba, blocks, issued: ++clock, completed: Infinity };
            writes.push(w);
            busy.fill(1, lba, lba + blocks);
            for (let b = lba; b < lba + blocks; b++) history[b].push(w.id);
            await d.write(lba, stamp(w.id, lba, blocks));
            w.completed = ++clock;
            busy.fill(0, lba, lba + blocks);
            completedWrites++;
          }
        } catch (e) {
          if (!stop) failed ??= e; // reported by moreWrites or at the end, never unhandled
        }
      });
      /** Wait (by polling, no deadline) until `n` more writes have completed. */
      const moreWrites = async (n: number): Promise<void> => {
        const goal = completedWrites + n;
        while (completedWrites < goal) {
          if (failed) throw failed;
          await new Promise((r) => setTimeout(r, 5));
        }
      };

      /** Decide the ambiguous writes from what the snapshot shows; the image it must be (module comment). */
      const resolveCut = (
        name: string,
        image: Buffer,
        ts: number,
        te: number,
      ): { expected: Buffer; ambiguous: number; ambiguousIn: number; written: number; exactBlocks: number } => {
        const problems: string[] = [];
        const problem = (m: string): void => void (problems.length < 12 && problems.push(m));
        const decided = new Map<number, boolean>(); // ambiguous write → in the snapshot
        let written = 0; // blocks written before the instant (or maybe before: ambiguous)
        let exactBlocks = 0; // of those, blocks no ambiguous write touched: their content is certain
        for (let b = 0; b < BLOCKS; b++) {
          const h = history[b];
          const seen = image.readUInt32BE(b * BS);
          const j = seen === 0 ? -1 : h.indexOf(seen);
          if (seen !== 0 && j < 0) {
            problem(`block ${b}: holds write ${seen}, which never wrote it`);
            continue;
          }
          if (h.length > 0 && writes[h[0]].issued <= te) {
            written++;
            if (h.every((id) => writes[id].completed < ts || writes[id].issued > te)) exactBlocks++;
          }
          for (let i = 0; i < h.length; i++) {
            const w = writes[h[i]];
            const isIn = i <= j;
            if (w.completed < ts) {
              if (!isIn)
                problem(
                  `block ${b}: write ${w.id} completed before the snapshot was requested, but the block holds ` +
                    `${seen === 0 ? 'zeros' : `write ${seen}`}`,
                );
            } else if (w.issued > te) {
              if (isIn)
                problem(
                  `block ${b}: holds write ${seen}, but write ${w.id} was issued after the snapshot was returned`,
                );
            } else {
              const before = decided.get(w.id);
              if (before !== undefined && before !== isIn)
                problem(
                  `write ${w.id} (lba ${w.lba}+${w.blocks}) is torn: in the snapshot at some blocks, not at block ${b}`,
                );
              decided.set(w.id, isIn);
            }
          }
        }
        // One instant: no write that is out completed before a write that is in was issued.
        const ins = [...decided].filter(([, v]) => v).map(([id]) => writes[id]);
        const outs = [...decided].filter(([, v]) => !v).map(([id]) => writes[id]);
        for (const i of ins) {
          for (const o of outs)
            if (o.completed < i.issued)
              problem(
                `not one instant: write ${i.id} is in, but write ${o.id}, completed before it was issued, is out`,
              );
        }
        assert.deepEqual(problems, [], `${name} ${where}`);
        const expected = Buffer.alloc(BLOCKS * BS);
        for (let b = 0; b < BLOCKS; b++) {
          const h = history[b];
          let id = 0;
          for (const x of h) {
            const w = writes[x];
            if (w.completed < ts || (w.issued <= te && decided.get(x))) id = x;
          }
          if (id) stamp(id, b, 1, expected, b * BS);
        }
        return { expected, ambiguous: decided.size, ambiguousIn: ins.length, written, exactBlocks };
      };

      const readLun = async (lun: number): Promise<Buffer> => {
        const dev = await RemoteBlockDevice.open(reader, lun);
        assert.equal(dev.blockCount, BLOCKS);
        return Buffer.from(await dev.read(0, BLOCKS));
      };
      /** A snapshot, read whole over iSCSI and digested on the node, is still its expected image. */
      const check = async (s: Snap, when: string): Promise<void> => {
        const image = await readLun(s.rec.lun);
        assert.ok(
          image.equals(s.expected),
          `snapshot ${s.round} (LUN ${s.rec.lun}) ${when}: iSCSI read differs from its instant ${where}`,
        );
        const d = await client.digest(s.rec.lun, WHOLE);
        assert.deepEqual(
          d,
          { sha256: s.sha, bytes: BLOCKS * BS },
          `snapshot ${s.round} (LUN ${s.rec.lun}) ${when}: digest on the node ${where}`,
        );
      };

      // ---- rounds: snapshot, check, and delete some while the writers go on ----
      const live: Snap[] = [];
      const stats: string[] = [];
      const remove = async (victim: Snap, what: string): Promise<void> => {
        await moreWrites(WRITES_PER_ROUND / 4); // its store (if newest) gets chunks to move
        const held = (await client.getSnapshot(victim.rec.id))?.preservedChunks;
        assert.ok(
          held !== undefined && held > 0,
          `snapshot ${victim.round} holds chunks of its own (${held}): the delete has chunks to move`,
        );
        const rest = live.filter((s) => s !== victim);
        // Reads of the others run during the delete (chunks moving to the predecessor) and after.
        await Promise.all([
          client.deleteSnapshot(victim.rec.id),
          ...rest.map((s) => check(s, `while snapshot ${victim.round} (${what}) is deleted`)),
        ]);
        live.splice(live.indexOf(victim), 1);
        assert.deepEqual(
          (await client.listSnapshots(0)).map((r) => r.id),
          live.map((s) => s.rec.id),
          `after deleting snapshot ${victim.round}`,
        );
        assert.ok(
          !(await client.listLuns()).some((l) => l.lun === victim.rec.lun || l.snapshotId === victim.rec.id),
          `snapshot ${victim.round}'s LUN is unmapped`,
        );
        await moreWrites(WRITES_PER_ROUND / 4);
        for (const s of live) await check(s, `after snapshot ${victim.round} (${what}) was deleted`);
      };

      for (let round = 1; round <= ROUNDS; round++) {
        await moreWrites(WRITES_PER_ROUND);
        const ts = ++clock;
        const rec = await client.createSnapshot(0, { quietPeriodMs: 0 });
        const te = ++clock;
        assert.equal(rec.mode, 'crash-consistent');
        assert.equal(rec.sourceLun, 0);
        assert.ok(
          rec.lun > 0 && !live.some((s) => s.rec.lun === rec.lun),
          `snapshot ${round} has its own LUN (${rec.lun})`,
        );
        const image = await readLun(rec.lun); // at once: the writers' redirects race this read
        const cut = resolveCut(`snapshot ${round}`, image, ts, te);
        assert.ok(image.equals(cut.expected), `snapshot ${round}: iSCSI read is not the image of its instant ${where}`);
        const snap: Snap = { rec, round, expected: cut.expected, sha: sha256(cut.expected) };
        const prev = live.at(-1);
        if (prev)
          assert.notEqual(
            snap.sha,
            prev.sha,
            `snapshot ${round} differs from snapshot ${prev.round}: writes went on between them`,
          );
        live.push(snap);
        // Once later writes have overwritten (so preserved) its chunks: it and the older ones again.
        await moreWrites(WRITES_PER_ROUND / 4);
        for (const s of live) await check(s, `in round ${round}`);
        const writesBefore = writes.filter((w) => w.completed < ts).length;
        stats.push(
          `#${round}: ${writesBefore} writes before, ${cut.ambiguous} ambiguous (${cut.ambiguousIn} in), ` +
            `${cut.exactBlocks} of ${cut.written} written blocks certain`,
        );
        // Not vacuous: most of the written blocks hold data written before the instant, pinned down exactly.
        assert.ok(cut.written > 0 && cut.exactBlocks > cut.written / 2, stats.at(-1));

        if (round === 3) await remove(live[0], 'the oldest'); // 1,2,3 → 2,3
        if (round === 4) await remove(live[1], 'a middle one'); // 2,3,4 → 2,4
        if (round === 5) await remove(live[2], 'the newest'); // 2,4,5 → 2,4 (5's chunks go to 4 under the gate)
        if (round === 6) await remove(live[1], 'a middle one'); // 2,4,6 → 2,6
      }
      assert.deepEqual(
        live.map((s) => s.round),
        [2, 6],
      );

      // Writers stop: the LUN itself is exactly every write, and the survivors are unchanged.
      stop = true;
      await Promise.all(writers);
      if (failed) throw failed;
      const final = Buffer.alloc(BLOCKS * BS);
      for (let b = 0; b < BLOCKS; b++) if (history[b].length) stamp(history[b].at(-1)!, b, 1, final, b * BS);
      assert.ok((await readLun(0)).equals(final), `LUN 0 after the writers stopped ${where}`);
      assert.equal((await client.digest(0, WHOLE)).sha256, sha256(final));
      for (const s of live) await check(s, 'after the writers stopped');
      while (live.length > 0) {
        const victim = live.shift()!;
        await client.deleteSnapshot(victim.rec.id);
        for (const s of live) await check(s, `after snapshot ${victim.round} was deleted at the end`);
      }
      assert.deepEqual(await client.listSnapshots(0), []);
      assert.deepEqual(
        (await client.listLuns()).map((l) => l.lun),
        [0],
      );
      t.diagnostic(`${writes.length - 1} writes by ${WRITERS} writers ${where}; ${stats.join('; ')}`);
    } finally {
      stop = true;
      for (const s of sessions) await s.logout().catch(() => undefined);
      await node.close();
      await Promise.allSettled(writers);
      await rm(dir, { recursive: true, force: true });
    }
  },
);
