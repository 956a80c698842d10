import { screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
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

  it('exports the chosen format and range to the chosen path', async () => {
    const { engine, user } = await openData();
    await user.selectOptions(screen.getByTestId('export-format'), 'parquet');
    const path = screen.getByTestId('export-path');
    await user.clear(path);
    await user.type(path, '/tmp/export');
    await user.click(screen.getByTestId('export-button'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent('Wrote 2 files');
    expect(engine.callsTo('export_data').at(-1)?.args).toEqual({
      format: 'parquet',
      from: null,
      to: null,
      path: '/tmp/export',
    });
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
    await user.click(screen.getByTestId('delete-confirm'));
    expect(await screen.findByTestId('data-said')).toHaveTextContent('Deleted 4 records');
  });
});
