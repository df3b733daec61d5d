import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Target } from '../../src/iscsi-target/target.ts';
import { TargetServer } from '../../src/iscsi-target/server.ts';
import { openDiskLu, closeDiskLu } from '../../src/storage-node/storage-node.ts';
import type { ChapSecret } from '../../src/iscsi/chap.ts';

export const TEST_IQN = 'iqn.2026-11.dev.ferry:test';

export interface RunningTarget {
  server: TargetServer;
  target: Target;
  host: string;
  port: number;
  dir: string;
  url(lun?: number): string;
  close(): Promise<void>;
}

/** An in-process Ferry target on 127.0.0.1:<random port> with disk LUNs in a temp dir. */
export async function startTestTarget(
  opts: {
    disks?: number[];
    blockSize?: number;
    iqn?: string;
    chap?: ChapSecret;
    mutualChap?: ChapSecret;
    allowed?: string[];
  } = {},
): Promise<RunningTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-target-'));
  const iqn = opts.iqn ?? TEST_IQN;
  const target = new Target({
    name: iqn,
    chap: opts.chap,
    mutualChap: opts.mutualChap,
    allowedInitiators: opts.allowed,
  });
  const sizes = opts.disks ?? [64 << 20];
  for (let i = 0; i < sizes.length; i++) {
    target.addLun(i, await openDiskLu(iqn, join(dir, `disk${i}.img`), opts.blockSize ?? 512, sizes[i]));
  }
  // FERRY_TEST_LOG=FILE writes the target's debug log there.
  const log = process.env.FERRY_TEST_LOG
    ? pino({ level: 'debug' }, pino.destination({ dest: process.env.FERRY_TEST_LOG, sync: true }))
    : undefined;
  const server = new TargetServer({ targets: [target], log });
  const { host, port } = await server.listen('127.0.0.1', 0);
  return {
    server,
    target,
    host,
    port,
    dir,
    url: (lun = 0) => `iscsi://${host}:${port}/${iqn}/${lun}`,
    async close() {
      await server.close();
      await Promise.all([...target.luns.values()].map(closeDiskLu));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
