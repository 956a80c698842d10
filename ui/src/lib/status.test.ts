import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../bindings/JobProgress';
import { fixtureStatus } from './fixtures';
import { fmtInt } from './format';
import { forceSyncPhase, freshnessLine, importProgress, recentMonthsDone } from './status';

const job = (patch: Partial<JobProgress>): JobProgress => ({
  kind: 'import',
  phase: 'recent',
  records: 0,
  recent_windows_done: 0,
  recent_windows_total: 10,
  oldest_day: null,
  percent: null,
  ...patch,
});

describe('import progress wording', () => {
  it('counts recent months from windows', () => {
    expect(recentMonthsDone(job({ recent_windows_done: 5 }))).toBe(3);
    expect(recentMonthsDone(job({ recent_windows_done: 10 }))).toBe(6);
    expect(recentMonthsDone(job({ phase: 'history' }))).toBe(6);
    expect(recentMonthsDone(job({ recent_windows_total: 0 }))).toBe(0);
  });

  it('describes the history phase like the brief', () => {
    const p = importProgress(
      job({ phase: 'history', records: 1204, recent_windows_done: 10, oldest_day: '2023-03-14' }),
    );
    const month = new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' }).format(
      new Date(2023, 2, 14),
    );
    expect(p.detail).toBe(`Last 6 months done · going back to ${month} · ${fmtInt(1204)} records`);
    expect(p.banner).toBe('Importing your WHOOP history… 6 of 6 months done, going further back');
    expect(p.fraction).toBeNull();
  });

  it('uses percent when the engine knows it, else windows', () => {
    expect(importProgress(job({ percent: 40 })).fraction).toBeCloseTo(0.4);
    expect(importProgress(job({ recent_windows_done: 5 })).fraction).toBeCloseTo(0.5);
    expect(importProgress(job({ recent_windows_done: 5 })).banner).toBe(
      'Importing your WHOOP history… 3 of 6 months done',
    );
  });
});

describe('freshness line', () => {
  const now = Date.parse('2025-11-24T10:00:00Z');
  it('says how fresh and whether live', () => {
    const at = (min: number) => new Date(now - min * 60_000).toISOString();
    expect(freshnessLine(fixtureStatus('connected', { last_synced_at: at(3) }, now), now)).toBe(
      'Updated 3 min ago · live',
    );
    expect(
      freshnessLine(fixtureStatus('connected', { last_synced_at: at(420), live: false }), now),
    ).toBe('Updated 7 h ago · live updates off');
    expect(freshnessLine(fixtureStatus('not_connected'), now)).toBe('No data yet · not connected');
    expect(freshnessLine(fixtureStatus('importing'), now)).toBe(
      `Importing · ${fmtInt(1204)} records so far`,
    );
    expect(freshnessLine(null, now)).toBe('Checking…');
  });
});

describe('force sync phase', () => {
  it('reads queued and running from the status', () => {
    expect(forceSyncPhase(fixtureStatus('connected'))).toBe('idle');
    expect(forceSyncPhase(fixtureStatus('connected', { queued: ['force_sync'] }))).toBe('queued');
    expect(forceSyncPhase(fixtureStatus('connected', { job: job({ kind: 'force_sync' }) }))).toBe(
      'running',
    );
  });
});
