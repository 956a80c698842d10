import { screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { fixtureStatus, fullDashboard, partialDashboard } from '../lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

describe('dashboard', () => {
  it('links to the completeness calendar when days of the last week are missing', async () => {
    const engine = installEngine({
      dashboard: (r) => ({ ...fullDashboard(r), missing_days: ['2025-11-20', '2025-11-21'] }),
    });
    engine.handlers.get_data = () => ({
      path: '/data/vitaltrends.db',
      size_bytes: 1,
      cycles: 1,
      sleeps: 1,
      recoveries: 1,
      workouts: 0,
      first_day: '2025-01-01',
      last_day: '2025-11-24',
    });
    engine.handlers.get_calendar = () => [
      {
        day: '2025-11-20',
        state: 'missing',
        cycle: 'missing',
        sleep: 'missing',
        recovery: 'missing',
      },
    ];
    engine.handlers.get_backup_schedule = () => ({
      scheduled: false,
      folder: null,
      keep: 7,
      last_backup: null,
      problem: null,
    });
    renderApp();
    expect(await screen.findByTestId('missing-days')).toHaveTextContent(
      '2 of the last 7 days have no data',
    );
    await userEvent.setup().click(screen.getByTestId('open-calendar'));
    expect(await screen.findByTestId('day-2025-11-20')).toHaveAttribute('data-state', 'missing');
    expect(screen.getByTestId('settings-nav-data')).toHaveAttribute('aria-current', 'page');
    await waitFor(() =>
      expect(
        vi.mocked(Element.prototype.scrollIntoView).mock.contexts.at(-1) as Element,
      ).toHaveAttribute('data-testid', 'calendar-card'),
    );
  });

  it('says nothing about missing days when the last week is complete', async () => {
    installEngine({ dashboard: (r) => fullDashboard(r) });
    renderApp();
    await screen.findByTestId('today-recovery');
    expect(screen.queryByTestId('missing-days')).toBeNull();
  });

  it('partial data: pending recovery reads "Pending", never 0 or blank', async () => {
    installEngine({ status: fixtureStatus('importing'), dashboard: (r) => partialDashboard(r) });
    renderApp();
    const recovery = await screen.findByTestId('today-recovery');
    expect(recovery).toHaveTextContent('Pending');
    expect(recovery).not.toHaveTextContent(/\b0\s?%/);
    expect(screen.getByTestId('today-hrv')).toHaveTextContent('Pending');
    expect(screen.getByTestId('today-rhr')).toHaveTextContent('Pending');
    // Sleep was scored: it shows its numbers.
    expect(screen.getByTestId('today-sleep')).toHaveTextContent(/%/);
    // The pending workout says so in the list.
    expect(screen.getByTestId('workouts-list')).toHaveTextContent('Pending');
  });

  it('full data: today row, trends and workouts', async () => {
    installEngine({ dashboard: (r) => fullDashboard(r) });
    renderApp();
    const d = fullDashboard('30d');
    const recovery = await screen.findByTestId('today-recovery');
    expect(recovery).toHaveTextContent(new RegExp(`${d.today.recovery.value}\\s?%`));
    expect(screen.getByTestId('today-hrv')).toHaveTextContent('ms');
    expect(screen.getByTestId('today-rhr')).toHaveTextContent('bpm');
    expect(screen.getByTestId('today-strain')).toHaveTextContent('/ 21');
    expect(screen.getByTestId('today-sleep')).toHaveTextContent(/needed/);
    for (const id of ['chart-recovery', 'chart-hrv', 'chart-rhr', 'chart-sleep', 'chart-strain'])
      expect(screen.getByTestId(id)).toBeInTheDocument();
    const rows = screen.getAllByTestId('workout-row');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThanOrEqual(8);
    expect(screen.getByTestId('workouts-list').textContent).not.toMatch(/_/);
  });

  it('range switching calls get_dashboard with the new range', async () => {
    const engine = installEngine();
    renderApp();
    await screen.findByTestId('today-recovery');
    expect(engine.callsTo('get_dashboard').map((c) => c.args)).toEqual([{ range: '30d' }]);
    expect(screen.getByTestId('range-30d')).toHaveAttribute('aria-pressed', 'true');

    const user = userEvent.setup();
    await user.click(screen.getByTestId('range-90d'));
    await waitFor(() =>
      expect(engine.callsTo('get_dashboard').map((c) => c.args)).toEqual([
        { range: '30d' },
        { range: '90d' },
      ]),
    );
    expect(screen.getByTestId('range-90d')).toHaveAttribute('aria-pressed', 'true');
    await user.click(screen.getByTestId('range-all'));
    await waitFor(() =>
      expect(engine.callsTo('get_dashboard').at(-1)?.args).toEqual({ range: 'all' }),
    );
    // Every range button exists.
    for (const r of ['7d', '30d', '90d', '6m', '1y', 'all'])
      expect(screen.getByTestId(`range-${r}`)).toBeInTheDocument();
  });

  it('data-changed re-fetches the dashboard and the screen updates without reload', async () => {
    let recovery = 44;
    const engine = installEngine({
      dashboard: (r) => {
        const d = fullDashboard(r);
        return { ...d, today: { ...d.today, recovery: { ...d.today.recovery, value: recovery } } };
      },
    });
    renderApp();
    expect(await screen.findByTestId('today-recovery')).toHaveTextContent(/44\s?%/);
    recovery = 81;
    await engine.emit('data-changed');
    await waitFor(() => expect(screen.getByTestId('today-recovery')).toHaveTextContent(/81\s?%/));
    expect(engine.callsTo('get_dashboard')).toHaveLength(2);
  });

  it('new data redraws the charts in place instead of rebuilding them (no blank frame)', async () => {
    let lastRecovery = 44;
    const engine = installEngine({
      dashboard: (r) => {
        const d = fullDashboard(r);
        const recovery = d.series.recovery.map((p, i, all) =>
          i === all.length - 1 ? { ...p, value: lastRecovery } : p,
        );
        return { ...d, series: { ...d.series, recovery } };
      },
    });
    renderApp();
    await screen.findByTestId('chart-recovery');
    const { default: FakeUPlot } = (await import('uplot')) as unknown as {
      default: { instances: { data: unknown[][]; dataUpdates: number; destroyed: boolean }[] };
    };
    // Earlier tests' charts were destroyed when their screens unmounted.
    const live = () => FakeUPlot.instances.filter((c) => !c.destroyed);
    await waitFor(() => expect(live()).toHaveLength(5));
    const charts = live();
    const built = FakeUPlot.instances.length;
    lastRecovery = 91;
    await engine.emit('data-changed');
    await waitFor(() => expect(charts.every((c) => c.dataUpdates === 1)).toBe(true));
    expect(FakeUPlot.instances).toHaveLength(built);
    expect(charts.some((c) => c.destroyed)).toBe(false);
    // The recovery chart holds the new number (in its band's series: 91 is green).
    expect(charts.some((c) => c.data[1]?.at(-1) === 91)).toBe(true);
  });

  it('years of history draw no more points than the charts have room for', async () => {
    // Five years, "All": 1826 days for charts about 600 px wide (jsdom measures nothing).
    installEngine({ dashboard: () => fullDashboard('all', undefined, 1826) });
    localStorage.setItem('vitaltrends.range', 'all');
    renderApp();
    await screen.findByTestId('chart-recovery');
    const { default: FakeUPlot } = (await import('uplot')) as unknown as {
      default: { instances: { data: unknown[][]; destroyed: boolean }[] };
    };
    const live = () => FakeUPlot.instances.filter((c) => !c.destroyed);
    await waitFor(() => expect(live()).toHaveLength(5));
    for (const chart of live()) {
      const points = chart.data[0]?.length ?? 0;
      expect(points).toBeGreaterThan(400);
      expect(points).toBeLessThanOrEqual(600);
    }
    // The HRV legend says what a point is now.
    expect(screen.getByTestId('chart-hrv')).toHaveTextContent('4-day average');
    localStorage.removeItem('vitaltrends.range');
  });

  it('a burst of data-changed events is folded into few fetches', async () => {
    const engine = installEngine();
    renderApp();
    await screen.findByTestId('today-recovery');
    await Promise.all([1, 2, 3, 4, 5].map(() => engine.emit('data-changed')));
    await waitFor(() => expect(engine.callsTo('get_dashboard').length).toBeGreaterThanOrEqual(2));
    await new Promise((r) => setTimeout(r, 50));
    expect(engine.callsTo('get_dashboard').length).toBeLessThanOrEqual(3);
  });

  it('a failing dashboard load says so plainly and can be retried', async () => {
    const engine = installEngine();
    let fail = true;
    engine.handlers.get_dashboard = (a) => {
      if (fail) throw { code: 'store_unavailable', message: 'sqlx error: database is locked' };
      return fullDashboard(a?.range as '30d');
    };
    renderApp();
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Something went wrong');
    expect(alert).not.toHaveTextContent(/sqlx|store_unavailable/);
    fail = false;
    await userEvent.setup().click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByTestId('today-recovery')).toBeInTheDocument();
  });
});
