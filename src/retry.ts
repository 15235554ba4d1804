// The one retry module: capped exponential backoff with full jitter, only for retryable errors.
import pRetry, { AbortError } from 'p-retry';
import { SafeScpError, isSafeScpError } from './errors.js';

export interface RetryPolicy {
  /** Extra attempts after the first. */
  readonly retries: number;
  /** Upper bound of the first wait. */
  readonly baseDelayMs: number;
  /** Cap of any wait. */
  readonly maxDelayMs: number;
}

export interface RetryHooks {
  readonly signal?: AbortSignal | undefined;
  /** Called for every failed attempt, with the wait before the next one (undefined when none follows). */
  readonly onFailure?: (error: SafeScpError, attempt: number, nextDelayMs: number | undefined, retriesLeft: number) => void;
  readonly random?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Wait before retry number `retry` (1-based): uniform in [floor, min(cap, base * 2^(retry-1))].
 * Full jitter spreads parallel jobs apart; the small floor keeps a retry from landing on the
 * very burst limit (MaxStartups) that caused the failure.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const floor = Math.min(ceiling, policy.baseDelayMs / 4);
  return Math.round(floor + random() * (ceiling - floor));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function asSafeScpError(err: unknown): SafeScpError {
  if (isSafeScpError(err)) return err;
  return new SafeScpError('internal', err instanceof Error ? err.message : String(err), { phase: 'run', cause: err });
}

/** Runs `operation(attempt)` until it succeeds, fails permanently, or runs out of attempts. */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  const random = hooks.random ?? Math.random;
  const wait = hooks.sleep ?? sleep;
  try {
    return await pRetry(
      async (attempt) => {
        try {
          return await operation(attempt);
        } catch (err: unknown) {
          const error = asSafeScpError(err);
          // Permanent failures stop here without touching the retry budget.
          if (!error.retryable || hooks.signal?.aborted) {
            hooks.onFailure?.(error, attempt, undefined, 0);
            throw new AbortError(error);
          }
          throw error;
        }
      },
      {
        retries: policy.retries,
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        ...(hooks.signal ? { signal: hooks.signal } : {}),
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          const delay = retriesLeft > 0 ? backoffDelay(attemptNumber, policy, random) : undefined;
          hooks.onFailure?.(asSafeScpError(error), attemptNumber, delay, retriesLeft);
          if (delay !== undefined) await wait(delay, hooks.signal);
        },
      },
    );
  } catch (err: unknown) {
    // p-retry rethrows an AbortError's original error, and an aborted signal's reason.
    // An attempt cut short by the signal fails with its own error; the signal's reason (--timeout,
    // SIGTERM) is what stopped the run and decides the exit code.
    if (hooks.signal?.aborted && isSafeScpError(hooks.signal.reason)) throw hooks.signal.reason;
    throw asSafeScpError(err instanceof AbortError ? err.originalError : err);
  }
}
