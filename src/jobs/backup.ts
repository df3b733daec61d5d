import { randomUUID } from 'node:crypto';
import { openVolume } from '../ntfs/volume.ts';
import { usedClusters } from '../ntfs/bitmap.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import type { NodeControl, SnapshotRecord } from '../storage-node/node-control.ts';
import { upsertVolume, getVolume, volumeId } from '../catalog/queries/volumes.ts';
import { completeSet, getChain, getSet, claimSetId, type SetPiece } from '../catalog/queries/sets.ts';
import {
  cartridgeResource,
  getCartridge,
  pickWritable,
  release,
  reserve,
  type Cartridge,
  type CartridgeUpdate,
} from '../catalog/queries/cartridges.ts';
import { encodeHeaderAt, encodeRecord, MAX_JSON_BYTES } from '../tapeformat/codec.ts';
import { fileIndexText, type FileIndex, type SetHeader, type SetTrailer } from '../tapeformat/records.ts';
import type { FilePlan } from '../ntfs/plan-tables.ts';
import { fileIndex, planFiles, type ChainSets } from './file-index.ts';
import { listDirectory } from '../catalog/queries/files.ts';
import { namedPaths } from '../ntfs/tree.ts';
import { streamExtents, type StreamExtent } from '../xcopy/list-builder.ts';
import { FerryError } from '../util/errors.ts';
import type { PoolConfig } from '../server/config.ts';
import type { JobContext } from './context.ts';
import { Copier, LIST_BYTES, diskCscd, diskDevice, driveDevice, settledPosition, type JobDevice } from './tape-io.ts';
import { checkBlank, checkLabel, writeLabel } from './label.ts';
import type { MountedDrive } from './site.ts';
import { ServiceError, type BackupLevel, type StartBackup } from './types.ts';
import { acquireDrive, acquireVolume, diskLun, parseVolume } from './resources.ts';
import { deleteOrOwe, payOwedSnapshotDeletes } from './owed-snapshots.ts';

/**
 * A backup job (DESIGN.md "A backup, step by step"): snapshot after a quiet period, plan the
 * extents, mount a cartridge, one or more EXTENDED COPY lists (header, data, trailer, filemark)
 * to a copy manager, then the set in the catalog in one transaction. A set that does not fit
 * on one cartridge continues on the next one of the pool.
 */

export type BackupRequest = Required<Omit<StartBackup, 'mover' | 'pool'>> & { mover?: string; pool?: string };

interface Plan {
  /** `files` mode: every file, for the index in the last trailer. */
  files?: FilePlan;
  level: BackupLevel;
  reason: string | null;
  baseSetId: number | null;
  baseSetUuid: string | null;
  extents: StreamExtent[];
  streamBytes: number;
}

/** Merge sorted-or-not block ranges into sorted, non-overlapping ones. */
function merge(ranges: Array<{ lba: number; blocks: number }>): Array<{ lba: number; blocks: number }> {
  const s = [...ranges].filter((r) => r.blocks > 0).sort((a, b) => a.lba - b.lba);
  const out: Array<{ lba: number; blocks: number }> = [];
  for (const r of s) {
    const last = out.at(-1);
    if (last && r.lba <= last.lba + last.blocks) last.blocks = Math.max(last.blocks, r.lba + r.blocks - last.lba);
    else out.push({ ...r });
  }
  return out;
}

function intersect(
  a: Array<{ lba: number; blocks: number }>,
  b: Array<{ lba: number; blocks: number }>,
): Array<{ lba: number; blocks: number }> {
  const out: Array<{ lba: number; blocks: number }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = Math.max(a[i].lba, b[j].lba);
    const hi = Math.min(a[i].lba + a[i].blocks, b[j].lba + b[j].blocks);
    if (lo < hi) out.push({ lba: lo, blocks: hi - lo });
    if (a[i].lba + a[i].blocks < b[j].lba + b[j].blocks) i++;
    else j++;
  }
  return out;
}

/** The snapshot's LUN, read-only over iSCSI: the server reads metadata through it, never file data. */
async function snapshotDevice(ctx: JobContext, nodeName: string, snap: SnapshotRecord): Promise<RemoteBlockDevice> {
  const s = await ctx.site.session(ctx.site.node(nodeName), 'node');
  return RemoteBlockDevice.open(s, snap.lun, { readOnly: true });
}

/** Block ranges of `a` outside `b` (both sorted, merged). */
function subtract(
  a: Array<{ lba: number; blocks: number }>,
  b: Array<{ lba: number; blocks: number }>,
): Array<{ lba: number; blocks: number }> {
  const out: Array<{ lba: number; blocks: number }> = [];
  let j = 0;
  for (const r of a) {
    let lo = r.lba;
    const hi = r.lba + r.blocks;
    while (j < b.length && b[j].lba + b[j].blocks <= lo) j++;
    for (let k = j; k < b.length && b[k].lba < hi; k++) {
      if (b[k].lba > lo) out.push({ lba: lo, blocks: b[k].lba - lo });
      lo = Math.max(lo, b[k].lba + b[k].blocks);
    }
    if (lo < hi) out.push({ lba: lo, blocks: hi - lo });
  }
  return out;
}

/** `used` mode: allocated clusters from $Bitmap plus both boot sectors, read over iSCSI from the snapshot. */
async function usedExtents(
  ctx: JobContext,
  nodeName: string,
  snap: SnapshotRecord,
  blockSize: number,
): Promise<Array<{ lba: number; blocks: number }>> {
  const dev = await snapshotDevice(ctx, nodeName, snap);
  let vol;
  try {
    vol = await openVolume(dev);
  } catch (e) {
    throw new FerryError(
      'ERR_NOT_NTFS',
      `volume ${nodeName}:${snap.sourceLun} is not NTFS (${(e as Error).message}): back it up with --mode image`,
    );
  }
  const used = await usedClusters(vol);
  const perCluster = used.clusterSize / blockSize;
  const ranges = used.ranges.map(([c, n]) => ({ lba: c * perCluster, blocks: n * perCluster }));
  // NTFS keeps a copy of the boot sector in the volume's last sector (ntfs.md "Boot sector").
  // The backup boot sector is the sector right after the volume's sectors (boot-sector.ts Geometry).
  const lastBoot = Math.min(
    dev.blockCount - 1,
    Math.floor((vol.geo.totalSectors * vol.geo.bytesPerSector) / blockSize),
  );
  ranges.push({ lba: 0, blocks: 1 }, { lba: lastBoot, blocks: 1 });
  return merge(ranges)
    .filter((r) => r.lba < dev.blockCount)
    .map((r) => ({ lba: r.lba, blocks: Math.min(r.blocks, dev.blockCount - r.lba) }));
}

export async function runBackup(
  ctx: JobContext,
  req: BackupRequest,
): Promise<{ set: number; bytes: number; quietWaitMs: number | null }> {
  const { node, lun } = parseVolume(req.volume);
  const control = await ctx.site.nodeControl(node);
  const info = await diskLun(control, node, lun);
  const vid = volumeId(node, lun);
  const pool = ctx.site.pool(req.pool);
  // The kept change id and the incremental's base are the volume's: read them once no other backup of it runs.
  await acquireVolume(ctx, vid);
  await upsertVolume(ctx.db, {
    node,
    lun,
    designator: info.designator,
    diskBlockBytes: info.blockSize,
    volumeBlocks: info.blockCount,
  });
  const vol = await getVolume(ctx.db, vid);
  const base =
    req.level === 'incremental' && vol?.keptSetId != null && vol.keptChangeId
      ? await getSet(ctx.db, vol.keptSetId)
      : undefined;

  // Snapshots earlier jobs could not delete on this node go first.
  for (const owed of await payOwedSnapshotDeletes(ctx.db, ctx.site, node))
    await ctx.log(owed.jobId === null ? owed.message : `${owed.message} (left by job ${owed.jobId})`);

  // 1. Snapshot once writes pause.
  const quiet =
    `waiting for ${req.quietPeriodMs / 1000} s without writes to ${vid} (timeout ` + `${req.timeoutMs / 1000} s)`;
  await ctx.to('waiting-quiet', quiet, { waitingFor: quiet });
  const watch = setInterval(() => {
    control.activity(lun).then(
      (a) => ctx.update({ lastWriteMsAgo: a.lastWriteMsAgo }),
      () => undefined,
    );
  }, 250);
  let snap: SnapshotRecord;
  try {
    snap = await control.createSnapshot(lun, {
      quietPeriodMs: req.quietPeriodMs,
      timeoutMs: req.timeoutMs,
      signal: ctx.signal,
    });
  } finally {
    clearInterval(watch);
  }
  ctx.update({ lastWriteMsAgo: null });
  try {
    const setId = await claimSetId(ctx.db, ctx.id);
    const snapInfo = await diskLunOrSnapshot(control, snap);
    // 2. Plan.
    await ctx.to(
      'planning',
      `snapshot ${snap.id} taken after waiting ${((snap.waitedMs ?? 0) / 1000).toFixed(1)} s; planning the ` +
        `${req.mode} ${req.level} backup`,
      { data: { snapshot: snap.id, volume: vid } },
    );
    const plan = await makePlan(ctx, req, {
      node,
      lun,
      vid,
      snap,
      base,
      keptChangeId: vol?.keptChangeId ?? null,
      blockSize: info.blockSize,
      blockCount: info.blockCount,
    });
    if (plan.reason) await ctx.log(`running a full backup: ${plan.reason}`);
    ctx.update({ bytesTotal: plan.streamBytes, bytesDone: 0 });
    // A files set's index goes in its last trailer: too large a one fails here, before any tape is written;
    // else every list leaves room for it (its size with every run placed, as a one-piece set would be).
    const indexReserve = plan.files
      ? indexBytes(plan.files, plan.extents, info.blockSize, pool.tapeBlockBytes, plan.baseSetId !== null)
      : 0;
    const digest = control.digest(
      snap.lun,
      plan.extents.map((e) => ({ lba: e.lba, blocks: e.blocks })),
    );
    digest.catch(() => undefined);

    // 3. A drive, then cartridges of the pool, piece by piece.
    const startedAt = new Date().toISOString();
    const setUuid = randomUUID();
    const header: SetHeader = {
      kind: 'header',
      setId,
      setUuid,
      jobId: ctx.id,
      sequence: 1,
      volume: { name: vid, designator: info.designator },
      snapshot: { id: snap.id, takenAt: snap.takenAt },
      mode: req.mode,
      level: plan.level,
      baseSetId: plan.baseSetId,
      baseSetUuid: plan.baseSetUuid,
      diskBlockBytes: info.blockSize,
      volumeBlocks: info.blockCount,
      tapeBlockBytes: pool.tapeBlockBytes,
      extents: plan.extents,
      piece: { streamStart: 0, dataBlockId: 0 },
      startedAt,
      ...(plan.reason ? { reason: plan.reason } : {}),
    };
    const driveName = await acquireDrive(ctx, pool);
    const pieces: SetPiece[] = [];
    const carts: CartridgeUpdate[] = [];
    let pos = 0;
    let sha256: string | null = null;
    // The set ends when its last trailer was composed: the catalog keeps the time the tape says (a rebuild reads it
    // back).
    let endedAt = '';
    let copier: Copier | undefined;
    let index: FileIndex | undefined;
    const disk = diskCscd(snapInfo.designator, info.blockSize);
    do {
      const seq = pieces.length + 1;
      const cart = await nextCartridge(ctx, pool, pieces.length === 0 && carts.length === 0);
      await ctx.to('mounting', `loading cartridge ${cart.barcode} into drive ${driveName}`, {
        data: { cartridge: cart.barcode, drive: driveName },
      });
      ctx.update({ cartridge: cart.barcode });
      const drive = await ctx.site.mount(pool, driveName, cart.barcode);
      if (!copier) copier = await Copier.forJob(ctx, req.mover, drive);
      const devices = [driveDevice(ctx, drive), diskDevice(ctx, node, snap.lun)];
      const start = await prepareCartridge(ctx, drive, pool, cart, copier, devices);
      const h = encodeHeaderAt(
        { ...header, sequence: seq, piece: { streamStart: pos, dataBlockId: 0 } },
        start,
        pool.tapeBlockBytes,
      );
      // Room for the header and at least one data block before the trailer's reserve, or the next cartridge.
      if ((await roomFor(drive, pool.tapeBlockBytes, indexReserve)) < h.bytes.length + pool.tapeBlockBytes) {
        await ctx.log(`cartridge ${cart.barcode} has no room for another set: marked full`);
        carts.push({ barcode: cart.barcode, state: 'full' });
        continue;
      }
      await ctx.to(
        'copying',
        `${seq > 1 ? 'continuing' : 'writing'} set ${setId} on ${cart.barcode} at block ${start}`,
      );
      // One list at a time, each sized to what is left before early warning.
      let end = pos;
      const B = pool.tapeBlockBytes;
      const headerBlocks = h.bytes.length / B;
      let written = 0; // tape blocks this piece's lists wrote: header and data
      for (let first = true; first || end < plan.streamBytes;) {
        const room = await roomFor(drive, B, indexReserve);
        // As few lists as the limits allow: as large as the room before early warning, or LIST_BYTES when the drive
        // does not say.
        const maxListBytes = (room === Number.MAX_SAFE_INTEGER ? LIST_BYTES : room) - (first ? h.bytes.length : 0);
        if (!first && maxListBytes < B) break;
        const ls = copier.lists({
          direction: 'backup',
          disk,
          drive,
          tapeBlockBytes: B,
          diskBlockBytes: info.blockSize,
          extents: plan.extents,
          streamStart: end,
          streamEnd: plan.streamBytes,
          before: first ? h.bytes : undefined,
          maxListBytes,
        });
        // A header larger than the copy manager's inline data comes in lists of its own: all of them go first.
        let k = 0;
        while (k < ls.length - 1 && ls[k].streamEnd === ls[k].streamStart) k++;
        const l = ls[k];
        try {
          for (const r of ls.slice(0, k)) {
            await copier.run(r, `header of set ${setId}`, () => undefined);
            written += r.tapeBlocks;
          }
          const recordBytes = l.tapeBlocks * B - Math.ceil((l.streamEnd - l.streamStart) / B) * B;
          await copier.run(l, `backup of ${vid} (set ${setId})`, (n) =>
            ctx.update({
              bytesDone: l.streamStart + Math.max(0, Math.min(n - recordBytes, l.streamEnd - l.streamStart)),
            }),
          );
          written += l.tapeBlocks;
          end = l.streamEnd;
          first = false;
          ctx.update({ bytesDone: end });
        } catch (e) {
          await copier.failover(e, drive, devices);
          // Resume after the last whole block on tape (the piece's blocks hold its stream in order,
          // list-builder); a header not wholly on tape is written again.
          const settled = await settledPosition(drive);
          if (settled === undefined)
            throw new FerryError(
              'ERR_POSITION_UNKNOWN',
              `drive ${drive.name} cannot report its position, so set ${setId} cannot resume after its data mover ` +
                `failed: run the backup again (nothing is recorded)`,
              { cause: e },
            );
          const done = settled - start;
          const data = done < headerBlocks ? -1 : Math.min(done - headerBlocks, Math.ceil((l.streamEnd - pos) / B));
          first = data < 0;
          end = first ? pos : Math.min(pos + data * B, l.streamEnd);
          written = first ? 0 : headerBlocks + data;
          await drive.drive.locate(start + written);
          await ctx.log(
            `resuming set ${setId} on ${copier.cm.name} at tape block ${start + written} ` +
              `(${first ? 'its header' : `stream byte ${end}`})`,
            { mover: copier.cm.name, tapeBlock: start + written, streamByte: end },
          );
          ctx.update({ bytesDone: end });
        }
      }
      // Nothing is recorded that is not on tape: the lists wrote exactly the header and the data blocks.
      const expectBlocks = h.bytes.length / B + Math.ceil((end - pos) / B);
      if (written !== expectBlocks)
        throw new FerryError(
          'ERR_BACKUP_INCOMPLETE',
          `set ${setId} on ${cart.barcode}: the lists wrote ${written} tape blocks, the header and data need ` +
            `${expectBlocks}; the set is not recorded`,
        );
      const complete = end >= plan.streamBytes;
      if (complete) sha256 = (await digest).sha256;
      const dataBlocks = Math.ceil((end - pos) / pool.tapeBlockBytes);
      const trailer: SetTrailer = {
        kind: 'trailer',
        setId,
        setUuid,
        sequence: seq,
        piece: { streamStart: pos, streamEnd: end, dataBlocks },
        streamBytes: plan.streamBytes,
        complete,
        endedAt: new Date().toISOString(),
        digests: { sha256 },
      };
      if (complete && plan.files) {
        const placed = [
          ...pieces.map((p) => ({
            seq: p.seq,
            dataBlock: p.dataBlock,
            streamStart: p.streamStart,
            streamEnd: p.streamEnd,
          })),
          { seq, dataBlock: h.header.piece.dataBlockId, streamStart: pos, streamEnd: end },
        ];
        index = fileIndex(
          plan.files,
          plan.extents,
          placed,
          info.blockSize,
          B,
          plan.baseSetId === null ? undefined : await chainOf(ctx, plan.baseSetId, plan.files),
        );
        trailer.fileIndex = fileIndexText(index);
      }
      endedAt = trailer.endedAt;
      const tb = encodeRecord(trailer, pool.tapeBlockBytes);
      const trailerBlock = h.header.piece.dataBlockId + dataBlocks;
      const c = copier;
      await c.writeRecords(
        () =>
          c.lists({
            direction: 'backup',
            disk,
            drive,
            tapeBlockBytes: B,
            diskBlockBytes: info.blockSize,
            extents: [],
            streamStart: 0,
            streamEnd: 0,
            after: tb,
            filemark: true,
          }),
        drive,
        trailerBlock,
        `trailer of set ${setId}`,
        devices,
      );
      const endBlock = trailerBlock + tb.length / pool.tapeBlockBytes + 1;
      pieces.push({
        seq,
        cartridge: cart.barcode,
        headerBlock: start,
        dataBlock: start + headerBlocks,
        dataBlocks,
        trailerBlock,
        endBlock,
        streamStart: pos,
        streamEnd: end,
      });
      carts.push({
        barcode: cart.barcode,
        state: complete ? 'append' : 'full',
        endBlock,
        bytesUsed: endBlock * pool.tapeBlockBytes,
        lastWrittenAt: new Date(),
      });
      if (!complete)
        await ctx.log(
          `cartridge ${cart.barcode} reached early warning at stream byte ${end}; the set continues on the next ` +
            `cartridge`,
        );
      pos = end;
    } while (pos < plan.streamBytes || pieces.length === 0); // an empty set still gets its one piece

    // 4. The set, its pieces, the cartridges and the kept change id: one transaction.
    await completeSet(ctx.db, {
      set: {
        id: setId,
        uuid: setUuid,
        volumeId: vid,
        jobId: ctx.id,
        pool: pool.name,
        mode: req.mode,
        level: plan.level,
        baseSetId: plan.baseSetId,
        snapshotId: snap.id,
        snapshotAt: snap.takenAt,
        diskBlockBytes: info.blockSize,
        volumeBlocks: info.blockCount,
        tapeBlockBytes: pool.tapeBlockBytes,
        extents: plan.extents,
        streamBytes: plan.streamBytes,
        sha256,
        reason: plan.reason,
        startedAt,
        endedAt,
      },
      pieces,
      cartridges: carts,
      ...(index ? { files: index } : {}),
      // The next incremental asks the node what changed since this instant: the snapshot can go.
      volume: { keptChangeId: snap.changeId ?? null, keptSetId: setId },
    });
    // A snapshot kept by an older server for its incrementals (its id was the kept change id).
    if (vol?.keptChangeId && (await control.getSnapshot(vol.keptChangeId).catch(() => undefined))) {
      await control
        .deleteSnapshot(vol.keptChangeId)
        .catch((e: Error) => ctx.log(`could not delete old snapshot ${vol.keptChangeId}: ${e.message}`));
    }
    return { set: setId, bytes: copier?.movedBytes ?? 0, quietWaitMs: snap.waitedMs };
  } finally {
    // Done or failed, the snapshot goes: while it lives, every first write to a chunk is copied.
    // Never masks how the job ended: a catalog that cannot record the debt is only logged.
    const gone = await deleteOrOwe(ctx.db, control, { node, snapshotId: snap.id, volumeId: vid, jobId: ctx.id }).catch(
      (e: Error) => ({
        deleted: false,
        message: `could not delete snapshot ${snap.id} (${e.message}): delete it with \`ferry snapshot rm ${snap.id}\``,
      }),
    );
    if (!gone.deleted) await ctx.log(gone.message).catch(() => undefined);
  }
}

/**
 * Bytes the last trailer's file index will take (with 10 % to spare); refuses an index larger
 * than a record may hold (tapeformat MAX_JSON_BYTES), naming the file count.
 */
function indexBytes(
  files: FilePlan,
  extents: readonly StreamExtent[],
  diskBlockBytes: number,
  tapeBlockBytes: number,
  incremental: boolean,
): number {
  const end = extents.reduce((n, e) => n + e.blocks * diskBlockBytes, 0);
  // An incremental's runs outside its extents are placed later, through its chain (null here).
  const probe = fileIndex(
    files,
    extents,
    [{ seq: 1, dataBlock: 2 ** 40, streamStart: 0, streamEnd: end }],
    diskBlockBytes,
    tapeBlockBytes,
    incremental ? { sets: [], deleted: [] } : undefined,
  );
  let json = 0;
  for (const f of probe.files) json += JSON.stringify(f).length + 1;
  if (json > MAX_JSON_BYTES * 0.9) {
    throw new FerryError(
      'ERR_FILE_INDEX_TOO_LARGE',
      `the file index of ${files.fileCount} files would take ${Math.round(json / 2 ** 20)} MiB of JSON, over the ` +
        `${MAX_JSON_BYTES / 2 ** 20} MiB a tape record holds: back up this volume with --mode used (nothing was ` +
        `written)`,
    );
  }
  return Math.ceil(fileIndexText(probe).length * 1.1) + 4096;
}

/** An incremental files set's chain, newest first, and what is gone since its base. */
async function chainOf(ctx: JobContext, baseSetId: number, files: FilePlan): Promise<ChainSets> {
  const sets = (await getChain(ctx.db, baseSetId)).reverse();
  // Every name's path today (hard links are several), as the catalog lists them.
  const now = new Set<string>();
  for (const n of namedPaths([...files.files()])) now.add(n.path);
  const before = await listDirectory(ctx.db, baseSetId, '/', { recursive: true, system: true });
  const deleted = before.filter((r) => !now.has(r.path)).map((r) => r.path);
  if (deleted.length)
    await ctx.log(`${deleted.length} files of set ${baseSetId} are gone (recorded as deleted in the index)`);
  return { sets: sets.map((s) => ({ id: s.id, extents: s.extents })), deleted };
}

async function diskLunOrSnapshot(control: NodeControl, snap: SnapshotRecord): Promise<{ designator: string }> {
  if (snap.designator) return { designator: snap.designator };
  const l = (await control.listLuns()).find((x) => x.lun === snap.lun);
  if (!l) throw new FerryError('ERR_SNAPSHOT_UNMAPPED', `snapshot ${snap.id} has no LUN on its node`);
  return l;
}

async function makePlan(
  ctx: JobContext,
  req: BackupRequest,
  v: {
    node: string;
    lun: number;
    vid: string;
    snap: SnapshotRecord;
    base: Awaited<ReturnType<typeof getSet>>;
    keptChangeId: string | null;
    blockSize: number;
    blockCount: number;
  },
): Promise<Plan> {
  let level: BackupLevel = req.level;
  let reason: string | null = null;
  let ranges: Array<{ lba: number; blocks: number }> = [{ lba: 0, blocks: v.blockCount }];
  if (req.mode === 'used') ranges = await usedExtents(ctx, v.node, v.snap, v.blockSize);
  let files: FilePlan | undefined;
  if (req.mode === 'files') {
    let skipped = 0;
    const dev = await snapshotDevice(ctx, v.node, v.snap);
    ({ plan: files, ranges } = await planFiles(dev, v.vid, (s) => {
      if (skipped++ < 20)
        void ctx.log(`skipped MFT record ${s.record ?? '?'}${s.path ? ` (${s.path})` : ''}: ${s.message}`);
    }));
    await ctx.log(
      `planned ${files.fileCount} files: ${files.extents.length} block ranges of file data and ` +
        `metadata${skipped ? `; ${skipped} malformed MFT records skipped (listed in the set's index)` : ''}`,
    );
  }
  let base = v.base;
  if (level === 'incremental') {
    if (!base || !v.keptChangeId) reason = `no earlier set of ${v.vid} with a change id to build on`;
    else if (base.mode !== req.mode) reason = `the last set of ${v.vid} is ${base.mode}, not ${req.mode}`;
    else if (base.volumeBlocks !== v.blockCount) reason = `${v.vid} changed size since set ${base.id}`;
    if (!reason && base) {
      const control = await ctx.site.nodeControl(v.node);
      const changed = await control
        .changedSince(v.lun, v.keptChangeId as string, { until: v.snap.changeId })
        .catch((e: Error & { code?: string }) => {
          // The node no longer knows the change id (its change map was reset): a full, saying so.
          if (e.code !== 'ERR_CHANGE_ID_NOT_FOUND') throw e;
          return { tracking: 'unknown' as const, reason: e.message, extents: [] };
        });
      if (changed.tracking === 'unknown')
        reason = `the storage node no longer knows the change id of set ${base.id} (${changed.reason})`;
      else if (changed.tracking === 'lost')
        reason = `change tracking since set ${base.id} was lost (${changed.reason ?? 'no reason given'})`;
      else if (req.mode === 'used') ranges = intersect(merge(changed.extents), ranges);
      // files: the changed blocks of today's files, and any block of theirs no set of the chain holds
      // (one that was free then and is a file's now without a write: past its initialized size).
      else if (req.mode === 'files') {
        const held = merge((await getChain(ctx.db, base.id)).flatMap((x) => x.extents));
        ranges = merge([...intersect(merge(changed.extents), merge(ranges)), ...subtract(merge(ranges), held)]);
      } else ranges = merge(changed.extents);
    }
    if (reason) {
      level = 'full';
      base = undefined;
    }
  }
  const extents = streamExtents(merge(ranges), v.blockSize);
  const streamBytes = extents.reduce((n, e) => n + e.blocks * v.blockSize, 0);
  return {
    files,
    level,
    reason,
    baseSetId: level === 'incremental' ? base!.id : null,
    baseSetUuid: level === 'incremental' ? base!.uuid : null,
    extents,
    streamBytes,
  };
}

/**
 * The cartridge for the next piece. A job that holds none yet waits while every writable one
 * is in use by other jobs (see acquireCartridges: no cycle of waits); one that is spanning does not.
 */
async function nextCartridge(ctx: JobContext, pool: PoolConfig, mayWait: boolean): Promise<Cartridge> {
  const where = pool.library ? { library: pool.library } : { library: pool.drive };
  for (let waited = false; ; waited = true) {
    const c = await pickWritable(ctx.db, pool.name, where);
    if (c) {
      try {
        await reserve(ctx.db, cartridgeResource(c.barcode), ctx.id);
        // As it is now that it is ours: a prune may have sent it to scratch since the pick.
        const now = await getCartridge(ctx.db, c.barcode);
        if (now && (now.state === 'append' || now.state === 'blank') && !now.exportedAt) return now;
        await release(ctx.db, ctx.id, cartridgeResource(c.barcode));
        continue;
      } catch (e) {
        if ((e as FerryError).code !== 'ERR_RESERVED') throw e;
        continue; // taken between the pick and the reservation: pick again
      }
    }
    const busy = mayWait ? await pickWritable(ctx.db, pool.name, { ...where, includeReserved: true }) : undefined;
    if (!busy)
      throw new ServiceError(
        'ERR_CONFLICT',
        `pool ${pool.name} has no ${mayWait ? '' : 'other '}blank or appendable cartridge: add cartridges to ` +
          `${pool.library ? `library ${pool.library}` : `drive ${pool.drive}`} (see \`ferry cartridges\`)`,
      );
    if (!waited)
      await ctx.to('waiting-media', `every writable cartridge of pool ${pool.name} is in use by other jobs`, {
        waitingFor: `a writable cartridge of pool ${pool.name}`,
      });
    await new Promise((r) => setTimeout(r, 500));
    ctx.checkCanceled();
  }
}

/**
 * Position for the next set: a blank cartridge gets a volume label first (and a cartridge the
 * catalog calls blank but that carries data is refused); one back from scratch is relabeled; an
 * appendable one is located after its last complete set, over anything a failed job left there.
 * Returns the header's block id.
 */
async function prepareCartridge(
  ctx: JobContext,
  drive: MountedDrive,
  pool: PoolConfig,
  cart: Cartridge,
  copier: Copier,
  devices: readonly JobDevice[],
): Promise<number> {
  const B = pool.tapeBlockBytes;
  await drive.drive.setFixedBlock(B);
  if (await drive.drive.writeProtected())
    throw new ServiceError(
      'ERR_CONFLICT',
      `cartridge ${cart.barcode} is write-protected: clear its write protection or take it out of pool ${pool.name}`,
    );
  if (cart.labeled) {
    // Appending erases what follows the last set: the cartridge must be the one the catalog knows.
    await checkLabel(drive, cart, B, pool.name);
    if (!cart.recycledAt) {
      await drive.drive.locate(cart.endBlock);
      // A failed job's leftovers after the last complete set go, so the room before early warning is right.
      await drive.drive.eraseFromHere();
      return cart.endBlock;
    }
    // Back from scratch (every set on it expired): a new label at the start ends what was there.
    await ctx.log(
      `cartridge ${cart.barcode} came back from scratch (its sets expired on ${cart.recycledAt}): relabeling it for ` +
        `pool ${pool.name}`,
    );
  } else {
    await checkBlank(drive, cart, B);
  }
  return writeLabel(ctx, drive, pool, cart.barcode, copier, devices);
}

/**
 * Bytes the next list may write: nothing past early warning; else what the drive reports left
 * (READ ATTRIBUTE, MiB granularity) less a reserve for the trailer and filemark; unbounded when
 * the drive does not say (the early-warning check before each list still holds).
 */
async function roomFor(drive: MountedDrive, tapeBlockBytes: number, trailerBytes = 0): Promise<number> {
  // A drive that cannot tell its position (tgtd: LOLU) gives no bound here; end of medium is then the copy's to meet.
  const p = await drive.drive.position().catch((e: FerryError) => {
    if (e.code === 'ERR_POSITION_UNKNOWN') return undefined;
    throw e;
  });
  if (p?.bpew || p?.eop) return 0;
  const left = await drive.drive.remainingCapacityBytes().catch(() => undefined);
  if (left === undefined) return Number.MAX_SAFE_INTEGER;
  const reserve = 4 * tapeBlockBytes + (1 << 20) + trailerBytes;
  return Math.max(0, Math.floor((left - reserve) / tapeBlockBytes) * tapeBlockBytes);
}
