// libiscsi's iscsi-test-cu against a `ferry target` disk LUN whose control mode page has
// D_SENSE=1 (set through our initiator with MODE SELECT first): libiscsi decodes every
// CHECK CONDITION as descriptor-format sense (72h) and checks its key/ASC/ASCQ, and
// ModeSense6.Control-D_SENSE checks that the format follows D_SENSE (SPC-4 7.5.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, runTool } from '../helpers/tools.ts';
import { spawnTarget } from '../helpers/ferry-cli.ts';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { buildModeSelect6, buildModeSense6 } from '../../src/scsi/cdb/spc.ts';

const IQN = 'iqn.2026-11.dev.ferry:dsense';

/** The ALL family: every test once (the full run repeats them under SCSI.* too). */
const SUITES = process.env.FERRY_DSENSE_SUITES ?? 'ALL';

async function dSense(port: number): Promise<number> {
  const s = await InitiatorSession.login({
    host: '127.0.0.1',
    port,
    initiatorName: 'iqn.2026-11.dev.ferry:dsense-setup',
    targetName: IQN,
  });
  try {
    const ms = await s.command(0, buildModeSense6(0x0a, { dbd: true }), { inLength: 255 });
    const page = ms.data.subarray(4 + ms.data[3]);
    const param = new Uint8Array(4 + page.length);
    param.set(page, 4);
    param[4 + 2] |= 0x04; // D_SENSE
    await s.command(0, buildModeSelect6(param.length), { dataOut: param });
    const back = await s.command(0, buildModeSense6(0x0a, { dbd: true }), { inLength: 255 });
    return back.data[4 + back.data[3] + 2] & 0x04;
  } finally {
    await s.logout().catch(() => undefined);
  }
}

test(
  "iscsi-test-cu with D_SENSE=1: libiscsi reads Ferry's descriptor-format sense, 0 failed tests",
  { timeout: 300_000 },
  async (t) => {
    if (!requireTools(t, 'iscsi-test-cu')) return;
    const dir = await mkdtemp(join(tmpdir(), 'ferry-dsense-cu-'));
    const tgt = await spawnTarget(['--iqn', IQN, '--disk', `${join(dir, 'lun0.img')}:64M`]);
    try {
      assert.equal(await dSense(tgt.port), 0x04, 'D_SENSE set');
      const url = `iscsi://127.0.0.1:${tgt.port}/${IQN}/0`;
      const { out } = await runTool('iscsi-test-cu', [
        '-V',
        '--dataloss',
        '-i',
        'iqn.2026-11.dev.ferry:client-1',
        '-I',
        'iqn.2026-11.dev.ferry:client-2',
        '-t',
        SUITES,
        url,
      ]);
      const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
      assert.ok(m, `no CUnit summary:\n${out.slice(-3000)}`);
      const [total, ran, passed, failed] = m.slice(1, 5).map(Number);
      console.log(`\n=== iscsi-test-cu with D_SENSE=1: ${passed}/${total} passed, ${failed} failed ===`);
      if (failed) for (const line of out.split('\n')) if (/\[FAILED\]/.test(line)) console.log(`  ${line.trim()}`);
      assert.match(
        out,
        /D_SENSE is set, verify that sense format is descriptor format/,
        'Control-D_SENSE saw D_SENSE=1',
      );
      assert.equal(ran, total, 'every test ran');
      assert.equal(failed, 0);
      assert.ok(passed > 50, `only ${passed} tests passed`);
      // Still set at the end: nothing in these suites resets the LU's mode pages.
      assert.equal(await dSense(tgt.port), 0x04);
    } finally {
      await tgt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
