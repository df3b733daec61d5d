import { html, jsonAttr, type Html, type HtmlValue } from '../html.ts';
import { STATE_LABELS, isFinal, type JobState } from '../../jobs/states.ts';
import { formatEta, waitingText } from '../../jobs/progress-text.ts';
import type { DriveView, JobView } from '../../jobs/types.ts';
import { formatBytes } from '../../util/units.ts';
import { CSRF_FIELD, CSRF_HEADER } from '../session.ts';

/** What every page knows about the request: the anti-CSRF token (none when signed in by bearer token). */
export interface PageContext {
  csrf: string | null;
  path: string;
}

const NAV: Array<[string, string]> = [
  ['/', 'Dashboard'],
  ['/jobs', 'Jobs'],
  ['/backup', 'Back up'],
  ['/sets', 'Sets'],
  ['/library', 'Library'],
];

// htmx: no injected <style> (the CSP allows only our stylesheet), no eval.
const HTMX_CONFIG = jsonAttr({ includeIndicatorStyles: false, allowEval: false, allowScriptTags: false });

export function page(ctx: PageContext, title: string, body: HtmlValue): Html {
  const active = (href: string) => (href === '/' ? ctx.path === '/' : ctx.path.startsWith(href));
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · Ferry</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/console.css">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/sse.min.js" defer></script>
<script src="/assets/uPlot.iife.min.js" defer></script>
<script src="/assets/console.js" defer></script>
</head>
<body${ctx.csrf ? html` hx-headers="${jsonAttr({ [CSRF_HEADER]: ctx.csrf })}"` : ''}>
<header class="top">
  <a class="brand" href="/">Ferry</a>
  <nav aria-label="Main">
    ${NAV.map(([href, label]) => navLink(href, label, active(href)))}
  </nav>
  ${ctx.csrf ? signOut(ctx) : ''}
</header>
<main id="main">
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`;
}

function navLink(href: string, label: string, current: boolean): Html {
  return html`<a href="${href}" ${current ? html` aria-current="page"` : ''}>${label}</a>`;
}

function signOut(ctx: PageContext): Html {
  return html`<form method="post" action="/signout" class="signout">${csrfField(ctx)}<button>Sign out</button></form>`;
}

export function muted(text: string): Html {
  return html`<span class="muted">${text}</span>`;
}

export function jobLink(id: number, text = `job ${id}`): Html {
  return html`<a href="/jobs/${id}">${text}</a>`;
}

export function setLink(id: number, text = `set ${id}`): Html {
  return html`<a href="/sets/${id}">${text}</a>`;
}

/** Idle, loaded, or busy with job N. */
export function driveStatus(d: DriveView): Html {
  if (d.job !== null) return html`busy with ${jobLink(d.job)}`;
  return html`${d.cartridge ? 'loaded' : 'idle'}`;
}

/** A titled part of a page; its heading names it for screen readers. */
export function section(id: string, title: string, body: HtmlValue): Html {
  return html`<section aria-labelledby="h-${id}">
    <h2 id="h-${id}">${title}</h2>
    ${body}
  </section>`;
}

/** A table that scrolls in its own box on a narrow screen. */
export function dataTable(headers: string[], rows: HtmlValue, cls = ''): Html {
  return html`<div class="scroll">
    <table${cls ? html` class="${cls}"` : ''}>
      <thead>
        <tr>
          ${headers.map((h) => html`<th scope="col">${h}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </div>`;
}

/** A filter's select: "any" (empty), then each `[value, text]`, with `chosen` selected. */
export function filterSelect(
  name: string,
  label: string,
  options: ReadonlyArray<readonly [string, string]>,
  chosen: unknown,
): Html {
  return html`<label
    >${label}
    <select name="${name}">
      <option value="">any</option>
      ${options.map(([v, t]) => html`<option value="${v}" ${v === chosen ? html`selected` : ''}>${t}</option>`)}
    </select></label
  >`;
}

/** The hidden anti-CSRF field every POST form carries. */
export function csrfField(ctx: PageContext): Html {
  return ctx.csrf ? html`<input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrf}" />` : html``;
}

export function errorBox(message: string | null | undefined): Html {
  return message ? html`<p class="error" role="alert">${message}</p>` : html``;
}

export function stateBadge(state: JobState): Html {
  return html`<span class="state state-${state}">${STATE_LABELS[state]}</span>`;
}

export function when(iso: string | null): Html {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

export function bytes(n: number): string {
  return formatBytes(n);
}

/** Percent done, or null while the job has no total yet. */
export function percentOf(j: JobView): number | null {
  if (j.state === 'done') return 100;
  const p = j.progress;
  if (p.bytesTotal <= 0) return null;
  return Math.min(100, Math.floor((p.bytesDone / p.bytesTotal) * 100));
}

/** A job's live figures: what it waits for, or a real % bar with MB/s and ETA. */
export function progressFigures(j: JobView): Html {
  const p = j.progress;
  const waiting = isFinal(j.state) ? null : waitingText(p);
  const pct = percentOf(j);
  return html`<div class="figures" data-state="${j.state}" data-pct="${pct ?? ''}">
    ${waiting ? html`<p class="waiting">${waiting}</p>` : ''}
    ${
      pct !== null
        ? html`<progress max="100" value="${pct}" aria-label="job ${j.id} progress">${pct}%</progress>
            <span class="pct">${pct}%</span>`
        : ''
    }
    ${!isFinal(j.state) && p.bytesTotal > 0 ? html`<span>${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)}</span>` : ''}
    ${!isFinal(j.state) && p.mbPerSecond > 0 ? html`<span>${p.mbPerSecond.toFixed(1)} MB/s</span>` : ''}
    ${!isFinal(j.state) && p.etaSeconds !== null ? html`<span>ETA ${formatEta(p.etaSeconds)}</span>` : ''}
  </div>`;
}

export function jobTitle(j: JobView): string {
  return `Job ${j.id}: ${j.type}${j.volume ? ` of ${j.volume}` : ''}`;
}
