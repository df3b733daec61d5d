import { html, type Html } from '../html.ts';
import { FINAL_STATES, JOB_STATES, isFinal } from '../../jobs/states.ts';
import type { CartridgeView, DriveView, JobService, JobView, VolumeView } from '../../jobs/types.ts';
import {
  dataTable,
  driveStatus,
  jobLink,
  muted,
  page,
  progressFigures,
  section,
  setLink,
  stateBadge,
  when,
  type PageContext,
} from './layout.ts';

const errorText = (message: string): Html => html` <span class="error-text">${message}</span>`;

/** The dashboard: running jobs live, then the last result per volume, drives and cartridges. */

const ACTIVE_STATES = JOB_STATES.filter((s) => !isFinal(s));

export interface DashboardData {
  running: JobView[];
  volumes: Array<{ volume: VolumeView; last: JobView | null }>;
  drives: DriveView[];
  cartridges: CartridgeView[];
}

/** How long the overview's node and library answers are reused: they cost iSCSI and HTTP round trips. */
export const OVERVIEW_MS = 5000;

/**
 * The dashboard's data for every open dashboard. Running jobs come from the catalog and the jobs'
 * memory on each call. The overview asks the storage nodes for their LUNs and the libraries for
 * their elements (READ ELEMENT STATUS), so it is fetched at most once per OVERVIEW_MS, however
 * many operators watch.
 */
export class DashboardFeed {
  private readonly service: JobService;
  private readonly overviewMs: number;
  private cached: { at: number; data: Promise<Omit<DashboardData, 'running'>> } | undefined;

  constructor(service: JobService, overviewMs = OVERVIEW_MS) {
    this.service = service;
    this.overviewMs = overviewMs;
  }

  async running(): Promise<JobView[]> {
    return (await this.service.listJobs({ state: ACTIVE_STATES })).sort((a, b) => a.id - b.id);
  }

  overview(): Promise<Omit<DashboardData, 'running'>> {
    const now = performance.now();
    if (!this.cached || now - this.cached.at >= this.overviewMs) {
      const data = this.fetchOverview();
      this.cached = { at: now, data };
      data.catch(() => (this.cached = undefined)); // a failed look is not kept
    }
    return this.cached.data;
  }

  async all(): Promise<DashboardData> {
    const [running, rest] = await Promise.all([this.running(), this.overview()]);
    return { running, ...rest };
  }

  private async fetchOverview(): Promise<Omit<DashboardData, 'running'>> {
    const s = this.service;
    const [volumes, drives, cartridges] = await Promise.all([
      s.listVolumes({ discover: true }),
      s.listDrives(),
      s.listCartridges(),
    ]);
    const last = await Promise.all(
      volumes.map((v) => s.listJobs({ volume: v.id, type: 'backup', state: [...FINAL_STATES], limit: 1 })),
    );
    return { volumes: volumes.map((volume, i) => ({ volume, last: last[i][0] ?? null })), drives, cartridges };
  }
}

export function runningJobs(jobs: JobView[]): Html {
  if (jobs.length === 0) return html`<p class="muted">No job is running.</p>`;
  return html`<ul class="jobs-live">
    ${jobs.map(
      (j) =>
        html`<li class="job-live" data-job="${j.id}">
          <div class="job-head">
            <a href="/jobs/${j.id}">Job ${j.id}</a> ${j.type}${j.volume ? html` of <b>${j.volume}</b>` : ''}
            ${stateBadge(j.state)}
          </div>
          ${progressFigures(j)}
          <div class="job-where">
            ${j.cartridge ? html`cartridge <b>${j.cartridge}</b>` : ''}
            ${j.mover ? html` · mover <b>${j.mover}</b>` : ''}
          </div>
        </li>`,
    )}
  </ul>`;
}

export function overview(d: Omit<DashboardData, 'running'>): Html {
  const counts = new Map<string, number>();
  for (const c of d.cartridges) {
    const k = `${c.pool ?? 'scratch'}\u0000${c.state}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const volumes = d.volumes.map(
    ({ volume: v, last }) =>
      html`<tr>
        <td>${v.id}</td>
        <td>${last ? jobLink(last.id) : muted('never')}</td>
        <td>${last ? stateBadge(last.state) : ''}${last?.error ? errorText(last.error.message) : ''}</td>
        <td>${when(last?.endedAt ?? null)}</td>
        <td>${v.lastSet !== null ? setLink(v.lastSet) : muted('—')}</td>
      </tr>`,
  );
  const drives = d.drives.map(
    (dr) =>
      html`<tr>
        <td>${dr.name}</td>
        <td>${driveStatus(dr)}</td>
        <td>${dr.cartridge ?? muted('—')}</td>
      </tr>`,
  );
  const cartridges = [...counts.entries()].sort().map(([k, n]) => {
    const [pool, state] = k.split('\u0000');
    return html`<tr>
      <td>${pool}</td>
      <td>${state}</td>
      <td>${n}</td>
    </tr>`;
  });
  const volumeHeads = ['Volume', 'Last backup', 'Result', 'Ended', 'Latest set'];
  return html`${section('volumes', 'Volumes', dataTable(volumeHeads, volumes))}
  ${section('drives', 'Drives', dataTable(['Drive', 'Status', 'Cartridge'], drives))}
  ${section('carts', 'Cartridges', dataTable(['Pool', 'State', 'Count'], cartridges))}`;
}

export function dashboardPage(ctx: PageContext, d: DashboardData): Html {
  return page(
    ctx,
    'Dashboard',
    html`<div hx-ext="sse" sse-connect="/live">
      <section aria-labelledby="h-running">
        <h2 id="h-running">Running jobs</h2>
        <div id="running" sse-swap="running">${runningJobs(d.running)}</div>
      </section>
      <div id="overview" sse-swap="overview">${overview(d)}</div>
    </div>`,
  );
}
