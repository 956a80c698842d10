import { screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { LicenceView } from '../bindings/LicenceView';
import { emptyDashboard, fixtureStatus } from '../lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

const LICENCE: LicenceView = {
  licence_id: 'lic_0123',
  plan: 'personal',
  renews_at: '2027-03-14T12:00:00Z',
  status: 'active',
  devices: 1,
  max_devices: 3,
};

async function openSettings(licence: LicenceView | null) {
  const engine = installEngine({
    status: fixtureStatus('connected', { subscription: true }),
    dashboard: (r) => emptyDashboard(r),
  });
  engine.handlers.get_licence = () => licence;
  renderApp();
  const user = userEvent.setup();
  await user.click(screen.getByTestId('nav-settings'));
  await screen.findByTestId('subscription-section');
  return { engine, user };
}

describe('Settings → Subscription', () => {
  it('shows plan, renewal date and devices in use', async () => {
    await openSettings(LICENCE);
    expect(await screen.findByTestId('licence-plan')).toHaveTextContent('personal');
    const date = new Date('2027-03-14T12:00:00Z').toLocaleDateString(undefined, {
      year: 'numeric',
      month: 'long',
      day: 'numeric',
    });
    expect(screen.getByTestId('licence-renews')).toHaveTextContent(date);
    expect(screen.getByTestId('licence-devices')).toHaveTextContent('1 of 3 in use');
    expect(screen.getByText('Renews')).toBeInTheDocument();
  });

  it('without a licence: Subscribe and Enter licence key', async () => {
    const { engine, user } = await openSettings(null);
    expect(await screen.findByTestId('no-licence')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Subscribe' }));
    expect(engine.callsTo('open_pricing')).toHaveLength(1);
    engine.handlers.set_licence = () => LICENCE;
    await user.click(screen.getByTestId('settings-enter-key'));
    await user.type(screen.getByLabelText('Licence key'), 'VT1.a.b');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(screen.getByTestId('licence-plan')).toHaveTextContent('personal'));
    expect(engine.callsTo('set_licence')[0]?.args).toEqual({ key: 'VT1.a.b' });
  });

  it('is not shown without the VitalTrends service', async () => {
    const engine = installEngine({
      status: fixtureStatus('connected'),
      dashboard: (r) => emptyDashboard(r),
    });
    renderApp();
    await userEvent.setup().click(screen.getByTestId('nav-settings'));
    await screen.findByTestId('whoop-card');
    expect(screen.queryByTestId('subscription-section')).toBeNull();
    expect(engine.callsTo('get_licence')).toHaveLength(0);
  });
});
