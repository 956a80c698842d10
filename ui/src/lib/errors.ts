import { BackendError } from './backend';

export interface PlainError {
  /** A plain sentence with the next step. Never a code or a stack trace. */
  message: string;
  /** Offer a "Retry now" button. */
  retry: boolean;
  code: string;
}

const BY_CODE: Record<string, Omit<PlainError, 'code'>> = {
  reconnect_needed: {
    message: 'WHOOP needs you to sign in again. Choose Reconnect to pick up where syncing stopped.',
    retry: false,
  },
  not_connected: {
    message: 'WHOOP is not connected. Choose Connect WHOOP first.',
    retry: false,
  },
  revoke_pending: {
    message:
      'WHOOP could not be reached to revoke access. VitalTrends will retry automatically; nothing else is needed.',
    retry: false,
  },
  whoop_unavailable: {
    message: "WHOOP is not answering. We'll retry in 5 minutes.",
    retry: true,
  },
  subscription_required: {
    message:
      'Connecting WHOOP needs an active VitalTrends subscription. Subscribe, or enter your licence key.',
    retry: false,
  },
  subscription_inactive: {
    message:
      'Your VitalTrends subscription has ended. Renew to sync again; your history stays on this computer.',
    retry: false,
  },
  device_limit: {
    message:
      'This licence is already used on as many computers as it allows. Disconnect WHOOP on one of them first.',
    retry: false,
  },
  invalid_licence: {
    message: 'That is not a VitalTrends licence key. It starts with VT1.',
    retry: false,
  },
  no_backend: {
    message: 'The VitalTrends engine is not running. Restart VitalTrends and try again.',
    retry: false,
  },
};

const GENERIC = 'Something went wrong. Try again; if it keeps happening, restart VitalTrends.';

/**
 * Codes whose backend message is written for people and names a file (so it holds a path, which
 * the sentence test below would refuse): shown as they are.
 */
const WORDED_BY_BACKEND = new Set(['not_a_backup', 'in_use', 'invalid_range']);

/** Backend messages are shown only when they already read like a sentence for people. */
function looksLikeSentence(text: string): boolean {
  return (
    text.length > 0 &&
    text.length <= 200 &&
    /^[A-Z]/.test(text) &&
    !/[\n{}<>]|::|\bat\s+\S+\s*\(|Error:|panicked|0x[0-9a-f]+|\b[a-z]+_[a-z_]+\b/.test(text)
  );
}

export function plainError(err: unknown): PlainError {
  const e = err instanceof BackendError ? err : null;
  const code = e?.code ?? 'unknown';
  const known = BY_CODE[code];
  if (known) return { ...known, code };
  if (e && WORDED_BY_BACKEND.has(code) && e.message.trim()) {
    return { message: e.message, retry: false, code };
  }
  const message = e && looksLikeSentence(e.message) ? e.message : GENERIC;
  return { message, retry: true, code };
}

const REASONS: Record<string, string> = {
  invalid_grant: 'WHOOP access was revoked or expired.',
  revoked: 'WHOOP access was revoked.',
  expired: 'WHOOP access expired.',
  refresh_rejected: 'WHOOP access was revoked or expired.',
};

/** The reconnect reason in plain words, whatever the engine sent. */
export function plainReason(reason: string | null): string {
  const fallback = 'WHOOP access was revoked or expired.';
  if (!reason) return fallback;
  const trimmed = reason.trim();
  if (/^[a-z0-9_.:-]+$/.test(trimmed)) return REASONS[trimmed] ?? fallback;
  if (!looksLikeSentence(trimmed)) return fallback;
  return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** A finished job's error in plain words. */
export function plainJobError(error: string): string {
  const trimmed = error.trim();
  if (looksLikeSentence(trimmed)) return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
  return 'It stopped before finishing. Try again in a few minutes.';
}
