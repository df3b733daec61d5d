import { html, jsonAttr, type Html } from '../html.ts';
import { JOB_STATES, STATE_LABELS, isFinal } from '../../jobs/states.ts';
import type { JobEvent, JobFilter, JobView, ThroughputSample } from '../../jobs/types.ts';
import {
  bytes,
  csrfField,
  dataTable,
  errorBox,
  filterSelect,
  jobLink,
  jobTitle,
  page,
  progressFigures,
  setLink,
  stateBadge,
  when,
  type PageContext,
} from './layout.ts';

/** The job list with filters, and one job's page: live status, throughput chart, event log. */

const JOB_TYPES = ['backup', 'restore', 'verify', 'rebuild', 'label'] as const;

export function jobsPage(ctx: PageContext, jobs: JobView[], f: JobFilter, volumes: string[]): Html {
  return page(
    ctx,
    'Jobs',
    html`<form method="get" action="/jobs" class="filters">
        ${filterSelect(
          'state',
          'State',
          JOB_STATES.map((x) => [x, STATE_LABELS[x]] as const),
          f.state,
        )}
        ${filterSelect(
          'type',
          'Type',
          JOB_TYPES.map((t) => [t, t] as const),
          f.type,
        )}
        ${filterSelect(
          'volume',
          'Volume',
          volumes.map((v) => [v, v] as const),
          f.volume,
        )}
        <button>Filter</button>
      </form>
      ${
        jobs.length === 0
          ? html`<p class="muted">No jobs match.</p>`
          : dataTable(
              ['Job', 'Type', 'Volume', 'State', 'Created', 'Ended', 'Bytes', 'Set'],
              jobs.map(
                (j) =>
                  html`<tr>
                    <td>${jobLink(j.id, String(j.id))}</td>
                    <td>${j.type}</td>
                    <td>${j.volume ?? ''}</td>
                    <td>${stateBadge(j.state)}</td>
                    <td>${when(j.createdAt)}</td>
                    <td>${when(j.endedAt)}</td>
                    <td>${bytes(j.bytes)}</td>
                    <td>${j.set !== null ? setLink(j.set, String(j.set)) : ''}</td>
                  </tr>`,
              ),
              'jobs',
            )
      }`,
  );
}

/** The part of a job's page that the live stream replaces: state, figures, result, actions. */
export function jobStatus(ctx: PageContext, j: JobView): Html {
  return html`<div class="status">
    <p>${stateBadge(j.state)}</p>
    ${progressFigures(j)}
    <dl class="facts">
      ${
        j.set !== null
          ? html`<dt>Set</dt>
              <dd><a href="/sets/${j.set}">set ${j.set}</a></dd>`
          : ''
      }
      ${
        j.mover
          ? html`<dt>Data mover</dt>
              <dd>${j.mover}</dd>`
          : ''
      }
      ${
        j.cartridge
          ? html`<dt>Cartridge</dt>
              <dd>${j.cartridge}</dd>`
          : ''
      }
      <dt>Moved</dt>
      <dd>${bytes(j.bytes || j.progress.bytesDone)}</dd>
      <dt>Created</dt>
      <dd>${when(j.createdAt)}</dd>
      <dt>Started</dt>
      <dd>${when(j.startedAt)}</dd>
      <dt>Ended</dt>
      <dd>${when(j.endedAt)}</dd>
      ${
        j.result && 'lun' in j.result
          ? html`<dt>Restored to</dt>
              <dd>LUN ${String(j.result.lun)}</dd>`
          : ''
      }
      ${
        j.result && 'ok' in j.result
          ? html`<dt>Verified</dt>
              <dd>${j.result.ok ? 'ok' : 'MISMATCH'}</dd>`
          : ''
      }
    </dl>
    ${j.error ? errorBox(`${j.error.code}: ${j.error.message}`) : ''}
    <div class="actions">
      ${
        !isFinal(j.state)
          ? html`<form method="post" action="/jobs/${j.id}/cancel">
              ${csrfField(ctx)}<button class="danger">Cancel</button>
            </form>`
          : ''
      }
      ${
        j.state === 'failed' || j.state === 'canceled'
          ? html`<form method="post" action="/jobs/${j.id}/retry">${csrfField(ctx)}<button>Retry</button></form>`
          : ''
      }
    </div>
  </div>`;
}

export function eventItem(e: JobEvent): Html {
  const what = e.kind === 'state' && e.state ? STATE_LABELS[e.state] : e.kind;
  return html`<li data-event="${e.id}">${when(e.at)} <b>${what}</b> ${e.message !== what ? e.message : ''}</li>`;
}

export function jobPage(
  ctx: PageContext,
  j: JobView,
  events: JobEvent[],
  samples: ThroughputSample[],
  error?: string,
): Html {
  const logged = events.filter((e) => e.kind !== 'progress');
  const last = logged.reduce((m, e) => Math.max(m, e.id), 0);
  const live = !isFinal(j.state);
  return page(
    ctx,
    jobTitle(j),
    html`${errorBox(error)}
      <div
        ${live ? html`hx-ext="sse" sse-connect="/jobs/${j.id}/live?after=${last}" sse-close="end"` : ''}
        id="job"
        data-job="${j.id}"
      >
        <section id="status" aria-live="polite" ${live ? html`sse-swap="status"` : ''}>${jobStatus(ctx, j)}</section>
        <section aria-labelledby="h-rate">
          <h2 id="h-rate">Throughput</h2>
          <div
            id="rate-chart"
            class="chart"
            data-samples="${jsonAttr(samples)}"
            ${live ? html`sse-swap="point"` : ''}
            role="img"
            aria-label="MB/s over the job's time"
          >
            ${
              samples.length > 0
                ? ''
                : html`<p class="muted">
                    ${live ? 'No data moved yet.' : 'The copy took under two seconds: nothing to chart.'}
                  </p>`
            }
          </div>
        </section>
        <section aria-labelledby="h-events">
          <h2 id="h-events">Events</h2>
          <ol id="events" class="events" ${live ? html`sse-swap="event" hx-swap="beforeend"` : ''}>
            ${logged.map(eventItem)}
          </ol>
        </section>
      </div>`,
  );
}
