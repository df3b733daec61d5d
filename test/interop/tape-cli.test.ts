// The tape library as users run it: `ferry target --library DIR …` in its own process. A writer
// streams records to a drive loaded through the changer; the target is SIGKILLed mid-stream and
// restarted; the inventory still has the cartridge in the drive and every acknowledged record
// reads back. `ferry vtl ls` agrees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTarget, FERRY_BIN, NODE_FLAGS } from '../helpers/ferry-cli.ts';
import { login, settle, record, streamUntilKilled } from './tape-script.ts';
import type { CartridgeListing } from '../../src/cli/vtl.ts';
import { buildMoveMedium } from '../../src/scsi/cdb/smc.ts';
import { buildRead6 } from '../../src/scsi/cdb/ssc.ts';

const IQN = 'iqn.2026-11.dev.ferry:vtl-cli';
const recordLength = (i: number): number => 8192 + ((i * 4099) % 50000);

test(
  'ferry target --library: SIGKILL while streaming, restart, inventory and acknowledged records ' + 'intact',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-tape-cli-'));
    const vtl = join(dir, 'vtl');
    const args = ['--iqn', IQN, '--library', vtl, '--drives', '1', '--slots', '3', '--cartridge-size', '256M'];
    let tgt = await spawnTarget(args);
    try {
      assert.deepEqual(
        (tgt.logs.find((l) => l.msg === 'target ready')!.luns as Array<{ lun: number; kind: string }>).map((l) => [
          l.lun,
          l.kind,
        ]),
        [
          [0, 'changer'],
          [1, 'drive'],
        ],
      );
      const s = await login('127.0.0.1', tgt.port, IQN);
      await settle(s, 0);
      assert.equal((await s.command(0, buildMoveMedium(0, 0x1001, 0x100), { allowCheckCondition: true })).status, 0);
      await settle(s, 1);
      const acked = await streamUntilKilled(s, 1, recordLength, 200, () => tgt.proc.kill('SIGKILL'));
      await tgt.stop();

      tgt = await spawnTarget(args);
      const s2 = await login('127.0.0.1', tgt.port, IQN);
      await settle(s2, 1); // the inventory put FER002L8 back into the drive
      let i = 0;
      for (; ; i++) {
        const r = await s2.command(1, buildRead6(65536), { inLength: 65536, allowCheckCondition: true });
        if (r.status !== 0 && r.sense?.key === 0x8) break; // end of data
        assert.ok(Buffer.from(r.data).equals(record(i, recordLength(i))), `record ${i} reads back intact`);
      }
      assert.ok(i >= acked + 1, `read back ${i} records, ${acked + 1} were acknowledged`);
      await s2.logout();
      await tgt.stop();

      const { stdout } = await promisify(execFile)(
        process.execPath,
        [...NODE_FLAGS, FERRY_BIN, 'vtl', 'ls', vtl, '--json'],
        { encoding: 'utf8' },
      );
      const rows = JSON.parse(stdout) as CartridgeListing[];
      const inDrive = rows.find((r) => r.location === 'drive 0');
      assert.equal(inDrive?.barcode, 'FER002L8');
      assert.equal(inDrive?.objects, i);
      assert.deepEqual(
        rows.filter((r) => r.location.startsWith('slot')).map((r) => r.barcode),
        ['FER001L8', 'FER003L8'],
      );
    } finally {
      await tgt.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  },
);
