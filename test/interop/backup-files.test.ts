// Files backup (issue 13) on every image scripts/make-ntfs-images.sh makes, written into a LUN over
// iSCSI and backed up by the server's library through a data mover (the code `ferry mover` runs) to
// the Ferry library:
//   `ls -R` from the catalog = ntfsls of the image (paths, sizes, MFT records);
//   restoring every file to a directory = ntfscat of the image, named streams included;
//   the whole set restored to a new LUN = a volume on which ntfscat agrees with the original;
//   catalog rebuild from tape brings the file index back.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from '../../src/block/file-device.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { AttrType } from '../../src/ntfs/record.ts';
import { resolvePath, walk } from '../../src/ntfs/tree.ts';
import { findAttr, openVolume, streamAttr } from '../../src/ntfs/volume.ts';
import { startJobsWorld, type JobsWorld } from '../../src/jobs/testing.ts';
import type { FileView } from '../../src/jobs/types.ts';
import { TapeDriveLu } from '../../src/scsi/ssc.ts';
import { inTempDir } from '../helpers/temp-dir.ts';
import { requireTools, skipLoudly } from '../helpers/tools.ts';
import { openCatalog } from '../../src/catalog/db.ts';
import { fileIndexInfo } from '../../src/catalog/queries/files.ts';
import { IMAGES, ntfscat, ntfsImages, ntfsls, type ImageName } from './ntfs-images.ts';

const MIB = 1 << 20;
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const key = (r: { path: string; size: number; record: number }): string => `${r.path}\t${r.size}\t${r.record}`;

async function writeImage(w: JobsWorld, img: string): Promise<{ lun: number; dev: RemoteBlockDevice }> {
  const image = await readFile(img);
  const l = await w.lun(image.length);
  for (let off = 0; off < image.length; off += 4 * MIB)
    await l.dev.write(off / 512, image.subarray(off, off + 4 * MIB));
  await l.dev.flush();
  return l;
}

async function copyOut(dev: RemoteBlockDevice, file: string): Promise<void> {
  const parts: Uint8Array[] = [];
  for (let lba = 0; lba < dev.blockCount; lba += 8192)
    parts.push(await dev.read(lba, Math.min(8192, dev.blockCount - lba)));
  await writeFile(file, Buffer.concat(parts));
}

async function filesBackup(w: JobsWorld, volume: string): Promise<{ set: number; log: string }> {
  const job = await w.service.waitForJob((await w.service.startBackup({ volume, mode: 'files' })).id);
  assert.equal(job.state, 'done', JSON.stringify(job.error));
  if (w.config.movers.length) assert.equal(job.mover, 'm1', 'the data mover copied');
  const log = (await w.service.events(job.id)).map((e) => e.message).join('\n');
  return { set: job.set!, log };
}

async function checkImage(t: TestContext, w: JobsWorld, dir: string, name: ImageName, img: string): Promise<void> {
  const src = await writeImage(w, img);
  const { set, log } = await filesBackup(w, `store:${src.lun}`);
  const view = await w.service.getSet(set);
  assert.equal(view.mode, 'files');
  assert.ok(view.bytes < (await stat(img)).size, `a files set holds the used blocks only (${view.bytes} bytes)`);
  if (name === 'corrupt') assert.match(log, /malformed MFT records skipped/, 'the job says it skipped records');

  // Browse: the catalog alone lists what ntfsls lists.
  const rows = await w.service.listFiles(set, { path: '/', recursive: true });
  assert.deepEqual(rows.map(key).sort(), ntfsls(img).map(key).sort(), 'ls -R = ntfsls');
  assert.ok(rows.every((r) => r.set === set));
  // Owner and group as `ferry ntfs ls --json` has them (checked against ntfssecaudit in ntfs-secure.test.ts).
  const sids = await ownersOnImage(img);
  for (const r of rows)
    assert.deepEqual([r.owner, r.group], sids.get(r.path) ?? [undefined, undefined], `${r.path} owner and group`);

  // Every file back from tape into a directory: the bytes Ferry's reader gives from the image
  // (checked against ntfscat by ntfs-cat.test.ts), named streams too; about 40 files an image against ntfscat itself.
  const out = join(dir, `${name}-files`);
  const job = await w.service.waitForJob((await w.service.startFileRestore({ set, files: ['/'], out })).id);
  assert.equal(job.state, 'done', JSON.stringify(job.error));
  const original = await contents(img);
  // ntfscat is one process per file: about 40 files an image.
  const every = Math.max(1, Math.floor(rows.length / 40));
  let compared = 0;
  for (const r of rows) {
    const at = join(out, r.path);
    if (r.type === 'dir') {
      assert.ok((await stat(at)).isDirectory(), r.path);
      continue;
    }
    assert.equal(md5(await readFile(at)), original.get(r.path), `${r.path}`);
    for (const s of r.streams)
      assert.equal(md5(await readFile(`${at}:${s.name}`)), original.get(`${r.path}:${s.name}`), `${r.path}:${s.name}`);
    if (compared++ % every === 0)
      assert.equal(md5(await readFile(at)), md5(ntfscat(img, r.path) ?? new Uint8Array(1)), `${r.path} = ntfscat`);
    if (r.modified) assert.equal((await stat(at)).mtime.toISOString(), r.modified, `${r.path} mtime`);
  }
  assert.ok(compared > 0);
  t.diagnostic(
    `${name}: ${rows.length} entries listed and restored, ${String(job.result?.tapeBytes)} bytes read from tape ` +
      `for a ` +
      `${view.bytes}-byte set`,
  );

  // The whole set to a new LUN: a volume that lists the same (ntfsls) and holds the same files.
  const whole = await w.service.waitForJob((await w.service.startRestore({ set, to: 'store:new' })).id);
  assert.equal(whole.state, 'done', JSON.stringify(whole.error));
  const restoredImg = join(dir, `${name}-restored.img`);
  await copyOut(await RemoteBlockDevice.open(w.ws, whole.result!.lun as number), restoredImg);
  assert.deepEqual(
    ntfsls(restoredImg).map(key).sort(),
    ntfsls(img).map(key).sort(),
    'the restored volume lists the same',
  );
  assert.deepEqual(await contents(restoredImg), original, 'every file and stream of the restored volume');
  let sampled = 0;
  for (const r of rows)
    if (r.type === 'file' && sampled++ % every === 0)
      assert.equal(
        md5(ntfscat(restoredImg, r.path) ?? new Uint8Array(1)),
        original.get(r.path),
        `${r.path} by ntfscat on the restored volume`,
      );
}

/** Owner and group SIDs of every entry, by path, as Ferry's `ntfs ls` reads them from the image. */
async function ownersOnImage(img: string): Promise<Map<string, [string | undefined, string | undefined]>> {
  const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
  const out = new Map<string, [string | undefined, string | undefined]>();
  try {
    const vol = await openVolume(dev);
    for await (const { entry } of walk(vol, await resolvePath(vol, '/'), '/', {
      recursive: true,
      onError: () => undefined,
    }))
      out.set(entry.path, [entry.owner, entry.group]);
  } finally {
    await dev.close();
  }
  return out;
}

/** MD5 of every file's unnamed data and named streams, by PATH and PATH:STREAM, as Ferry's reader sees the image. */
async function contents(img: string): Promise<Map<string, string>> {
  const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
  const out = new Map<string, string>();
  try {
    const vol = await openVolume(dev);
    for await (const { entry, file } of walk(vol, await resolvePath(vol, '/'), '/', {
      recursive: true,
      onError: () => undefined,
    })) {
      if (entry.type === 'dir') continue;
      for (const a of file.attrs) {
        if (a.type !== AttrType.DATA) continue;
        const h = createHash('md5');
        for await (const c of streamAttr(vol, a)) h.update(c);
        out.set(a.name ? `${entry.path}:${a.name}` : entry.path, h.digest('hex'));
      }
      if (!findAttr(file, AttrType.DATA)) out.set(entry.path, md5(new Uint8Array(0)));
    }
  } finally {
    await dev.close();
  }
  return out;
}

for (const name of IMAGES) {
  test(
    `files backup of ${name}.img: ls = ntfsls, every file restores = ntfscat, the whole set restores to a volume ` +
      `ntfscat reads`,
    async (t) => {
      const imgs = ntfsImages(t);
      if (!imgs) return;
      await inTempDir(`ferry-files-${name}-`, async (dir) => {
        const w = await startJobsWorld(dir, {
          iqn: `iqn.2026-12.dev.ferry:files-${name}`,
          cartridgeSize: 256 * MIB,
          tapeBlockBytes: 256 * 1024,
          mover: true,
        });
        try {
          await checkImage(t, w, dir, name, imgs[name]);
        } finally {
          await w.close();
        }
      });
    },
  );
}

test(
  'files set: ls of one directory, of one file, find, bad paths and a refused --out; an image set has no ' + 'files',
  async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs) return;
    await inTempDir('ferry-files-ls-', async (dir) => {
      const w = await startJobsWorld(dir, { iqn: 'iqn.2026-12.dev.ferry:files-ls', cartridgeSize: 256 * MIB });
      try {
        const src = await writeImage(w, imgs.main);
        const { set } = await filesBackup(w, `store:${src.lun}`);
        const get = async (path: string): Promise<FileView> => (await w.service.listFiles(set, { path }))[0];
        const res = await w.service.listFiles(set, { path: '/res' });
        assert.equal(res.length, 12, 'one directory, not its subtree');
        assert.deepEqual(
          (await w.service.listFiles(set, { path: '/res/r5' })).map((r) => [r.path, r.size]),
          [['/res/r5', 5]],
        );
        assert.equal((await get('/linked')).links, 2);
        assert.equal((await get('/linked')).record, (await get('/res/linked-too')).record);
        assert.deepEqual((await get('/ads')).streams.map((s) => [s.name, s.size]).sort(), [
          ['big', 100000],
          ['empty', 0],
          ['s1', 2],
        ]);
        assert.equal((await get('/res/r656')).resident, true);
        assert.equal((await get('/res/r664')).resident, false);
        assert.equal((await w.service.listFiles(set, { path: '/many' })).length, 3000);
        const top = await w.service.listFiles(set);
        assert.ok(!top.some((r) => r.path.startsWith('/$')), 'system files only with --system');
        const sys = await w.service.listFiles(set, { system: true });
        for (const p of ['/$MFT', '/$Bitmap', '/$LogFile', '/$Secure', '/$Extend'])
          assert.ok(
            sys.some((r) => r.path === p),
            `${p} is backed up as a file`,
          );
        assert.deepEqual(
          (await w.service.findFiles(set, 'R5')).map((r) => r.path),
          ['/res/r5'],
          'find by name, without case',
        );
        assert.ok((await w.service.findFiles(set, '/res/r6*')).every((r) => r.path.startsWith('/res/r6')));

        await assert.rejects(w.service.listFiles(set, { path: '/no/such' }), /\/no\/such is not in set \d+/);
        const out = join(dir, 'out');
        const bad = await w.service.waitForJob(
          (await w.service.startFileRestore({ set, files: ['/res/r5', '/nope.txt'], out })).id,
        );
        assert.equal(bad.state, 'failed');
        assert.match(bad.error?.message ?? '', /\/nope.txt is not in set/);
        await writeFile(join(dir, 'busy'), 'x');
        const busy = await w.service.waitForJob(
          (await w.service.startFileRestore({ set, files: ['/res/r5'], out: dir })).id,
        );
        assert.match(busy.error?.message ?? '', /is not empty: .*--force/);

        // One file and one stream, into a new directory.
        const one = await w.service.waitForJob(
          (await w.service.startFileRestore({ set, files: ['/res/r664', '/ads'], out, streams: false })).id,
        );
        assert.equal(one.state, 'done', JSON.stringify(one.error));
        assert.deepEqual((await readdir(out)).sort(), ['ads', 'res']);
        assert.deepEqual(await readdir(join(out, 'res')), ['r664']);
        assert.equal(md5(await readFile(join(out, 'res/r664'))), md5(ntfscat(imgs.main, '/res/r664')!));

        // One named stream alone.
        const out2 = join(dir, 'out2');
        const stream = await w.service.waitForJob(
          (await w.service.startFileRestore({ set, files: ['/ads:big'], out: out2 })).id,
        );
        assert.equal(stream.state, 'done', JSON.stringify(stream.error));
        assert.deepEqual(await readdir(out2), ['ads:big']);
        assert.equal(md5(await readFile(join(out2, 'ads:big'))), md5(ntfscat(imgs.main, '/ads', 'big')!));
        const noStream = await w.service.waitForJob(
          (await w.service.startFileRestore({ set, files: ['/ads:nope'], out: join(dir, 'out3') })).id,
        );
        assert.match(noStream.error?.message ?? '', /\/ads has no stream "nope" in set \d+ \(its streams: /);

        const image = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${src.lun}`, mode: 'image' })).id,
        );
        await assert.rejects(w.service.listFiles(image.set!), /is a image set and has no file index/);

        // The catalog lost: a rebuild from tape brings the file index back from the set's last trailer.
        const before = await w.service.listFiles(set, { path: '/', recursive: true, system: true });
        await w.service.close();
        for (const f of ['', '-wal', '-shm']) await rm(w.config.catalog + f, { force: true });
        w.service = await w.openService();
        const rb = await w.service.waitForJob((await w.service.startRebuild({})).id);
        assert.equal(rb.state, 'done', JSON.stringify(rb.error));
        assert.deepEqual(
          await w.service.listFiles(set, { path: '/', recursive: true, system: true }),
          before,
          'the rebuilt catalog lists the same',
        );

        // A volume that is not NTFS: refused by name, no set.
        const blank = await w.lun(8 * MIB);
        const notNtfs = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${blank.lun}`, mode: 'files' })).id,
        );
        assert.equal(notNtfs.state, 'failed');
        assert.match(
          notNtfs.error?.message ?? '',
          new RegExp(`volume store:${blank.lun} is not NTFS .*: back it up with --mode image`),
        );
      } finally {
        await w.close();
      }
    });
  },
);

test(
  'one pass: a few files of a 270 MiB files set read a small fraction of it from tape, counted by the ' + 'drives',
  async (t) => {
    if (!requireTools(t, 'mkntfs', 'ntfscp')) return;
    await inTempDir('ferry-files-onepass-', async (dir) => {
      // A 300 MiB volume: one 270 MiB file, and four 40 KiB files (non-resident) written before and after it.
      const img = join(dir, 'big.img');
      await writeFile(img, new Uint8Array(0));
      await truncate(img, 300 * MIB);
      ntfs('mkntfs', ['-F', '-Q', '-q', img]);
      const small = ['/a.bin', '/b.bin', '/c.bin', '/d.bin'];
      const put = async (path: string, bytes: number): Promise<void> => {
        const f = join(dir, 'src.bin');
        await writeFile(f, randomFillSync(new Uint8Array(bytes)));
        ntfs('ntfscp', ['-q', img, f, path]);
      };
      await put(small[0], 40_000);
      await put(small[1], 40_000);
      await put('/big.bin', 270 * MIB);
      await put(small[2], 40_000);
      await put(small[3], 40_000);

      const w = await startJobsWorld(dir, {
        iqn: 'iqn.2026-12.dev.ferry:files-onepass',
        cartridgeSize: 512 * MIB,
        tapeBlockBytes: 256 * 1024,
      });
      try {
        const src = await writeImage(w, img);
        const { set } = await filesBackup(w, `store:${src.lun}`);
        const setBytes = (await w.service.getSet(set)).bytes;
        assert.ok(setBytes >= 256 * MIB, `the set holds ${setBytes} bytes`);
        const drives = w.node
          .tapes!.luns.map(([, lu]) => lu)
          .filter((lu): lu is TapeDriveLu => lu instanceof TapeDriveLu);
        const read = (): number => drives.reduce((n, d) => n + d.stats.bytesRead, 0);
        const before = read();
        const out = join(dir, 'out');
        const job = await w.service.waitForJob((await w.service.startFileRestore({ set, files: small, out })).id);
        assert.equal(job.state, 'done', JSON.stringify(job.error));
        const onTape = read() - before;
        for (const p of small) assert.equal(md5(await readFile(join(out, p))), md5(ntfscat(img, p)!), p);
        t.diagnostic(
          `4 files of 40,000 bytes from a ${setBytes}-byte set: the drives served ${onTape} bytes ` +
            `(${((100 * onTape) / setBytes).toFixed(2)}%)`,
        );
        assert.ok(onTape > 0, 'the files came from tape');
        assert.ok(onTape < setBytes * 0.02, `${onTape} bytes read from tape is not a small fraction of ${setBytes}`);
        // The job counts its data READs; the drives also served the set header it checks on mount.
        const counted = job.result?.tapeBytes as number;
        assert.ok(
          counted <= onTape && onTape - counted <= 256 * 1024,
          `the job counted ${counted} of the ${onTape} bytes the drives served`,
        );
      } finally {
        await w.close();
      }
    });
  },
);

function ntfs(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

test(
  'incremental files set: changed, added and deleted files; ls shows the new state, unchanged files point to the ' +
    'full, every file restores, the chain restores to a volume',
  async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs) return;
    if (process.getuid?.() !== 0 || !existsSync('/dev/fuse')) {
      skipLoudly(t, 'changing an NTFS image needs root and /dev/fuse (ntfs-3g mount)');
      return;
    }
    await inTempDir('ferry-files-inc-', async (dir) => {
      const w = await startJobsWorld(dir, {
        iqn: 'iqn.2026-12.dev.ferry:files-inc',
        cartridgeSize: 256 * MIB,
        tapeBlockBytes: 256 * 1024,
      });
      try {
        const src = await writeImage(w, imgs.main);
        const full = await filesBackup(w, `store:${src.lun}`);

        // The workstation changes files: one rewritten, one deleted, two added. Only the blocks that changed reach the
        // LUN.
        const changedImg = join(dir, 'changed.img');
        await copyFile(imgs.main, changedImg);
        const mnt = join(dir, 'mnt');
        await mkdir(mnt);
        ntfs('ntfs-3g', [changedImg, mnt]);
        try {
          await writeFile(join(mnt, 'res/r664'), randomFillSync(new Uint8Array(5000)));
          await rm(join(mnt, 'res/r5'));
          await mkdir(join(mnt, 'inc'));
          await writeFile(join(mnt, 'inc/new.bin'), randomFillSync(new Uint8Array(200_000)));
          await writeFile(join(mnt, 'inc/small.txt'), 'hi\n');
        } finally {
          ntfs('umount', [mnt]);
        }
        const before = await readFile(imgs.main);
        const after = await readFile(changedImg);
        let written = 0;
        for (let off = 0; off < after.length; off += 4096) {
          const chunk = after.subarray(off, off + 4096);
          if (chunk.equals(before.subarray(off, off + 4096))) continue;
          await src.dev.write(off / 512, chunk);
          written += chunk.length;
        }
        await src.dev.flush();

        const job = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${src.lun}`, mode: 'files', level: 'incremental' })).id,
        );
        assert.equal(job.state, 'done', JSON.stringify(job.error));
        const inc = await w.service.getSet(job.set!);
        const fullView = await w.service.getSet(full.set);
        assert.deepEqual([inc.level, inc.base, inc.reason], ['incremental', full.set, null]);
        t.diagnostic(
          `the workstation wrote ${written} bytes; the incremental holds ${inc.bytes} bytes, the full ` +
            `${fullView.bytes}`,
        );
        assert.ok(inc.bytes < fullView.bytes / 4, `the incremental holds ${inc.bytes} bytes`);

        // The listing is the new state; each file names the set that holds its data.
        const rows = await w.service.listFiles(inc.id, { path: '/', recursive: true });
        assert.deepEqual(
          rows.map(key).sort(),
          ntfsls(changedImg).map(key).sort(),
          'ls -R of the incremental = ntfsls of the changed volume',
        );
        const by = new Map(rows.map((r) => [r.path, r]));
        assert.equal(by.get('/res/r5'), undefined, 'a deleted file is gone');
        assert.equal(by.get('/res/r664')?.set, inc.id, 'a rewritten file is in the incremental');
        assert.equal(by.get('/inc/new.bin')?.set, inc.id, 'a new file is in the incremental');
        assert.equal(by.get('/big.bin')?.set, full.set, 'an unchanged file points to the full');
        const catalog = await openCatalog(w.config.catalog);
        try {
          assert.deepEqual((await fileIndexInfo(catalog.db, inc.id))?.deleted, ['/res/r5'], 'the deletion is recorded');
        } finally {
          await catalog.close();
        }

        // Every file of the new state from tape (the chain's two sets), and the chain as a volume.
        const out = join(dir, 'out');
        const fr = await w.service.waitForJob(
          (await w.service.startFileRestore({ set: inc.id, files: ['/'], out })).id,
        );
        assert.equal(fr.state, 'done', JSON.stringify(fr.error));
        const want = await contents(changedImg);
        for (const r of rows)
          if (r.type !== 'dir') assert.equal(md5(await readFile(join(out, r.path))), want.get(r.path), r.path);
        const whole = await w.service.waitForJob((await w.service.startRestore({ set: inc.id, to: 'store:new' })).id);
        assert.equal(whole.state, 'done', JSON.stringify(whole.error));
        const restoredImg = join(dir, 'restored.img');
        await copyOut(await RemoteBlockDevice.open(w.ws, whole.result!.lun as number), restoredImg);
        assert.deepEqual(ntfsls(restoredImg).map(key).sort(), ntfsls(changedImg).map(key).sort());
        assert.deepEqual(await contents(restoredImg), want, 'every file of the chain restored as a volume');

        // A second incremental with nothing written since: it builds on the first and holds next to nothing
        // (the blocks of unchanged files are in the chain, whichever set of it holds them).
        const again = await w.service.waitForJob(
          (await w.service.startBackup({ volume: `store:${src.lun}`, mode: 'files', level: 'incremental' })).id,
        );
        assert.equal(again.state, 'done', JSON.stringify(again.error));
        const inc2 = await w.service.getSet(again.set!);
        assert.equal(inc2.base, inc.id);
        assert.ok(inc2.bytes < fullView.bytes / 50, `the second incremental holds ${inc2.bytes} bytes`);
        assert.deepEqual(
          (await w.service.listFiles(inc2.id, { path: '/', recursive: true })).map(key).sort(),
          rows.map(key).sort(),
        );
        assert.equal(
          (await w.service.listFiles(inc2.id, { path: '/res/r664' }))[0].set,
          inc.id,
          'a file changed in the first incremental points to it',
        );
      } finally {
        await w.close();
      }
    });
  },
);
