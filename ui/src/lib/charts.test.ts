import { describe, expect, it } from 'vitest';
import { pointTitle, recoverySpec, sleepSpec, strainSpec, trendLineSpec } from './charts';
import { FIXTURE_TODAY, fullDashboard, generateHistory } from './fixtures';
import { dayRange, daySpan } from './metrics';
import { chartTheme } from './theme.svelte';

const t = chartTheme.value;

describe('chart specs', () => {
  it('splits recovery into one bar series per band', () => {
    const days = ['2025-01-01', '2025-01-02', '2025-01-03', '2025-01-04'];
    const spec = recoverySpec(
      days,
      [
        { day: '2025-01-01', value: 80 },
        { day: '2025-01-02', value: 50 },
        { day: '2025-01-03', value: 20 },
      ],
      t,
    );
    expect(spec.data.slice(1)).toEqual([
      [80, null, null, null],
      [null, 50, null, null],
      [null, null, 20, null],
    ]);
    expect(spec.tooltip(0)?.rows[0]?.value).toMatch(/80\s?%/);
    expect(spec.tooltip(3)?.rows[0]?.value).toBe('No score');
  });

  it('stacks sleep stages and keeps the exact values for hover', () => {
    const spec = sleepSpec(
      ['2025-01-01'],
      [{ day: '2025-01-01', light: 4, deep: 1.5, rem: 1.75, awake: 0.5, need: 8 }],
      t,
    );
    // awake (total), rem, light, deep cumulative; need
    expect(spec.data.slice(1).map((s) => s[0])).toEqual([7.75, 7.25, 5.5, 1.5, 8]);
    const rows = spec.tooltip(0)?.rows ?? [];
    expect(rows.find((r) => r.label === 'Asleep')?.value).toBe('7 h 15 min');
    expect(rows.find((r) => r.label === 'Sleep need')?.value).toBe('8 h');
  });

  it('puts several workouts of one day on separate marker series', () => {
    const days = ['2025-01-01', '2025-01-02'];
    const spec = strainSpec(
      days,
      [
        { day: '2025-01-01', value: 14.2 },
        { day: '2025-01-02', value: 6 },
      ],
      [
        { day: '2025-01-01', value: 9.1 },
        { day: '2025-01-01', value: 11.4 },
      ],
      t,
    );
    expect(spec.data).toHaveLength(4);
    expect(spec.data[2]).toEqual([9.1, null]);
    expect(spec.data[3]).toEqual([11.4, null]);
    expect(spec.tooltip(0)?.rows.map((r) => r.label)).toEqual([
      'Day strain',
      'Workout 1',
      'Workout 2',
    ]);
  });

  it('handles years of data quickly', () => {
    const d = fullDashboard('all');
    const span = daySpan(d.series.hrv)!;
    const days = dayRange(span[0], span[1]);
    expect(days.length).toBeGreaterThan(1000);
    const started = performance.now();
    const spec = trendLineSpec(days, d.series.hrv, t, { label: 'HRV', unit: 'ms' });
    expect(performance.now() - started).toBeLessThan(200);
    expect(spec.data).toHaveLength(5);
    expect(spec.data[0]).toHaveLength(days.length);
  });
});

describe('fixtures', () => {
  it('cover a year and more with realistic values', () => {
    const h = generateHistory(FIXTURE_TODAY, 1100);
    expect(h.recovery.length).toBeGreaterThan(1000);
    expect(h.recovery.every((p) => p.value >= 1 && p.value <= 99)).toBe(true);
    expect(h.resting_hr.every((p) => p.value >= 38 && p.value <= 80)).toBe(true);
    expect(h.workouts.length).toBeGreaterThan(300);
    const year = fullDashboard('1y');
    expect(year.series.recovery.length).toBeGreaterThan(330);
    expect(year.series.recovery.length).toBeLessThanOrEqual(365);
  });
});

describe('points that stand for several days', () => {
  it('a hovered point names the span it averages', () => {
    expect(pointTitle('2025-01-01', 1)).not.toMatch(/average/);
    const title = pointTitle('2025-01-29', 4);
    expect(title).toMatch(/29/);
    expect(title).toMatch(/1/);
    expect(title).toMatch(/2025/);
    expect(title).toMatch(/4-day average$/);
  });

  it('a long range keeps its average only where it spans more than one point', () => {
    const days = dayRange('2021-01-01', '2025-12-31');
    const weeks = days.filter((_, i) => i % 7 === 0);
    const points = weeks.map((day, i) => ({ day, value: 50 + (i % 10) }));
    expect(trendLineSpec(weeks, points, t, { label: 'HRV', unit: 'ms' }, 7).averageLabel).toBe(
      null,
    );
    expect(trendLineSpec(days, points, t, { label: 'HRV', unit: 'ms' }, 1).averageLabel).toBe(
      '7-day average',
    );
    const recovery = recoverySpec(weeks, points, t, 7);
    expect(recovery.data[0]).toHaveLength(weeks.length);
    expect(recovery.averageLabel).toBe('30-day average');
  });
});
