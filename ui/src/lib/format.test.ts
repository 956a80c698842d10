import { describe, expect, it } from 'vitest';
import {
  dayKey,
  fmtAgo,
  fmtDuration,
  fmtDistance,
  fmtHours,
  fmtInt,
  fmtMinutes,
  fmtPercent,
  fmtSignedDiff,
  parseDay,
  prettySport,
} from './format';

describe('format', () => {
  it('formats numbers with the locale', () => {
    expect(fmtInt(1834)).toBe(new Intl.NumberFormat().format(1834));
    expect(fmtPercent(67)).toBe(
      new Intl.NumberFormat(undefined, { style: 'percent' }).format(0.67),
    );
  });

  it('signs differences with + and a true minus, and drops zero', () => {
    expect(fmtSignedDiff(4.6)).toBe('+5');
    expect(fmtSignedDiff(-3.2)).toBe('\u22123');
    expect(fmtSignedDiff(0.3)).toBeNull();
    expect(fmtSignedDiff(1.25, 1)).toMatch(/^\+1[.,]3$/);
  });

  it('writes hours and minutes', () => {
    expect(fmtHours(7.2)).toBe('7 h 12 min');
    expect(fmtHours(8)).toBe('8 h');
    expect(fmtMinutes(45)).toBe('45 min');
    expect(fmtMinutes(65)).toBe('1 h 05 min');
  });

  it('says how long ago', () => {
    const now = Date.parse('2025-11-24T10:00:00Z');
    expect(fmtAgo('2025-11-24T09:59:40Z', now)).toBe('just now');
    expect(fmtAgo('2025-11-24T09:57:00Z', now)).toBe('3 min ago');
    expect(fmtAgo('2025-11-24T03:00:00Z', now)).toBe('7 h ago');
    expect(fmtAgo('2025-11-23T08:00:00Z', now)).toBe('yesterday');
    expect(fmtAgo('2025-11-20T08:00:00Z', now)).toBe('4 days ago');
    expect(fmtAgo('not a date', now)).toBe('at an unknown time');
  });

  it('states distance units', () => {
    expect(fmtDistance(5230, false)).toMatch(/5[.,]2\s?km/);
    expect(fmtDistance(800, false)).toMatch(/800\s?m/);
    expect(fmtDistance(5230, true)).toMatch(/3[.,]2\s?mi/);
  });

  it('prettifies sport names from snake_case', () => {
    expect(prettySport('functional_fitness')).toBe('Functional fitness');
    expect(prettySport('hiit')).toBe('HIIT');
    expect(prettySport('running')).toBe('Running');
    expect(prettySport('')).toBe('Activity');
  });

  it('round-trips days in local time', () => {
    expect(dayKey(parseDay('2024-02-29'))).toBe('2024-02-29');
  });
});

describe('fmtDuration', () => {
  it('rounds a wait up to whole minutes, then hours', () => {
    expect(fmtDuration(10_000)).toBe('1 minute');
    expect(fmtDuration(4 * 60_000 + 1)).toBe('5 minutes');
    expect(fmtDuration(90 * 60_000)).toBe('2 hours');
    expect(fmtDuration(60 * 60_000)).toBe('1 hour');
  });
});
