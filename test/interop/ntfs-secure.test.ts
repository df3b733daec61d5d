// Security descriptors: what Ferry resolves for a file (its own $SECURITY_DESCRIPTOR, or its
// security id looked up in $Secure:$SDS) equals ntfssecaudit's dump and hash and the raw bytes
// ntfs-3g gives as the system.ntfs_acl xattr; the plan keeps the ids and $Secure itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDevice } from '../../src/block/file-device.ts';
import { MemoryDevice } from '../../src/block/memory-device.ts';
import type { NtfsPlan } from '../../src/ntfs/plan-document.ts';
import { rebuildAttribute } from '../../src/ntfs/restore.ts';
import { decodeSecurityDescriptor, fileSecurity, indexSds, securityHash } from '../../src/ntfs/security.ts';
import { resolvePath } from '../../src/ntfs/tree.ts';
import { openVolume } from '../../src/ntfs/volume.ts';
import { requireTools, skipLoudly } from '../helpers/tools.ts';
import { ferry, ntfsImages, ntfssecaudit, run } from './ntfs-images.ts';

/** `ntfscat -a TYPE`: one attribute's raw value. */
function ntfscatAttr(img: string, path: string, type: number): Buffer {
  const r = run('ntfscat', ['-a', `0x${type.toString(16)}`, img, path]);
  if (r.status !== 0) throw new Error(`ntfscat -a ${type} ${path} failed: ${r.stderr}`);
  return r.stdout;
}

const SECURE_FILES = ['/perm0', '/perm1', '/perm2', '/perm3'];
const MAIN_FILES = ['/ads', '/big.bin', '/a.b.c'];

test(
  'descriptors equal ntfssecaudit: $Secure ids (secure image) and $SECURITY_DESCRIPTOR attributes (main ' + 'image)',
  async (t) => {
    const imgs = ntfsImages(t);
    if (!imgs || !requireTools(t, 'ntfssecaudit')) return;
    for (const [img, paths] of [
      [imgs.secure, SECURE_FILES],
      [imgs.main, MAIN_FILES],
    ] as const) {
      const dev = await FileDevice.open(img, { blockSize: 512, readOnly: true });
      try {
        const vol = await openVolume(dev);
        for (const p of paths) {
          const audit = ntfssecaudit(img, p);
          const sec = await fileSecurity(vol, await resolvePath(vol, p));
          assert.ok(sec, p);
          assert.equal(sec.source, audit.key === undefined ? 'attribute' : 'secure', p);
          if (audit.key !== undefined) assert.equal(sec.securityId, audit.key, p);
          if (sec.source === 'secure') {
            assert.deepEqual(Buffer.from(sec.bytes), audit.bytes, `${p}: descriptor bytes`);
            assert.equal(securityHash(sec.bytes), audit.hash, `${p}: hash`);
          } else {
            // ntfssecaudit re-lays out an attribute's descriptor (DACL first): compare the raw
            // attribute with ntfscat's, and the decoded DACL with ntfssecaudit's.
            assert.deepEqual(Buffer.from(sec.bytes), ntfscatAttr(img, p, 0x50), `${p}: $SECURITY_DESCRIPTOR bytes`);
            assert.deepEqual(sec.descriptor.dacl, decodeSecurityDescriptor(audit.bytes).dacl, `${p}: DACL`);
          }
          assert.equal(sec.descriptor.owner, audit.owner, p);
          assert.equal(sec.descriptor.group, audit.group, p);
          assert.ok(
            (sec.descriptor.dacl?.aces.length ?? 0) > 0 &&
              sec.descriptor.dacl?.aces.every((a) => a.sid?.startsWith('S-1-')),
            p,
          );
        }
      } finally {
        await dev.close();
      }
      // ls --json carries the id (when the file has one) and the owner and group SIDs.
      const rows = JSON.parse(ferry(['ntfs', 'ls', img, '/', '--json']).stdout.toString('utf8')) as {
        path: string;
        securityId?: number;
        owner?: string;
        group?: string;
      }[];
      for (const p of paths) {
        const row = rows.find((r) => r.path === p);
        const audit = ntfssecaudit(img, p);
        assert.deepEqual([row?.securityId, row?.owner, row?.group], [audit.key, audit.owner, audit.group], `ls ${p}`);
      }
    }
  },
);

test('the plan keeps security ids and /$Secure: descriptors resolve from the plan alone', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs || !requireTools(t, 'ntfssecaudit')) return;
  const img = imgs.secure;
  const plan = JSON.parse(ferry(['ntfs', 'plan', img, '--json']).stdout.toString('utf8')) as NtfsPlan;
  const image = await readFile(img);
  const dev = new MemoryDevice(plan.blockSize, image.length / plan.blockSize);
  for (const [lba, n] of plan.extents)
    dev.bytes.set(image.subarray(lba * plan.blockSize, (lba + n) * plan.blockSize), lba * plan.blockSize);
  const secure = plan.files.find((f) => f.path === '/$Secure');
  const sdsAttr = secure?.attributes.find((a) => a.typeName === '$DATA' && a.name === '$SDS');
  assert.ok(secure && sdsAttr, '/$Secure and its $SDS stream are in the plan');
  const chunks: Uint8Array[] = [];
  for await (const c of rebuildAttribute(plan, dev, secure, sdsAttr)) chunks.push(c);
  const store = indexSds(Buffer.concat(chunks));
  assert.deepEqual(store.problems, []);
  for (const p of SECURE_FILES) {
    const f = plan.files.find((x) => x.path === p);
    const audit = ntfssecaudit(img, p);
    assert.equal(f?.securityId, audit.key, p);
    assert.deepEqual(Buffer.from(store.get(audit.key ?? -1)?.bytes ?? []), audit.bytes, `${p}: from the plan`);
  }
});

test('descriptors equal the system.ntfs_acl xattr of an ntfs-3g mount', async (t) => {
  const imgs = ntfsImages(t);
  if (!imgs || !requireTools(t, 'ntfs-3g', 'python3')) return;
  if (process.getuid?.() !== 0 || !existsSync('/dev/fuse')) {
    skipLoudly(t, 'mounting with ntfs-3g needs root and /dev/fuse');
    return;
  }
  const mnt = mkdtempSync(join(tmpdir(), 'ferry-ntfs-acl-'));
  let acls: Record<string, string>;
  try {
    const m = spawnSync('ntfs-3g', ['-o', 'ro', imgs.secure, mnt], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    try {
      // getxattr with the exact size: ntfs-3g answers a too-small buffer with EIO, not ERANGE.
      const py = spawnSync(
        'python3',
        [
          '-c',
          `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
out = {}
for p in sys.argv[2:]:
    path = (sys.argv[1] + p).encode(); name = b'system.ntfs_acl'
    n = libc.getxattr(path, name, None, 0)
    buf = ctypes.create_string_buffer(max(n, 1))
    if n < 0 or libc.getxattr(path, name, buf, n) != n: sys.exit(os.strerror(ctypes.get_errno()))
    out[p] = buf.raw[:n].hex()
print(json.dumps(out))
`,
          mnt,
          ...SECURE_FILES,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(py.status, 0, py.stderr);
      acls = JSON.parse(py.stdout) as Record<string, string>;
    } finally {
      spawnSync('umount', [mnt]);
    }
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
  const dev = await FileDevice.open(imgs.secure, { blockSize: 512, readOnly: true });
  try {
    const vol = await openVolume(dev);
    for (const p of SECURE_FILES) {
      const sec = await fileSecurity(vol, await resolvePath(vol, p));
      assert.equal(Buffer.from(sec?.bytes ?? []).toString('hex'), acls[p], p);
    }
  } finally {
    await dev.close();
  }
});
