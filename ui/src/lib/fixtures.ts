/**
 * Realistic, deterministic fixture data: used by the tests and by the dev-only mock backend
 * (`npm run dev` in a plain browser). Never used inside the Tauri app.
 */
import type { SettingsView } from '../bindings/SettingsView';
import type { AppStatus } from '../bindings/AppStatus';
import type { ConnectionStateKey } from '../bindings/ConnectionStateKey';
import type { Dashboard } from '../bindings/Dashboard';
import type { MetricToday } from '../bindings/MetricToday';
import type { Point } from '../bindings/Point';
import type { RangeKey } from '../bindings/RangeKey';
import type { SleepPoint } from '../bindings/SleepPoint';
import type { Today } from '../bindings/Today';
import type { WorkoutRow } from '../bindings/WorkoutRow';
import { dayKey, parseDay } from './format';

export const FIXTURE_TODAY = '2025-11-24';

export const RANGE_DAYS: Record<RangeKey, number | null> = {
  '7d': 7,
  '30d': 30,
  '90d': 90,
  '6m': 183,
  '1y': 365,
  all: null,
};

export interface History {
  recovery: Point[];
  hrv: Point[];
  resting_hr: Point[];
  sleep: SleepPoint[];
  day_strain: Point[];
  workout_strain: Point[];
  workouts: WorkoutRow[];
}

/** mulberry32: small, fast, deterministic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-9);
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

const SPORTS: { sport: string; weight: number; speedKmh: number | null }[] = [
  { sport: 'running', weight: 5, speedKmh: 10.8 },
  { sport: 'functional_fitness', weight: 3, speedKmh: null },
  { sport: 'cycling', weight: 3, speedKmh: 26 },
  { sport: 'weightlifting', weight: 3, speedKmh: null },
  { sport: 'yoga', weight: 2, speedKmh: null },
  { sport: 'hiit', weight: 1, speedKmh: null },
  { sport: 'swimming', weight: 1, speedKmh: 2.4 },
  { sport: 'tennis', weight: 1, speedKmh: null },
  { sport: 'walking', weight: 2, speedKmh: 5.2 },
];
const SPORT_WEIGHT = SPORTS.reduce((s, x) => s + x.weight, 0);

function pickSport(rand: () => number): (typeof SPORTS)[number] {
  let r = rand() * SPORT_WEIGHT;
  for (const s of SPORTS) {
    r -= s.weight;
    if (r <= 0) return s;
  }
  return SPORTS[0]!;
}

function offsetString(date: Date): string {
  const off = -date.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const historyCache = new Map<string, History>();

/** `days` days of history ending on `endDay` (inclusive). About 3 % of days have no data. */
export function generateHistory(endDay = FIXTURE_TODAY, days = 1100, seed = 7): History {
  const key = `${endDay}/${days}/${seed}`;
  const cached = historyCache.get(key);
  if (cached) return cached;

  const rand = rng(seed);
  const h: History = {
    recovery: [],
    hrv: [],
    resting_hr: [],
    sleep: [],
    day_strain: [],
    workout_strain: [],
    workouts: [],
  };
  const end = parseDay(endDay);
  let prevStrain = 10;
  let workoutId = 1;

  for (let i = days - 1; i >= 0; i--) {
    const date = new Date(end.getFullYear(), end.getMonth(), end.getDate() - i);
    const day = dayKey(date);
    const t = days - 1 - i;
    const weekend = date.getDay() === 0 || date.getDay() === 6;

    // A slow fitness cycle and a gentle improvement over the years.
    const hrvBase = 58 + 7 * Math.sin((2 * Math.PI * t) / 210) + (t / days) * 6;
    const rhrBase = 55 - 2.5 * Math.sin((2 * Math.PI * t) / 210) - (t / days) * 2;

    if (rand() < 0.03) {
      // Strap off: nothing recorded for this day.
      prevStrain = 8;
      continue;
    }

    // Sleep (hours)
    const need = clamp(7.7 + 0.05 * (prevStrain - 10) + 0.25 * gaussian(rand), 7, 9.6);
    const efficiency = clamp((weekend ? 0.97 : 0.9) + 0.08 * gaussian(rand), 0.62, 1.08);
    const asleep = clamp(need * efficiency, 4.2, 10);
    const deep = asleep * clamp(0.2 + 0.03 * gaussian(rand), 0.12, 0.3);
    const rem = asleep * clamp(0.23 + 0.03 * gaussian(rand), 0.14, 0.32);
    const light = asleep - deep - rem;
    const awake = clamp(0.45 + 0.2 * gaussian(rand), 0.1, 1.4);
    const performance = clamp((asleep / need) * 100, 35, 100);

    // Recovery inputs
    const hrv = clamp(
      hrvBase * (1 + 0.11 * gaussian(rand)) - 0.7 * (prevStrain - 10) + 0.12 * (performance - 85),
      18,
      160,
    );
    const rhr = clamp(
      rhrBase - 0.12 * (hrv - hrvBase) + 0.25 * (prevStrain - 10) + 1.2 * gaussian(rand),
      38,
      80,
    );
    const recovery = clamp(
      57 +
        2.0 * (hrv - hrvBase) +
        2.2 * (rhrBase - rhr) +
        0.45 * (performance - 85) +
        7 * gaussian(rand),
      1,
      99,
    );

    h.sleep.push({
      day,
      light: round(light, 2),
      deep: round(deep, 2),
      rem: round(rem, 2),
      awake: round(awake, 2),
      need: round(need, 2),
    });
    h.hrv.push({ day, value: round(hrv, 1) });
    h.resting_hr.push({ day, value: Math.round(rhr) });
    h.recovery.push({ day, value: Math.round(recovery) });

    // Workouts, more on green days
    let workoutLoad = 0;
    const sessions = rand() < 0.55 + (recovery - 50) / 250 ? (rand() < 0.12 ? 2 : 1) : 0;
    for (let s = 0; s < sessions; s++) {
      const sport = pickSport(rand);
      const duration = clamp(Math.round(50 + 22 * gaussian(rand)), 18, 150);
      const strain = clamp(
        (sport.sport === 'yoga' || sport.sport === 'walking' ? 5 : 9) +
          duration / 25 +
          2 * gaussian(rand),
        2,
        19.5,
      );
      const avg = Math.round(clamp(112 + strain * 3.2 + 6 * gaussian(rand), 90, 175));
      const max = Math.round(clamp(avg + 18 + 8 * rand(), avg + 5, 198));
      const hour =
        s === 0 ? (weekend ? 9 : 6) + Math.floor(rand() * 3) : 17 + Math.floor(rand() * 2);
      const start = new Date(
        date.getFullYear(),
        date.getMonth(),
        date.getDate(),
        hour,
        Math.floor(rand() * 60),
      );
      const distance =
        sport.speedKmh !== null
          ? Math.round((sport.speedKmh * (0.85 + 0.3 * rand()) * duration * 1000) / 60)
          : null;
      h.workouts.push({
        id: `w-${workoutId++}`,
        sport: sport.sport,
        start: start.toISOString(),
        timezone_offset: offsetString(start),
        duration_min: duration,
        strain: round(strain, 1),
        average_hr: avg,
        max_hr: max,
        distance_m: distance,
        pending: false,
      });
      h.workout_strain.push({ day, value: round(strain, 1) });
      workoutLoad += strain;
    }
    const dayStrain = clamp(
      4.5 + 2.5 * rand() + workoutLoad * 0.62 + (weekend ? 0.8 : 0),
      0.5,
      20.8,
    );
    h.day_strain.push({ day, value: round(dayStrain, 1) });
    prevStrain = dayStrain;
  }
  h.workouts.reverse(); // newest first
  historyCache.set(key, h);
  return h;
}

function sliceRange<T extends { day: string }>(list: T[], fromDay: string | null): T[] {
  return fromDay === null ? list.slice() : list.filter((p) => p.day >= fromDay);
}

export function rangeStart(range: RangeKey, endDay: string): string | null {
  const n = RANGE_DAYS[range];
  if (n === null) return null;
  const end = parseDay(endDay);
  return dayKey(new Date(end.getFullYear(), end.getMonth(), end.getDate() - (n - 1)));
}

function lastOf(list: Point[], day: string): number | null {
  const p = list[list.length - 1];
  return p && p.day === day ? p.value : null;
}

function baseline(list: Point[], day: string): number | null {
  const from = rangeStart('30d', day)!;
  const vals = list.filter((p) => p.day >= from && p.day < day).map((p) => p.value);
  if (vals.length === 0) return null;
  return round(vals.reduce((s, v) => s + v, 0) / vals.length, 1);
}

function metric(list: Point[], day: string): MetricToday {
  return {
    value: lastOf(list, day),
    pending: false,
    unscorable: false,
    baseline: baseline(list, day),
  };
}

export function todayFrom(h: History, day: string): Today {
  const s = h.sleep.find((p) => p.day === day);
  const asleep = s ? s.light + s.deep + s.rem : null;
  return {
    day,
    recovery: metric(h.recovery, day),
    hrv: metric(h.hrv, day),
    resting_hr: metric(h.resting_hr, day),
    sleep: {
      pending: false,
      unscorable: false,
      performance:
        s && asleep !== null && s.need ? Math.round(Math.min(100, (asleep / s.need) * 100)) : null,
      hours_asleep: asleep !== null ? round(asleep, 2) : null,
      hours_needed: s?.need ?? null,
      light_hours: s?.light ?? null,
      deep_hours: s?.deep ?? null,
      rem_hours: s?.rem ?? null,
      awake_hours: s?.awake ?? null,
    },
    day_strain: metric(h.day_strain, day),
  };
}

export const EMPTY_TODAY: Today = {
  day: null,
  recovery: { value: null, pending: false, unscorable: false, baseline: null },
  hrv: { value: null, pending: false, unscorable: false, baseline: null },
  resting_hr: { value: null, pending: false, unscorable: false, baseline: null },
  sleep: {
    pending: false,
    unscorable: false,
    performance: null,
    hours_asleep: null,
    hours_needed: null,
    light_hours: null,
    deep_hours: null,
    rem_hours: null,
    awake_hours: null,
  },
  day_strain: { value: null, pending: false, unscorable: false, baseline: null },
};

export function emptyDashboard(range: RangeKey = '30d'): Dashboard {
  return {
    range,
    today: EMPTY_TODAY,
    series: {
      recovery: [],
      hrv: [],
      resting_hr: [],
      sleep: [],
      day_strain: [],
      workout_strain: [],
    },
    workouts: [],
    has_data: false,
    missing_days: [],
  };
}

/** A full dashboard from the generated history. */
export function fullDashboard(
  range: RangeKey = '30d',
  endDay = FIXTURE_TODAY,
  historyDays = 1100,
): Dashboard {
  const h = generateHistory(endDay, historyDays);
  const from = rangeStart(range, endDay);
  const latest = h.recovery[h.recovery.length - 1]?.day ?? endDay;
  return {
    range,
    today: todayFrom(h, latest),
    series: {
      recovery: sliceRange(h.recovery, from),
      hrv: sliceRange(h.hrv, from),
      resting_hr: sliceRange(h.resting_hr, from),
      sleep: sliceRange(h.sleep, from),
      day_strain: sliceRange(h.day_strain, from),
      workout_strain: sliceRange(h.workout_strain, from),
    },
    workouts: h.workouts.filter((w) => from === null || dayKey(new Date(w.start)) >= from),
    has_data: true,
    missing_days: [],
  };
}

/**
 * Partial data, as right after connecting: a few days imported, today's recovery (and the HRV and
 * resting heart rate it comes from) still being scored by WHOOP, the latest workout pending.
 */
export function partialDashboard(range: RangeKey = '30d', endDay = FIXTURE_TODAY): Dashboard {
  const full = fullDashboard(range, endDay);
  const from = rangeStart('7d', endDay)!;
  const keep = <T extends { day: string }>(l: T[]) => l.filter((p) => p.day >= from);
  const dropToday = <T extends { day: string }>(l: T[]) => l.filter((p) => p.day !== endDay);
  const workouts = full.workouts
    .filter((w) => dayKey(new Date(w.start)) >= from)
    .map((w, i) => (i === 0 ? { ...w, pending: true, strain: null } : w));
  return {
    range,
    today: {
      ...full.today,
      day: endDay,
      recovery: { value: null, pending: true, unscorable: false, baseline: null },
      hrv: { value: null, pending: true, unscorable: false, baseline: null },
      resting_hr: { value: null, pending: true, unscorable: false, baseline: null },
    },
    series: {
      recovery: dropToday(keep(full.series.recovery)),
      hrv: dropToday(keep(full.series.hrv)),
      resting_hr: dropToday(keep(full.series.resting_hr)),
      sleep: keep(full.series.sleep),
      day_strain: keep(full.series.day_strain),
      workout_strain: keep(full.series.workout_strain),
    },
    workouts,
    has_data: true,
    missing_days: [],
  };
}

const BASE_STATUS: AppStatus = {
  state: 'not_connected',
  member_name: null,
  reason: null,
  last_synced_at: null,
  live: false,
  demo: false,
  days_of_history: 0,
  records: 0,
  job: null,
  queued: [],
  last_job: null,
  revoke_pending: false,
  import_complete: false,
  retry: null,
  live_problem: null,
  mode: 'service',
  has_relay: true,
  settings_problem: null,
  subscription: false,
  switch_to: null,
  quota_wait: null,
};

/** Settings as a service build that has chosen nothing else shows them. */
export function fixtureSettings(overrides: Partial<SettingsView> = {}): SettingsView {
  return {
    mode: 'service',
    service_available: true,
    demo_available: true,
    problem: null,
    own_app: {
      client_id: null,
      has_secret: false,
      relay_url: null,
      loopback_port: 47813,
      whoop_base_url: null,
      deep_link_redirect_uri: 'vitaltrends://oauth/whoop/callback',
      loopback_redirect_uri: 'http://127.0.0.1:47813/oauth/whoop/callback',
    },
    prefs: {
      keep_in_tray: true,
      start_at_login: false,
      start_at_login_asked: false,
      notify_import: true,
      notify_force_sync: true,
      notify_reconnect: true,
    },
    about: {
      version: '0.1.0',
      mode_label: 'VitalTrends service',
      data_dir: '/home/alex/.local/share/app.vitaltrends.desktop/service',
      log_dir: '/home/alex/.local/share/app.vitaltrends.desktop/logs',
      settings_file: '/home/alex/.config/vitaltrends/settings.toml',
    },
    ...overrides,
  };
}

/** A status for each connection state, `now` being the reference time for "last synced". */
export function fixtureStatus(
  state: ConnectionStateKey,
  overrides: Partial<AppStatus> = {},
  now: number = Date.now(),
): AppStatus {
  const minutesAgo = (m: number) => new Date(now - m * 60_000).toISOString();
  const byState: Record<ConnectionStateKey, Partial<AppStatus>> = {
    not_connected: {},
    authorizing: {},
    importing: {
      member_name: 'Alex Morgan',
      live: true,
      days_of_history: 183,
      records: 1204,
      job: {
        kind: 'import',
        phase: 'history',
        records: 1204,
        recent_windows_done: 10,
        recent_windows_total: 10,
        oldest_day: '2023-03-14',
        percent: null,
      },
    },
    connected: {
      member_name: 'Alex Morgan',
      last_synced_at: minutesAgo(2),
      live: true,
      days_of_history: 1834,
      records: 9461,
      import_complete: true,
      last_job: {
        kind: 'import',
        finished_at: minutesAgo(60 * 24 * 3),
        written: 9461,
        deleted: 0,
        error: null,
      },
    },
    reconnect_needed: {
      member_name: 'Alex Morgan',
      reason: 'WHOOP access was revoked or expired',
      last_synced_at: minutesAgo(60 * 7),
      days_of_history: 1834,
      records: 9461,
      import_complete: true,
    },
    disconnected: {
      last_synced_at: minutesAgo(60 * 30),
      days_of_history: 1834,
      records: 9461,
      import_complete: true,
    },
    subscription_required: { subscription: true },
    subscription_ended: {
      member_name: 'Alex Morgan',
      last_synced_at: minutesAgo(60 * 24 * 15),
      days_of_history: 1834,
      records: 9461,
      import_complete: true,
      subscription: true,
    },
  };
  return { ...BASE_STATUS, state, ...byState[state], ...overrides };
}
