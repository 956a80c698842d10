/**
 * DEV ONLY. A stand-in for the Tauri engine when the UI runs in a plain browser (`npm run dev`).
 * backend.ts loads it with a dynamic import behind `import.meta.env.DEV`, so production builds
 * never contain it. It serves the fixtures and walks through the real flows on timers
 * (connect → authorizing → importing → connected, Force Sync queued → running → done).
 *
 * URL switches: `?state=connected|not_connected|authorizing|importing|reconnect_needed|disconnected`
 * `&data=full|partial|empty` `&demo=1` `&live=0` `&screen=connections`.
 */
import type { AiSettingsView } from '../../bindings/AiSettingsView';
import type { AppStatus } from '../../bindings/AppStatus';
import type { ConnectionStateKey } from '../../bindings/ConnectionStateKey';
import type { Dashboard } from '../../bindings/Dashboard';
import type { ForceSyncAnswer } from '../../bindings/ForceSyncAnswer';
import type { RangeKey } from '../../bindings/RangeKey';
import type { BackendImpl, Unsubscribe } from '../backend';
import { dayKey } from '../format';
import type { SettingsView } from '../../bindings/SettingsView';
import {
  emptyDashboard,
  fixtureSettings,
  fixtureStatus,
  fullDashboard,
  partialDashboard,
} from '../fixtures';

type Handler = (payload: unknown) => void;

const STATES: ConnectionStateKey[] = [
  'not_connected',
  'authorizing',
  'importing',
  'connected',
  'reconnect_needed',
  'disconnected',
];

export function createMockBackend(): BackendImpl {
  const params = new URLSearchParams(window.location.search);
  const requested = params.get('state') as ConnectionStateKey | null;
  const initialState: ConnectionStateKey =
    requested && STATES.includes(requested) ? requested : 'connected';
  let dataKind = params.get('data') ?? (initialState === 'not_connected' ? 'empty' : 'full');
  const today = dayKey(new Date());

  let status: AppStatus = fixtureStatus(initialState, {
    demo: params.get('demo') === '1',
    mode: params.get('demo') === '1' ? 'demo' : 'service',
    live: params.get('live') !== '0' && initialState === 'connected',
  });

  let settings: SettingsView = fixtureSettings({
    mode: params.get('demo') === '1' ? 'demo' : 'service',
  });

  const listeners = new Map<string, Set<Handler>>();
  const emit = (event: string, payload?: unknown) => {
    for (const h of listeners.get(event) ?? []) h(payload);
  };
  const setStatus = (patch: Partial<AppStatus>) => {
    status = { ...status, ...patch };
    emit('status-changed', status);
  };
  const later = (ms: number, fn: () => void) => window.setTimeout(fn, ms);

  if (params.get('screen') === 'connections') later(50, () => emit('navigate', 'connections'));

  function runImport() {
    let done = 0;
    const total = 10;
    let records = 0;
    dataKind = 'partial';
    setStatus({
      state: 'importing',
      member_name: 'Alex Morgan',
      reason: null,
      live: true,
      job: {
        kind: 'import',
        phase: 'recent',
        records,
        recent_windows_done: 0,
        recent_windows_total: total,
        oldest_day: null,
        percent: null,
      },
    });
    const tick = () => {
      if (done < total) {
        done++;
        records += 96;
        setStatus({
          job: {
            kind: 'import',
            phase: 'recent',
            records,
            recent_windows_done: done,
            recent_windows_total: total,
            oldest_day: null,
            percent: null,
          },
          days_of_history: Math.round((183 * done) / total),
          records,
        });
        if (done === 3) {
          emit('data-changed');
        }
        later(600, tick);
        return;
      }
      if (records < 6000) {
        records += 700;
        const oldest = new Date();
        oldest.setDate(oldest.getDate() - 183 - Math.round(records / 6));
        setStatus({
          job: {
            kind: 'import',
            phase: 'history',
            records,
            recent_windows_done: total,
            recent_windows_total: total,
            oldest_day: dayKey(oldest),
            percent: null,
          },
          days_of_history: 183 + Math.round((records - 960) / 6),
          records,
        });
        later(800, tick);
        return;
      }
      dataKind = 'full';
      setStatus({
        state: 'connected',
        job: null,
        import_complete: true,
        last_synced_at: new Date().toISOString(),
        days_of_history: 1100,
        last_job: {
          kind: 'import',
          finished_at: new Date().toISOString(),
          written: records,
          deleted: 0,
          error: null,
        },
      });
      emit('data-changed');
    };
    later(600, tick);
  }

  function dashboard(range: RangeKey): Dashboard {
    if (dataKind === 'empty') return emptyDashboard(range);
    if (dataKind === 'partial') return partialDashboard(range, today);
    return fullDashboard(range, today);
  }

  let ai: AiSettingsView = {
    cli_path: '/usr/bin/vitaltrends',
    claude_snippet: JSON.stringify(
      {
        mcpServers: {
          vitaltrends: {
            command: '/usr/bin/vitaltrends',
            args: ['--data-dir', '/home/you/.local/share/VitalTrends/service', 'mcp'],
          },
        },
      },
      null,
      2,
    ),
    claude_config: null,
    api_enabled: false,
    api_port: 47621,
    api_running: false,
    has_token: false,
    openapi_url: 'http://127.0.0.1:47621/api/v1/openapi.json',
    api_problem: null,
  };

  const commands: Record<string, (args?: Record<string, unknown>) => unknown> = {
    get_status: () => status,
    get_dashboard: (args) => dashboard((args?.range as RangeKey | undefined) ?? '30d'),
    connect_whoop: () => {
      setStatus({ state: 'authorizing' });
      later(2500, () => {
        if (status.state === 'authorizing') runImport();
      });
      return null;
    },
    cancel_connect: () => {
      setStatus({ state: status.days_of_history > 0 ? 'disconnected' : 'not_connected' });
      return null;
    },
    force_sync: (): ForceSyncAnswer => {
      if (status.state !== 'connected') {
        throw { code: 'not_connected', message: 'WHOOP is not connected.' };
      }
      if (status.queued.includes('force_sync') || status.job?.kind === 'force_sync') {
        return { queued: false, message: 'Force Sync is already running' };
      }
      setStatus({ queued: ['force_sync'] });
      later(1200, () => {
        setStatus({
          queued: [],
          job: {
            kind: 'force_sync',
            phase: 'recent',
            records: 0,
            recent_windows_done: 0,
            recent_windows_total: 10,
            oldest_day: null,
            percent: 0,
          },
        });
        later(2500, () => {
          const now = new Date().toISOString();
          setStatus({
            job: null,
            last_synced_at: now,
            last_job: {
              kind: 'force_sync',
              finished_at: now,
              written: 12,
              deleted: 0,
              error: null,
            },
          });
          emit('data-changed');
        });
      });
      return { queued: true, message: 'Force Sync queued' };
    },
    disconnect: () => {
      setStatus({ state: 'disconnected', live: false, job: null, queued: [] });
      return null;
    },
    get_settings: () => settings,
    choose_mode: (args) => {
      const mode = (args?.mode as SettingsView['mode']) ?? null;
      settings = { ...settings, mode };
      setStatus({ mode, demo: mode === 'demo', state: 'not_connected', records: 0 });
      return settings;
    },
    save_own_app: () => {
      settings = {
        ...settings,
        mode: 'own-app',
        own_app: { ...settings.own_app, has_secret: true },
      };
      setStatus({ mode: 'own-app', demo: false, has_relay: false, state: 'not_connected' });
      return settings;
    },
    set_pref: (args) => {
      settings = {
        ...settings,
        prefs: { ...settings.prefs, [args?.key as string]: args?.value as boolean },
      };
      return settings.prefs;
    },
    open_folder: () => null,
    get_licence: () => null,
    set_licence: () => ({
      licence_id: 'lic_demo',
      plan: 'personal',
      renews_at: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      status: 'active',
      devices: 1,
      max_devices: 3,
    }),
    open_pricing: () => null,
    get_ai_settings: () => ai,
    set_api_enabled: (args) => {
      ai = { ...ai, api_enabled: Boolean(args?.enabled), api_running: Boolean(args?.enabled) };
      return ai;
    },
    set_api_port: (args) => {
      ai = { ...ai, api_port: Number(args?.port) };
      return ai;
    },
    new_api_token: () => {
      ai = { ...ai, has_token: true };
      return {
        token: 'vt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        view: ai,
      };
    },
    revoke_api_token: () => {
      ai = { ...ai, has_token: false };
      return ai;
    },
    add_to_claude_desktop: () => ({
      file: '/home/you/.config/Claude/claude_desktop_config.json',
      backup: null,
    }),
    open_api_doc: () => null,
    delete_local_data: () => {
      dataKind = 'empty';
      setStatus({
        state: status.state === 'disconnected' ? 'not_connected' : status.state,
        days_of_history: 0,
        records: 0,
        last_synced_at: null,
        last_job: null,
      });
      emit('data-changed');
      return null;
    },
  };

  return {
    async invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
      const fn = commands[cmd];
      if (!fn) throw { code: 'unknown_command', message: `No mock for ${cmd}` };
      await new Promise((r) => setTimeout(r, cmd === 'get_dashboard' ? 60 : 20));
      return fn(args) as T;
    },
    async listen<T>(event: string, handler: (payload: T) => void): Promise<Unsubscribe> {
      const set = listeners.get(event) ?? new Set<Handler>();
      listeners.set(event, set);
      const h = handler as Handler;
      set.add(h);
      return () => set.delete(h);
    },
  };
}
