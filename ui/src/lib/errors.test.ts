import { describe, expect, it } from 'vitest';
import { BackendError } from './backend';
import { plainError, plainJobError, plainReason } from './errors';

describe('plain errors', () => {
  it('words known codes with a next step, never the code', () => {
    const e = plainError(new BackendError('reconnect_needed', 'invalid_grant from token endpoint'));
    expect(e.message).toMatch(/sign in again/);
    expect(e.message).not.toMatch(/reconnect_needed|invalid_grant/);
    expect(plainError(new BackendError('whoop_unavailable', 'x'))).toMatchObject({
      message: "WHOOP is not answering. We'll retry in 5 minutes.",
      retry: true,
    });
  });

  it('shows engine messages only when they read as sentences', () => {
    expect(plainError(new BackendError('busy', 'Force Sync is already running')).message).toBe(
      'Force Sync is already running',
    );
    const raw = plainError(new BackendError('store', 'sqlx::Error: database is locked at foo.rs'));
    expect(raw.message).toMatch(/^Something went wrong/);
    expect(plainError(new Error('x')).message).toMatch(/^Something went wrong/);
  });

  it('shows a refused restore as the engine words it, file path and all', () => {
    const message =
      'The file /home/a/my_notes.db is not a VitalTrends backup: it is not an SQLite database. Nothing was replaced.';
    const e = plainError(new BackendError('not_a_backup', message));
    expect(e.message).toBe(message);
    expect(e.retry).toBe(false);
  });

  it('turns reconnect reasons into plain words', () => {
    expect(plainReason(null)).toBe('WHOOP access was revoked or expired.');
    expect(plainReason('invalid_grant')).toBe('WHOOP access was revoked or expired.');
    expect(plainReason('You revoked access in the WHOOP app')).toBe(
      'You revoked access in the WHOOP app.',
    );
    expect(plainJobError('http_status 503')).toMatch(/Try again/);
  });
});
