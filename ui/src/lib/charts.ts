/**
 * uPlot chart specifications for the trends. Pure functions from dashboard series to the data,
 * options and hover content of one chart; `Chart.svelte` mounts them.
 */
import { LOCALE } from './format';
import uPlot from 'uplot';
import type { Point } from '../bindings/Point';
import type { SleepPoint } from '../bindings/SleepPoint';
import {
  dayKey,
  fmtDayWithYear,
  fmtDecimal,
  fmtHours,
  fmtInt,
  fmtPercent,
  parseDay,
} from './format';
import { alignToDays, baselineBand, dayToSeconds, recoveryBand, rollingMean } from './metrics';
import type { ChartTheme } from './theme.svelte';

export interface TooltipRow {
  label: string;
  value: string;
  color?: string;
  /** "line" shows a short stroke instead of a swatch. */
  mark?: 'swatch' | 'line' | 'dot';
}

export interface TooltipContent {
  title: string;
  rows: TooltipRow[];
}

export interface ChartSpec {
  data: uPlot.AlignedData;
  /** The smoothing line's name when the chart draws one beyond its daily marks. */
  averageLabel?: string | null;
  options: (width: number, height: number) => uPlot.Options;
  tooltip: (idx: number) => TooltipContent | null;
}

export const SYNC_KEY = 'vitaltrends-trends';

const HALF_DAY = 43_200;

const dayFmtCache = new Map<string, Intl.DateTimeFormat>();
function dtf(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = JSON.stringify(options);
  let f = dayFmtCache.get(k);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALE, options);
    dayFmtCache.set(k, f);
  }
  return f;
}

/** Locale-aware x-axis labels: days, then months with the year, then years. */
function xValues(_u: uPlot, splits: number[], _ax: number, _space: number, incr: number): string[] {
  const fmt =
    incr >= 360 * 86_400
      ? dtf({ year: 'numeric' })
      : incr >= 28 * 86_400
        ? dtf({ month: 'short', year: 'numeric' })
        : dtf({ day: 'numeric', month: 'short' });
  return splits.map((s) => fmt.format(new Date(s * 1000)));
}

/** `#rrggbb` with an alpha; other color syntaxes are returned unchanged. */
export function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color.trim());
  if (!m) return color;
  const [r, g, b] = [m[1], m[2], m[3]].map((h) => parseInt(h ?? '0', 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Above this many days a chart is "dense": thinner marks and a smoothing line. */
export const DENSE_DAYS = 120;

/**
 * A hovered point's title: its day, or for a point standing for `bucket` days (a long range
 * drawn with fewer points than days) the span it averages.
 */
export function pointTitle(day: string, bucket: number): string {
  if (bucket <= 1) return fmtDayWithYear(day);
  const last = parseDay(day);
  last.setDate(last.getDate() + bucket - 1);
  const first = dtf({ day: 'numeric', month: 'short' }).format(parseDay(day));
  return `${first} – ${fmtDayWithYear(dayKey(last))} · ${bucket}-day average`;
}

/** A rolling window of `windowDays` in points of `bucket` days; null when one point covers it. */
function windowPoints(windowDays: number, bucket: number): number | null {
  const points = Math.round(windowDays / bucket);
  return points >= 2 ? points : null;
}

function baseAxes(t: ChartTheme, yValues?: uPlot.Axis['values'], ySplits?: number[]): uPlot.Axis[] {
  const font = `11px ${t.font}`;
  return [
    {
      stroke: t.muted,
      font,
      grid: { show: false },
      ticks: { show: false },
      space: 64,
      gap: 6,
      size: 26,
      values: xValues,
    },
    {
      stroke: t.muted,
      font,
      grid: { stroke: t.grid, width: 1 },
      ticks: { show: false },
      size: 36,
      gap: 6,
      space: 28,
      ...(yValues ? { values: yValues } : {}),
      ...(ySplits ? { splits: () => ySplits } : {}),
    },
  ];
}

function baseOptions(
  width: number,
  height: number,
): Pick<uPlot.Options, 'width' | 'height' | 'padding' | 'legend' | 'cursor' | 'scales'> {
  return {
    width,
    height,
    padding: [10, 8, 0, 0],
    legend: { show: false },
    cursor: {
      sync: { key: SYNC_KEY },
      drag: { x: false, y: false, setScale: false },
      points: { show: false },
      y: false,
    },
    scales: {
      x: {
        time: true,
        // Keep the first and last bar whole.
        range: (_u, min, max) => [min - HALF_DAY, max + HALF_DAY],
      },
    },
  };
}

function bars(): uPlot.Series.PathBuilder {
  return uPlot.paths.bars!({ size: [0.68, 26, 1], radius: [0.25, 0], align: 0 });
}

const x = (days: readonly string[]) => days.map(dayToSeconds);

function hasValues(list: readonly (number | null)[]): boolean {
  return list.some((v) => v != null);
}

// ---- Recovery: bars colored by band ----

export function recoverySpec(
  days: readonly string[],
  points: readonly Point[],
  t: ChartTheme,
  bucket = 1,
): ChartSpec {
  const values = alignToDays(days, points);
  const spanDays = days.length * bucket;
  const dense = spanDays > DENSE_DAYS;
  // Long ranges: the daily bars fade back and a rolling average carries the trend.
  const avgWindow = spanDays > 400 ? 30 : 7;
  const avgPoints = windowPoints(avgWindow, bucket);
  const avg = dense && avgPoints ? rollingMean(values, avgPoints, Math.ceil(avgPoints / 3)) : null;
  const inBand = (band: 'green' | 'yellow' | 'red') =>
    values.map((v) => (v != null && recoveryBand(v) === band ? v : null));
  const data: uPlot.AlignedData = [
    x(days),
    inBand('green'),
    inBand('yellow'),
    inBand('red'),
    ...(avg ? [avg] : []),
  ];
  const bar = (label: string, color: string): uPlot.Series => {
    const c = dense ? withAlpha(color, 0.45) : color;
    return { label, fill: c, stroke: c, width: 0, paths: bars(), points: { show: false } };
  };
  return {
    data,
    options: (w, h) => ({
      ...baseOptions(w, h),
      scales: { ...baseOptions(w, h).scales, y: { range: [0, 100] } },
      axes: baseAxes(t, (_u, splits) => splits.map((s) => `${s}%`), [0, 34, 67, 100]),
      series: [
        {},
        bar('Recovery', t.green),
        bar('Recovery', t.yellow),
        bar('Recovery', t.red),
        ...(avg
          ? [
              {
                label: `${avgWindow}-day average`,
                stroke: t.text,
                width: 1.75,
                spanGaps: true,
                points: { show: false },
              } satisfies uPlot.Series,
            ]
          : []),
      ],
    }),
    tooltip: (i) => {
      const day = days[i];
      if (!day) return null;
      const v = values[i];
      const rows: TooltipRow[] = [];
      if (v == null) rows.push({ label: 'Recovery', value: 'No score' });
      else {
        const band = recoveryBand(v);
        const color = band === 'green' ? t.green : band === 'yellow' ? t.yellow : t.red;
        rows.push({ label: 'Recovery', value: fmtPercent(v), color, mark: 'swatch' });
      }
      const a = avg?.[i];
      if (a != null)
        rows.push({
          label: `${avgWindow}-day average`,
          value: fmtPercent(a),
          color: t.text,
          mark: 'line',
        });
      return { title: pointTitle(day, bucket), rows };
    },
    averageLabel: avg ? `${avgWindow}-day average` : null,
  };
}

// ---- HRV and resting HR: daily line, 7-day average, baseline band ----

export function trendLineSpec(
  days: readonly string[],
  points: readonly Point[],
  t: ChartTheme,
  opts: { label: string; unit: string; digits?: number },
  bucket = 1,
): ChartSpec {
  const values = alignToDays(days, points);
  const weekPoints = windowPoints(7, bucket);
  const avg7 = weekPoints
    ? rollingMean(values, weekPoints, Math.ceil(weekPoints / 2))
    : values.map(() => null);
  const monthPoints = windowPoints(30, bucket) ?? 2;
  const { lower, upper } = baselineBand(
    values,
    monthPoints,
    Math.max(2, Math.ceil(monthPoints / 4)),
  );
  const few = days.length <= 45;
  const data: uPlot.AlignedData = [x(days), upper, lower, values, avg7];
  const digits = opts.digits ?? 0;
  const fmt = (v: number) => (digits ? fmtDecimal(v, digits) : fmtInt(Math.round(v)));
  const showBand = hasValues(upper);
  return {
    data,
    options: (w, h) => ({
      ...baseOptions(w, h),
      scales: {
        ...baseOptions(w, h).scales,
        y: {
          range: (_u, min, max) => {
            const pad = Math.max(2, (max - min) * 0.12);
            return [Math.max(0, Math.floor(min - pad)), Math.ceil(max + pad)];
          },
        },
      },
      axes: baseAxes(t),
      series: [
        {},
        { label: 'Normal range (high)', stroke: 'transparent', width: 0, points: { show: false } },
        { label: 'Normal range (low)', stroke: 'transparent', width: 0, points: { show: false } },
        {
          label: opts.label,
          stroke: days.length * bucket > DENSE_DAYS ? withAlpha(t.line, 0.55) : t.line,
          width: days.length * bucket > DENSE_DAYS ? 1 : 1.25,
          spanGaps: true,
          points: { show: few, size: 4, fill: t.line, stroke: t.line },
        },
        {
          label: '7-day average',
          stroke: t.accent,
          width: 2.25,
          spanGaps: true,
          points: { show: false },
        },
      ],
      bands: showBand ? [{ series: [1, 2], fill: t.accentSoft }] : [],
    }),
    tooltip: (i) => {
      const day = days[i];
      if (!day) return null;
      const v = values[i];
      const a = avg7[i];
      const lo = lower[i];
      const hi = upper[i];
      const rows: TooltipRow[] = [
        {
          label: opts.label,
          value: v != null ? `${fmt(v)} ${opts.unit}` : 'No data',
          color: t.line,
          mark: 'dot',
        },
      ];
      if (a != null)
        rows.push({
          label: '7-day average',
          value: `${fmt(a)} ${opts.unit}`,
          color: t.accent,
          mark: 'line',
        });
      if (lo != null && hi != null)
        rows.push({
          label: 'Normal range',
          value: `${fmtInt(Math.round(lo))}–${fmtInt(Math.round(hi))} ${opts.unit}`,
          color: t.accentSoft,
          mark: 'swatch',
        });
      return { title: pointTitle(day, bucket), rows };
    },
    averageLabel: weekPoints ? '7-day average' : null,
  };
}

// ---- Sleep: stacked stages, sleep need as a line ----

export function sleepSpec(
  days: readonly string[],
  points: readonly SleepPoint[],
  t: ChartTheme,
  bucket = 1,
): ChartSpec {
  const byDay = new Map(points.map((p) => [p.day, p]));
  const rows = days.map((d) => byDay.get(d) ?? null);
  // Stack bottom to top: deep, light, REM, awake. Drawn tallest first so each shorter bar sits on top.
  const cDeep = rows.map((p) => (p ? p.deep : null));
  const cLight = rows.map((p) => (p ? p.deep + p.light : null));
  const cRem = rows.map((p) => (p ? p.deep + p.light + p.rem : null));
  const cAwake = rows.map((p) => (p ? p.deep + p.light + p.rem + p.awake : null));
  const need = rows.map((p) => (p ? p.need : null));
  const data: uPlot.AlignedData = [x(days), cAwake, cRem, cLight, cDeep, need];
  const bar = (label: string, color: string): uPlot.Series => ({
    label,
    fill: color,
    stroke: color,
    width: 0,
    paths: bars(),
    points: { show: false },
  });
  return {
    data,
    options: (w, h) => ({
      ...baseOptions(w, h),
      scales: {
        ...baseOptions(w, h).scales,
        y: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil(max))] },
      },
      axes: baseAxes(t, (_u, splits) => splits.map((s) => `${s} h`)),
      series: [
        {},
        bar('Awake', t.awake),
        bar('REM', t.rem),
        bar('Light', t.light),
        bar('Deep (SWS)', t.deep),
        {
          label: 'Sleep need',
          stroke: t.text,
          width: 1.5,
          dash: [4, 4],
          spanGaps: true,
          points: { show: false },
        },
      ],
    }),
    tooltip: (i) => {
      const day = days[i];
      const p = rows[i];
      if (!day) return null;
      if (!p)
        return { title: pointTitle(day, bucket), rows: [{ label: 'Sleep', value: 'No data' }] };
      const asleep = p.light + p.deep + p.rem;
      const out: TooltipRow[] = [
        { label: 'Asleep', value: fmtHours(asleep) },
        { label: 'Deep (SWS)', value: fmtHours(p.deep), color: t.deep, mark: 'swatch' },
        { label: 'Light', value: fmtHours(p.light), color: t.light, mark: 'swatch' },
        { label: 'REM', value: fmtHours(p.rem), color: t.rem, mark: 'swatch' },
        { label: 'Awake', value: fmtHours(p.awake), color: t.awake, mark: 'swatch' },
      ];
      if (p.need != null)
        out.push({ label: 'Sleep need', value: fmtHours(p.need), color: t.text, mark: 'line' });
      return { title: pointTitle(day, bucket), rows: out };
    },
  };
}

// ---- Strain: day strain bars, workout markers ----

const MAX_MARKERS_PER_DAY = 3;

export function strainSpec(
  days: readonly string[],
  dayStrain: readonly Point[],
  workoutStrain: readonly Point[],
  t: ChartTheme,
  bucket = 1,
): ChartSpec {
  const values = alignToDays(days, dayStrain);
  const index = new Map(days.map((d, i) => [d, i]));
  const perDay: number[][] = days.map(() => []);
  for (const w of workoutStrain) {
    const i = index.get(w.day);
    if (i !== undefined) perDay[i]!.push(w.value);
  }
  const markers: (number | null)[][] = [];
  for (let k = 0; k < MAX_MARKERS_PER_DAY; k++) {
    markers.push(perDay.map((list) => list[k] ?? null));
  }
  const usedMarkers = markers.filter(hasValues);
  const data: uPlot.AlignedData = [x(days), values, ...usedMarkers];
  const dense = days.length * bucket > DENSE_DAYS;
  return {
    data,
    options: (w, h) => ({
      ...baseOptions(w, h),
      scales: { ...baseOptions(w, h).scales, y: { range: [0, 21] } },
      axes: baseAxes(t, undefined, [0, 7, 14, 21]),
      series: [
        {},
        {
          label: 'Day strain',
          fill: t.accent,
          stroke: t.accent,
          width: 0,
          paths: bars(),
          points: { show: false },
        },
        ...usedMarkers.map((): uPlot.Series => ({
          label: 'Workout strain',
          stroke: t.text,
          width: 0,
          paths: () => null,
          points: {
            show: true,
            size: dense ? 4 : 7,
            width: dense ? 1 : 1.5,
            stroke: t.text,
            fill: t.surface,
          },
        })),
      ],
    }),
    tooltip: (i) => {
      const day = days[i];
      if (!day) return null;
      const v = values[i];
      const rows: TooltipRow[] = [
        {
          label: 'Day strain',
          value: v != null ? fmtDecimal(v, 1) : 'No data',
          color: t.accent,
          mark: 'swatch',
        },
      ];
      const ws = perDay[i] ?? [];
      ws.forEach((s, k) =>
        rows.push({
          label: ws.length > 1 ? `Workout ${k + 1}` : 'Workout',
          value: fmtDecimal(s, 1),
          color: t.text,
          mark: 'dot',
        }),
      );
      return { title: pointTitle(day, bucket), rows };
    },
  };
}

/** For screen readers: the day span of a chart. */
export function spanLabel(days: readonly string[]): string {
  const first = days[0];
  const last = days[days.length - 1];
  if (!first || !last) return 'no days';
  const f = dtf({ day: 'numeric', month: 'short', year: 'numeric' });
  return `${f.format(parseDay(first))} to ${f.format(parseDay(last))}`;
}
