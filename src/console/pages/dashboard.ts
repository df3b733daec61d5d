import { html, type Html } from '../html.ts';
import { FINAL_STATES, JOB_STATES, isFinal } from '../../jobs/states.ts';
import type { CartridgeView, DriveView, JobService, JobView, VolumeView } from '../../jobs/types.ts';
import {
  driveStatus,
  jobLink,
  muted,
  page,
  progressFigures,
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

export async function dashboardData(service: JobService): Promise<DashboardData> {
  const [running, volumes, drives, cartridges] = await Promise.all([
    service.listJobs({ state: ACTIVE_STATES }),
    service.listVolumes({ discover: true }),
    service.listDrives(),
    service.listCartridges(),
  ]);
  const last = await Promise.all(
    volumes.map((v) => service.listJobs({ volume: v.id, type: 'backup', state: [...FINAL_STATES], limit: 1 })),
  );
  return {
    running: running.sort((a, b) => a.id - b.id),
    volumes: volumes.map((volume, i) => ({ volume, last: last[i][0] ?? null })),
    drives,
    cartridges,
  };
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

export function overview(d: DashboardData): Html {
  const counts = new Map<string, number>();
  for (const c of d.cartridges) {
    const k = `${c.pool ?? 'scratch'}\u0000${c.state}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return html`<section aria-labelledby="h-volumes">
      <h2 id="h-volumes">Volumes</h2>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Volume</th>
              <th scope="col">Last backup</th>
              <th scope="col">Result</th>
              <th scope="col">Ended</th>
              <th scope="col">Latest set</th>
            </tr>
          </thead>
          <tbody>
            ${d.volumes.map(
              ({ volume: v, last }) =>
                html`<tr>
                  <td>${v.id}</td>
                  <td>${last ? jobLink(last.id) : muted('never')}</td>
                  <td>${last ? stateBadge(last.state) : ''}${last?.error ? errorText(last.error.message) : ''}</td>
                  <td>${when(last?.endedAt ?? null)}</td>
                  <td>${v.lastSet !== null ? setLink(v.lastSet) : muted('—')}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="h-drives">
      <h2 id="h-drives">Drives</h2>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Drive</th>
              <th scope="col">Status</th>
              <th scope="col">Cartridge</th>
            </tr>
          </thead>
          <tbody>
            ${d.drives.map(
              (dr) =>
                html`<tr>
                  <td>${dr.name}</td>
                  <td>${driveStatus(dr)}</td>
                  <td>${dr.cartridge ?? html`<span class="muted">—</span>`}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="h-carts">
      <h2 id="h-carts">Cartridges</h2>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Pool</th>
              <th scope="col">State</th>
              <th scope="col">Count</th>
            </tr>
          </thead>
          <tbody>
            ${[...counts.entries()].sort().map(([k, n]) => {
              const [pool, state] = k.split('\u0000');
              return html`<tr>
                <td>${pool}</td>
                <td>${state}</td>
                <td>${n}</td>
              </tr>`;
            })}
          </tbody>
        </table>
      </div>
    </section>`;
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
