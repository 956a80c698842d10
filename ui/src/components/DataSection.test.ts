import { screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { BackupScheduleView } from '../bindings/BackupScheduleView';
import type { CalendarDay } from '../bindings/CalendarDay';
import type { DataView } from '../bindings/DataView';
import { emptyDashboard, fixtureStatus } from '../lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

const DATA: DataView = {
  path: '/home/a/.local/share/VitalTrends/service/vitaltrends.db',
  size_bytes: 3 * 1024 * 1024,
  cycles: 365,
  sleeps: 400,
  recoveries: 365,
  workouts: 300,
  first_day: '2025-01-01',
  last_day: '2025-12-31',
};

const NO_SCHEDULE: BackupScheduleView = {
  scheduled: false,
  folder: null,
  keep: 7,
  last_backup: null,
  problem: null,
};

function day(d: string, state: CalendarDay['state']): CalendarDay {
  return { day: d, state, cycle: state, sleep: state, recovery: state };
}

async function openData() {
  const engine = installEngine({
    status: fixtureStatus('connected'),
    dashboard: (r) => emptyDashboard(r),
  });
  engine.handlers.get_data = () => DATA;
  engine.handlers.get_calendar = () => [
    day('2025-03-01', 'scored'),
    day('2025-03-02', 'pending'),
    day('2025-03-03', 'unscorable'),
    day('2025-03-04', 'missing'),
  ];
  engine.handlers.export_data = () => ['/tmp/export/cycle.parquet', '/tmp/export/sleep.parquet'];
  engine.handlers.refetch_days = () => true;
  engine.handlers.delete_days = () => 'Deleted 4 records from 2025-03-01 to 2025-03-01.';
  engine.handlers.get_backup_schedule = () => ({ ...NO_SCHEDULE });
  renderApp();
  const user = userEvent.setup();
  await user.click(screen.getByTestId('nav-settings'));
  await user.click(screen.getByTestId('settings-nav-data'));
  await screen.findByTestId('data-path');
  return { engine, user };
}

describe('Settings → Data', () => {
  it('shows where the data lives and how much there is', async () => {
    await openData();
    expect(screen.getByTestId('data-path')).toHaveTextContent(DATA.path);
    expect(screen.getByTestId('data-size')).toHaveTextContent('3.0 MB');
    expect(screen.getByTestId('data-counts')).toHaveTextContent('365 cycles');
    expect(screen.getByTestId('data-days')).toHaveTextContent('2025-01-01 to 2025-12-31');
  });

  it('asks the save dialog where to export, then exports the chosen format and range there', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_export_path = () =>
      '/home/a/Documents/vitaltrends-2025-03-01-to-2025-03-31-parquet';
    await user.selectOptions(screen.getByTestId('export-format'), 'parquet');
    await user.type(screen.getByTestId('export-from'), '2025-03-01');
    await user.type(screen.getByTestId('export-to'), '2025-03-31');
    await user.click(screen.getByTestId('export-button'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent(
      'Wrote 2 files to /home/a/Documents/vitaltrends-2025-03-01-to-2025-03-31-parquet',
    );
    expect(engine.callsTo('choose_export_path').at(-1)?.args).toEqual({
      format: 'parquet',
      from: '2025-03-01',
      to: '2025-03-31',
    });
    expect(engine.callsTo('export_data').at(-1)?.args).toEqual({
      format: 'parquet',
      from: '2025-03-01',
      to: '2025-03-31',
      path: '/home/a/Documents/vitaltrends-2025-03-01-to-2025-03-31-parquet',
    });
  });

  it('shows the progress of a running export', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_export_path = () => '/tmp/all.json';
    let finish: (files: string[]) => void = () => {};
    engine.handlers.export_data = () => new Promise<string[]>((resolve) => (finish = resolve));
    await user.click(screen.getByTestId('export-button'));
    await waitFor(() => expect(engine.callsTo('export_data')).toHaveLength(1));
    expect(screen.getByTestId('export-button')).toBeDisabled();
    await engine.emit('export-progress', { done: 250, total: 1000 });
    expect(screen.getByTestId('export-progress')).toHaveAttribute('value', '25');
    finish(['/tmp/all.json']);
    expect(await screen.findByTestId('data-said')).toHaveTextContent(
      'Wrote 1 file to /tmp/all.json',
    );
  });

  it('exports nothing when the save dialog is cancelled', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_export_path = () => null;
    await user.click(screen.getByTestId('export-button'));
    await waitFor(() => expect(engine.callsTo('choose_export_path')).toHaveLength(1));
    expect(engine.callsTo('export_data')).toHaveLength(0);
    expect(screen.queryByTestId('data-said')).toBeNull();
    expect(screen.queryByTestId('data-error')).toBeNull();
  });

  it('backs up to the file chosen in the save dialog', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_backup_path = () => '/home/a/Documents/vitaltrends-backup-2025-12-31.db';
    engine.handlers.backup_data = () =>
      'Backed up 1430 records to /home/a/Documents/vitaltrends-backup-2025-12-31.db.';
    await user.click(screen.getByTestId('backup-button'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent('Backed up 1430 records');
    expect(engine.callsTo('backup_data').at(-1)?.args).toEqual({
      path: '/home/a/Documents/vitaltrends-backup-2025-12-31.db',
    });
  });

  it('restores a checked backup only after a confirmation that says where the data in use goes', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_restore_file = () => ({
      path: '/home/a/Documents/vitaltrends-backup-2025-06-30.db',
      cycles: 180,
      sleeps: 200,
      recoveries: 180,
      workouts: 150,
      first_day: '2025-01-01',
      last_day: '2025-06-30',
      database: DATA.path,
      kept_aside_pattern: `${DATA.path}.replaced-<date and time>`,
    });
    engine.handlers.restore_data = () => ({
      message: `Restored 710 records from /home/a/Documents/vitaltrends-backup-2025-06-30.db. The data you had before is kept at ${DATA.path}.replaced-20251231T101010Z.`,
      kept_aside: `${DATA.path}.replaced-20251231T101010Z`,
    });
    await user.click(screen.getByTestId('restore-button'));
    expect(await screen.findByTestId('restore-summary')).toHaveTextContent(
      '180 cycles, 200 sleeps, 180 recoveries and 150 workouts, from 2025-01-01 to 2025-06-30',
    );
    expect(screen.getByTestId('restore-kept-aside')).toHaveTextContent(
      `kept aside at ${DATA.path}.replaced-<date and time>`,
    );
    expect(engine.callsTo('restore_data')).toHaveLength(0);
    await user.click(screen.getByTestId('confirm-button'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent('Restored 710 records');
    expect(engine.callsTo('restore_data').at(-1)?.args).toEqual({
      path: '/home/a/Documents/vitaltrends-backup-2025-06-30.db',
    });
    expect(screen.queryByTestId('restore-summary')).toBeNull();
    // The section reads the restored data again.
    expect(engine.callsTo('get_data').length).toBeGreaterThan(1);
  });

  it('says why a file is refused for restore and replaces nothing', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_restore_file = () => {
      throw {
        code: 'not_a_backup',
        message:
          "The file /tmp/other_app.sqlite is not a VitalTrends backup: it is an SQLite database without VitalTrends' tables. Nothing was replaced.",
      };
    };
    await user.click(screen.getByTestId('restore-button'));
    expect(await screen.findByTestId('restore-error')).toHaveTextContent(
      'The file /tmp/other_app.sqlite is not a VitalTrends backup: it is an SQLite database without',
    );
    expect(screen.queryByTestId('restore-summary')).toBeNull();
    expect(engine.callsTo('restore_data')).toHaveLength(0);
  });

  it('cancelling the restore confirmation restores nothing', async () => {
    const { engine, user } = await openData();
    engine.handlers.choose_restore_file = () => ({
      path: '/tmp/b.db',
      cycles: 1,
      sleeps: 1,
      recoveries: 1,
      workouts: 0,
      first_day: '2025-01-01',
      last_day: '2025-01-01',
      database: DATA.path,
      kept_aside_pattern: `${DATA.path}.replaced-<date and time>`,
    });
    await user.click(screen.getByTestId('restore-button'));
    await screen.findByTestId('restore-summary');
    await user.click(screen.getByTestId('dialog-cancel-button'));
    expect(screen.queryByTestId('restore-summary')).toBeNull();
    expect(engine.callsTo('restore_data')).toHaveLength(0);
  });

  it('backs up every day once a folder is chosen, and says when the last backup was', async () => {
    const { engine, user } = await openData();
    expect(screen.getByTestId('last-backup')).toHaveTextContent('Last backup: none yet');
    // A settings file behind the commands, as the app's.
    let saved: BackupScheduleView = { ...NO_SCHEDULE };
    engine.handlers.get_backup_schedule = () => saved;
    engine.handlers.set_backup_schedule = (a) => {
      if (a?.scheduled && !saved.folder) {
        throw { code: 'folder_required', message: 'Choose a folder for the backups first.' };
      }
      saved = { ...saved, scheduled: a?.scheduled as boolean, keep: a?.keep as number };
      return saved;
    };
    // On without a folder: refused, and the box stays off.
    await user.click(screen.getByTestId('schedule-toggle'));
    expect(await screen.findByTestId('data-error')).toHaveTextContent(
      'Choose a folder for the backups first.',
    );
    expect(screen.getByTestId('schedule-toggle')).not.toBeChecked();

    engine.handlers.choose_backup_folder = () => (saved = { ...saved, folder: '/home/a/Backups' });
    await user.click(screen.getByTestId('schedule-folder-button'));
    expect(await screen.findByTestId('schedule-folder')).toHaveTextContent('/home/a/Backups');
    await user.click(screen.getByTestId('schedule-toggle'));
    await waitFor(() => expect(screen.getByTestId('schedule-toggle')).toBeChecked());
    expect(engine.callsTo('set_backup_schedule').at(-1)?.args).toEqual({
      scheduled: true,
      keep: 7,
    });
    // The schedule's answer is all that changed: the summary and calendar are not read again.
    expect(engine.callsTo('get_data')).toHaveLength(1);
    expect(engine.callsTo('get_calendar')).toHaveLength(1);
    const keep = screen.getByTestId('schedule-keep');
    await user.clear(keep);
    await user.type(keep, '14');
    await user.tab();
    await waitFor(() =>
      expect(engine.callsTo('set_backup_schedule').at(-1)?.args).toEqual({
        scheduled: true,
        keep: 14,
      }),
    );

    // The app made the day's backup: the section hears it.
    const at = new Date(Date.now() - 5 * 60_000).toISOString();
    await engine.emit('backup-schedule', {
      scheduled: true,
      folder: '/home/a/Backups',
      keep: 14,
      last_backup: at,
      problem: null,
    });
    expect(screen.getByTestId('last-backup')).toHaveTextContent('(5 min ago)');
    await engine.emit('backup-schedule', {
      scheduled: true,
      folder: '/home/a/Backups',
      keep: 14,
      last_backup: at,
      problem: 'The daily backup to /home/a/Backups failed: Could not write it.',
    });
    expect(screen.getByTestId('schedule-problem')).toHaveTextContent('failed');
  });

  it('colours each day and re-fetches a selected range', async () => {
    const { engine, user } = await openData();
    expect(screen.getByTestId('day-2025-03-02')).toHaveAttribute('data-state', 'pending');
    expect(screen.getByTestId('day-2025-03-03')).toHaveAttribute('data-state', 'unscorable');
    expect(screen.getByTestId('day-2025-03-04')).toHaveAttribute('data-state', 'missing');
    await user.click(screen.getByTestId('day-2025-03-04'));
    await user.click(screen.getByTestId('day-2025-03-02'));
    expect(screen.getByTestId('calendar-selection')).toHaveTextContent('2025-03-02 to 2025-03-04');
    await user.click(screen.getByTestId('refetch-button'));
    await waitFor(() =>
      expect(engine.callsTo('refetch_days').at(-1)?.args).toEqual({
        from: '2025-03-02',
        to: '2025-03-04',
      }),
    );
  });

  it('deletes a range only after a confirmation', async () => {
    const { engine, user } = await openData();
    await user.type(screen.getByTestId('delete-from'), '2025-03-01');
    await user.type(screen.getByTestId('delete-to'), '2025-03-01');
    await user.click(screen.getByTestId('delete-days'));
    expect(engine.callsTo('delete_days')).toHaveLength(0);
    // The calendar is read again slowly; the answer waits for it, so it never sits above a
    // calendar that still shows the deleted day as there.
    engine.handlers.get_calendar = () =>
      new Promise((resolve) =>
        setTimeout(() => resolve([day('2025-03-01', 'missing'), day('2025-03-02', 'pending')]), 50),
      );
    await user.click(screen.getByTestId('delete-confirm'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent('Deleted 4 records');
    expect(screen.getByTestId('day-2025-03-01')).toHaveAttribute('data-state', 'missing');
  });
});
