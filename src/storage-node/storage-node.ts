import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { FileDevice } from '../block/file-device.ts';
import { DiskLu } from '../scsi/disk-lu.ts';
import { luIdentity, type LuIdentity } from '../scsi/identity.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import type { TargetConfig } from './config.ts';
import { UsageError } from '../util/errors.ts';
import { DirLunRegistry } from './lun-registry.ts';
import { SnapshotService } from './node-service.ts';
import { startSnapshotApi, type SnapshotApiServer } from './api.ts';
import { readTokenFile } from '../util/bearer-token.ts';
import { openTapeLuns, type TapeLuns } from './tape-library.ts';
import { TapeDriveLu } from '../scsi/ssc.ts';
import { attachCopyManager } from '../xcopy/attach.ts';
import type { RemoteCopyTargets } from '../xcopy/copy-target.ts';
import { PortalCopyTargets } from '../initiator/copy-targets.ts';
import { tapeDigestSource } from './tape-digest.ts';

/** Every disk LU (snapshots included) is also a copy manager: EXTENDED COPY, VPD 8Fh, 3PC (DESIGN.md). */
function diskLu(
  device: ConstructorParameters<typeof DiskLu>[0],
  identity: LuIdentity,
  remote?: RemoteCopyTargets,
): DiskLu {
  const lu = new DiskLu(device, { identity });
  attachCopyManager(lu, { remote });
  return lu;
}

/** A running storage node: one portal, one target, its LUNs, snapshots, and (optionally) the API. */
export interface StorageNode {
  readonly server: TargetServer;
  readonly target: Target;
  readonly registry: DirLunRegistry;
  readonly snapshots: SnapshotService;
  readonly address: { host: string; port: number };
  readonly api?: { host: string; port: number };
  readonly tapes: TapeLuns;
  close(): Promise<void>;
}

/** Flush and close a disk LU and the image file under it (the LU does not own its device). */
export async function closeDiskLu(lu: LogicalUnit): Promise<void> {
  await lu.close();
  if (lu instanceof DiskLu) await lu.device.close();
}

/** A plain disk LU over a (sparse) image file, with an identity stable across restarts. */
export async function openDiskLu(iqn: string, path: string, blockSize: number, sizeBytes?: number): Promise<DiskLu> {
  const abs = resolve(path);
  const dev = await FileDevice.open(abs, { blockSize, sizeBytes }).catch((e: Error) => {
    throw new UsageError(
      `${e.message}${sizeBytes === undefined ? ` (give a size, e.g. ${path}:64M, to create it)` : ''}`,
    );
  });
  if (dev.blockCount === 0) {
    await dev.close();
    throw new UsageError(`${path} is empty: give a size, e.g. ${path}:64M`);
  }
  return diskLu(dev, luIdentity(`${iqn}|${abs}`));
}

/**
 * Start the storage node. Every disk LUN goes through the LUN registry, so its writes pass
 * the redirect-on-write snapshot layer whether or not the API is enabled: snapshots taken in an
 * earlier run stay consistent.
 */
export async function startStorageNode(cfg: TargetConfig, log: Logger): Promise<StorageNode> {
  const target = new Target({
    name: cfg.iqn,
    chap: cfg.chap,
    mutualChap: cfg.mutualChap,
    allowedInitiators: cfg.allowedInitiators,
  });
  // Copy managers reach LUs on other targets only through the configured copy portals.
  const remote = cfg.copyPortals.length
    ? new PortalCopyTargets({ initiatorName: `${cfg.iqn}:copy-manager`, portals: cfg.copyPortals, log })
    : undefined;
  // Tape first: a library's changer is LUN 0 and its drives LUN 1, 2, …; disks follow.
  const tapes: TapeLuns = await openTapeLuns(cfg.tapes, 0);
  for (const [lun, lu] of tapes.luns) {
    // Tape drives are copy managers too (SPC-4 6.4); the changer is not.
    if (lu instanceof TapeDriveLu) attachCopyManager(lu, { remote });
    target.addLun(lun, lu);
  }
  const registry = await DirLunRegistry.open(resolve(cfg.lunDir), {
    blockSize: cfg.blockSize,
    images: cfg.disks.map((d) => ({ path: d.path, sizeBytes: d.sizeBytes })),
    hooks: {
      allocate: () => target.nextFreeLun(),
      // Each snapshot LUN gets its own NAA and serial (SPC-4 7.8.6); the API reports the same NAA.
      identity: (info) =>
        luIdentity(info.kind === 'snapshot' ? `${cfg.iqn}|snapshot|${info.snapshotId}` : `${cfg.iqn}|lun|${info.lun}`),
      added: (info, device, identity) => {
        target.addLun(info.lun, diskLu(device, identity, remote));
        log.info({ lun: info.lun, kind: info.kind, blocks: info.blockCount, snapshot: info.snapshotId }, 'LUN mapped');
      },
      removed: async (lun) => {
        await target.removeLun(lun)?.close();
        log.info({ lun }, 'LUN unmapped');
      },
    },
  }).catch(async (e: Error) => {
    await tapes.close();
    throw e instanceof UsageError ? e : new UsageError(e.message);
  });
  const snapshots = new SnapshotService(registry, { name: `storage node ${cfg.iqn}` });
  let api: SnapshotApiServer | undefined;
  const server = new TargetServer({ targets: [target], log });
  try {
    await snapshots.start();
    if (target.luns.size === 0 && !cfg.api)
      throw new UsageError(
        'no LUNs: give at least one --disk FILE:SIZE, --library DIR or --tape FILE (or --api to create LUNs through ' +
          'the API)',
      );
    if (cfg.api) {
      const token = await readTokenFile(cfg.apiTokenFile!);
      // A node that serves tapes also digests cartridge blocks (verify where the tapes live).
      const digests = tapes.luns.length ? tapeDigestSource(tapes, snapshots.name) : undefined;
      api = await startSnapshotApi(snapshots, { host: cfg.api.host, port: cfg.api.port, token, tapes: digests });
    }
    const address = await server.listen(cfg.listen.host, cfg.listen.port).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${e.code ?? e.message}`);
    });
    return {
      server,
      target,
      registry,
      snapshots,
      address,
      api: api?.address,
      tapes,
      async close() {
        await api?.close();
        await server.close();
        // Closing the registry flushes and closes every image (SYNCHRONIZE CACHE on shutdown).
        await registry.close();
        await tapes.close();
        await remote?.close();
      },
    };
  } catch (e) {
    await api?.close();
    await server.close();
    await registry.close();
    await tapes.close();
    await remote?.close();
    throw e;
  }
}
