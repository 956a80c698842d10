import { screen } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { AiSettingsView } from '../bindings/AiSettingsView';
import { emptyDashboard, fixtureStatus } from '../lib/fixtures';
import { installEngine, renderApp, resetEngineAfterEach } from '../test/engine';

resetEngineAfterEach();

const SNIPPET = '{"mcpServers": {"vitaltrends": {"command": "/usr/bin/vitaltrends"}}}';

function view(patch: Partial<AiSettingsView> = {}): AiSettingsView {
  return {
    cli_path: '/usr/bin/vitaltrends',
    claude_snippet: SNIPPET,
    claude_config: '/home/a/.config/Claude/claude_desktop_config.json',
    api_enabled: false,
    api_port: 47621,
    api_running: false,
    has_token: false,
    openapi_url: 'http://127.0.0.1:47621/api/v1/openapi.json',
    api_problem: null,
    ...patch,
  };
}

async function openSection(initial: AiSettingsView) {
  const engine = installEngine({
    status: fixtureStatus('connected'),
    dashboard: (r) => emptyDashboard(r),
  });
  let current = initial;
  engine.handlers.get_ai_settings = () => current;
  engine.handlers.new_api_token = () => {
    current = { ...current, has_token: true };
    return { token: 'vt_secret_once', view: current };
  };
  engine.handlers.add_to_claude_desktop = () => ({
    file: '/home/a/.config/Claude/claude_desktop_config.json',
    backup: '/home/a/.config/Claude/claude_desktop_config.json.1.bak',
  });
  renderApp();
  const user = userEvent.setup();
  await user.click(screen.getByTestId('nav-settings'));
  await user.click(await screen.findByTestId('settings-nav-ai'));
  await screen.findByTestId('claude-snippet');
  return { engine, user };
}

describe('Settings → AI & API', () => {
  it('shows the Claude Desktop entry and adds it only after confirming', async () => {
    const { engine, user } = await openSection(view());
    expect(screen.getByTestId('claude-snippet')).toHaveTextContent('/usr/bin/vitaltrends');
    await user.click(screen.getByTestId('add-to-claude'));
    expect(engine.callsTo('add_to_claude_desktop')).toHaveLength(0);
    await user.click(screen.getByTestId('confirm-button'));
    expect(await screen.findByTestId('ai-notice')).toHaveTextContent('kept as');
    expect(engine.callsTo('add_to_claude_desktop')).toHaveLength(1);
  });

  it('says when Claude Desktop is not installed', async () => {
    await openSection(view({ claude_config: null }));
    expect(screen.getByTestId('claude-missing')).toHaveTextContent('not installed');
    expect(screen.queryByTestId('add-to-claude')).toBeNull();
  });

  it('shows a new token once and forgets it after Done', async () => {
    const { user } = await openSection(view());
    await user.click(screen.getByTestId('api-token-new'));
    expect(await screen.findByTestId('api-token-value')).toHaveTextContent('vt_secret_once');
    await user.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByText('vt_secret_once')).toBeNull();
    expect(screen.getByTestId('api-token-state')).toHaveTextContent('A token is set');
  });
});
