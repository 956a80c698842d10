import { describe, expect, it } from 'vitest';
import { alignToDays, baselineBand, dayRange, daySpan, recoveryBand, rollingMean } from './metrics';

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
