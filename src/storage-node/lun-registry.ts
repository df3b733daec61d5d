import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BlockDevice } from '../block/block-device.ts';
import { FileDevice } from '../block/file-device.ts';
import { luIdentity, type LuIdentity } from '../scsi/identity.ts';
import { FerryError } from '../util/errors.ts';
import { SnapshottableDevice } from '../snapshot/snapshottable-device.ts';

export interface LunInfo {
  lun: number;
  kind: 'disk' | 'snapshot';
  blockSize: number;
  blockCount: number;
  sizeBytes: number;
  readOnly: boolean;
  /** NAA designator (VPD 83h), hex: what an EXTENDED COPY CSCD descriptor names. */
  designator: string;
  /** For a snapshot LUN: the snapshot and the disk LUN it was taken of. */
  snapshotId?: string;
  sourceLun?: number;
}

/**
 * What the management API needs of a storage node's LUN map. src/storage-node implements it over
 * its Target (each disk LUN's BlockDevice wrapped in a SnapshottableDevice); DirLunRegistry is
 * the in-process one over image files in a directory.
 */
export interface LunRegistry {
  list(): LunInfo[];
  /** Create and map a disk LUN of `sizeBytes` (a multiple of the block size); `blockSize` must be the registry's. */
  create(opts: { sizeBytes: number; blockSize?: number }): Promise<LunInfo>;
  /** Unmap a disk LUN and delete its image and snapshot stores. */
  delete(lun: number): Promise<void>;
  /** The device behind any LUN (disk or snapshot), for digests. */
  device(lun: number): BlockDevice | undefined;
  /** The redirect-on-write snapshot device behind a disk LUN. */
  snapshottable(lun: number): SnapshottableDevice | undefined;
  /** Map a snapshot as a read-only LUN with its own identity; returns its LUN number. */
  mapSnapshot(sourceLun: number, snapshotId: string, view: BlockDevice): Promise<number>;
  unmapSnapshot(lun: number): Promise<void>;
}

/** How a DirLunRegistry tells its owner (e.g. an iSCSI target) that LUNs came and went. */
export interface LunHooks {
  /** Pick the LUN number for a new LUN (default: lowest free in this registry). */
  allocate?(): number;
  /**
   * The identity the owner presents for a LUN (NAA, serial). Default: derived from the registry's
   * directory and the LUN number or snapshot id. Its NAA becomes `LunInfo.designator`.
   */
  identity?(info: Omit<LunInfo, 'designator'>): LuIdentity;
  /** Map the LUN with that identity. */
  added?(info: LunInfo, device: BlockDevice, identity: LuIdentity): void | Promise<void>;
  removed?(lun: number): void | Promise<void>;
}

interface Entry {
  info: LunInfo;
  device: BlockDevice;
  snap?: SnapshottableDevice;
  /** An image the target was configured with (not in `dir`): the API may not delete it. */
  configured?: string;
}

export interface ImageSpec {
  path: string;
  /** Create or grow (sparse) to this size. */
  sizeBytes?: number;
}

const IMAGE_RE = /^lun-(\d+)\.img$/;

/**
 * Disk LUNs as sparse image files: the configured `images` first (LUN 0, 1, … in order, as
 * `ferry target --disk` numbers them), then the ones created through the API, `lun-N.img` in
 * `dir`, at their LUN N. Each image keeps its snapshot stores in `<image>.snapshots/`.
 * Reopening with the same images and directory brings the same LUNs back.
 */
export class DirLunRegistry implements LunRegistry {
  readonly dir: string;
  readonly blockSize: number;
  readonly chunkBytes: number | undefined;
  private readonly hooks: LunHooks;
  private readonly luns = new Map<number, Entry>();

  private constructor(dir: string, blockSize: number, chunkBytes: number | undefined, hooks: LunHooks) {
    this.dir = dir;
    this.blockSize = blockSize;
    this.chunkBytes = chunkBytes;
    this.hooks = hooks;
  }

  static async open(
    dir: string,
    opts: { blockSize?: number; chunkBytes?: number; hooks?: LunHooks; images?: readonly ImageSpec[] } = {},
  ): Promise<DirLunRegistry> {
    const reg = new DirLunRegistry(dir, opts.blockSize ?? 512, opts.chunkBytes, opts.hooks ?? {});
    for (const img of opts.images ?? []) await reg.attachImage(img);
    // The directory appears with the first LUN created through the API.
    const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    for (const name of names.sort()) {
      const m = IMAGE_RE.exec(name);
      if (m) await reg.openDisk(Number(m[1]));
    }
    return reg;
  }

  list(): LunInfo[] {
    return [...this.luns.values()].map((e) => ({ ...e.info })).sort((a, b) => a.lun - b.lun);
  }

  async create(opts: { sizeBytes: number; blockSize?: number }): Promise<LunInfo> {
    const { sizeBytes } = opts;
    if (opts.blockSize !== undefined && opts.blockSize !== this.blockSize) {
      const why = `block size ${opts.blockSize}: this node's LUNs have ${this.blockSize}-byte blocks`;
      throw new FerryError('ERR_BAD_REQUEST', why);
    }
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % this.blockSize !== 0) {
      throw new FerryError(
        'ERR_BAD_REQUEST',
        `LUN size ${sizeBytes} must be a positive multiple of the ${this.blockSize}-byte block`,
      );
    }
    const lun = this.allocate();
    await mkdir(this.dir, { recursive: true });
    try {
      return (await this.openDisk(lun, sizeBytes)).info;
    } catch (e) {
      if ((e as FerryError).code !== 'ERR_LUN_EXISTS') {
        const img = join(this.dir, `lun-${lun}.img`);
        await rm(`${img}.snapshots`, { recursive: true, force: true });
        await rm(img, { force: true });
      }
      throw e;
    }
  }

  async delete(lun: number): Promise<void> {
    const e = this.luns.get(lun);
    if (!e) throw new FerryError('ERR_LUN_NOT_FOUND', `no LUN ${lun}`);
    if (e.info.kind !== 'disk')
      throw new FerryError(
        'ERR_BAD_REQUEST',
        `LUN ${lun} is snapshot ${e.info.snapshotId}: delete the snapshot instead`,
      );
    if (e.configured)
      throw new FerryError(
        'ERR_LUN_CONFIGURED',
        `LUN ${lun} is the configured image ${e.configured}: remove it from the target's configuration instead`,
      );
    this.luns.delete(lun);
    await this.hooks.removed?.(lun);
    await e.device.close();
    const img = join(this.dir, `lun-${lun}.img`);
    await rm(`${img}.snapshots`, { recursive: true, force: true });
    await rm(img, { force: true });
  }

  device(lun: number): BlockDevice | undefined {
    return this.luns.get(lun)?.device;
  }

  snapshottable(lun: number): SnapshottableDevice | undefined {
    return this.luns.get(lun)?.snap;
  }

  async mapSnapshot(sourceLun: number, snapshotId: string, view: BlockDevice): Promise<number> {
    const lun = this.allocate();
    const { info, identity } = this.identify({
      lun,
      kind: 'snapshot',
      blockSize: view.blockSize,
      blockCount: view.blockCount,
      sizeBytes: view.blockSize * view.blockCount,
      readOnly: true,
      snapshotId,
      sourceLun,
    });
    this.luns.set(lun, { info, device: view });
    try {
      await this.hooks.added?.(info, view, identity);
    } catch (e) {
      this.luns.delete(lun);
      throw e;
    }
    return lun;
  }

  async unmapSnapshot(lun: number): Promise<void> {
    const e = this.luns.get(lun);
    if (!e || e.info.kind !== 'snapshot') return;
    this.luns.delete(lun);
    await this.hooks.removed?.(lun);
  }

  async close(): Promise<void> {
    for (const [lun, e] of this.luns) {
      await this.hooks.removed?.(lun);
      if (e.info.kind === 'disk') await e.device.close();
    }
    this.luns.clear();
  }

  private identify(base: Omit<LunInfo, 'designator'>): { info: LunInfo; identity: LuIdentity } {
    const seed = `${resolve(this.dir)}|${base.kind === 'snapshot' ? `snapshot|${base.snapshotId}` : `lun|${base.lun}`}`;
    const identity = this.hooks.identity?.(base) ?? luIdentity(seed);
    return { info: { ...base, designator: Buffer.from(identity.naa).toString('hex') }, identity };
  }

  private allocate(): number {
    if (this.hooks.allocate) return this.hooks.allocate();
    let n = 0;
    while (this.luns.has(n)) n++;
    return n;
  }

  /** Serve an image file from outside `dir` as the next disk LUN. */
  async attachImage(spec: ImageSpec): Promise<LunInfo> {
    return (await this.openDisk(this.allocate(), spec.sizeBytes, resolve(spec.path))).info;
  }

  private async openDisk(lun: number, sizeBytes?: number, configured?: string): Promise<Entry> {
    if (this.luns.has(lun)) throw new FerryError('ERR_LUN_EXISTS', `LUN ${lun} is in use`);
    const img = configured ?? join(this.dir, `lun-${lun}.img`);
    const file = await FileDevice.open(img, { blockSize: this.blockSize, sizeBytes });
    let snap: SnapshottableDevice;
    try {
      snap = await SnapshottableDevice.open(file, { dir: `${img}.snapshots`, chunkBytes: this.chunkBytes });
    } catch (e) {
      await file.close();
      throw e;
    }
    const { info, identity } = this.identify({
      lun,
      kind: 'disk',
      blockSize: snap.blockSize,
      blockCount: snap.blockCount,
      sizeBytes: snap.blockSize * snap.blockCount,
      readOnly: false,
    });
    const e: Entry = { info, device: snap, snap, configured };
    this.luns.set(lun, e);
    try {
      await this.hooks.added?.(info, snap, identity);
    } catch (err) {
      this.luns.delete(lun);
      await snap.close();
      throw err;
    }
    return e;
  }
}
