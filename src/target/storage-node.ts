import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { FileDevice } from '../block/file-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity } from '../scsi/identity.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { Target } from './target.ts';
import { TargetServer } from './server.ts';
import type { TargetConfig } from './config.ts';
import { UsageError } from '../util/errors.ts';
import { attachCopyManager } from '../xcopy/attach.ts';

/** A running storage node: one portal, one target, its LUNs. */
export interface StorageNode {
  readonly server: TargetServer;
  readonly target: Target;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Flush and close a disk LU and the image file under it (the LU does not own its device). */
export async function closeDiskLu(lu: LogicalUnit): Promise<void> {
  await lu.close();
  if (lu instanceof DiskLu) await lu.device.close();
}

/** A disk LU over a (sparse) image file, with an identity stable across restarts. */
export async function openDiskLu(iqn: string, path: string, blockSize: number, sizeBytes?: number): Promise<DiskLu> {
  const abs = resolve(path);
  if (sizeBytes === undefined) {
    const dev = await FileDevice.open(abs, { blockSize }).catch((e: Error) => {
      throw new UsageError(`${e.message} (give a size, e.g. ${path}:64M, to create it)`);
    });
    if (dev.blockCount === 0) throw new UsageError(`${path} is empty: give a size, e.g. ${path}:64M`);
    return withCopyManager(new DiskLu(dev, { identity: luIdentity(`${iqn}|${abs}`) }));
  }
  const dev = await FileDevice.open(abs, { blockSize, sizeBytes });
  return withCopyManager(new DiskLu(dev, { identity: luIdentity(`${iqn}|${abs}`) }));
}

/** Every disk LU is also a copy manager (EXTENDED COPY, DESIGN.md "Any target can be the data mover"). */
function withCopyManager(lu: DiskLu): DiskLu {
  attachCopyManager(lu);
  return lu;
}

export async function startStorageNode(cfg: TargetConfig, log: Logger): Promise<StorageNode> {
  const target = new Target({ name: cfg.iqn, chap: cfg.chap, mutualChap: cfg.mutualChap, allowedInitiators: cfg.allowedInitiators });
  const opened: LogicalUnit[] = [];
  try {
    for (const d of cfg.disks) {
      const lu = await openDiskLu(cfg.iqn, d.path, cfg.blockSize, d.sizeBytes);
      opened.push(lu);
      target.addLun(target.nextFreeLun(), lu);
    }
  } catch (e) {
    await Promise.all(opened.map(closeDiskLu));
    throw e;
  }
  const server = new TargetServer({ targets: [target], log });
  const address = await server.listen(cfg.listen.host, cfg.listen.port).catch(async (e: NodeJS.ErrnoException) => {
    await Promise.all(opened.map(closeDiskLu));
    throw new UsageError(`cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${e.code ?? e.message}`);
  });
  return {
    server,
    target,
    address,
    async close() {
      await server.close();
      // LU close flushes the backing files (SYNCHRONIZE CACHE semantics on shutdown).
      await Promise.all([...target.luns.values()].map(closeDiskLu));
    },
  };
}
