import { getContext, setContext } from 'svelte';
import type { AppStatus } from '../bindings/AppStatus';
import type { Dashboard } from '../bindings/Dashboard';
import type { NavigateTarget } from '../bindings/NavigateTarget';
import type { Notice } from '../bindings/Notice';
import type { RangeKey } from '../bindings/RangeKey';
import type { SettingsView } from '../bindings/SettingsView';
import {
  getDashboard,
  getSettings,
  getStatus,
  onDataChanged,
  onNavigate,
  onNotice,
  onStatusChanged,
  takeArrival,
  type Unsubscribe,
} from './backend';
import { plainError, type PlainError } from './errors';

export type Screen = 'dashboard' | 'settings';
export type SettingsSection = 'connections' | 'general' | 'data' | 'ai' | 'about';

export const RANGES: { key: RangeKey; label: string; long: string }[] = [
  { key: '7d', label: '7D', long: 'Last 7 days' },
  { key: '30d', label: '30D', long: 'Last 30 days' },
  { key: '90d', label: '90D', long: 'Last 90 days' },
  { key: '6m', label: '6M', long: 'Last 6 months' },
  { key: '1y', label: '1Y', long: 'Last year' },
  { key: 'all', label: 'All', long: 'All time' },
];

const RANGE_STORAGE_KEY = 'vitaltrends.range';

function loadRange(): RangeKey {
  try {
    const saved = localStorage.getItem(RANGE_STORAGE_KEY);
    if (saved && RANGES.some((r) => r.key === saved)) return saved as RangeKey;
  } catch {
    // storage unavailable: use the default
  }
  return '30d';
}

export interface NoticeItem extends Notice {
  id: number;
}

/** The app's shared state. One instance per mounted App (tests get a fresh one each time). */
export class AppState {
  screen = $state<Screen>('dashboard');
  settingsSection = $state<SettingsSection>('connections');
  /** Settings → Data should bring the completeness calendar into view when it opens. */
  calendarFocus = $state(false);
  /** How the app connects, preferences and About; refreshed after every switch. */
  settings = $state<SettingsView | null>(null);
  /** The "how do you want to connect?" dialog is open. */
  choosing = $state(false);
  status = $state<AppStatus | null>(null);
  statusError = $state<PlainError | null>(null);
  dashboard = $state<Dashboard | null>(null);
  dashboardError = $state<PlainError | null>(null);
  range = $state<RangeKey>(loadRange());
  loading = $state(false);
  notices = $state<NoticeItem[]>([]);
  /** Ticks every 20 s so "3 min ago" stays true. */
  now = $state(Date.now());

  #inflight = false;
  #dirty = false;
  #noticeId = 0;

  /** Subscribes to the engine's events and loads the first data. Returns the cleanup. */
  start(): () => void {
    const subs: Promise<Unsubscribe>[] = [
      onStatusChanged((s) => {
        const switched = this.status !== null && this.status.mode !== s.mode;
        this.status = s;
        this.statusError = null;
        if (switched) void this.refreshSettings();
      }),
      onDataChanged(() => void this.loadDashboard()),
      onNavigate((target) => this.go(target)),
      onNotice((n) => {
        this.notify(n.kind, n.message);
        // A sign-in's outcome arrives as a notice; the card may have something to offer with it
        // (switching to the account that was refused).
        void this.refreshStatus();
      }),
    ];
    const arrival = takeArrival();
    if (arrival?.screen) this.go(arrival.screen);
    if (arrival?.notice) this.notify(arrival.notice.kind, arrival.notice.message);
    const timer = setInterval(() => (this.now = Date.now()), 20_000);
    // Listen first, then read: a change between the two is then never missed.
    void Promise.allSettled(subs).then(() => {
      void this.refreshStatus();
      void this.refreshSettings();
      void this.loadDashboard();
    });
    return () => {
      clearInterval(timer);
      for (const s of subs) void s.then((un) => un()).catch(() => {});
    };
  }

  /** Settings → Data with the completeness calendar in view (the dashboard's missing-days link). */
  openCalendar(): void {
    this.calendarFocus = true;
    this.settingsSection = 'data';
    this.screen = 'settings';
  }

  async refreshStatus(): Promise<void> {
    try {
      this.status = await getStatus();
      this.statusError = null;
    } catch (err) {
      this.statusError = plainError(err);
    }
  }

  async refreshSettings(): Promise<void> {
    try {
      this.settings = await getSettings();
    } catch {
      // The card shows the status error; settings stay as they were.
    }
  }

  /** Adopts what a switch of connection answered, and shows the new connection's data. */
  switched(view: SettingsView): void {
    this.settings = view;
    void this.refreshStatus();
    void this.loadDashboard();
  }

  /**
   * Fetches the dashboard for the current range. Calls that arrive while one is in flight are
   * folded into a single follow-up fetch, so a burst of data-changed events costs two requests.
   */
  async loadDashboard(): Promise<void> {
    if (this.#inflight) {
      this.#dirty = true;
      return;
    }
    this.#inflight = true;
    this.#dirty = false;
    this.loading = true;
    const range = this.range;
    try {
      const d = await getDashboard(range);
      if (range === this.range) {
        this.dashboard = d;
        this.dashboardError = null;
      } else {
        this.#dirty = true;
      }
    } catch (err) {
      this.dashboardError = plainError(err);
    } finally {
      this.#inflight = false;
      this.loading = false;
    }
    if (this.#dirty) await this.loadDashboard();
  }

  setRange(range: RangeKey): void {
    if (range === this.range) return;
    this.range = range;
    try {
      localStorage.setItem(RANGE_STORAGE_KEY, range);
    } catch {
      // not persisted; fine
    }
    void this.loadDashboard();
  }

  notify(kind: Notice['kind'], message: string): void {
    const id = ++this.#noticeId;
    this.notices = [...this.notices.slice(-2), { id, kind, message }];
    // Errors stay longer so they can be read, but none piles up for good.
    setTimeout(() => this.dismiss(id), kind === 'info' ? 8000 : 20000);
  }

  /** Shows the screen a notification click, the tray or a sign-in link asked for. */
  go(target: NavigateTarget): void {
    this.screen = target === 'connections' ? 'settings' : 'dashboard';
    if (target === 'connections') this.settingsSection = 'connections';
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

const KEY = Symbol('vitaltrends-app');

export function provideApp(app: AppState): void {
  setContext(KEY, app);
}

export function useApp(): AppState {
  const app = getContext<AppState | undefined>(KEY);
  if (!app) throw new Error('useApp() outside <App>');
  return app;
}
