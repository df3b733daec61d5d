import type { Command } from 'commander';
import { createWriteStream } from 'node:fs';
import { mkdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import type { BlockDevice } from '../block/block-device.ts';
import { FileDevice } from '../block/file-device.ts';
import { isIscsiUrl, parseIscsiUrl } from '../initiator/iscsi-url.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { usedClusters } from '../ntfs/bitmap.ts';
import { NtfsErrorCode, NtfsFormatError } from '../ntfs/errors.ts';
import { buildPlan } from '../ntfs/plan.ts';
import { planToJson } from '../ntfs/plan-document.ts';
import { secureStore } from '../ntfs/security.ts';
import { AttrType } from '../ntfs/record.ts';
import { describe, resolvePath, splitStream, walk, type ListEntry, type SkippedRecord } from '../ntfs/tree.ts';
import { findAttr, openVolume, streamAttr, type Volume } from '../ntfs/volume.ts';
import { UsageError } from '../util/errors.ts';

/** A remote LU whose close() also logs the session out. */
class SessionDevice implements BlockDevice {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly readOnly = true;
  private readonly dev: RemoteBlockDevice;
  private readonly session: InitiatorSession;
  constructor(dev: RemoteBlockDevice, session: InitiatorSession) {
    this.dev = dev;
    this.session = session;
    this.blockSize = dev.blockSize;
    this.blockCount = dev.blockCount;
  }
  read(lba: number, blockCount: number): Promise<Uint8Array> {
    return this.dev.read(lba, blockCount);
  }
  readInto(lba: number, target: Uint8Array): Promise<void> {
    return this.dev.readInto(lba, target);
  }
  write(): Promise<void> {
    return Promise.reject(new UsageError('ferry ntfs opens LUNs read-only'));
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  async close(): Promise<void> {
    await this.session.logout();
  }
}

/**
 * SOURCE → BlockDevice: an image file (read-only, 512-byte blocks), or an
 * iscsi://[user%secret@]host[:port]/target-iqn/lun URL reached through our initiator
 * (initiator name from FERRY_INITIATOR_NAME, default iqn.2026-11.dev.ferry:ntfs).
 */
export async function openSource(source: string): Promise<BlockDevice> {
  if (!isIscsiUrl(source)) return FileDevice.open(source, { blockSize: 512, readOnly: true });
  const url = parseIscsiUrl(source);
  const session = await InitiatorSession.login({
    host: url.host,
    port: url.port,
    initiatorName: process.env.FERRY_INITIATOR_NAME ?? 'iqn.2026-11.dev.ferry:ntfs',
    targetName: url.targetName,
    chap: url.chap,
  });
  try {
    return new SessionDevice(await RemoteBlockDevice.open(session, url.lun, { readOnly: true }), session);
  } catch (e) {
    await session.logout();
    throw e;
  }
}

async function withVolume<T>(source: string, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const dev = await openSource(source);
  try {
    const vol = await openVolume(dev);
    for (const w of vol.warnings) process.stderr.write(`ferry: warning: ${w.message}; used $MFTMirr\n`);
    return await fn(vol);
  } finally {
    await dev.close();
  }
}

function warn(s: SkippedRecord): void {
  process.stderr.write(`ferry: warning: skipped ${s.path ?? ''} (${s.code}): ${s.message}\n`);
}

async function write(out: NodeJS.WritableStream, chunk: string | Uint8Array): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

function lsLine(e: ListEntry): string {
  const kind = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'reparse' ? 'r' : '-';
  return (
    `${kind} ${String(e.record).padStart(8)} ${String(e.size).padStart(12)} ${e.modified ?? '-'} ` +
    `${e.path}${e.type === 'dir' ? '/' : ''}\n`
  );
}

async function ls(
  source: string,
  path: string,
  opts: { recursive?: boolean; json?: boolean; system?: boolean },
): Promise<void> {
  await withVolume(source, async (vol) => {
    const dir = await resolvePath(vol, path);
    const rows: ListEntry[] = [];
    if (!dir.isDirectory) {
      rows.push(await describe(vol, dir, path.startsWith('/') ? path : `/${path}`, warn));
    } else {
      const base = `/${path
        .split('/')
        .filter((p) => p && p !== '.')
        .join('/')}`;
      for await (const { entry } of walk(vol, dir, base, {
        recursive: opts.recursive ?? false,
        system: opts.system,
        onError: warn,
      }))
        rows.push(entry);
    }
    // $SDS entries that could not be used, once each (their files list no owner/group).
    for (const p of (await secureStore(vol).catch(() => undefined))?.problems ?? [])
      warn({ record: p.record, code: p.code, message: p.message });
    if (opts.json) await write(process.stdout, `${JSON.stringify(rows)}\n`);
    else for (const r of rows) await write(process.stdout, lsLine(r));
  });
}

async function cat(source: string, spec: string): Promise<void> {
  const { path, stream } = splitStream(spec);
  await withVolume(source, async (vol) => {
    const f = await resolvePath(vol, path);
    const data = findAttr(f, AttrType.DATA, stream);
    if (!data)
      throw new NtfsFormatError(
        NtfsErrorCode.NOT_FOUND,
        `${path} has no ${stream ? `stream "${stream}"` : 'unnamed $DATA'}`,
        { record: f.record },
      );
    for await (const chunk of streamAttr(vol, data)) await write(process.stdout, chunk);
  });
}

async function used(source: string, opts: { json?: boolean }): Promise<void> {
  await withVolume(source, async (vol) => {
    const u = await usedClusters(vol);
    if (opts.json) {
      await write(process.stdout, `${JSON.stringify(u)}\n`);
      return;
    }
    const total = u.ranges.reduce((s, r) => s + r[1], 0);
    await write(
      process.stdout,
      `cluster size ${u.clusterSize}, ${total} of ${vol.geo.clusterCount} clusters used in ${u.ranges.length} ranges\n`,
    );
    for (const [first, count] of u.ranges) await write(process.stdout, `${first}\t${count}\n`);
  });
}

async function plan(source: string, opts: { json?: boolean }): Promise<void> {
  await withVolume(source, async (vol) => {
    const dev = vol.dev;
    const p = await buildPlan(vol, { blockSize: dev.blockSize, onError: warn });
    if (opts.json) {
      await write(process.stdout, `${planToJson(p)}\n`);
      return;
    }
    const blocks = p.extents.reduce((s, e) => s + e[1], 0);
    await write(
      process.stdout,
      `${p.fileCount} files, ${p.residentBytes()} resident bytes, ${p.extents.length} extents of ${blocks} blocks ` +
        `(${blocks * p.blockSize} bytes)\n`,
    );
    await write(
      process.stdout,
      `used blocks: ${p.used.ranges.length} cluster ranges + boot sector backup at byte ` +
        `${p.used.backupBootByteOffset}\n`,
    );
  });
}

async function extract(source: string, dest: string, opts: { streams?: boolean }): Promise<void> {
  await withVolume(source, async (vol) => {
    await mkdir(dest, { recursive: true });
    const root = await resolvePath(vol, '/');
    let count = 0;
    for await (const { entry, file } of walk(vol, root, '/', { recursive: true, onError: warn })) {
      const target = join(dest, entry.path);
      if (entry.type === 'dir') {
        await mkdir(target, { recursive: true });
        continue;
      }
      const outs: [string, string][] = [['', target]];
      if (opts.streams) for (const s of entry.streams) outs.push([s.name, `${target}:${s.name}`]);
      for (const [name, to] of outs) {
        const data = findAttr(file, AttrType.DATA, name);
        const ws = createWriteStream(to);
        if (data) for await (const chunk of streamAttr(vol, data)) await write(ws, chunk);
        ws.end();
        await once(ws, 'finish');
      }
      if (entry.modified && entry.accessed) await utimes(target, new Date(entry.accessed), new Date(entry.modified));
      count++;
    }
    process.stderr.write(`ferry: extracted ${count} files into ${dest}\n`);
  });
}

/** `ferry ntfs … | head` closes stdout early: stop quietly. */
function quietEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

export function registerNtfs(program: Command): void {
  const ntfs = program
    .command('ntfs')
    .description('Read NTFS volumes from an image or LUN: list, read files, used blocks, file-level backup plan')
    .hook('preAction', quietEpipe);
  ntfs
    .command('ls')
    .description('list a directory (SOURCE: image file or iscsi://host:port/iqn/lun)')
    .argument('<source>')
    .argument('[path]', 'directory or file inside the volume', '/')
    .option('-R, --recursive', 'list subdirectories too')
    .option('--json', 'print one JSON array of entries')
    .option('--system', 'include NTFS system files (records below 16)')
    .action((source: string, path: string, o: { recursive?: boolean; json?: boolean; system?: boolean }) =>
      ls(source, path, o),
    );
  ntfs
    .command('cat')
    .description('write a file (or PATH:STREAM, a named stream) to stdout, byte-exact')
    .argument('<source>')
    .argument('<path>')
    .action((source: string, path: string) => cat(source, path));
  ntfs
    .command('used')
    .description('used cluster ranges from $Bitmap')
    .argument('<source>')
    .option('--json', 'print {"clusterSize": N, "ranges": [[firstCluster, clusterCount], ...]}')
    .action((source: string, o: { json?: boolean }) => used(source, o));
  ntfs
    .command('plan')
    .description('the file-level backup plan: per file resident bytes or block extents, merged extents, used blocks')
    .argument('<source>')
    .option('--json', 'print the plan as JSON (format: docs/ntfs.md)')
    .action((source: string, o: { json?: boolean }) => plan(source, o));
  ntfs
    .command('extract')
    .description('write the whole file tree into DIR')
    .argument('<source>')
    .argument('<dir>')
    .option('--streams', 'also write named streams as FILE:STREAM')
    .action((source: string, dir: string, o: { streams?: boolean }) => extract(source, dir, o));
}
