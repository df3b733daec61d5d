import { html, type Html } from '../html.ts';
import type { FileView, SetView, VolumeView } from '../../jobs/types.ts';
import {
  bytes,
  csrfField,
  dataTable,
  errorBox,
  filterSelect,
  page,
  setLink,
  when,
  type PageContext,
} from './layout.ts';

/** Sets: the list with each incremental's chain, one set's page (verify, protect, restore), the file browser. */

/** Most entries one directory listing shows; a bigger directory says how to narrow it down. */
export const DIR_PAGE = 1000;
/** Most matches a search shows. */
export const FIND_PAGE = 200;

/** Set ids from the full down to `s`: [full, …, s]. */
export function chainOf(s: SetView, byId: ReadonlyMap<number, SetView>): number[] {
  const out = [s.id];
  for (let b = s.base; b !== null && out.length < 10_000; b = byId.get(b)?.base ?? null) out.unshift(b);
  return out;
}

function chainLinks(chain: number[]): Html {
  return html`<span class="chain"
    >${chain.map(
      (id, i) => html`${i > 0 ? html` <span aria-hidden="true">←</span> ` : ''}<a href="/sets/${id}">${id}</a>`,
    )}</span
  >`;
}

export function setsPage(
  ctx: PageContext,
  sets: SetView[],
  all: SetView[],
  volume: string | undefined,
  volumes: VolumeView[],
): Html {
  const byId = new Map(all.map((s) => [s.id, s]));
  return page(
    ctx,
    'Sets',
    html`<form method="get" action="/sets" class="filters">
        ${filterSelect(
          'volume',
          'Volume',
          volumes.map((v) => [v.id, v.id] as const),
          volume,
        )}
        <button>Filter</button>
      </form>
      ${
        sets.length === 0
          ? html`<p class="muted">No sets${volume ? html` of ${volume}` : ''} yet.</p>`
          : dataTable(
              [
                'Set',
                'Volume',
                'Mode',
                'Level',
                'Chain (full first)',
                'Snapshot taken',
                'Size',
                'Cartridges',
                'Protected',
              ],
              sets.map(
                (s) =>
                  html`<tr>
                    <td>${setLink(s.id, String(s.id))}</td>
                    <td>${s.volume}</td>
                    <td>${s.mode}</td>
                    <td>${s.level}</td>
                    <td>${chainLinks(chainOf(s, byId))}</td>
                    <td>${when(s.startedAt)}</td>
                    <td>${bytes(s.bytes)}</td>
                    <td>${s.cartridges.join(', ')}</td>
                    <td>${s.protected ? 'yes' : ''}</td>
                  </tr>`,
              ),
            )
      }`,
  );
}

export interface SetPageData {
  set: SetView;
  chain: number[];
  /** The root directory of a files set. */
  root: FileView[] | null;
  /** Default answer for "restore to directory on the server". */
  restoreDir: string;
  error?: string;
}

export function setPage(ctx: PageContext, d: SetPageData): Html {
  const s = d.set;
  return page(
    ctx,
    `Set ${s.id}: ${s.mode} ${s.level} of ${s.volume}`,
    html`${errorBox(d.error)}
      <dl class="facts">
        <dt>Volume</dt>
        <dd>${s.volume}</dd>
        <dt>Mode, level</dt>
        <dd>${s.mode}, ${s.level}${s.reason ? html` <span class="muted">(${s.reason})</span>` : ''}</dd>
        <dt>Chain</dt>
        <dd>${chainLinks(d.chain)}</dd>
        <dt>Snapshot</dt>
        <dd>${s.snapshot} · ${when(s.startedAt)}</dd>
        <dt>Size</dt>
        <dd>${bytes(s.bytes)}</dd>
        <dt>Cartridges</dt>
        <dd>${s.cartridges.join(', ')}</dd>
        <dt>Protected</dt>
        <dd>${s.protected ? 'yes: never pruned' : 'no'}</dd>
      </dl>
      <div class="actions">
        <form method="post" action="/sets/${s.id}/verify">${csrfField(ctx)}<button>Verify</button></form>
        <form method="post" action="/sets/${s.id}/protect">
          ${csrfField(ctx)}
          <input type="hidden" name="protected" value="${s.protected ? 'false' : 'true'}" />
          <button>${s.protected ? 'Unprotect' : 'Protect'}</button>
        </form>
      </div>
      <section aria-labelledby="h-restore-lun">
        <h2 id="h-restore-lun">Restore to a LUN</h2>
        <form method="post" action="/sets/${s.id}/restore" class="stack">
          ${csrfField(ctx)}
          <label
            >Target
            <input
              name="to"
              value="${s.volume.split(':')[0]}:new"
              required
              pattern="[^:\\s]+:(new|[0-9]+)"
              aria-describedby="to-help"
          /></label>
          <small id="to-help">NODE:new makes a new LUN on that storage node; NODE:LUN overwrites that LUN.</small>
          <label class="check"
            ><input type="checkbox" name="force" value="true" /> Overwrite a LUN that is in use or bigger</label
          >
          <button>Restore</button>
        </form>
      </section>
      ${d.root ? fileBrowser(ctx, s, d.root, d.restoreDir) : ''}`,
  );
}

function fileBrowser(ctx: PageContext, s: SetView, root: FileView[], restoreDir: string): Html {
  return html`<section aria-labelledby="h-files">
    <h2 id="h-files">Files</h2>
    <form method="post" action="/sets/${s.id}/restore-files" id="restore-files" class="stack">
      ${csrfField(ctx)}
      <label>Directory on the server <input name="out" value="${restoreDir}" required /></label>
      <label class="check"
        ><input type="checkbox" name="force" value="true" /> Write into a directory that is not empty</label
      >
      <button>Restore the checked files</button>
    </form>
    <label
      >Search
      <input
        type="search"
        name="pattern"
        placeholder="*.docx or /Users/*/Desktop/*"
        hx-get="/sets/${s.id}/find"
        hx-trigger="input changed delay:300ms, search"
        hx-target="#find-results"
    /></label>
    <div id="find-results" aria-live="polite"></div>
    <ul class="tree" role="tree" aria-label="Files of set ${s.id}">
      ${dirEntries(s.id, root)}
    </ul>
  </section>`;
}

/** One directory's entries: directories open (and load) one level at a time. */
export function dirEntries(setId: number, entries: FileView[]): Html {
  if (entries.length === 0) return html`<li class="muted">empty</li>`;
  const shown = entries.slice(0, DIR_PAGE);
  return html`${shown.map((e) => entry(setId, e))}${
    entries.length > DIR_PAGE
      ? html`<li class="muted">${entries.length - DIR_PAGE} more entries: search to find them</li>`
      : ''
  }`;
}

function name(e: FileView): string {
  return e.path.slice(e.path.lastIndexOf('/') + 1) || '/';
}

function checkbox(e: FileView): Html {
  return html`<input
    type="checkbox"
    name="files"
    value="${e.path}"
    form="restore-files"
    aria-label="restore ${e.path}"
  />`;
}

function entry(setId: number, e: FileView): Html {
  if (e.type === 'dir')
    return html`<li role="treeitem" class="dir">
      ${checkbox(e)}
      <details
        hx-get="/sets/${setId}/dir?path=${encodeURIComponent(e.path)}"
        hx-trigger="toggle once"
        hx-target="find ul"
      >
        <summary>${name(e)}/</summary>
        <ul role="group">
          <li class="muted">loading…</li>
        </ul>
      </details>
    </li>`;
  return html`<li role="treeitem" class="file">
    ${checkbox(e)}<span class="name">${name(e)}</span> <span class="size">${bytes(e.size)}</span> ${when(e.modified)}
  </li>`;
}

export function findResults(pattern: string, found: FileView[]): Html {
  if (!pattern) return html``;
  if (found.length === 0) return html`<p class="muted">Nothing matches ${pattern}.</p>`;
  return html`<p>
      ${found.length}
      match${found.length === 1 ? '' : 'es'}${found.length > FIND_PAGE ? html`, the first ${FIND_PAGE} shown` : ''}:
    </p>
    <ul class="found">
      ${found.slice(0, FIND_PAGE).map(
        (e) =>
          html`<li>
            ${checkbox(e)}<span class="name">${e.path}${e.type === 'dir' ? '/' : ''}</span>
            ${e.type === 'dir' ? '' : html`<span class="size">${bytes(e.size)}</span>`}
          </li>`,
      )}
    </ul>`;
}

export function restoreDirFor(base: string, setId: number): string {
  return `${base.replace(/\/+$/, '')}/set-${setId}`;
}
