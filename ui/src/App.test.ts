import { screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { emptyDashboard, fixtureStatus, fullDashboard } from './lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from './test/engine';

resetEngineAfterEach();

describe('app shell', () => {
  it('the sync banner appears while importing and disappears by itself', async () => {
    const engine = installEngine({ status: fixtureStatus('connected') });
    renderApp();
    await screen.findByTestId('today-recovery');
    expect(screen.queryByTestId('sync-banner')).toBeNull();

    await engine.pushStatus(fixtureStatus('importing'));
    expect(screen.getByTestId('sync-banner')).toHaveTextContent(
      'Importing your WHOOP history… 6 of 6 months done, going further back',
    );

    await engine.pushStatus({
      job: {
        kind: 'import',
        phase: 'recent',
        records: 300,
        recent_windows_done: 5,
        recent_windows_total: 10,
        oldest_day: null,
        percent: null,
      },
    });
    expect(screen.getByTestId('sync-banner')).toHaveTextContent('3 of 6 months done');

    await engine.pushStatus(fixtureStatus('connected'));
    expect(screen.queryByTestId('sync-banner')).toBeNull();
  });

  it('the navigate event switches screens', async () => {
    const engine = installEngine();
    renderApp();
    await screen.findByTestId('today-recovery');
    expect(screen.getByTestId('nav-dashboard')).toHaveAttribute('aria-current', 'page');

    await engine.emit('navigate', 'connections');
    expect(screen.getByTestId('whoop-card')).toBeInTheDocument();
    expect(screen.getByTestId('nav-settings')).toHaveAttribute('aria-current', 'page');
    expect(screen.queryByTestId('today-recovery')).toBeNull();

    await engine.emit('navigate', 'dashboard');
    expect(await screen.findByTestId('today-recovery')).toBeInTheDocument();
  });

  it('a window opened for a notification click or a sign-in link starts on its screen, with its notice', async () => {
    installEngine();
    (window as { __vtArrival?: unknown }).__vtArrival = {
      screen: 'connections',
      notice: { kind: 'info', message: 'Connected as Ada Lovelace' },
    };
    renderApp();
    expect(await screen.findByTestId('whoop-card')).toBeInTheDocument();
    expect(screen.getByTestId('nav-settings')).toHaveAttribute('aria-current', 'page');
    expect(screen.getByTestId('notice')).toHaveTextContent('Connected as Ada Lovelace');
    // Read once: the arrival does not come back.
    expect((window as { __vtArrival?: unknown }).__vtArrival).toBeUndefined();
  });

  it('sidebar buttons switch screens', async () => {
    installEngine();
    renderApp();
    const user = userEvent.setup();
    await user.click(screen.getByTestId('nav-settings'));
    expect(screen.getByRole('heading', { name: 'Connections' })).toBeInTheDocument();
    await user.click(screen.getByTestId('nav-dashboard'));
    expect(await screen.findByTestId('today-recovery')).toBeInTheDocument();
  });

  it('a notice event is shown as a plain message', async () => {
    const engine = installEngine();
    renderApp();
    await screen.findByTestId('today-recovery');
    const message =
      'That link did not come from a sign-in VitalTrends started. Nothing was changed.';
    await engine.emit('notice', { kind: 'error', message });
    expect(screen.getByTestId('notice')).toHaveTextContent(message);
    expect(screen.getByRole('alert')).toHaveTextContent(message);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByTestId('notice')).toBeNull();
  });

  it('the status line says how fresh the data is, and shows Demo data in demo mode', async () => {
    const engine = installEngine({ status: fixtureStatus('connected') });
    renderApp();
    await waitFor(() =>
      expect(screen.getByTestId('status-line')).toHaveTextContent('Updated 2 min ago · live'),
    );
    expect(screen.queryByTestId('demo-badge')).toBeNull();

    await engine.pushStatus({ live: false, demo: true });
    expect(screen.getByTestId('status-line')).toHaveTextContent(
      'Updated 2 min ago · live updates off',
    );
    expect(screen.getByTestId('demo-badge')).toHaveTextContent('Demo data');

    await engine.pushStatus(fixtureStatus('reconnect_needed'));
    expect(screen.getByTestId('status-line')).toHaveTextContent(
      'Updated 7 h ago · reconnection needed',
    );
  });

  it('the empty dashboard points to Settings → Connections', async () => {
    installEngine({
      status: fixtureStatus('not_connected'),
      dashboard: (r) => emptyDashboard(r),
    });
    renderApp();
    const empty = await screen.findByTestId('empty-state');
    expect(empty).toHaveTextContent('Connect your WHOOP account');
    await userEvent.setup().click(screen.getByRole('button', { name: /Settings → Connections/ }));
    expect(screen.getByTestId('whoop-card')).toBeInTheDocument();
  });

  it('the dashboard fills in live while importing', async () => {
    let hasData = false;
    const engine = installEngine({
      status: fixtureStatus('importing'),
      dashboard: (r) => (hasData ? fullDashboard(r) : emptyDashboard(r)),
    });
    renderApp();
    expect(await screen.findByTestId('empty-state')).toHaveTextContent('on its way');
    hasData = true;
    await engine.emit('data-changed');
    expect(await screen.findByTestId('today-recovery')).toBeInTheDocument();
    expect(screen.getByTestId('sync-banner')).toBeInTheDocument();
  });
});
