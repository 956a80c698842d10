import type { Point } from '../bindings/Point';
import type { SleepPoint } from '../bindings/SleepPoint';
import { dayKey, parseDay } from './format';

export type RecoveryBand = 'green' | 'yellow' | 'red';

/** WHOOP's recovery bands: 67–100 green, 34–66 yellow, 0–33 red. */
export function recoveryBand(score: number): RecoveryBand {
  const s = Math.round(score);
  if (s >= 67) return 'green';
  if (s >= 34) return 'yellow';
  return 'red';
}

export const BAND_LABEL: Record<RecoveryBand, string> = {
  green: 'Green · ready to perform',
  yellow: 'Yellow · maintaining',
  red: 'Red · take it easy',
};

/** Every day from `first` to `last` inclusive, as "YYYY-MM-DD". */
export function dayRange(first: string, last: string): string[] {
  const out: string[] = [];
  const start = parseDay(first);
  const end = parseDay(last).getTime();
  // Step by calendar day in local time (DST-safe: setDate, not +24 h).
  for (let d = new Date(start); d.getTime() <= end; d.setDate(d.getDate() + 1)) {
    out.push(dayKey(d));
    if (out.length > 20_000) break;
  }
  return out;
}

/** The first and last day over several day-keyed lists, or null when all are empty. */
export function daySpan(
  ...lists: ReadonlyArray<ReadonlyArray<{ day: string }>>
): [string, string] | null {
  let min: string | null = null;
  let max: string | null = null;
  for (const list of lists) {
    for (const p of list) {
      if (min === null || p.day < min) min = p.day;
      if (max === null || p.day > max) max = p.day;
    }
  }
  return min !== null && max !== null ? [min, max] : null;
}

/** Values aligned to `days` (null where a day has no point; the last point of a day wins). */
export function alignToDays(days: readonly string[], points: readonly Point[]): (number | null)[] {
  const byDay = new Map<string, number>();
  for (const p of points) byDay.set(p.day, p.value);
  return days.map((d) => byDay.get(d) ?? null);
}

/**
 * Trailing mean over `window` calendar days (values aligned to consecutive days), ignoring
 * missing days. Null until `minCount` values are in the window.
 */
export function rollingMean(
  values: readonly (number | null)[],
  window: number,
  minCount = 1,
): (number | null)[] {
  const out: (number | null)[] = [];
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v != null) {
      sum += v;
      count++;
    }
    const drop = i - window >= 0 ? values[i - window] : null;
    if (drop != null) {
      sum -= drop;
      count--;
    }
    out.push(count >= minCount ? sum / count : null);
  }
  return out;
}

/**
 * The baseline band: trailing 30-day mean ± one standard deviation (the person's normal range).
 * Null until 7 values are in the window.
 */
export function baselineBand(
  values: readonly (number | null)[],
  window = 30,
  minCount = 7,
): { lower: (number | null)[]; upper: (number | null)[] } {
  const lower: (number | null)[] = [];
  const upper: (number | null)[] = [];
  let sum = 0;
  let sumSq = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v != null) {
      sum += v;
      sumSq += v * v;
      count++;
    }
    const drop = i - window >= 0 ? values[i - window] : null;
    if (drop != null) {
      sum -= drop;
      sumSq -= drop * drop;
      count--;
    }
    if (count >= minCount) {
      const mean = sum / count;
      const sd = Math.sqrt(Math.max(0, sumSq / count - mean * mean));
      lower.push(mean - sd);
      upper.push(mean + sd);
    } else {
      lower.push(null);
      upper.push(null);
    }
  }
  return { lower, upper };
}

export function mean(values: readonly (number | null)[]): number | null {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (v != null) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum / n : null;
}

/** Seconds since the epoch at local midnight of a day (uPlot's x unit). */
export function dayToSeconds(day: string): number {
  return Math.round(parseDay(day).getTime() / 1000);
}

/**
 * How many consecutive days one chart point stands for, so that a chart `width` pixels wide
 * draws at most one point per `pxPerPoint` pixels: 1 (daily) until the range holds more days
 * than that. Memory and redraw time then stop growing with years of history.
 */
export function bucketSize(dayCount: number, width: number, pxPerPoint = 1): number {
  const points = Math.max(1, Math.floor(width / pxPerPoint));
  return Math.max(1, Math.ceil(dayCount / points));
}

/** The first day of each run of `size` consecutive days. */
export function bucketDays(days: readonly string[], size: number): string[] {
  if (size <= 1) return [...days];
  const out: string[] = [];
  for (let i = 0; i < days.length; i += size) out.push(days[i] as string);
  return out;
}

/**
 * Points folded into runs of `size` days (as `bucketDays` cuts them), dated by each run's first
 * day: the mean of the run's values, or its largest with `how = 'max'`. Runs without a value are
 * left out, as days without one are.
 */
export function bucketPoints(
  days: readonly string[],
  points: readonly Point[],
  size: number,
  how: 'mean' | 'max' = 'mean',
): Point[] {
  if (size <= 1) return [...points];
  const bucketOf = new Map(days.map((d, i) => [d, Math.floor(i / size)]));
  const sums = new Map<number, { sum: number; count: number; max: number }>();
  for (const p of points) {
    const b = bucketOf.get(p.day);
    if (b === undefined) continue;
    const acc = sums.get(b) ?? { sum: 0, count: 0, max: -Infinity };
    acc.sum += p.value;
    acc.count += 1;
    acc.max = Math.max(acc.max, p.value);
    sums.set(b, acc);
  }
  return [...sums.entries()]
    .sort(([a], [b]) => a - b)
    .map(([b, acc]) => ({
      day: days[b * size] as string,
      value: how === 'max' ? acc.max : acc.sum / acc.count,
    }));
}

/** Nights folded into runs of `size` days: the mean of each stage and of the need. */
export function bucketSleep(
  days: readonly string[],
  points: readonly SleepPoint[],
  size: number,
): SleepPoint[] {
  if (size <= 1) return [...points];
  const stage = (key: 'light' | 'deep' | 'rem' | 'awake') =>
    bucketPoints(
      days,
      points.map((p) => ({ day: p.day, value: p[key] })),
      size,
    );
  const need = new Map(
    bucketPoints(
      days,
      points.flatMap((p) => (p.need != null ? [{ day: p.day, value: p.need }] : [])),
      size,
    ).map((p) => [p.day, p.value]),
  );
  const [light, deep, rem, awake] = [stage('light'), stage('deep'), stage('rem'), stage('awake')];
  return light.map((l, i) => ({
    day: l.day,
    light: l.value,
    deep: deep[i]?.value ?? 0,
    rem: rem[i]?.value ?? 0,
    awake: awake[i]?.value ?? 0,
    need: need.get(l.day) ?? null,
  }));
}
