// The web console (issue 15) in Debian's Chromium, driven by playwright-core, over `ferry up` run
// as its own process, the way an operator starts it. The test signs in; backs up a volume from
// the form and watches the job page's % rise to 100 and the job reach done with no reload;
// restores that set to a new LUN, checked bit-exact through our initiator; backs up the files,
// browses the set three directories down and restores one file, checked against ntfscat; sees
// the dashboard name the wait while a workstation keeps writing; and requires that no page
// logged a console error. Screenshots go to test/artifacts/.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { InitiatorSession } from '../../src/initiator/session.ts';
import { RemoteBlockDevice } from '../../src/initiator/remote-device.ts';
import { spawnFerry, type FerryProcess } from '../helpers/ferry-cli.ts';
import { inTempDir } from '../helpers/temp-dir.ts';
import { requireTools, skipLoudly } from '../helpers/tools.ts';
import { ntfscat, REPO } from './ntfs-images.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test/artifacts');
const MIB = 1 << 20;
const DEEP = '/Users/alice/Documents/report.txt';

interface Up {
  url: string;
  console: string;
  volume: string;
  portal: string;
  iqn: string;
  dir: string;
}

/** A small NTFS volume with a file three directories down (mkntfs, then an ntfs-3g mount). */
function makeImage(dir: string): string {
  const img = join(dir, 'deep.img');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  spawnSync('truncate', ['-s', '32M', img]);
  const mk = spawnSync('mkntfs', ['-F', '-q', '-c', '4096', img], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  const m = spawnSync('ntfs-3g', [img, mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  try {
    mkdirSync(join(mnt, 'Users/alice/Documents'), { recursive: true });
    mkdirSync(join(mnt, 'Users/bob'), { recursive: true });
    writeFileSync(join(mnt, DEEP), randomBytes(300 * 1024)); // non-resident: data runs on the volume
    writeFileSync(join(mnt, 'Users/alice/Documents/notes.txt'), 'resident and small\n');
    writeFileSync(join(mnt, 'Users/alice/todo.txt'), 'a level up\n');
    writeFileSync(join(mnt, 'Users/bob/<i>not markup.txt'), 'a name the page must escape\n');
  } finally {
    spawnSync('sync');
    spawnSync('umount', [mnt]);
  }
  return img;
}

async function startUp(dir: string): Promise<{ proc: FerryProcess; up: Up }> {
  const proc = spawnFerry([
    'up',
    '--dir',
    join(dir, 'site'),
    '--listen',
    '127.0.0.1:0',
    '--console',
    '127.0.0.1:0',
    '--disk-size',
    '1G',
    '--cartridge-size',
    '4G',
    '--quiet-period',
    '1s',
    '--json',
  ]);
  let out = '';
  const up = await new Promise<Up>((resolve, reject) => {
    proc.proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as Up);
    });
    proc.proc.once('exit', (code) => reject(new Error(`ferry up exited (${code}): ${proc.stderr()}`)));
  });
  return { proc, up };
}

async function login(up: Up, name: string): Promise<InitiatorSession> {
  const [host, port] = up.portal.split(':');
  return InitiatorSession.login({
    host,
    port: Number(port),
    initiatorName: `iqn.2026-11.dev.ferry:${name}`,
    targetName: up.iqn,
  });
}

async function sha256Of(dev: RemoteBlockDevice): Promise<string> {
  const h = createHash('sha256');
  for (let lba = 0; lba < dev.blockCount; lba += 8192)
    h.update(await dev.read(lba, Math.min(8192, dev.blockCount - lba)));
  return h.digest('hex');
}

/** Follow the job page until its status says a final state; the % values seen, in order. */
async function watchJob(page: Page, timeoutMs = 120_000): Promise<{ state: string; pcts: number[] }> {
  const pcts: number[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    // One read of both attributes (the live stream replaces the element between reads).
    const s = (await page.evaluate(
      `(() => { const f = document.querySelector('#status .figures');
        return { state: f?.getAttribute('data-state') ?? '', pct: f?.getAttribute('data-pct') ?? '' }; })()`,
    )) as { state: string; pct: string };
    if (s.pct !== '' && pcts.at(-1) !== Number(s.pct)) pcts.push(Number(s.pct));
    if (['done', 'failed', 'canceled'].includes(s.state)) return { state: s.state, pcts };
    if (Date.now() > end) throw new Error(`job page still ${s.state} after ${timeoutMs} ms`);
    await sleep(40);
  }
}

async function startBackup(page: Page, volume: string, mode: string): Promise<number> {
  await page.getByRole('link', { name: 'Back up' }).click();
  await page.getByLabel('Volume').selectOption(volume);
  await page.getByLabel('Mode').selectOption(mode);
  await page.getByLabel('Level').selectOption('full');
  await page.getByRole('button', { name: 'Start backup' }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  return Number(/\/jobs\/(\d+)$/.exec(page.url())![1]);
}

function needsRootAndFuse(t: TestContext): boolean {
  if (process.getuid?.() !== 0) return skipLoudly(t, 'making the NTFS volume needs root (ntfs-3g FUSE mount)');
  if (!existsSync('/dev/fuse')) return skipLoudly(t, 'making the NTFS volume needs /dev/fuse');
  return true;
}

test(
  'web console in Chromium over ferry up: sign in, back up and watch, restore a LUN and a file, see a wait',
  { timeout: 600_000 },
  async (t) => {
    if (!requireTools(t, 'chromium', 'mkntfs', 'ntfs-3g', 'ntfscat')) return;
    if (!needsRootAndFuse(t)) return;
    await mkdir(ARTIFACTS, { recursive: true });
    await inTempDir('console', async (dir) => {
      const img = makeImage(dir);
      const { proc, up } = await startUp(dir);
      let browser: Browser | undefined;
      const sessions: InitiatorSession[] = [];
      let writing = false;
      try {
        // The workstation's volume holds the NTFS image, written through our initiator.
        const ws = await login(up, 'workstation');
        sessions.push(ws);
        const disk = await RemoteBlockDevice.open(ws, Number(up.volume.split(':')[1]));
        const image = await readFile(img);
        for (let off = 0; off < image.length; off += 4 * MIB)
          await disk.write(off / 512, image.subarray(off, off + 4 * MIB));
        await disk.flush();

        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        });
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const errors: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`);
        });
        page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));

        // Sign in: every page sends us to the sign-in form first.
        await page.goto(`${up.console}/sets`);
        assert.match(page.url(), /\/signin\?next=%2Fsets$/);
        await page
          .getByLabel('Server token')
          .fill((await readFile(join(up.dir, 'server.token'), 'utf8')).split('\n')[0]);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.waitForURL(/\/sets$/);

        // An image backup from the form; the job page follows it live.
        const imageJob = await startBackup(page, up.volume, 'image');
        await page.evaluate('window.stayed = true');
        const watched = await watchJob(page);
        assert.equal(watched.state, 'done', await page.locator('#status').innerText());
        assert.equal(watched.pcts.at(-1), 100, `the % reached 100: ${watched.pcts.join(' ')}`);
        assert.ok(
          watched.pcts.some((p) => p < 100),
          `the % rose on the page: ${watched.pcts.join(' ')}`,
        );
        assert.deepEqual(
          [...watched.pcts].sort((a, b) => a - b),
          watched.pcts,
          'the % never went back',
        );
        assert.equal(await page.evaluate('window.stayed'), true, 'no reload');
        assert.match(page.url(), new RegExp(`/jobs/${imageJob}$`));
        await page.screenshot({ path: join(ARTIFACTS, 'console-job.png'), fullPage: true });

        // Open the set and restore it to a new LUN: bit-exact through our initiator.
        await page
          .locator('#status')
          .getByRole('link', { name: /^set \d+$/ })
          .click();
        await page.waitForURL(/\/sets\/\d+$/);
        await page.getByRole('button', { name: 'Restore', exact: true }).click();
        await page.waitForURL(/\/jobs\/\d+$/);
        assert.equal((await watchJob(page)).state, 'done', await page.locator('#status').innerText());
        const lun = Number(/Restored to\s*LUN (\d+)/.exec(await page.locator('#status').innerText())![1]);
        const reader = await login(up, 'checker');
        sessions.push(reader);
        const restored = await RemoteBlockDevice.open(reader, lun, { readOnly: true });
        assert.equal(restored.blockCount, disk.blockCount);
        assert.equal(await sha256Of(restored), await sha256Of(disk), 'the restored LUN equals the volume');

        // A files backup; browse the set three levels down and restore one file.
        await startBackup(page, up.volume, 'files');
        assert.equal((await watchJob(page)).state, 'done', await page.locator('#status').innerText());
        await page
          .locator('#status')
          .getByRole('link', { name: /^set \d+$/ })
          .click();
        await page.waitForURL(/\/sets\/\d+$/);
        await page.locator('summary', { hasText: /^Users\/$/ }).focus();
        await page.keyboard.press('Enter'); // the tree opens from the keyboard too
        await page.locator('summary', { hasText: /^bob\/$/ }).waitFor();
        for (const name of ['bob/', 'alice/', 'Documents/']) {
          await page.locator('summary', { hasText: new RegExp(`^${name}$`) }).click();
          await page
            .locator('summary', { hasText: new RegExp(`^${name}$`) })
            .locator('xpath=..')
            .locator('li')
            .first()
            .waitFor();
        }
        assert.equal(
          await page.locator('li.file .name', { hasText: '<i>not markup.txt' }).count(),
          1,
          'the name as text',
        );
        const box = page.locator(`input[type=checkbox][value="${DEEP}"]`);
        await box.waitFor();
        await box.check();
        await page.screenshot({ path: join(ARTIFACTS, 'console-restore-browser.png'), fullPage: true });
        const out = await page.getByLabel('Directory on the server').inputValue();
        await page.getByRole('button', { name: 'Restore the checked files' }).click();
        await page.waitForURL(/\/jobs\/\d+$/);
        assert.equal((await watchJob(page)).state, 'done', await page.locator('#status').innerText());
        const want = ntfscat(img, DEEP);
        assert.ok(want, 'ntfscat reads the file');
        assert.deepEqual(await readFile(join(out, DEEP)), want, 'the restored file = ntfscat');
        assert.equal(existsSync(join(out, 'Users/alice/todo.txt')), false, 'only the checked file');

        // A workstation that keeps writing: the dashboard names the wait, live.
        writing = true;
        const writer = (async () => {
          const buf = randomBytes(4096);
          while (writing) {
            await disk.write(900 * 2048, buf);
            await sleep(150);
          }
        })().catch((e: unknown) => e);
        const waiting = await startBackup(page, up.volume, 'image');
        await page.getByRole('link', { name: 'Dashboard' }).click();
        // The first figures may come before the node has seen a write; then the line adds when it saw the last.
        const line = page.locator(`#running li[data-job="${waiting}"] .waiting`, {
          hasText: /waiting for 1 s without writes to store:\d+.*last write \d+\.\d s ago/,
        });
        await line.waitFor({ timeout: 20_000 });
        await page.screenshot({ path: join(ARTIFACTS, 'console-dashboard.png'), fullPage: true });
        writing = false;
        assert.equal(await writer, undefined, 'the workstation wrote without an error');
        // Once the writes stop, the job runs and leaves the running list, still with no reload.
        await page.locator(`#running li[data-job="${waiting}"]`).waitFor({ state: 'detached', timeout: 120_000 });
        await page.getByRole('link', { name: 'Jobs' }).click();
        assert.match(await page.locator(`tr:has(a[href="/jobs/${waiting}"])`).innerText(), /done/);

        // At phone width every page fits (tables scroll in their own box), and every field has a label.
        await page.setViewportSize({ width: 390, height: 844 });
        for (const path of ['/', '/jobs', '/backup', '/sets', `/jobs/${imageJob}`, '/sets/2', '/library']) {
          await page.goto(`${up.console}${path}`);
          const fit = (await page.evaluate(
            '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
          )) as number[];
          assert.ok(fit[0] <= fit[1], `${path} fits 390 px: ${fit[0]} > ${fit[1]}`);
          const unlabeled = (await page.evaluate(
            `[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label')).map((e) => e.outerHTML)`,
          )) as string[];
          assert.deepEqual(unlabeled, [], `${path}: fields without a label`);
        }

        assert.deepEqual(errors, [], 'no page logged a console error');
      } finally {
        writing = false;
        for (const x of sessions) await x.logout().catch(() => undefined);
        await browser?.close();
        await proc.stop();
      }
    });
  },
);
