import type { ModeKey } from '../bindings/ModeKey';
import type { AppStatus } from '../bindings/AppStatus';
import type { JobProgress } from '../bindings/JobProgress';
import { fmtAgo, fmtInt, fmtMonthYear } from './format';

export function plural(n: number, one: string, many: string): string {
  return `${fmtInt(n)} ${n === 1 ? one : many}`;
}

export interface ImportProgress {
  /** 0–1, or null when the amount left is unknown (going further back). */
  fraction: number | null;
  /** "Last 6 months done · going back to March 2023 · 1,204 records" */
  detail: string;
  /** "Importing your WHOOP history… 6 of 6 months done, going further back" */
  banner: string;
}

const RECENT_MONTHS = 6;

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/** Months of the recent phase that are done, 0–6. */
export function recentMonthsDone(job: JobProgress): number {
  if (job.phase === 'history') return RECENT_MONTHS;
  if (job.recent_windows_total <= 0) return 0;
  return Math.min(
    RECENT_MONTHS,
    Math.floor((RECENT_MONTHS * job.recent_windows_done) / job.recent_windows_total),
  );
}

export function importProgress(job: JobProgress | null): ImportProgress {
  if (!job) {
    return {
      fraction: null,
      detail: 'Starting with the last 6 months',
      banner: 'Importing your WHOOP history… starting with the last 6 months',
    };
  }
  const records = plural(job.records, 'record', 'records');
  const months = recentMonthsDone(job);
  let fraction: number | null = null;
  if (job.percent != null) fraction = clamp01(job.percent / 100);
  else if (job.phase === 'recent' && job.recent_windows_total > 0)
    fraction = clamp01(job.recent_windows_done / job.recent_windows_total);

  if (job.phase === 'history') {
    const where = job.oldest_day
      ? `going back to ${fmtMonthYear(job.oldest_day)}`
      : 'going further back';
    return {
      fraction,
      detail: `Last 6 months done · ${where} · ${records}`,
      banner: `Importing your WHOOP history… ${RECENT_MONTHS} of ${RECENT_MONTHS} months done, going further back`,
    };
  }
  return {
    fraction,
    detail:
      months === 0
        ? `Starting with the last 6 months · ${records}`
        : `${months} of ${RECENT_MONTHS} recent months done · ${records}`,
    banner: `Importing your WHOOP history… ${months} of ${RECENT_MONTHS} months done`,
  };
}

/** The always-visible freshness line: "Updated 3 min ago · live". */
export function freshnessLine(status: AppStatus | null, now: number): string {
  if (!status) return 'Checking…';
  if (status.state === 'importing') {
    return status.job
      ? `Importing · ${plural(status.job.records, 'record', 'records')} so far`
      : 'Importing…';
  }
  if (!status.last_synced_at) {
    if (status.state === 'not_connected') return 'No data yet · not connected';
    if (status.state === 'authorizing') return 'No data yet · signing in';
    return 'Not synced yet';
  }
  const updated = `Updated ${fmtAgo(status.last_synced_at, now)}`;
  switch (status.state) {
    case 'connected': {
      const job = status.job;
      if (job && job.kind !== 'import') return `${updated} · syncing…`;
      return `${updated} · ${status.live ? 'live' : 'live updates off'}`;
    }
    case 'reconnect_needed':
      return `${updated} · reconnection needed`;
    case 'disconnected':
    case 'not_connected':
      return `${updated} · not connected`;
    case 'authorizing':
      return `${updated} · signing in`;
    case 'subscription_required':
      return `${updated} · subscription required`;
    case 'subscription_ended':
      return `${updated} · subscription ended`;
  }
}

/** "Force Sync" inline progress, derived from the status the engine reports. */
export type ForceSyncPhase = 'idle' | 'queued' | 'running';

export function forceSyncPhase(status: AppStatus | null): ForceSyncPhase {
  if (!status) return 'idle';
  if (status.job?.kind === 'force_sync') return 'running';
  if (status.queued.includes('force_sync')) return 'queued';
  return 'idle';
}

/** How each way of connecting is named to a person. */
export const MODE_LABELS: Record<ModeKey, string> = {
  service: 'the VitalTrends service',
  'own-app': 'your own WHOOP developer app',
  demo: 'demo data',
};
