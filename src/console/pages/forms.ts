import { html, type Html } from '../html.ts';
import type { CartridgeView, DriveView, VolumeView } from '../../jobs/types.ts';
import {
  bytes,
  csrfField,
  dataTable,
  driveStatus,
  errorBox,
  muted,
  page,
  section,
  when,
  type PageContext,
} from './layout.ts';

/** Sign-in, the backup form and the library. */

export function signinPage(next: string, error?: string): Html {
  return page(
    { csrf: null, path: '/signin' },
    'Sign in',
    html`${errorBox(error)}
      <form method="post" action="/signin" class="stack signin">
        <input type="hidden" name="next" value="${next}" />
        <label
          >Server token
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            required
            autofocus
            aria-describedby="token-help"
        /></label>
        <small id="token-help"
          >The first line of the backup server's token file (<code>tokenFile</code> in its config;
          <code>ferry up</code> writes <code>ferry-data/server.token</code>).</small
        >
        <button>Sign in</button>
      </form>`,
  );
}

export interface BackupFormValues {
  volume?: string;
  mode?: string;
  level?: string;
  pool?: string;
}

export function backupPage(
  ctx: PageContext,
  volumes: VolumeView[],
  pools: string[],
  v: BackupFormValues = {},
  error?: string,
): Html {
  const opt = (value: string, chosen: string | undefined, label = value) =>
    html`<option value="${value}" ${value === chosen ? html` selected` : ''}>${label}</option>`;
  return page(
    ctx,
    'Back up a volume',
    html`${errorBox(error)}
      <form method="post" action="/backup" class="stack">
        ${csrfField(ctx)}
        <label
          >Volume
          <select name="volume" required>
            ${volumes.map((x) => opt(x.id, v.volume, `${x.id} (${bytes(x.sizeBytes)})`))}
          </select></label
        >
        <label
          >Mode
          <select name="mode">
            ${opt('image', v.mode, 'image: every block')} ${opt('used', v.mode, 'used: the blocks NTFS uses')}
            ${opt('files', v.mode, 'files: NTFS files, restorable one by one')}
          </select></label
        >
        <label
          >Level
          <select name="level">
            ${opt('full', v.level)} ${opt('incremental', v.level, 'incremental: what changed since the last set')}
          </select></label
        >
        <label
          >Pool
          <select name="pool">
            ${pools.map((p) => opt(p, v.pool))}
          </select></label
        >
        <button>Start backup</button>
      </form>`,
  );
}

function sortKey(c: CartridgeView): string {
  const w = c.where ?? '';
  const rank = w.startsWith('drive') ? 0 : w.startsWith('slot') ? 1 : w.startsWith('import') ? 2 : 3;
  return `${rank}${w.replace(/\d+/, (n) => n.padStart(8, '0'))}${c.barcode}`;
}

export function libraryPage(
  ctx: PageContext,
  drives: DriveView[],
  cartridges: CartridgeView[],
  pools: string[],
  error?: string,
): Html {
  const sorted = [...cartridges].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  return page(
    ctx,
    'Library',
    html`${errorBox(error)}
    ${section(
      'drives',
      'Drives',
      dataTable(
        ['Drive', 'Library', 'Element', 'Loaded', 'Status', 'Pools'],
        drives.map(
          (d) =>
            html`<tr>
              <td>${d.name}</td>
              <td>${d.library ?? 'stand-alone'}</td>
              <td>${d.element ?? ''}</td>
              <td>${d.cartridge ?? muted('empty')}</td>
              <td>${driveStatus(d)}</td>
              <td>${d.pools.join(', ')}</td>
            </tr>`,
        ),
      ),
    )}
    ${section(
      'carts',
      'Cartridges',
      dataTable(
        ['Barcode', 'Where', 'State', 'Pool', 'Used', 'Sets', 'Loads', 'Last written', 'Actions'],
        sorted.map((c) => cartridgeRow(ctx, c, pools)),
        'cartridges',
      ),
    )}`,
  );
}

function cartridgeRow(ctx: PageContext, c: CartridgeView, pools: string[]): Html {
  const exported = c.where === 'exported' || (c.where ?? '').startsWith('import/export');
  return html`<tr data-barcode="${c.barcode}">
    <td>${c.barcode}</td>
    <td>${c.where ?? muted('unknown')}</td>
    <td>${c.state}${c.recycled ? ' (scratch)' : ''}</td>
    <td>${c.pool ?? ''}</td>
    <td>${bytes(c.bytesUsed)}</td>
    <td>${c.sets}</td>
    <td>${c.loadCount ?? ''}</td>
    <td>${when(c.lastWrittenAt)}</td>
    <td class="actions">
      ${
        exported
          ? html`<form method="post" action="/library/${encodeURIComponent(c.barcode)}/import">
              ${csrfField(ctx)} <button>Import</button>
            </form>`
          : html`<form method="post" action="/library/${encodeURIComponent(c.barcode)}/export">
                ${csrfField(ctx)} <button>Export</button>
              </form>
              <form method="post" action="/library/${encodeURIComponent(c.barcode)}/label" class="inline">
                ${csrfField(ctx)}
                <label
                  >Pool
                  <select name="pool">
                    ${pools.map((p) => html`<option${p === c.pool ? html` selected` : ''}>${p}</option>`)}
                  </select></label
                >
                <button>Label</button>
              </form>`
      }
    </td>
  </tr>`;
}
