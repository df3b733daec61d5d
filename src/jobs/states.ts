/**
 * The job state table (DESIGN.md "The backup server"). Everything that moves a job between
 * states goes through `canTransition`; the catalog's transitionJob writes the move.
 *
 *   queued → waiting-quiet → planning → waiting-drive → mounting → copying → verifying → done
 *   failed and canceled can be reached from every state that is not final.
 *   waiting-media: a cartridge the job needs is in use by another job (it goes on to mounting).
 *
 * Restore, verify, rebuild and label jobs skip the states they do not need (a restore has no
 * quiet wait; a verify without a tape copy goes straight from mounting to verifying; a label is
 * mounting, then copying while its label is written).
 */

export const JOB_STATES = [
  'queued',
  'waiting-quiet',
  'planning',
  'waiting-drive',
  'waiting-media',
  'mounting',
  'copying',
  'verifying',
  'done',
  'failed',
  'canceled',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const FINAL_STATES: readonly JobState[] = ['done', 'failed', 'canceled'];

const END = ['failed', 'canceled'] as const;

/** Allowed moves, state by state. A final state has none. */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  queued: ['waiting-quiet', 'planning', 'waiting-drive', 'waiting-media', 'mounting', ...END],
  'waiting-quiet': ['planning', ...END],
  planning: ['waiting-drive', 'waiting-media', 'mounting', 'done', ...END],
  'waiting-drive': ['waiting-media', 'mounting', ...END],
  'waiting-media': ['mounting', ...END],
  // A job that has its drive may still wait for a data mover (every one at its maxJobs).
  mounting: ['copying', 'verifying', 'mounting', 'waiting-drive', ...END],
  // A set that spans cartridges goes back to mounting (or waits) for the next one.
  copying: ['waiting-media', 'mounting', 'verifying', 'done', ...END],
  verifying: ['waiting-media', 'mounting', 'done', ...END],
  done: [],
  failed: [],
  canceled: [],
};

/** What the user waits on in each state, for `ferry jobs` and the progress bar. */
export const STATE_LABELS: Readonly<Record<JobState, string>> = {
  queued: 'queued',
  'waiting-quiet': 'waiting for quiet writes',
  planning: 'planning',
  'waiting-drive': 'waiting for a drive',
  'waiting-media': 'waiting for a cartridge',
  mounting: 'mounting',
  copying: 'copying',
  verifying: 'verifying',
  done: 'done',
  failed: 'failed',
  canceled: 'canceled',
};

export function isFinal(s: JobState): boolean {
  return FINAL_STATES.includes(s);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isJobState(s: string): s is JobState {
  return (JOB_STATES as readonly string[]).includes(s);
}
