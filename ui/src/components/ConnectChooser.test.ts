import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { AppStatus } from '../bindings/AppStatus';
import type { SettingsView } from '../bindings/SettingsView';
import { emptyDashboard, fixtureSettings, fixtureStatus } from '../lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

const nothingChosen = (): AppStatus => fixtureStatus('not_connected', { mode: null });
const noService = (over: Partial<SettingsView> = {}): SettingsView =>
  fixtureSettings({
    mode: null,
    service_available: false,
    about: { ...fixtureSettings().about, mode_label: 'Not chosen yet' },
    ...over,
  });

async function open(status: AppStatus, settings: SettingsView) {
  const engine = installEngine({ status, settings, dashboard: (r) => emptyDashboard(r) });
  renderApp();
  const user = userEvent.setup();
  await user.click(screen.getByTestId('nav-settings'));
  await screen.findByTestId('whoop-card');
  await waitFor(() => expect(engine.callsTo('get_settings').length).toBeGreaterThan(0));
  return { engine, user };
}

describe('choosing how to connect', () => {
  it('with nothing chosen, Connect WHOOP asks how instead of opening a browser', async () => {
    const { engine, user } = await open(nothingChosen(), noService());
    await user.click(screen.getByTestId('connect-button'));
    const chooser = await screen.findByTestId('connect-chooser');
    expect(engine.callsTo('connect_whoop')).toHaveLength(0);
    expect(within(chooser).queryByTestId('choose-service')).toBeNull();
    expect(within(chooser).getByTestId('choose-own-app')).toBeEnabled();
    expect(within(chooser).getByTestId('choose-demo')).toHaveTextContent('Explore with demo data');
  });

  it('a build without demo data does not offer it', async () => {
    const { user } = await open(nothingChosen(), noService({ demo_available: false }));
    await user.click(screen.getByTestId('connect-button'));
    const chooser = await screen.findByTestId('connect-chooser');
    expect(within(chooser).getByTestId('choose-own-app')).toBeEnabled();
    expect(within(chooser).queryByTestId('choose-demo')).toBeNull();
  });

  it('a service build offers the service too', async () => {
    const { user } = await open(nothingChosen(), fixtureSettings({ mode: null }));
    await user.click(screen.getByTestId('connect-button'));
    expect(await screen.findByTestId('choose-service')).toBeEnabled();
  });

  it('the own-app form shows the exact redirect URIs, following the port', async () => {
    const { user } = await open(nothingChosen(), noService());
    await user.click(screen.getByTestId('connect-button'));
    await user.click(await screen.findByTestId('choose-own-app'));
    expect(screen.getByTestId('redirect-uri-deep-link')).toHaveTextContent(
      'vitaltrends://oauth/whoop/callback',
    );
    expect(screen.getByTestId('redirect-uri-loopback')).toHaveTextContent(
      'http://127.0.0.1:47813/oauth/whoop/callback',
    );
    const port = screen.getByTestId('own-app-port');
    await user.clear(port);
    await user.type(port, '51000');
    expect(screen.getByTestId('redirect-uri-loopback')).toHaveTextContent(
      'http://127.0.0.1:51000/oauth/whoop/callback',
    );
    await user.clear(port);
    await user.type(port, '80');
    expect(port).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByTestId('own-app-save')).toBeDisabled();
  });

  it('saving the form sends it once, then starts the sign-in', async () => {
    const { engine, user } = await open(nothingChosen(), noService());
    await user.click(screen.getByTestId('connect-button'));
    await user.click(await screen.findByTestId('choose-own-app'));
    const save = screen.getByTestId('own-app-save');
    await user.type(screen.getByTestId('own-app-client-id'), 'my-app');
    expect(save).toBeDisabled(); // no secret and no relay yet
    await user.type(screen.getByTestId('own-app-client-secret'), 'sh-secret');
    await user.click(screen.getByTestId('own-app-advanced'));
    await user.type(screen.getByTestId('own-app-base-url'), 'http://127.0.0.1:9000');
    await user.click(save);
    await waitFor(() => expect(engine.callsTo('connect_whoop')).toHaveLength(1));
    expect(engine.callsTo('save_own_app')).toEqual([
      {
        cmd: 'save_own_app',
        args: {
          form: {
            client_id: 'my-app',
            client_secret: 'sh-secret',
            loopback_port: 47813,
            whoop_base_url: 'http://127.0.0.1:9000',
          },
        },
      },
    ]);
    await waitFor(() => expect(screen.queryByTestId('connect-chooser')).toBeNull());
  });

  it('a refused form stays open with the reason, and nothing connects', async () => {
    const { engine, user } = await open(nothingChosen(), noService());
    engine.handlers.save_own_app = () => {
      throw { code: 'invalid_field', message: 'Client ID: a client id is one word.' };
    };
    await user.click(screen.getByTestId('connect-button'));
    await user.click(await screen.findByTestId('choose-own-app'));
    await user.type(screen.getByTestId('own-app-client-id'), 'x');
    await user.type(screen.getByTestId('own-app-relay'), 'https://relay.example');
    await user.click(screen.getByTestId('own-app-save'));
    expect(await screen.findByTestId('own-app-error')).toHaveTextContent('Client ID');
    expect(engine.callsTo('connect_whoop')).toHaveLength(0);
  });

  it('switching away from demo data asks first and keeps the records apart', async () => {
    const demo = fixtureStatus('connected', { mode: 'demo', demo: true });
    const { engine, user } = await open(demo, noService({ mode: 'demo' }));
    expect(screen.getByTestId('card-demo-label')).toHaveTextContent('Demo data');
    await user.click(screen.getByTestId('leave-demo-button'));
    await user.click(await screen.findByTestId('confirm-button'));
    await waitFor(() => expect(engine.callsTo('choose_mode')).toHaveLength(1));
    expect(engine.callsTo('choose_mode')[0]!.args).toEqual({ mode: null });
  });

  it('choosing another mode while one runs asks to confirm the switch', async () => {
    const own = fixtureStatus('connected', { mode: 'own-app' });
    const { engine, user } = await open(own, fixtureSettings({ mode: 'own-app' }));
    await user.click(screen.getByTestId('change-connection-button'));
    await user.click(await screen.findByTestId('choose-demo'));
    expect(engine.callsTo('choose_mode')).toHaveLength(0);
    expect(screen.getByTestId('connect-chooser')).toHaveTextContent('Switch to demo data?');
    await user.click(screen.getByTestId('confirm-switch'));
    await waitFor(() => expect(engine.callsTo('choose_mode')).toHaveLength(1));
    expect(engine.callsTo('choose_mode')[0]!.args).toEqual({ mode: 'demo' });
  });

  it('an own app without a relay says live updates are off', async () => {
    const own = fixtureStatus('connected', { mode: 'own-app', live: false, has_relay: false });
    await open(own, fixtureSettings({ mode: 'own-app' }));
    expect(screen.getByTestId('live-updates')).toHaveTextContent(
      'Live updates off · catching up every 6 hours',
    );
  });

  it('unusable settings show why, never demo data', async () => {
    const broken = fixtureStatus('not_connected', {
      mode: null,
      settings_problem: 'The settings file /x/settings.toml is not valid: unknown variant.',
    });
    await open(broken, noService());
    expect(screen.getByTestId('settings-problem')).toHaveTextContent('is not valid');
    expect(screen.queryByTestId('connect-button')).toBeNull();
    expect(screen.getByTestId('choose-connection-button')).toBeEnabled();
  });

  it('asks once about starting at login after the first import', async () => {
    const done = fixtureStatus('connected', { mode: 'own-app' });
    const { engine, user } = await open(done, fixtureSettings({ mode: 'own-app' }));
    await user.click(await screen.findByTestId('autostart-no'));
    expect(engine.callsTo('set_pref')[0]!.args).toEqual({
      key: 'start_at_login_asked',
      value: true,
    });
    await waitFor(() => expect(screen.queryByTestId('autostart-ask')).toBeNull());
  });
});

describe('Settings → General and About', () => {
  it('switches call set_pref and show the new value', async () => {
    const { engine, user } = await open(fixtureStatus('connected'), fixtureSettings());
    await user.click(screen.getByTestId('settings-nav-general'));
    const tray = await screen.findByTestId('pref-keep_in_tray');
    expect(tray).toBeChecked();
    expect(screen.getByTestId('pref-start_at_login')).not.toBeChecked();
    await user.click(tray);
    await waitFor(() => expect(tray).not.toBeChecked());
    await user.click(screen.getByTestId('pref-notify_import'));
    expect(engine.callsTo('set_pref').map((c) => c.args)).toEqual([
      { key: 'keep_in_tray', value: false },
      { key: 'notify_import', value: false },
    ]);
  });

  it('About shows the version, mode and folders with Open folder buttons', async () => {
    const { engine, user } = await open(fixtureStatus('connected'), fixtureSettings());
    await user.click(screen.getByTestId('settings-nav-about'));
    expect(await screen.findByTestId('about-version')).toHaveTextContent('VitalTrends 0.1.0');
    expect(screen.getByTestId('about-mode')).toHaveTextContent('VitalTrends service');
    expect(screen.getByTestId('about-data-dir')).toHaveTextContent('/service');
    await user.click(screen.getByTestId('open-log-folder'));
    expect(engine.callsTo('open_folder')[0]!.args).toEqual({ which: 'logs' });
  });
});
