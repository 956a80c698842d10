import { describe, expect, it } from 'vitest';
import {
  alignToDays,
  baselineBand,
  bucketDays,
  bucketPoints,
  bucketSize,
  bucketSleep,
  dayRange,
  daySpan,
  recoveryBand,
  rollingMean,
} from './metrics';

describe('metrics', () => {
  it('maps recovery to WHOOP bands', () => {
    expect(recoveryBand(100)).toBe('green');
    expect(recoveryBand(67)).toBe('green');
    expect(recoveryBand(66)).toBe('yellow');
    expect(recoveryBand(34)).toBe('yellow');
    expect(recoveryBand(33)).toBe('red');
    expect(recoveryBand(0)).toBe('red');
  });

  it('builds a calendar day grid across month ends and DST changes', () => {
    const days = dayRange('2025-03-28', '2025-04-02');
    expect(days).toEqual([
      '2025-03-28',
      '2025-03-29',
      '2025-03-30',
      '2025-03-31',
      '2025-04-01',
      '2025-04-02',
    ]);
    expect(dayRange('2024-10-25', '2024-11-05')).toHaveLength(12);
  });

  it('finds the span and aligns with gaps', () => {
    const a = [{ day: '2025-01-02', value: 1 }];
    const b = [{ day: '2025-01-05', value: 2 }];
    expect(daySpan(a, b, [])).toEqual(['2025-01-02', '2025-01-05']);
    expect(daySpan([], [])).toBeNull();
    const days = dayRange('2025-01-02', '2025-01-05');
    expect(alignToDays(days, [...a, ...b])).toEqual([1, null, null, 2]);
  });

  it('computes a trailing mean over calendar days, skipping gaps', () => {
    expect(rollingMean([2, 4, null, 6], 2)).toEqual([2, 3, 4, 6]);
    expect(rollingMean([1, 2, 3], 3, 3)).toEqual([null, null, 2]);
  });

  it('computes the baseline band as mean ± one standard deviation', () => {
    const { lower, upper } = baselineBand([10, 20, 10, 20], 30, 2);
    expect(lower[0]).toBeNull();
    expect(lower[3]).toBeCloseTo(10);
    expect(upper[3]).toBeCloseTo(20);
  });
});

describe('decimation for long ranges', () => {
  it('keeps one point per day until there are more days than the chart can show', () => {
    expect(bucketSize(90, 600)).toBe(1);
    expect(bucketSize(600, 600)).toBe(1);
    expect(bucketSize(1826, 600)).toBe(4);
    expect(bucketSize(1826, 0)).toBe(1826);
    // Never more points than pixels, whatever the history.
    for (const days of [400, 1826, 3650, 7300]) {
      for (const width of [280, 600, 1200]) {
        expect(Math.ceil(days / bucketSize(days, width))).toBeLessThanOrEqual(width);
      }
    }
  });

  it('folds days into runs dated by their first day: the mean, or the largest', () => {
    const days = dayRange('2025-01-01', '2025-01-07');
    expect(bucketDays(days, 3)).toEqual(['2025-01-01', '2025-01-04', '2025-01-07']);
    const points = [
      { day: '2025-01-01', value: 10 },
      { day: '2025-01-03', value: 20 },
      // 2025-01-04 to 06: nothing recorded, so no point for that run.
      { day: '2025-01-07', value: 5 },
    ];
    expect(bucketPoints(days, points, 3)).toEqual([
      { day: '2025-01-01', value: 15 },
      { day: '2025-01-07', value: 5 },
    ]);
    expect(bucketPoints(days, points, 3, 'max')).toEqual([
      { day: '2025-01-01', value: 20 },
      { day: '2025-01-07', value: 5 },
    ]);
    expect(bucketPoints(days, points, 1)).toEqual(points);
  });

  it('averages sleep stages and need per run', () => {
    const days = dayRange('2025-01-01', '2025-01-04');
    const night = (day: string, h: number, need: number | null) => ({
      day,
      light: h,
      deep: h / 2,
      rem: h / 4,
      awake: 0.5,
      need,
    });
    const folded = bucketSleep(
      days,
      [night('2025-01-01', 4, 8), night('2025-01-02', 6, null), night('2025-01-03', 2, 7)],
      2,
    );
    expect(folded).toEqual([
      { day: '2025-01-01', light: 5, deep: 2.5, rem: 1.25, awake: 0.5, need: 8 },
      { day: '2025-01-03', light: 2, deep: 1, rem: 0.5, awake: 0.5, need: 7 },
    ]);
  });
});
