import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BackendError,
  backupData,
  cancelConnect,
  connectWhoop,
  deleteDays,
  deleteLocalData,
  disconnect,
  exportData,
  forceSync,
  getCalendar,
  getDashboard,
  getStatus,
  onExportProgress,
  onDataChanged,
  onNavigate,
  onNotice,
  onStatusChanged,
  refetchDays,
  toBackendError,
} from './backend';
import { emptyDashboard, fixtureStatus } from './fixtures';

afterEach(() => clearMocks());

function record() {
  const calls: { cmd: string; args: unknown }[] = [];
  mockIPC(
    (cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === 'get_status') return fixtureStatus('connected');
      if (cmd === 'get_dashboard') return emptyDashboard((args as { range: '7d' }).range);
      if (cmd === 'force_sync') return { queued: false, message: 'Force Sync is already running' };
      return null;
    },
    { shouldMockEvents: true },
  );
  return calls;
}

describe('backend commands (through Tauri IPC)', () => {
  it('uses the exact command names and argument shapes', async () => {
    const calls = record();
    expect((await getStatus()).state).toBe('connected');
    await connectWhoop();
    await cancelConnect();
    expect(await forceSync()).toEqual({ queued: false, message: 'Force Sync is already running' });
    await disconnect();
    await deleteLocalData();
    expect((await getDashboard('90d')).range).toBe('90d');

    expect(calls.map((c) => c.cmd)).toEqual([
      'get_status',
      'connect_whoop',
      'cancel_connect',
      'force_sync',
      'disconnect',
      'delete_local_data',
      'get_dashboard',
    ]);
    expect(calls.at(-1)?.args).toEqual({ range: '90d' });
  });

  it('sends the data commands with the argument names the shell reads', async () => {
    const calls = record();
    await exportData('parquet', '2025-01-01', null, '/tmp/export');
    await backupData('/tmp/b.db');
    await deleteDays('2025-02-01', '2025-02-03');
    await getCalendar(2025);
    await refetchDays('2025-02-01', '2025-02-03');
    expect(calls).toEqual([
      {
        cmd: 'export_data',
        args: { format: 'parquet', from: '2025-01-01', to: null, path: '/tmp/export' },
      },
      { cmd: 'backup_data', args: { path: '/tmp/b.db' } },
      { cmd: 'delete_days', args: { from: '2025-02-01', to: '2025-02-03' } },
      { cmd: 'get_calendar', args: { year: 2025 } },
      { cmd: 'refetch_days', args: { from: '2025-02-01', to: '2025-02-03' } },
    ]);
  });

  it('delivers export progress', async () => {
    record();
    const seen: unknown[] = [];
    const stop = await onExportProgress((p) => seen.push(p));
    await emit('export-progress', { done: 500, total: 1000 });
    stop();
    expect(seen).toEqual([{ done: 500, total: 1000 }]);
  });

  it('turns a {code, message} rejection into a BackendError', async () => {
    mockIPC(() => {
      throw { code: 'reconnect_needed', message: 'refresh token rejected' };
    });
    const err = await forceSync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect(err).toMatchObject({ code: 'reconnect_needed', message: 'refresh token rejected' });
  });

  it('wraps bare strings and Errors with code "unknown"', () => {
    expect(toBackendError('command get_x not found')).toMatchObject({ code: 'unknown' });
    expect(toBackendError(new Error('boom'))).toMatchObject({ code: 'unknown', message: 'boom' });
    const original = new BackendError('not_connected', 'x');
    expect(toBackendError(original)).toBe(original);
  });

  it('reports no_backend outside Tauri in tests instead of serving fixtures', async () => {
    clearMocks();
    const internals = (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
    try {
      await expect(getStatus()).rejects.toMatchObject({ code: 'no_backend' });
    } finally {
      (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__ = internals;
    }
  });
});

describe('backend events', () => {
  it('delivers payloads of status-changed, data-changed, navigate and notice', async () => {
    record();
    const status = vi.fn();
    const data = vi.fn();
    const nav = vi.fn();
    const notice = vi.fn();
    const subs = await Promise.all([
      onStatusChanged(status),
      onDataChanged(data),
      onNavigate(nav),
      onNotice(notice),
    ]);

    const s = fixtureStatus('importing');
    await emit('status-changed', s);
    await emit('data-changed');
    await emit('navigate', 'connections');
    await emit('notice', { kind: 'error', message: 'That link did not come from a sign-in.' });

    expect(status).toHaveBeenCalledWith(s);
    expect(data).toHaveBeenCalledTimes(1);
    expect(nav).toHaveBeenCalledWith('connections');
    expect(notice).toHaveBeenCalledWith({
      kind: 'error',
      message: 'That link did not come from a sign-in.',
    });

    for (const un of subs) un();
    await emit('data-changed');
    expect(data).toHaveBeenCalledTimes(1);
  });
});
