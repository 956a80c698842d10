/**
 * A fake VitalTrends engine behind Tauri's own IPC mocks: components go through the real
 * backend.ts, so command names, argument shapes and event names are exercised as in the app.
 */
import { cleanup, render } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { tick } from 'svelte';
import { afterEach } from 'vitest';
import App from '../App.svelte';
import type { AppStatus } from '../bindings/AppStatus';
import type { Dashboard } from '../bindings/Dashboard';
import type { RangeKey } from '../bindings/RangeKey';
import type { SettingsView } from '../bindings/SettingsView';
import { fixtureSettings, fixtureStatus, fullDashboard } from '../lib/fixtures';

export interface Call {
  cmd: string;
  args: Record<string, unknown> | undefined;
}

type Handler = (args: Record<string, unknown> | undefined) => unknown;

export interface FakeEngine {
  calls: Call[];
  status: AppStatus;
  settings: SettingsView;
  dashboard: (range: RangeKey) => Dashboard;
  /** Override a command; throw `{ code, message }` to reject like the Rust side. */
  handlers: Record<string, Handler>;
  callsTo(cmd: string): Call[];
  /** Emit a Tauri event as the Rust side would, then let Svelte update the DOM. */
  emit(event: string, payload?: unknown): Promise<void>;
  /** Set the status and emit status-changed with it. */
  pushStatus(patch: Partial<AppStatus>): Promise<void>;
}

export function installEngine(
  init: {
    status?: AppStatus;
    settings?: SettingsView;
    dashboard?: (range: RangeKey) => Dashboard;
  } = {},
): FakeEngine {
  const engine: FakeEngine = {
    calls: [],
    status: init.status ?? fixtureStatus('connected'),
    settings: init.settings ?? fixtureSettings(),
    dashboard: init.dashboard ?? ((range) => fullDashboard(range)),
    handlers: {},
    callsTo: (cmd) => engine.calls.filter((c) => c.cmd === cmd),
    emit: async (event, payload) => {
      await emit(event, payload);
      await tick();
    },
    pushStatus: async (patch) => {
      engine.status = { ...engine.status, ...patch };
      await engine.emit('status-changed', engine.status);
    },
  };

  mockIPC(
    (cmd, args) => {
      const a = args as Record<string, unknown> | undefined;
      engine.calls.push({ cmd, args: a });
      const custom = engine.handlers[cmd];
      if (custom) return custom(a);
      switch (cmd) {
        case 'get_status':
          return engine.status;
        case 'get_dashboard':
          return engine.dashboard(a?.range as RangeKey);
        case 'connect_whoop':
        case 'cancel_connect':
        case 'disconnect':
        case 'delete_local_data':
        case 'switch_member':
        case 'keep_member':
        case 'retry_now':
        case 'open_pricing':
        case 'get_licence':
          return null;
        case 'force_sync':
          return { queued: true, message: 'Force Sync queued' };
        case 'get_settings':
        case 'choose_mode':
        case 'save_own_app':
          return engine.settings;
        case 'set_pref': {
          const key = a?.key as keyof SettingsView['prefs'];
          engine.settings = {
            ...engine.settings,
            prefs: { ...engine.settings.prefs, [key]: a?.value as boolean },
          };
          return engine.settings.prefs;
        }
        case 'open_folder':
          return null;
        default:
          throw { code: 'unknown_command', message: `unknown command ${cmd}` };
      }
    },
    { shouldMockEvents: true },
  );
  return engine;
}

/** Unmount first (it unsubscribes through IPC), then remove the IPC mocks. */
export function resetEngineAfterEach(): void {
  afterEach(() => {
    cleanup();
    clearMocks();
  });
}

export function renderApp() {
  return render(App);
}
