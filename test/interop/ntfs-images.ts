// Shared by test/interop/ntfs-*.test.ts: make the NTFS images once (scripts/make-ntfs-images.sh)
// and run the outside oracles (ntfsls, ntfscat, partclone.ntfs).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { haveTool, skipLoudly } from '../helpers/tools.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const IMAGE_DIR = join(REPO, 'test/fixtures/ntfs/out');
const SCRIPT = join(REPO, 'scripts/make-ntfs-images.sh');
const STAMP = join(IMAGE_DIR, '.script-sha256');
export const IMAGES = ['main', 'frag', 'mftfrag', 'c512', 'c65536', 's4096', 'secure', 'corrupt'] as const;
export type ImageName = (typeof IMAGES)[number];

const TOOLS = ['mkntfs', 'ntfs-3g', 'ntfsls', 'ntfscat', 'partclone.ntfs', 'python3'];

/**
 * Paths of the test images, making them if missing. Returns undefined (after t.skip) when a tool
 * or root is missing, except under CI=true, where that fails the test.
 */
export function ntfsImages(t: TestContext): Record<ImageName, string> | undefined {
  const paths = Object.fromEntries(IMAGES.map((n) => [n, join(IMAGE_DIR, `${n}.img`)])) as Record<ImageName, string>;
  const missingTools = TOOLS.filter((x) => !haveTool(x));
  // Remake when an image is missing or the script changed since they were made.
  const hash = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex');
  const needMake =
    IMAGES.some((n) => !existsSync(paths[n])) || (existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : '') !== hash;
  const problem = missingTools.length
    ? `missing tools: ${missingTools.join(', ')} (apt-get install ntfs-3g partclone fuse3)`
    : needMake && process.getuid?.() !== 0
      ? 'making the NTFS images needs root (ntfs-3g FUSE mount)'
      : needMake && !existsSync('/dev/fuse')
        ? 'making the NTFS images needs /dev/fuse'
        : '';
  if (problem) {
    skipLoudly(t, `NTFS interop: ${problem}`);
    return undefined;
  }
  if (needMake) {
    const r = spawnSync('bash', [SCRIPT, IMAGE_DIR], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make-ntfs-images.sh failed (${r.status}): ${r.stderr.slice(-2000)}`);
    writeFileSync(STAMP, `${hash}\n`);
  }
  return paths;
}

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 30, cwd: opts.cwd, env: { ...process.env, TZ: 'UTC' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

// The `ferry ntfs` command group alone (src/cli/ntfs.ts through commander, errors as main.ts prints
// them), so these tests do not depend on every other command loading. One test runs bin/ferry.mjs.
const NTFS_ONLY = `
import { Command } from 'commander';
import { registerNtfs } from './src/cli/ntfs.ts';
const program = new Command('ferry').exitOverride();
registerNtfs(program);
try { await program.parseAsync(process.argv.slice(1), { from: 'user' }); }
catch (e) {
  process.stderr.write('ferry: ' + (e.code && e.code.startsWith('ERR_') ? e.message : e.stack) + '\\n');
  process.exitCode = e.code === 'ERR_USAGE' ? 2 : 1;
}
`;

/** Run `ferry ARGS` (the ntfs command group; `viaBin` runs bin/ferry.mjs); throws on a non-zero exit. */
export function ferry(args: string[], viaBin = false): { stdout: Buffer; stderr: string } {
  const argv = viaBin
    ? [join(REPO, 'bin/ferry.mjs'), ...args]
    : ['--import', 'tsx', '--input-type=module', '-e', NTFS_ONLY, ...args];
  const r = run(process.execPath, argv, { cwd: REPO });
  if (r.status !== 0) throw new Error(`ferry ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}

export interface NtfslsEntry {
  path: string;
  size: number;
  record: number;
}

/**
 * `ntfsls -R -l -i IMG`, parsed: "/dir:" headers, then "[ino] size Mon DD HH:MM YYYY name".
 * Its order is index order, not collation: callers sort. "." and ".." are dropped.
 */
export function ntfsls(img: string): NtfslsEntry[] {
  const r = run('ntfsls', ['-R', '-l', '-i', img]);
  if (r.status !== 0) throw new Error(`ntfsls failed: ${r.stderr}`);
  const out: NtfslsEntry[] = [];
  let dir = '/';
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const head = /^(\/.*):$/.exec(line);
    if (head) {
      dir = head[1];
      continue;
    }
    const m = /^\s*(\d+)\s+(\d+) \w{3} [ \d]\d \d\d:\d\d \d{4} (.*)$/.exec(line);
    if (!m) continue;
    const name = m[3];
    if (name === '.' || name === '..') continue;
    out.push({ path: dir === '/' ? `/${name}` : `${dir}/${name}`, size: Number(m[2]), record: Number(m[1]) });
  }
  return out;
}

/** partclone.ntfs -D: used byte ranges [offset, length] from its ddrescue domain log. */
export function partcloneUsed(img: string, logPath: string): [number, number][] {
  const r = run('partclone.ntfs', ['-D', '-s', img, '-O', logPath, '-L', '/dev/null']);
  if (r.status !== 0) throw new Error(`partclone.ntfs -D failed: ${r.stderr}`);
  const text = spawnSync('cat', [logPath], { encoding: 'utf8' }).stdout;
  const ranges: [number, number][] = [];
  for (const line of text.split('\n')) {
    const m = /^0x([0-9A-Fa-f]+)\s+0x([0-9A-Fa-f]+)\s+\+/.exec(line);
    if (m) ranges.push([parseInt(m[1], 16), parseInt(m[2], 16)]);
  }
  return ranges;
}

/** ntfscat of the unnamed data or a named stream; null when ntfscat fails. */
export function ntfscat(img: string, path: string, stream = ''): Buffer | null {
  const args = stream ? ['-a', '0x80', '-n', stream, img, path] : [img, path];
  const r = run('ntfscat', args);
  return r.status === 0 ? r.stdout : null;
}

/** ntfscat as a child process that does not block the event loop: the same answer as ntfscat(). */
export function ntfscatAsync(img: string, path: string, stream = ''): Promise<Buffer | null> {
  const args = stream ? ['-a', '0x80', '-n', stream, img, path] : [img, path];
  return new Promise((resolve, reject) => {
    const p = spawn('ntfscat', args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, TZ: 'UTC' } });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => chunks.push(b));
    p.on('error', reject);
    p.on('close', (code) => resolve(code === 0 ? Buffer.concat(chunks) : null));
  });
}

export interface SecAudit {
  /** Security id ("Security key"), undefined for "none" (a $SECURITY_DESCRIPTOR attribute). */
  key?: number;
  bytes: Buffer;
  hash: number;
  owner: string;
  group: string;
}

/** `ntfssecaudit -v IMG PATH`, parsed: key, the descriptor's hex dump, computed hash, owner and group SIDs. */
export function ntfssecaudit(img: string, path: string): SecAudit {
  const r = run('ntfssecaudit', ['-v', img, path]);
  const text = r.stdout.toString('utf8');
  const key = /^Security key : (0x[0-9a-f]+|none)/m.exec(text)?.[1];
  const hash = /^Computed hash : 0x([0-9a-f]+)/m.exec(text)?.[1];
  const owner = /^Windows owner (S-[\d-]+)/m.exec(text)?.[1];
  const group = /^Windows group (S-[\d-]+)/m.exec(text)?.[1];
  if (r.status !== 0 || !key || !hash || !owner || !group)
    throw new Error(`ntfssecaudit ${path} failed (${r.status}): ${text}${r.stderr}`);
  // "        000010  14000000 02007800 05000000 00041800": offset, then up to four groups of bytes
  const hex = [...text.matchAll(/^[ \t]+[0-9a-f]{6}((?:[ \t]+[0-9a-f]{2,8})+)[ \t]*$/gm)]
    .map((m) => m[1].replace(/[ \t]+/g, ''))
    .join('');
  return {
    key: key === 'none' ? undefined : parseInt(key, 16),
    bytes: Buffer.from(hex, 'hex'),
    hash: parseInt(hash, 16),
    owner,
    group,
  };
}
