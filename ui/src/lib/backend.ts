/**
 * The only module that talks to Tauri. Components and stores call the typed functions below;
 * nothing else imports `@tauri-apps/*` (an ESLint rule enforces it).
 *
 * Commands reject with `{ code, message }`; every rejection is turned into a `BackendError`
 * so callers can branch on `code`. Plain-language wording for codes lives in `errors.ts`.
 *
 * Outside Tauri (no `window.__TAURI_INTERNALS__`) in a Vite dev build, the calls are served by
 * `dev/mockBackend.ts` from fixtures, so `npm run dev` in a plain browser shows a realistic
 * screen. That module is loaded with a dynamic import behind `import.meta.env.DEV`, so it is
 * not part of the production bundle.
 */
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { AiSettingsView } from '../bindings/AiSettingsView';
import type { AppStatus } from '../bindings/AppStatus';
import type { ClaudeAdded } from '../bindings/ClaudeAdded';
import type { Arrival } from '../bindings/Arrival';
import type { BackupScheduleView } from '../bindings/BackupScheduleView';
import type { CalendarDay } from '../bindings/CalendarDay';
import type { Dashboard } from '../bindings/Dashboard';
import type { DataView } from '../bindings/DataView';
import type { ExportFormatKey } from '../bindings/ExportFormatKey';
import type { ExportProgressView } from '../bindings/ExportProgressView';
import type { ForceSyncAnswer } from '../bindings/ForceSyncAnswer';
import type { IpcError } from '../bindings/IpcError';
import type { LicenceView } from '../bindings/LicenceView';
import type { NavigateTarget } from '../bindings/NavigateTarget';
import type { NewToken } from '../bindings/NewToken';
import type { Notice } from '../bindings/Notice';
import type { ModeKey } from '../bindings/ModeKey';
import type { OwnAppForm } from '../bindings/OwnAppForm';
import type { PrefsView } from '../bindings/PrefsView';
import type { RangeKey } from '../bindings/RangeKey';
import type { RestoreDone } from '../bindings/RestoreDone';
import type { RestorePreview } from '../bindings/RestorePreview';
import type { SettingsView } from '../bindings/SettingsView';

/** Codes the UI branches on. Any other string may arrive too; it gets a generic sentence. */
export type KnownErrorCode =
  'reconnect_needed' | 'not_connected' | 'revoke_pending' | 'whoop_unavailable' | 'no_backend';

export class BackendError extends Error {
  readonly code: KnownErrorCode | (string & {});

  constructor(code: string, message: string) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
  }
}

export type Unsubscribe = () => void;

/** The command and event surface. The Tauri and the dev-mock implementations both satisfy it. */
export interface BackendImpl {
  invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  listen<T>(event: string, handler: (payload: T) => void): Promise<Unsubscribe>;
}

function isIpcError(value: unknown): value is IpcError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/** Turns whatever a command rejected with into a `BackendError`. */
export function toBackendError(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  if (isIpcError(err)) return new BackendError(err.code, err.message);
  if (typeof err === 'string') {
    // Tauri serializes some failures (unknown command, panics) as a bare string.
    return new BackendError('unknown', err);
  }
  if (err instanceof Error) return new BackendError('unknown', err.message);
  return new BackendError('unknown', String(err));
}

/** True inside the Tauri webview. */
export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

const tauriImpl: BackendImpl = {
  invoke: <T>(cmd: string, args?: Record<string, unknown>) => invoke<T>(cmd, args),
  listen: async <T>(event: string, handler: (payload: T) => void) => {
    const unlisten: UnlistenFn = await listen<T>(event, (e) => handler(e.payload));
    return unlisten;
  },
};

const missingImpl: BackendImpl = {
  invoke: () =>
    Promise.reject(new BackendError('no_backend', 'The VitalTrends engine is not available.')),
  listen: () => Promise.resolve(() => {}),
};

let devImpl: Promise<BackendImpl> | null = null;

async function impl(): Promise<BackendImpl> {
  if (inTauri()) return tauriImpl;
  if (import.meta.env.DEV && import.meta.env.MODE !== 'test') {
    // ---- dev-only fixture backend (plain browser, `npm run dev`) ----
    devImpl ??= import('./dev/mockBackend').then((m) => m.createMockBackend());
    return devImpl;
  }
  return missingImpl;
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  const backend = await impl();
  try {
    return await backend.invoke<T>(cmd, args);
  } catch (err) {
    throw toBackendError(err);
  }
}

// ---- commands ----

export function getStatus(): Promise<AppStatus> {
  return call<AppStatus>('get_status');
}

/** Opens WHOOP's consent page in the system browser; status moves to "authorizing". */
export async function connectWhoop(): Promise<void> {
  await call<null>('connect_whoop');
}

export async function cancelConnect(): Promise<void> {
  await call<null>('cancel_connect');
}

/** `queued: false` means a Force Sync is already queued or running; `message` says so. */
export function forceSync(): Promise<ForceSyncAnswer> {
  return call<ForceSyncAnswer>('force_sync');
}

/** Runs a failed job that is waiting for its automatic retry now instead. */
export async function retryNow(): Promise<void> {
  await call<null>('retry_now');
}

export async function disconnect(): Promise<void> {
  await call<null>('disconnect');
}

/** Switches to the WHOOP account a refused sign-in was for; the current one's history is kept apart. */
export async function switchMember(): Promise<void> {
  await call<null>('switch_member');
}

/** Keeps the WHOOP account in use and drops the offer to switch. */
export async function keepMember(): Promise<void> {
  await call<null>('keep_member');
}

export async function deleteLocalData(): Promise<void> {
  await call<null>('delete_local_data');
}

/** The stored licence (plan, renewal date, devices); never the key itself. */
export function getLicence(): Promise<LicenceView | null> {
  return call<LicenceView | null>('get_licence');
}

/** Stores a licence key in the system keychain; after a lapse, syncing resumes with it. */
export function setLicence(key: string): Promise<LicenceView> {
  return call<LicenceView>('set_licence', { key });
}

/** Subscribe / Renew: the pricing page in the system browser. */
export async function openPricing(): Promise<void> {
  await call<null>('open_pricing');
}

export function getDashboard(range: RangeKey): Promise<Dashboard> {
  return call<Dashboard>('get_dashboard', { range });
}

/** How the app connects, the own app's form values, preferences and About. */
export function getSettings(): Promise<SettingsView> {
  return call<SettingsView>('get_settings');
}

/** Switches to the service or demo data, or (`null`) back to nothing chosen. */
export function chooseMode(mode: Exclude<ModeKey, 'own-app'> | null): Promise<SettingsView> {
  return call<SettingsView>('choose_mode', { mode });
}

/** Saves the own app (its secret goes to the keychain) and switches to it. */
export function saveOwnApp(form: OwnAppForm): Promise<SettingsView> {
  return call<SettingsView>('save_own_app', { form });
}

export type PrefKey = keyof PrefsView;

export function setPref(key: PrefKey, value: boolean): Promise<PrefsView> {
  return call<PrefsView>('set_pref', { key, value });
}

export async function openFolder(which: 'data' | 'logs' | 'settings'): Promise<void> {
  await call<null>('open_folder', { which });
}

// ---- Settings → Data and the completeness calendar ----

/** Where the data lives, its size, records per collection, first and last day. */
export function getData(): Promise<DataView> {
  return call<DataView>('get_data');
}

/**
 * The OS save dialog for an export, suggesting a name for the format and range (a folder for
 * CSV and Parquet). Null when the person cancelled.
 */
export function chooseExportPath(
  format: ExportFormatKey,
  from: string | null,
  to: string | null,
): Promise<string | null> {
  return call<string | null>('choose_export_path', { format, from, to });
}

/** The OS save dialog for a backup file. Null when the person cancelled. */
export function chooseBackupPath(): Promise<string | null> {
  return call<string | null>('choose_backup_path');
}

/**
 * Exports the days `from`..`to` (`YYYY-MM-DD`, either null: all time) to `path`: a file for
 * JSON, a folder for CSV and Parquet. Progress arrives through `onExportProgress`. Returns the
 * files written.
 */
export function exportData(
  format: ExportFormatKey,
  from: string | null,
  to: string | null,
  path: string,
): Promise<string[]> {
  return call<string[]>('export_data', { format, from, to, path });
}

/** A consistent copy of the database at `path`, safe while syncing. */
export function backupData(path: string): Promise<string> {
  return call<string>('backup_data', { path });
}

/**
 * "Restore from backup…": the OS open dialog, then the chosen file checked (integrity,
 * VitalTrends' tables, schema version) without replacing anything. Null when cancelled; a
 * refused file rejects with `not_a_backup` and a sentence saying why.
 */
export function chooseRestoreFile(): Promise<RestorePreview | null> {
  return call<RestorePreview | null>('choose_restore_file');
}

/**
 * Replaces the data in use with the backup at `path` (checked again first). The data in use is
 * kept aside; the engine starts again on the restored data, and `data-changed` follows.
 */
export function restoreData(path: string): Promise<RestoreDone> {
  return call<RestoreDone>('restore_data', { path });
}

/** Daily backups: on or off, the folder, how many are kept, when the last one was made. */
export function getBackupSchedule(): Promise<BackupScheduleView> {
  return call<BackupScheduleView>('get_backup_schedule');
}

/** Turns daily backups on or off and sets how many are kept (on needs a folder first). */
export function setBackupSchedule(scheduled: boolean, keep: number): Promise<BackupScheduleView> {
  return call<BackupScheduleView>('set_backup_schedule', { scheduled, keep });
}

/** The OS folder dialog for daily backups; cancelled leaves the folder as it was. */
export function chooseBackupFolder(): Promise<BackupScheduleView> {
  return call<BackupScheduleView>('choose_backup_folder');
}

/** Deletes the records of the days `from`..`to`. */
export function deleteDays(from: string, to: string): Promise<string> {
  return call<string>('delete_days', { from, to });
}

/** Each WHOOP day of `year` (up to today): scored, pending, unscorable or missing. */
export function getCalendar(year: number): Promise<CalendarDay[]> {
  return call<CalendarDay[]>('get_calendar', { year });
}

/** Queues "Re-fetch these days"; false when merged into a re-fetch already waiting. */
export function refetchDays(from: string, to: string): Promise<boolean> {
  return call<boolean>('refetch_days', { from, to });
}

/** Settings → AI & API: the Claude Desktop entry and the REST API's state (never its token). */
export function getAiSettings(): Promise<AiSettingsView> {
  return call<AiSettingsView>('get_ai_settings');
}

export function setApiEnabled(enabled: boolean): Promise<AiSettingsView> {
  return call<AiSettingsView>('set_api_enabled', { enabled });
}

export function setApiPort(port: number): Promise<AiSettingsView> {
  return call<AiSettingsView>('set_api_port', { port });
}

/** A new REST API token, replacing the old one; the only time the token is ever shown. */
export function newApiToken(): Promise<NewToken> {
  return call<NewToken>('new_api_token');
}

export function revokeApiToken(): Promise<AiSettingsView> {
  return call<AiSettingsView>('revoke_api_token');
}

/** Merges the vitaltrends entry into Claude Desktop's config (after the person confirmed). */
export function addToClaudeDesktop(): Promise<ClaudeAdded> {
  return call<ClaudeAdded>('add_to_claude_desktop');
}

export async function openApiDoc(): Promise<void> {
  await call<null>('open_api_doc');
}

// ---- events ----

async function subscribe<T>(event: string, handler: (payload: T) => void): Promise<Unsubscribe> {
  const backend = await impl();
  return backend.listen<T>(event, handler);
}

/** How far a running export is. */
export function onExportProgress(
  handler: (progress: ExportProgressView) => void,
): Promise<Unsubscribe> {
  return subscribe<ExportProgressView>('export-progress', handler);
}

/** A daily backup was made (or failed): the schedule as it is now. */
export function onBackupSchedule(
  handler: (schedule: BackupScheduleView) => void,
): Promise<Unsubscribe> {
  return subscribe<BackupScheduleView>('backup-schedule', handler);
}

/** Every connection state change and progress step. */
export function onStatusChanged(handler: (status: AppStatus) => void): Promise<Unsubscribe> {
  return subscribe<AppStatus>('status-changed', handler);
}

/** Stored data changed; re-fetch the dashboard. */
export function onDataChanged(handler: () => void): Promise<Unsubscribe> {
  return subscribe<unknown>('data-changed', () => handler());
}

/** A notification click or the tray asks to show a screen. */
export function onNavigate(handler: (target: NavigateTarget) => void): Promise<Unsubscribe> {
  return subscribe<NavigateTarget>('navigate', handler);
}

/**
 * What the shell asked this window to show first when it opened it for a reason (a notification
 * click, a sign-in link) while it was closed to the tray. Read once.
 */
export function takeArrival(): Arrival | null {
  const w = window as { __vtArrival?: Arrival };
  const arrival = w.__vtArrival ?? null;
  delete w.__vtArrival;
  return arrival;
}

/** Something the person should read, e.g. a refused deep link. */
export function onNotice(handler: (notice: Notice) => void): Promise<Unsubscribe> {
  return subscribe<Notice>('notice', handler);
}
