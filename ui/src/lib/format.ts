/**
 * Locale-aware formatting. Numbers go through Intl.NumberFormat and dates through
 * Intl.DateTimeFormat in the person's locale and time zone; the surrounding words are English.
 */

/**
 * The person's locale, or English when the runtime cannot name one: a webview started with
 * LANG=C reports the locale "C", which Intl rejects with a RangeError.
 */
export const LOCALE: string | undefined = (() => {
  try {
    new Intl.NumberFormat(undefined).format(1);
    new Intl.DateTimeFormat(undefined).format(0);
    return undefined;
  } catch {
    return 'en-US';
  }
})();

const cache = new Map<string, Intl.NumberFormat>();

function nf(options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = JSON.stringify(options);
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, options);
    cache.set(key, f);
  }
  return f;
}

/** 1,204 */
export function fmtInt(n: number): string {
  return nf({ maximumFractionDigits: 0 }).format(n);
}

/** 12.4 (fixed number of decimals) */
export function fmtDecimal(n: number, digits = 1): string {
  return nf({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
}

/** 67% from 67 (values are 0–100). */
export function fmtPercent(n: number): string {
  return nf({ style: 'percent', maximumFractionDigits: 0 }).format(n / 100);
}

/**
 * A signed difference: "+5", "−3" (true minus sign), or null when it rounds to zero.
 * `digits` decimals are kept.
 */
export function fmtSignedDiff(diff: number, digits = 0): string | null {
  const factor = 10 ** digits;
  const rounded = Math.round(diff * factor) / factor;
  if (rounded === 0) return null;
  const abs = digits === 0 ? fmtInt(Math.abs(rounded)) : fmtDecimal(Math.abs(rounded), digits);
  return `${rounded > 0 ? '+' : '\u2212'}${abs}`;
}

/** "7 h 12 min", "45 min", "8 h" from hours. */
export function fmtHours(hours: number): string {
  const totalMin = Math.round(hours * 60);
  return fmtMinutes(totalMin);
}

/** "1 h 05 min", "45 min" from minutes. */
export function fmtMinutes(totalMin: number): string {
  const m = Math.max(0, Math.round(totalMin));
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h === 0) return `${fmtInt(rest)} min`;
  if (rest === 0) return `${fmtInt(h)} h`;
  return `${fmtInt(h)} h ${String(rest).padStart(2, '0')} min`;
}

const IMPERIAL_REGIONS = new Set(['US', 'LR', 'MM']);

function usesMiles(): boolean {
  try {
    const locale = new Intl.Locale(navigator.language || 'en');
    const region = locale.maximize().region ?? '';
    return IMPERIAL_REGIONS.has(region);
  } catch {
    return false;
  }
}

/** "5.2 km" or "3.2 mi" depending on the locale's region. */
export function fmtDistance(meters: number, imperial = usesMiles()): string {
  if (imperial) {
    return nf({ style: 'unit', unit: 'mile', maximumFractionDigits: 1 }).format(meters / 1609.344);
  }
  if (meters < 1000) {
    return nf({ style: 'unit', unit: 'meter', maximumFractionDigits: 0 }).format(meters);
  }
  return nf({ style: 'unit', unit: 'kilometer', maximumFractionDigits: 1 }).format(meters / 1000);
}

/** A "YYYY-MM-DD" day as a Date at local midnight. */
export function parseDay(day: string): Date {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1);
}

/** "YYYY-MM-DD" of a Date, in local time. */
export function dayKey(date: Date): string {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

const dfCache = new Map<string, Intl.DateTimeFormat>();
function df(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = JSON.stringify(options);
  let f = dfCache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALE, options);
    dfCache.set(key, f);
  }
  return f;
}

/** "Monday, 24 November" */
export function fmtDayLong(day: string): string {
  return df({ weekday: 'long', day: 'numeric', month: 'long' }).format(parseDay(day));
}

/** "Mon, 24 Nov 2025" */
export function fmtDayWithYear(day: string): string {
  return df({ weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).format(
    parseDay(day),
  );
}

/** "March 2023" */
export function fmtMonthYear(day: string): string {
  return df({ month: 'long', year: 'numeric' }).format(parseDay(day));
}

/** "Mon, 24 Nov, 07:12" in the local time zone. */
export function fmtDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return df({
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: 'numeric',
    minute: '2-digit',
  }).format(d);
}

/** "just now", "3 min ago", "7 h ago", "2 days ago", then a date. */
export function fmtAgo(iso: string, now: number = Date.now()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return 'at an unknown time';
  const sec = Math.max(0, Math.round((now - t) / 1000));
  if (sec < 60) return 'just now';
  const min = Math.floor(sec / 60);
  if (min < 60) return `${fmtInt(min)} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${fmtInt(h)} h ago`;
  const days = Math.floor(h / 24);
  if (days < 7) return days === 1 ? 'yesterday' : `${fmtInt(days)} days ago`;
  return `on ${df({ day: 'numeric', month: 'short', year: 'numeric' }).format(new Date(t))}`;
}

/** A wait ahead, rounded up: "1 minute", "5 minutes", "2 hours". */
export function fmtDuration(ms: number): string {
  const min = Math.max(1, Math.ceil(ms / 60_000));
  if (min < 60) return `${fmtInt(min)} ${min === 1 ? 'minute' : 'minutes'}`;
  const h = Math.round(min / 60);
  return `${fmtInt(h)} ${h === 1 ? 'hour' : 'hours'}`;
}

const ACRONYMS = new Set(['hiit', 'mma', 'sup', 'bmx']);

/** "functional_fitness" → "Functional fitness", "hiit" → "HIIT". */
export function prettySport(sport: string): string {
  const words = sport
    .trim()
    .split(/[_\s-]+/)
    .filter(Boolean)
    .map((w) => (ACRONYMS.has(w.toLowerCase()) ? w.toUpperCase() : w.toLowerCase()));
  if (words.length === 0) return 'Activity';
  const first = words[0] ?? '';
  words[0] = first.charAt(0).toUpperCase() + first.slice(1);
  return words.join(' ');
}
