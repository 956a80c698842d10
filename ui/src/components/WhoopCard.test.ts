import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { AppStatus } from '../bindings/AppStatus';
import { emptyDashboard, fixtureStatus } from '../lib/fixtures';
import { fmtInt } from '../lib/format';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

async function openConnections(status: AppStatus) {
  const engine = installEngine({ status, dashboard: (r) => emptyDashboard(r) });
  renderApp();
  const user = userEvent.setup();
  await user.click(screen.getByTestId('nav-settings'));
  const card = await screen.findByTestId('whoop-card');
  await waitFor(() => expect(card).toHaveAttribute('data-state', status.state));
  return { engine, user, card };
}

const q = (id: string) => screen.queryByTestId(id);

describe('WHOOP card states', () => {
  it('not connected: says what is imported, read-only, offers Connect WHOOP', async () => {
    const { card } = await openConnections(fixtureStatus('not_connected'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent('Not connected');
    expect(card).toHaveTextContent(
      /recovery, HRV, resting heart rate, sleep, strain and\s+workouts/,
    );
    expect(card).toHaveTextContent(/read-only/);
    expect(q('connect-button')).toBeEnabled();
    for (const id of [
      'cancel-button',
      'force-sync-button',
      'disconnect-button',
      'reconnect-button',
      'delete-data-button',
    ])
      expect(q(id)).toBeNull();
  });

  it('connect calls connect_whoop; authorizing shows the browser step and Cancel', async () => {
    const { engine, user } = await openConnections(fixtureStatus('not_connected'));
    engine.handlers.connect_whoop = () => {
      engine.status = fixtureStatus('authorizing');
      return null;
    };
    await user.click(screen.getByTestId('connect-button'));
    expect(engine.callsTo('connect_whoop')).toHaveLength(1);
    await waitFor(() =>
      expect(screen.getByTestId('whoop-status')).toHaveTextContent(
        'Finish authorizing in your browser…',
      ),
    );
    expect(q('connect-button')).toBeNull();
    await user.click(screen.getByTestId('cancel-button'));
    expect(engine.callsTo('cancel_connect')).toHaveLength(1);
  });

  it('importing: progress text from the job, Force Sync disabled', async () => {
    const { card } = await openConnections(fixtureStatus('importing'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent('Importing your history');
    const month = new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' }).format(
      new Date(2023, 2, 14),
    );
    expect(screen.getByTestId('import-detail')).toHaveTextContent(
      `Last 6 months done · going back to ${month} · ${fmtInt(1204)} records`,
    );
    expect(within(card).getByRole('progressbar')).toBeInTheDocument();
    expect(q('force-sync-button')).toBeDisabled();
    expect(q('connect-button')).toBeNull();
  });

  it('connected: member name, last synced, live updates, Force Sync and Disconnect', async () => {
    const { card } = await openConnections(fixtureStatus('connected'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent('Connected as Alex Morgan');
    expect(card).toHaveTextContent('Last synced 2 min ago');
    expect(card).toHaveTextContent('Live updates on');
    expect(q('force-sync-button')).toBeEnabled();
    expect(q('disconnect-button')).toBeEnabled();
    expect(q('connect-button')).toBeNull();
  });

  it('connected without live updates says it catches up every 6 hours', async () => {
    const { card } = await openConnections(fixtureStatus('connected', { live: false }));
    expect(card).toHaveTextContent('Live updates off · catching up every 6 hours');
  });

  it('reconnect needed: reason in plain words and Reconnect calls connect_whoop', async () => {
    const { engine, user, card } = await openConnections(
      fixtureStatus('reconnect_needed', { reason: 'invalid_grant' }),
    );
    expect(screen.getByTestId('whoop-status')).toHaveTextContent('Reconnection needed');
    expect(card).toHaveTextContent('WHOOP access was revoked or expired.');
    expect(card).not.toHaveTextContent('invalid_grant');
    expect(q('force-sync-button')).toBeNull();
    await user.click(screen.getByTestId('reconnect-button'));
    expect(engine.callsTo('connect_whoop')).toHaveLength(1);
  });

  it('a failed import waiting for its retry says when, and Retry now runs it', async () => {
    const inFive = new Date(Date.now() + 5 * 60_000 - 1000).toISOString();
    const { engine, user, card } = await openConnections(
      fixtureStatus('importing', {
        retry: {
          job: 'import',
          attempt: 2,
          next_at: inFive,
          message: 'WHOOP is not answering.',
        },
      }),
    );
    expect(screen.getByTestId('retry-notice')).toHaveTextContent(
      'WHOOP is not answering. Retrying in 5 minutes.',
    );
    // The progress made so far stays on the card.
    expect(card).toHaveTextContent(`${fmtInt(1204)} records`);
    engine.handlers.retry_now = () => {
      engine.status = fixtureStatus('importing');
      return null;
    };
    await user.click(screen.getByTestId('retry-now-button'));
    expect(engine.callsTo('retry_now')).toHaveLength(1);
    await waitFor(() => expect(q('retry-notice')).toBeNull());
  });

  it('live updates stopped by the service: says why, keeps catch-up, offers Reconnect', async () => {
    const { engine, user } = await openConnections(
      fixtureStatus('connected', {
        live: false,
        live_problem:
          'Live updates stopped: the VitalTrends service no longer knows this device. Reconnect WHOOP to turn them back on.',
      }),
    );
    expect(screen.getByTestId('live-updates')).toHaveTextContent(
      'Live updates stopped · catching up every 6 hours',
    );
    expect(screen.getByTestId('live-problem')).toHaveTextContent('no longer knows this device');
    await user.click(screen.getByTestId('reconnect-button'));
    expect(engine.callsTo('connect_whoop')).toHaveLength(1);
    expect(q('force-sync-button')).toBeEnabled();
  });

  it('connected without a live problem shows no Reconnect button', async () => {
    await openConnections(fixtureStatus('connected'));
    expect(q('reconnect-button')).toBeNull();
    expect(q('retry-notice')).toBeNull();
  });

  it('disconnected with history: days kept, Connect WHOOP and Delete local data', async () => {
    await openConnections(fixtureStatus('disconnected'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent(
      `Not connected · history kept (${fmtInt(1834)} days)`,
    );
    expect(q('connect-button')).toBeEnabled();
    expect(q('delete-data-button')).toBeEnabled();
    expect(q('revoke-pending')).toBeNull();
  });

  it('disconnected with a pending revoke says access is not yet revoked and will be retried', async () => {
    const { card } = await openConnections(fixtureStatus('disconnected', { revoke_pending: true }));
    expect(screen.getByTestId('revoke-pending')).toHaveTextContent(
      /not yet revoked at WHOOP.*retry/,
    );
    expect(card).toBeInTheDocument();
  });
});

describe('Force Sync inline flow', () => {
  it('shows Queued → Syncing… → Done · 12 records updated from status events', async () => {
    const { engine, user } = await openConnections(fixtureStatus('connected'));
    engine.handlers.force_sync = () => {
      engine.status = { ...engine.status, queued: ['force_sync'] };
      return { queued: true, message: 'Force Sync queued' };
    };
    await user.click(screen.getByTestId('force-sync-button'));
    expect(engine.callsTo('force_sync')).toHaveLength(1);
    await waitFor(() => expect(q('force-sync-status')).toHaveTextContent('Queued'));

    await engine.pushStatus({
      queued: [],
      job: {
        kind: 'force_sync',
        phase: 'recent',
        records: 0,
        recent_windows_done: 1,
        recent_windows_total: 10,
        oldest_day: null,
        percent: 10,
      },
    });
    expect(q('force-sync-status')).toHaveTextContent('Syncing…');

    await engine.pushStatus({
      job: null,
      last_job: {
        kind: 'force_sync',
        finished_at: new Date().toISOString(),
        written: 12,
        deleted: 0,
        error: null,
      },
    });
    expect(q('force-sync-status')).toHaveTextContent('Done · 12 records updated');
  });

  it('a second press while queued says it is already running', async () => {
    const { engine, user } = await openConnections(
      fixtureStatus('connected', { queued: ['force_sync'] }),
    );
    await waitFor(() => expect(q('force-sync-status')).toHaveTextContent('Queued'));
    engine.handlers.force_sync = () => ({
      queued: false,
      message: 'Force Sync is already running',
    });
    await user.click(screen.getByTestId('force-sync-button'));
    await waitFor(() =>
      expect(q('force-sync-status')).toHaveTextContent('Force Sync is already running'),
    );
    expect(engine.callsTo('force_sync')).toHaveLength(1);
  });

  it('an error with code reconnect_needed is shown in plain words', async () => {
    const { engine, user, card } = await openConnections(fixtureStatus('connected'));
    engine.handlers.force_sync = () => {
      throw { code: 'reconnect_needed', message: 'refresh token rejected: invalid_grant' };
    };
    await user.click(screen.getByTestId('force-sync-button'));
    const alert = await screen.findByTestId('card-error');
    expect(alert).toHaveTextContent('WHOOP needs you to sign in again');
    expect(card).not.toHaveTextContent(/reconnect_needed|invalid_grant|refresh token/);
  });

  it('WHOOP unavailable offers Retry now, which tries again', async () => {
    const { engine, user } = await openConnections(fixtureStatus('connected'));
    let first = true;
    engine.handlers.force_sync = () => {
      if (first) {
        first = false;
        throw { code: 'whoop_unavailable', message: 'upstream 503' };
      }
      return { queued: true, message: 'Force Sync queued' };
    };
    await user.click(screen.getByTestId('force-sync-button'));
    expect(await screen.findByTestId('card-error')).toHaveTextContent(
      "WHOOP is not answering. We'll retry in 5 minutes.",
    );
    await user.click(screen.getByRole('button', { name: 'Retry now' }));
    await waitFor(() => expect(engine.callsTo('force_sync')).toHaveLength(2));
    await waitFor(() => expect(q('card-error')).toBeNull());
  });
});

describe('confirmations', () => {
  it('Disconnect asks first, says history stays, and calls disconnect only on confirm', async () => {
    const { engine, user } = await openConnections(fixtureStatus('connected'));
    await user.click(screen.getByTestId('disconnect-button'));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('Your history stays on this computer');
    expect(engine.callsTo('disconnect')).toHaveLength(0);

    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(engine.callsTo('disconnect')).toHaveLength(0);

    await user.click(screen.getByTestId('disconnect-button'));
    engine.handlers.disconnect = () => {
      engine.status = fixtureStatus('disconnected');
      return null;
    };
    await user.click(screen.getByTestId('confirm-button'));
    expect(engine.callsTo('disconnect')).toHaveLength(1);
    expect(engine.callsTo('delete_local_data')).toHaveLength(0);
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    await waitFor(() =>
      expect(screen.getByTestId('whoop-status')).toHaveTextContent('history kept'),
    );
  });

  it('a disconnect whose revoke is still pending closes the dialog and says it will retry', async () => {
    const { engine, user } = await openConnections(fixtureStatus('connected'));
    engine.handlers.disconnect = () => {
      engine.status = fixtureStatus('disconnected', { revoke_pending: true });
      throw { code: 'revoke_pending', message: 'revoke request failed: timeout' };
    };
    await user.click(screen.getByTestId('disconnect-button'));
    await user.click(screen.getByTestId('confirm-button'));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(await screen.findByTestId('notice')).toHaveTextContent(/retry automatically/);
    expect(screen.getByTestId('revoke-pending')).toBeInTheDocument();
    expect(screen.queryByTestId('card-error')).toBeNull();
  });

  it('Escape closes the Disconnect dialog without disconnecting', async () => {
    const { engine, user } = await openConnections(fixtureStatus('connected'));
    await user.click(screen.getByTestId('disconnect-button'));
    expect(screen.getByRole('dialog')).toBeInTheDocument();
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(engine.callsTo('disconnect')).toHaveLength(0);
  });

  it('Delete local data names what will be deleted and calls delete_local_data only on confirm', async () => {
    const { engine, user } = await openConnections(fixtureStatus('disconnected'));
    await user.click(screen.getByTestId('delete-data-button'));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent(`${fmtInt(1834)} days of WHOOP history`);
    expect(dialog).toHaveTextContent(`${fmtInt(9461)} records`);
    expect(dialog).toHaveTextContent(
      'recovery, HRV, resting heart rate, sleep, strain and workouts',
    );
    expect(dialog).toHaveTextContent('cannot be undone');
    expect(engine.callsTo('delete_local_data')).toHaveLength(0);

    engine.handlers.delete_local_data = () => {
      engine.status = fixtureStatus('not_connected');
      return null;
    };
    await user.click(screen.getByTestId('confirm-button'));
    expect(engine.callsTo('delete_local_data')).toHaveLength(1);
    expect(engine.callsTo('disconnect')).toHaveLength(0);
    await waitFor(() =>
      expect(screen.getByTestId('whoop-status')).toHaveTextContent('Not connected'),
    );
    expect(await screen.findByTestId('notice')).toHaveTextContent('deleted from this computer');
  });
});

describe('WHOOP card: the VitalTrends subscription', () => {
  it('subscription required: Subscribe opens pricing, the key goes to set_licence, then Connect', async () => {
    const { engine, user, card } = await openConnections(fixtureStatus('subscription_required'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent('Subscription required');
    expect(card).toHaveTextContent(/needs an active subscription/);
    expect(q('connect-button')).toBeNull();
    await user.click(screen.getByTestId('subscribe-button'));
    expect(engine.callsTo('open_pricing')).toHaveLength(1);

    engine.handlers.set_licence = () => ({
      licence_id: 'lic_1',
      plan: 'personal',
      renews_at: '2027-01-01T00:00:00Z',
      status: null,
      devices: null,
      max_devices: 3,
    });
    await user.click(screen.getByTestId('enter-key-button'));
    const input = screen.getByTestId('licence-input');
    expect(input).toHaveAttribute('type', 'password');
    await user.type(input, 'VT1.abc.def');
    await user.click(screen.getByTestId('save-key-button'));
    expect(engine.callsTo('set_licence')[0]?.args).toEqual({ key: 'VT1.abc.def' });
    // The key is not kept in the webview once sent, and Connect WHOOP comes next.
    await waitFor(() => expect(q('licence-form')).toBeNull());
    expect(screen.queryByDisplayValue('VT1.abc.def')).toBeNull();
    await user.click(screen.getByTestId('connect-button'));
    expect(engine.callsTo('connect_whoop')).toHaveLength(1);
  });

  it('a refused key says so in plain words', async () => {
    const { engine, user } = await openConnections(fixtureStatus('subscription_required'));
    engine.handlers.set_licence = () => {
      throw { code: 'invalid_licence', message: 'that is not a VitalTrends licence key' };
    };
    await user.click(screen.getByTestId('enter-key-button'));
    await user.type(screen.getByTestId('licence-input'), 'nonsense');
    await user.click(screen.getByTestId('save-key-button'));
    expect(await screen.findByTestId('card-error')).toHaveTextContent(
      'That is not a VitalTrends licence key. It starts with VT1.',
    );
  });

  it('subscription ended: history kept, Renew opens pricing, Disconnect stays available', async () => {
    const { engine, user, card } = await openConnections(fixtureStatus('subscription_ended'));
    expect(screen.getByTestId('whoop-status')).toHaveTextContent(
      'Subscription ended · history kept',
    );
    expect(card).toHaveTextContent(/history stays on this\s+computer/);
    expect(q('force-sync-button')).toBeNull();
    expect(q('disconnect-button')).toBeEnabled();
    expect(q('enter-key-button')).toBeEnabled();
    await user.click(screen.getByTestId('renew-button'));
    expect(engine.callsTo('open_pricing')).toHaveLength(1);
  });

  it('demo mode and own-app never show Settings → Subscription', async () => {
    await openConnections(fixtureStatus('not_connected', { demo: true }));
    expect(q('subscription-section')).toBeNull();
  });
});

describe('switching WHOOP accounts', () => {
  const refused = (): AppStatus => ({
    ...fixtureStatus('connected'),
    member_name: 'Alex Morgan',
    switch_to: 'Riley Other',
  });

  it('offers the refused account; confirming switches, then signs in again', async () => {
    const { engine, user } = await openConnections(refused());
    const offer = await screen.findByTestId('member-switch');
    expect(offer).toHaveTextContent('You signed in to WHOOP as Riley Other');
    engine.handlers.switch_member = () => {
      engine.status = { ...fixtureStatus('not_connected'), switch_to: null };
      return null;
    };
    await user.click(screen.getByTestId('switch-member-button'));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Switch to Riley Other?');
    expect(dialog).toHaveTextContent(/sets their history aside/);
    // Nothing happens before the person confirms.
    expect(engine.callsTo('switch_member')).toHaveLength(0);
    await user.click(within(dialog).getByRole('button', { name: 'Switch and sign in' }));
    await waitFor(() => expect(engine.callsTo('connect_whoop')).toHaveLength(1));
    expect(engine.callsTo('switch_member')).toHaveLength(1);
    const order = engine.calls
      .map((c) => c.cmd)
      .filter((cmd) => cmd === 'switch_member' || cmd === 'connect_whoop');
    expect(order).toEqual(['switch_member', 'connect_whoop']);
    await waitFor(() => expect(q('member-switch')).toBeNull());
  });

  it('a failed switch says why and signs in as nobody', async () => {
    const { engine, user } = await openConnections(refused());
    engine.handlers.switch_member = () => {
      throw { code: 'revoke_pending', message: 'WHOOP could not be reached to revoke access.' };
    };
    await user.click(await screen.findByTestId('switch-member-button'));
    const dialog = await screen.findByRole('dialog');
    await user.click(within(dialog).getByRole('button', { name: 'Switch and sign in' }));
    await waitFor(() => expect(dialog).toHaveTextContent('WHOOP could not be reached'));
    expect(engine.callsTo('connect_whoop')).toHaveLength(0);
  });

  it('keeping the current account drops the offer', async () => {
    const { engine, user } = await openConnections(refused());
    engine.handlers.keep_member = () => {
      engine.status = { ...engine.status, switch_to: null };
      return null;
    };
    await user.click(await screen.findByTestId('keep-member-button'));
    expect(engine.callsTo('keep_member')).toHaveLength(1);
    await waitFor(() => expect(q('member-switch')).toBeNull());
  });
});

describe('waiting for the service quota', () => {
  it('says why an import waits while others import, and stops saying it when it moves on', async () => {
    const wait =
      'Queued: many people are importing right now. Your last 30 days are in; older history continues in the background.';
    const { engine } = await openConnections({
      ...fixtureStatus('importing'),
      quota_wait: wait,
    });
    expect(await screen.findByTestId('quota-wait-notice')).toHaveTextContent(wait);
    await engine.pushStatus({ quota_wait: null });
    await waitFor(() => expect(q('quota-wait-notice')).toBeNull());
  });
});
