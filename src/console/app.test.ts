import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConsole } from './app.ts';
import { DashboardFeed } from './pages/dashboard.ts';
import { ConsoleSessions, SESSION_COOKIE } from './session.ts';
import { MemoryJobService } from '../server/testing/memory-job-service.ts';
import { ServiceError, type FileView, type StartBackup, type VolumeView, type JobView } from '../jobs/types.ts';

// The console over MemoryJobService, a test double of the server library: these tests cover the
// face only (sign-in, anti-CSRF, escaping, the forms' checks, the live streams). The browser
// test (test/interop/console-browser.test.ts) runs it over a real site.

const TOKEN = 'console-test-token-0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
const XSS = '<img src=x onerror=alert(1)>';

function file(path: string, type: FileView['type'] = 'file'): FileView {
  return {
    path,
    type,
    size: 3,
    record: 100,
    links: 1,
    streams: [],
    resident: true,
    created: null,
    modified: null,
    changed: null,
    accessed: null,
    fileAttributes: 0,
    set: 1,
  };
}

/** A service whose names and messages carry markup, as a hostile config or volume could. */
class HostileService extends MemoryJobService {
  override async listVolumes(): Promise<VolumeView[]> {
    return [{ id: `st${XSS}:0`, node: `st${XSS}`, lun: 0, sizeBytes: 1024, lastSet: null }];
  }
  override async startBackup(req: StartBackup): Promise<JobView> {
    if (req.volume.startsWith('st<')) throw new ServiceError('ERR_NOT_FOUND', `no volume ${req.volume} <b>here</b>`);
    return super.startBackup(req);
  }
}

function consoleOf(service = new MemoryJobService({ stepMs: 5 })) {
  return {
    service,
    app: buildConsole(service, TOKEN, { pools: ['default'], restoreDir: '/srv/restores', tickMs: 20 }),
  };
}

type App = ReturnType<typeof consoleOf>['app'];

/** Sign in through the form: the session cookie and the page's anti-CSRF token. */
async function signIn(app: App): Promise<{ cookie: string; csrf: string }> {
  const r = await app.inject({ method: 'POST', url: '/signin', payload: { token: TOKEN, next: '/' } });
  assert.equal(r.statusCode, 303);
  const set = String(r.headers['set-cookie']);
  const cookie = /ferry_console=([^;]+)/.exec(set)![1];
  const page = await app.inject({ method: 'GET', url: '/', cookies: { [SESSION_COOKIE]: cookie } });
  const csrf = /"x-csrf-token":"([^&"]+)"|x-csrf-token&quot;:&quot;([^&]+)&quot;/.exec(page.body);
  assert.ok(csrf, 'the page carries its anti-CSRF token in hx-headers');
  return { cookie, csrf: csrf[1] ?? csrf[2] };
}

test('without a sign-in every page redirects to /signin, htmx gets 401 with HX-Redirect, a POST gets 401', async () => {
  const { app } = consoleOf();
  for (const url of ['/', '/jobs', '/jobs/1', '/backup', '/sets', '/sets/1', '/library', '/live', '/jobs/1/live']) {
    const r = await app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 303, url);
    assert.equal(r.headers.location, `/signin?next=${encodeURIComponent(url)}`, url);
  }
  const hx = await app.inject({ method: 'GET', url: '/sets/1/dir?path=/', headers: { 'hx-request': 'true' } });
  assert.equal(hx.statusCode, 401);
  assert.equal(hx.headers['hx-redirect'], '/signin');
  for (const url of ['/backup', '/jobs/1/cancel', '/sets/1/restore', '/library/A00001/export']) {
    const r = await app.inject({ method: 'POST', url, payload: { volume: 'store:0' } });
    assert.equal(r.statusCode, 401, url);
    assert.match(r.body, /Sign in first/);
  }
  const wrong = await app.inject({
    method: 'GET',
    url: '/',
    headers: { authorization: 'Bearer not-the-token-at-all' },
  });
  assert.equal(wrong.statusCode, 303);
  // The sign-in page and the assets need nothing.
  assert.equal((await app.inject({ method: 'GET', url: '/signin' })).statusCode, 200);
  const js = await app.inject({ method: 'GET', url: '/assets/htmx.min.js' });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers['content-type']), /javascript/);
  assert.match(js.body, /htmx/);
  await app.close();
});

test('sign-in: a wrong token is an error, never a stack; the right one sets a strict HttpOnly cookie', async () => {
  const { app } = consoleOf();
  const bad = await app.inject({ method: 'POST', url: '/signin', payload: { token: 'nope', next: '/sets' } });
  assert.equal(bad.statusCode, 401);
  assert.match(bad.body, /That is not the server token/);
  assert.doesNotMatch(bad.body, /at .*\.ts:\d+|Error:/);
  assert.equal(bad.headers['set-cookie'], undefined);
  const ok = await app.inject({ method: 'POST', url: '/signin', payload: { token: TOKEN, next: '/sets?volume=a' } });
  assert.equal(ok.statusCode, 303);
  assert.equal(ok.headers.location, '/sets?volume=a');
  const set = String(ok.headers['set-cookie']);
  assert.match(set, /HttpOnly/);
  assert.match(set, /SameSite=Strict/);
  assert.match(set, /Max-Age=43200/);
  assert.match(set, /Path=\//);
  // Only same-site paths are followed after sign-in.
  for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', '/signin']) {
    const r = await app.inject({ method: 'POST', url: '/signin', payload: { token: TOKEN, next } });
    assert.equal(r.headers.location, '/', next);
  }
  // Signed in: pages open; sign-out ends it.
  const cookie = /ferry_console=([^;]+)/.exec(set)![1];
  assert.equal((await app.inject({ method: 'GET', url: '/', cookies: { [SESSION_COOKIE]: cookie } })).statusCode, 200);
  await app.close();
});

test('session cookies: tampered, expired or made with another token are refused', () => {
  const s = new ConsoleSessions(TOKEN);
  const now = 1_800_000_000_000;
  const c = s.issue(now, 1000);
  assert.equal(s.valid(c, now), true);
  assert.equal(s.valid(c, now + 1000), false, 'expired');
  const [exp, nonce, mac] = c.split('.');
  assert.equal(s.valid(`${Number(exp) + 10_000_000}.${nonce}.${mac}`, now), false, 'longer life, same MAC');
  assert.equal(s.valid(`${exp}.${nonce}x.${mac}`, now), false);
  assert.equal(new ConsoleSessions('another-token-0123456789').valid(c, now), false);
  assert.equal(s.valid(undefined, now), false);
  assert.equal(s.valid('garbage', now), false);
  // The anti-CSRF token belongs to one session.
  const d = s.issue(now, 1000);
  assert.equal(s.csrfMatches(c, s.csrfFor(c)), true);
  assert.equal(s.csrfMatches(c, s.csrfFor(d)), false);
  assert.equal(s.csrfMatches(c, undefined), false);
});

test('anti-CSRF: a cookie POST without the token (a cross-site form) is refused and starts nothing', async () => {
  const { app, service } = consoleOf();
  const { cookie, csrf } = await signIn(app);
  const cookies = { [SESSION_COOKIE]: cookie };
  const payload = { volume: 'store:0', mode: 'image', level: 'full', pool: 'default' };
  const none = await app.inject({ method: 'POST', url: '/backup', cookies, payload });
  assert.equal(none.statusCode, 403);
  assert.match(none.body, /anti-CSRF token is missing or wrong/);
  const wrong = await app.inject({ method: 'POST', url: '/backup', cookies, payload: { ...payload, _csrf: 'x' } });
  assert.equal(wrong.statusCode, 403);
  assert.deepEqual(await service.listJobs(), [], 'no job was started');
  const field = await app.inject({ method: 'POST', url: '/backup', cookies, payload: { ...payload, _csrf: csrf } });
  assert.equal(field.statusCode, 303);
  assert.equal(field.headers.location, '/jobs/1');
  const header = await app.inject({
    method: 'POST',
    url: '/backup',
    cookies,
    payload,
    headers: { 'x-csrf-token': csrf },
  });
  assert.equal(header.statusCode, 303);
  // A bearer token needs no anti-CSRF token: no browser sends one by itself.
  const b = await app.inject({ method: 'POST', url: '/backup', headers: bearer, payload });
  assert.equal(b.statusCode, 303);
  assert.equal((await service.listJobs()).length, 3);
  await app.close();
});

test('markup in volume names, paths and error messages is escaped', async () => {
  const { app, service } = consoleOf(new HostileService({ stepMs: 5 }));
  const set = service.addSet({ volume: `st${XSS}:0`, mode: 'files' });
  service.files = [file(`/${XSS}`, 'dir'), file(`/${XSS}/a"b'c.txt`)];
  const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer });
  const pages = [
    await get('/'),
    await get('/backup'),
    await get('/sets'),
    await get(`/sets/${set.id}`),
    await get(`/sets/${set.id}/dir?path=${encodeURIComponent(`/${XSS}`)}`),
    await get(`/sets/${set.id}/find?pattern=${encodeURIComponent('a"b')}`),
    await get(`/nowhere${encodeURIComponent(XSS)}`),
    await app.inject({ method: 'POST', url: '/backup', headers: bearer, payload: { volume: `st${XSS}:0` } }),
  ];
  for (const r of pages) {
    assert.doesNotMatch(r.body, /<img src=x/, r.body.slice(0, 400));
    assert.doesNotMatch(r.body, /<b>here<\/b>/);
  }
  assert.match(pages[1].body, /st&lt;img src=x onerror=alert\(1\)&gt;:0/);
  assert.match(pages[4].body, /a&quot;b&#39;c\.txt/);
  assert.equal(pages[7].statusCode, 404);
  assert.match(pages[7].body, /no volume st&lt;img src=x onerror=alert\(1\)&gt;:0 &lt;b&gt;here&lt;\/b&gt;/);
  assert.match(String(pages[0].headers['content-security-policy']), /script-src 'self'/);
  await app.close();
});

test('a files restore names entries of the set and an absolute directory; nothing climbs out of it', async () => {
  const { app, service } = consoleOf();
  const set = service.addSet({ volume: 'store:0', mode: 'files' });
  service.files = [file('/a', 'dir'), file('/a/b.txt')];
  const post = (payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/sets/${set.id}/restore-files`, headers: bearer, payload });
  for (const [payload, why] of [
    [{ files: '/a/../../etc/passwd', out: '/tmp/r' }, /not a path in the set/],
    [{ files: 'a/b.txt', out: '/tmp/r' }, /not a path in the set/],
    [{ files: '/a/./b.txt', out: '/tmp/r' }, /not a path in the set/],
    [{ files: '/a/b.txt', out: 'relative/dir' }, /an absolute path on the server/],
    [{ out: '/tmp/r' }, /check at least one file/],
  ] as const) {
    const r = await post(payload);
    assert.equal(r.statusCode, 400, JSON.stringify(payload));
    assert.match(r.body, why);
  }
  assert.deepEqual(await service.listJobs(), []);
  const ok = await post({ files: ['/a/b.txt', '/a'], out: '/tmp/r' });
  assert.equal(ok.statusCode, 303);
  assert.equal(ok.headers.location, '/jobs/1');
  await app.close();
});

test("a job's live stream sends its events, its status up to 100 %, chart points, then end", async () => {
  const { app, service } = consoleOf();
  const j = await service.startBackup({ volume: 'store:0' });
  const r = await app.inject({ method: 'GET', url: `/jobs/${j.id}/live?after=0`, headers: bearer });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  const events = r.body.split('\n\n').map((b) => /^event: (\S+)/.exec(b)?.[1]);
  assert.ok(events.includes('event') && events.includes('status') && events.includes('point'), r.body.slice(0, 500));
  assert.equal(events.filter(Boolean).at(-1), 'end');
  assert.match(r.body, /data-state="done" data-pct="100"/);
  assert.match(r.body, /event: point\ndata: \[\[1,400\],\[2,512\]\]/);
  // The job page of a finished job opens no stream.
  const done = await app.inject({ method: 'GET', url: `/jobs/${j.id}`, headers: bearer });
  assert.doesNotMatch(done.body, /sse-connect/);
  assert.match(done.body, /data-samples="\[\[1,400\],\[2,512\]\]"/);
  await app.close();
});

test('the dashboard stream sends the running jobs, then again when they change', async () => {
  const service = new MemoryJobService({ manual: true });
  const { app } = consoleOf(service);
  const j = await service.startBackup({ volume: 'store:0' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const ctl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/live`, { headers: bearer, signal: ctl.signal });
  const reader = res.body!.getReader();
  let text = '';
  const until = async (re: RegExp) => {
    while (!re.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  };
  await until(/event: running\n[^]*Job 1[^]*queued/);
  await until(/event: overview\n/);
  service.step(j.id);
  await until(/waiting for 3 s without writes/);
  ctl.abort();
  await app.close();
});

test('retry starts the same request again; a bad id or filter names what is wrong', async () => {
  const { app, service } = consoleOf();
  const failed = await service.waitForJob((await service.startBackup({ volume: 'store:0', pool: 'empty' })).id);
  assert.equal(failed.state, 'failed');
  const r = await app.inject({ method: 'POST', url: `/jobs/${failed.id}/retry`, headers: bearer });
  assert.equal(r.statusCode, 303);
  assert.equal(r.headers.location, '/jobs/2');
  assert.equal((await service.getJob(2)).volume, 'store:0');
  const again = await app.inject({ method: 'POST', url: '/jobs/2/retry', headers: bearer });
  assert.equal(again.statusCode, 409);
  assert.match(again.body, /only a failed or canceled job is retried/);
  const bad = await app.inject({ method: 'GET', url: '/jobs/abc', headers: bearer });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /&quot;abc&quot; is not an id/);
  const filter = await app.inject({ method: 'GET', url: '/jobs?state=sleeping', headers: bearer });
  assert.equal(filter.statusCode, 400);
  assert.match(filter.body, /state &quot;sleeping&quot;: one of queued/);
  const missing = await app.inject({ method: 'GET', url: '/jobs/99', headers: bearer });
  assert.equal(missing.statusCode, 404);
  await app.close();
});

test('sets show each chain; protect, verify, restore to a LUN and the library actions reach the service', async () => {
  const { app, service } = consoleOf(new MemoryJobService({ manual: true }));
  const full = service.addSet({ volume: 'store:0' });
  const inc1 = service.addSet({ volume: 'store:0', level: 'incremental', base: full.id });
  const inc2 = service.addSet({ volume: 'store:0', level: 'incremental', base: inc1.id });
  const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer });
  const post = (url: string, payload: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, headers: bearer, payload });
  const chain = /<dt>Chain<\/dt>\s*<dd>(.*?)<\/dd>/s.exec((await get(`/sets/${inc2.id}`)).body)?.[1] ?? '';
  assert.deepEqual(
    [...chain.matchAll(/href="\/sets\/(\d+)"/g)].map((m) => Number(m[1])),
    [full.id, inc1.id, inc2.id],
  );

  assert.equal((await post(`/sets/${full.id}/protect`, { protected: 'true' })).headers.location, `/sets/${full.id}`);
  assert.equal((await service.getSet(full.id)).protected, true);
  assert.match((await get(`/sets/${full.id}`)).body, /<button>Unprotect<\/button>/);
  await post(`/sets/${full.id}/protect`, { protected: 'false' });
  assert.equal((await service.getSet(full.id)).protected, false);

  const verify = await post(`/sets/${full.id}/verify`);
  assert.equal(verify.statusCode, 303);
  assert.equal((await service.getJob(Number(verify.headers.location!.split('/').pop()))).type, 'verify');
  const bad = await post(`/sets/${full.id}/restore`, { to: 'store' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /restore target &quot;store&quot;: NODE:LUN/);
  const restore = await post(`/sets/${full.id}/restore`, { to: 'store:new' });
  const job = await service.getJob(Number(restore.headers.location!.split('/').pop()));
  assert.deepEqual([job.type, job.volume], ['restore', 'store:new']);

  // Cancel from the job page.
  const cancel = await post(`/jobs/${job.id}/cancel`);
  assert.equal(cancel.statusCode, 303);
  assert.equal((await service.getJob(job.id)).state, 'canceled');

  // Library: export moves the cartridge to an import/export element, import brings it back, label starts a job.
  assert.equal((await post('/library/A00002/export')).headers.location, '/library');
  assert.match(
    (await get('/library')).body,
    /data-barcode="A00002">\s*<td>A00002<\/td>\s*<td>import\/export element 768/,
  );
  await post('/library/A00002/import');
  assert.match((await get('/library')).body, /data-barcode="A00002">\s*<td>A00002<\/td>\s*<td>slot 1030/);
  const label = await post('/library/A00002/label', { pool: 'default' });
  assert.equal((await service.getJob(Number(label.headers.location!.split('/').pop()))).type, 'label');
  assert.equal((await post('/library/NOPE/export')).statusCode, 404);
  await app.close();
});

test('the dashboard asks the nodes and libraries at most once per overview period, however many watch', async () => {
  class Counting extends MemoryJobService {
    asked = 0;
    override async listCartridges() {
      this.asked++;
      return super.listCartridges();
    }
  }
  const service = new Counting();
  const feed = new DashboardFeed(service, 60_000);
  await Promise.all([feed.all(), feed.all(), feed.overview()]);
  await feed.all();
  assert.equal(service.asked, 1);
  const eager = new DashboardFeed(service, 0);
  await eager.all();
  await eager.all();
  assert.equal(service.asked, 3);
});
