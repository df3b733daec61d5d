import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { MemoryDevice } from '../block/memory-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { attachCopyManager } from '../xcopy/attach.ts';
import { DEFAULT_LIMITS, encodeXcopyParameterList, type CscdInput } from '../xcopy/descriptors.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { InitiatorSession } from './session.ts';
import { CopyClient, CopyFailedError } from './copy-client.ts';
import { ScsiOpcode } from '../scsi/opcodes.ts';
import { buildInquiry, buildTestUnitReady } from '../scsi/cdb/spc.ts';

// The copy client against a real copy manager over iSCSI. The EXTENDED COPY status is held back
// after the copy ends, so every run has polls landing in the window where the copy manager has
// already handed out its one final COPY STATUS (the race that failed `ferry demo` 6 times in 25).

const IQN = 'iqn.2026-11.dev.ferry:copy-client-test';
const BLOCKS = 2048;

/** `holdStatusMs`: after the copy, before its status; `delayStartMs`: before the copy starts. */
async function world(holdStatusMs: number, o: { delayStartMs?: number; onStatusSent?: () => void } = {}) {
  const src = new MemoryDevice(512, BLOCKS);
  randomFillSync(src.bytes);
  const dst = new MemoryDevice(512, BLOCKS);
  const luns = [new DiskLu(src, { identity: luIdentity('cc|0') }), new DiskLu(dst, { identity: luIdentity('cc|1') })];
  const cm = attachCopyManager(luns[0]);
  // Hold EXTENDED COPY's status back after the copy has finished.
  luns[0].extend({
    commands: [
      [
        ScsiOpcode.EXTENDED_COPY,
        {
          name: 'EXTENDED COPY',
          cdbLength: 16,
          handler: () => undefined,
          serviceActions: new Map([
            [
              0x00,
              {
                name: 'EXTENDED COPY(LID1)',
                cdbLength: 16,
                handler: async (task) => {
                  if (o.delayStartMs) await new Promise((resolve) => setTimeout(resolve, o.delayStartMs));
                  const r = await cm.extendedCopy(task);
                  await new Promise((resolve) => setTimeout(resolve, holdStatusMs));
                  o.onStatusSent?.();
                  return r;
                },
              },
            ],
          ]),
        },
      ],
    ],
  });
  const target = new Target({ name: IQN });
  luns.forEach((lu, i) => target.addLun(i, lu));
  const server = new TargetServer({ targets: [target] });
  const { port } = await server.listen('127.0.0.1', 0);
  const s = await InitiatorSession.login({
    host: '127.0.0.1',
    port,
    initiatorName: 'iqn.2026-11.dev.ferry:cc-i',
    targetName: IQN,
  });
  const naa = async (lun: number) =>
    decodeDeviceIdentificationPage((await s.command(lun, buildInquiry(255, 0x83), { inLength: 255 })).data).find(
      (d) => d.designatorType === 3,
    )!;
  const disk = async (lun: number): Promise<CscdInput> => ({
    ...(await naa(lun)),
    peripheralDeviceType: 0,
    pad: false,
    fixed: false,
    blockLength: 512,
  });
  const cscds = [await disk(0), await disk(1)];
  return {
    s,
    src,
    dst,
    cscds,
    async close() {
      s.close();
      await server.close();
    },
  };
}

test(
  'copy client: a poll that takes the final COPY STATUS before the EXTENDED COPY status is not lost (20 ' + 'runs)',
  async () => {
    const w = await world(120);
    try {
      const client = new CopyClient(w.s, 0);
      for (let run = 0; run < 20; run++) {
        const listId = (run % 250) + 1;
        const list = encodeXcopyParameterList({
          header: { listId, str: false, listIdUsage: 0, priority: 0 },
          cscds: w.cscds,
          segments: [
            {
              type: 0x02,
              cat: false,
              dc: false,
              source: 0,
              destination: 1,
              blockCount: BLOCKS,
              sourceLba: 0,
              destinationLba: 0,
            },
          ],
        });
        const out = await client.run(list, { listId, pollMs: 5 });
        assert.equal(out.transferBytes, BLOCKS * 512, `run ${run}`);
        assert.equal(out.segmentsProcessed, 1);
        // The window was hit: the final status came from a poll, and the copy manager holds no more.
        assert.equal(out.finalFromPoll, true, `run ${run}: no poll landed in the window`);
        assert.equal(
          await client.copyStatus(listId),
          undefined,
          'asking again finds no held status (what failed the old demo)',
        );
      }
      assert.deepEqual(Buffer.from(w.dst.bytes), Buffer.from(w.src.bytes));
    } finally {
      await w.close();
    }
  },
);

test('copy client: without the window the final COPY STATUS is read after GOOD', async () => {
  const w = await world(0);
  try {
    const list = encodeXcopyParameterList({
      header: { listId: 9, str: false, listIdUsage: 0, priority: 0 },
      cscds: w.cscds,
      segments: [
        {
          type: 0x02,
          cat: false,
          dc: false,
          source: 0,
          destination: 1,
          blockCount: 64,
          sourceLba: 0,
          destinationLba: 0,
        },
      ],
    });
    const out = await new CopyClient(w.s, 0).run(list, { listId: 9, pollMs: 10_000 });
    assert.deepEqual([out.transferBytes, out.polls, out.finalFromPoll], [64 * 512, 0, false]);
  } finally {
    await w.close();
  }
});

test('copy client: a failed copy names the segment, the sense in words and the device that failed', async () => {
  const w = await world(0);
  try {
    const list = encodeXcopyParameterList({
      header: { listId: 3, str: false, listIdUsage: 0, priority: 0 },
      cscds: w.cscds,
      segments: [
        {
          type: 0x02,
          cat: false,
          dc: false,
          source: 0,
          destination: 1,
          blockCount: 8,
          sourceLba: 0,
          destinationLba: 0,
        },
        {
          type: 0x02,
          cat: false,
          dc: false,
          source: 0,
          destination: 1,
          blockCount: 8,
          sourceLba: 0,
          destinationLba: BLOCKS - 4,
        },
      ],
    });
    const err = await new CopyClient(w.s, 0).run(list, { listId: 3, what: 'backup of store:0' }).then(
      () => assert.fail('expected CopyFailedError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CopyFailedError, String(err));
    assert.equal(err.segment, 1);
    assert.equal(err.culprit, 'destination');
    assert.match(
      err.message,
      new RegExp(
        String.raw`^backup of store:0: EXTENDED COPY ended with CHECK CONDITION, COPY ABORTED: ` +
          String.raw`COPY TARGET DEVICE NOT REACHABLE \(a\/0d\/02\), at segment 1, ` +
          String.raw`the copy destination reported ILLEGAL REQUEST: LBA OUT OF RANGE \(5\/21\/00\)\.`,
      ),
    );
  } finally {
    await w.close();
  }
});

test('copy client: OPERATING PARAMETERS decode to the limits the copy manager enforces', async () => {
  const w = await world(0);
  try {
    const p = await new CopyClient(w.s, 0).operatingParameters();
    const { supportsNoListId, implementedDescriptorCodes, ...limits } = p;
    assert.deepEqual(limits, DEFAULT_LIMITS);
    assert.equal(supportsNoListId, true);
    assert.ok(implementedDescriptorCodes.includes(0x00) && implementedDescriptorCodes.includes(0xe4));
  } finally {
    await w.close();
  }
});

test('copy client: canceling a running copy sends ABORT TASK and returns without waiting for its status', async () => {
  let statusSent = false;
  const w = await world(0, { delayStartMs: 1500, onStatusSent: () => (statusSent = true) });
  try {
    const list = encodeXcopyParameterList({
      header: { listId: 4, str: false, listIdUsage: 0, priority: 0 },
      cscds: w.cscds,
      segments: [
        {
          type: 0x02,
          cat: false,
          dc: false,
          source: 0,
          destination: 1,
          blockCount: 64,
          sourceLba: 0,
          destinationLba: 0,
        },
      ],
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await new CopyClient(w.s, 0).run(list, { listId: 4, pollMs: 10, signal: ac.signal }).then(
      () => assert.fail('expected ERR_CANCELED'),
      (e: unknown) => e as { code?: string },
    );
    assert.equal(err.code, 'ERR_CANCELED');
    assert.equal(statusSent, false, 'returned before the target would have sent the status');
    // The session is still usable: TEST UNIT READY.
    assert.equal((await w.s.command(0, buildTestUnitReady())).status, 0);
    // Once the delayed start has passed, the aborted task's copy did not run.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(statusSent, false);
    assert.ok(
      w.dst.bytes.every((b) => b === 0),
      'the destination was not written',
    );
  } finally {
    await w.close();
  }
});

test(
  'copy client: a copy that makes no progress for stallMs is aborted (ABORT TASK) and reported as ' + 'stalled',
  async () => {
    let statusSent = false;
    const w = await world(0, { delayStartMs: 1500, onStatusSent: () => (statusSent = true) });
    try {
      const list = encodeXcopyParameterList({
        header: { listId: 5, str: false, listIdUsage: 0, priority: 0 },
        cscds: w.cscds,
        segments: [
          {
            type: 0x02,
            cat: false,
            dc: false,
            source: 0,
            destination: 1,
            blockCount: 64,
            sourceLba: 0,
            destinationLba: 0,
          },
        ],
      });
      const err = await new CopyClient(w.s, 0)
        .run(list, { listId: 5, pollMs: 10, stallMs: 200, what: 'backup of store:0' })
        .then(
          () => assert.fail('expected ERR_COPY_STALLED'),
          (e: unknown) => e as { code?: string; message: string },
        );
      assert.equal(err.code, 'ERR_COPY_STALLED');
      assert.match(err.message, /^backup of store:0: the copy manager reported no progress for 0.2 s \(at 0 bytes\)/);
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(statusSent, false, 'the stalled copy was aborted before it started');
      assert.ok(
        w.dst.bytes.every((b) => b === 0),
        'the destination was not written',
      );
    } finally {
      await w.close();
    }
  },
);
