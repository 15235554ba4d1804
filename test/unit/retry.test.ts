// Unit tests for backoff bounds and withRetry: injected randomness and sleep, no real waiting.
import { SafeScpError, type CauseCode } from '../../src/errors.js';
import { backoffDelay, sleep, withRetry, type RetryPolicy } from '../../src/retry.js';

const POLICY: RetryPolicy = { retries: 5, baseDelayMs: 2000, maxDelayMs: 20_000 };
const ALMOST_ONE = 1 - Number.EPSILON;

function failure(code: CauseCode, message: string = code): SafeScpError {
  return new SafeScpError(code, message, { phase: code === 'auth-failed' ? 'auth' : 'banner', host: 'web1' });
}

interface Call {
  code: CauseCode;
  attempt: number;
  nextDelayMs: number | undefined;
  retriesLeft: number;
}

/** Records onFailure calls and sleeps, and never really waits. */
function recorder(): { calls: Call[]; slept: number[]; hooks: { onFailure: (e: SafeScpError, a: number, d: number | undefined, r: number) => void; sleep: (ms: number) => Promise<void>; random: () => number } } {
  const calls: Call[] = [];
  const slept: number[] = [];
  return {
    calls,
    slept,
    hooks: {
      onFailure: (e, attempt, nextDelayMs, retriesLeft) => calls.push({ code: e.code, attempt, nextDelayMs, retriesLeft }),
      sleep: async (ms) => {
        slept.push(ms);
      },
      random: () => 0.5,
    },
  };
}

describe('backoffDelay', () => {
  test.each<[number, number, number]>([
    [1, 500, 2000],
    [2, 500, 4000],
    [3, 500, 8000],
    [4, 500, 16_000],
    [5, 500, 20_000],
    [6, 500, 20_000],
    [7, 500, 20_000],
    [8, 500, 20_000],
  ])('retry %d: floor %d (random 0), ceiling %d (random ~1)', (retry, floor, ceiling) => {
    expect(backoffDelay(retry, POLICY, () => 0)).toBe(floor);
    expect(backoffDelay(retry, POLICY, () => ALMOST_ONE)).toBe(ceiling);
    const mid = backoffDelay(retry, POLICY, () => 0.5);
    expect(mid).toBeGreaterThanOrEqual(floor);
    expect(mid).toBeLessThanOrEqual(ceiling);
  });

  test('the floor never exceeds a cap smaller than base/4', () => {
    const policy: RetryPolicy = { retries: 3, baseDelayMs: 1000, maxDelayMs: 100 };
    expect(backoffDelay(1, policy, () => 0)).toBe(100);
    expect(backoffDelay(3, policy, () => ALMOST_ONE)).toBe(100);
  });

  test('a zero delay policy never waits', () => {
    const policy: RetryPolicy = { retries: 3, baseDelayMs: 0, maxDelayMs: 0 };
    expect(backoffDelay(4, policy, () => ALMOST_ONE)).toBe(0);
  });

  test('with Math.random the delay stays within bounds', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, POLICY);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });
});

describe('withRetry', () => {
  test('succeeds after three transient failures, reporting growing delays it sleeps through', async () => {
    const { calls, slept, hooks } = recorder();
    const codes: CauseCode[] = ['reset-before-banner', 'throttled-by-server', 'closed-before-banner'];
    const seen: number[] = [];
    const result = await withRetry(
      async (attempt) => {
        seen.push(attempt);
        const code = codes[attempt - 1];
        if (code) throw failure(code);
        return `ok on attempt ${attempt}`;
      },
      POLICY,
      { ...hooks, random: () => ALMOST_ONE },
    );
    expect(result).toBe('ok on attempt 4');
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(calls).toEqual<Call[]>([
      { code: 'reset-before-banner', attempt: 1, nextDelayMs: 2000, retriesLeft: 5 },
      { code: 'throttled-by-server', attempt: 2, nextDelayMs: 4000, retriesLeft: 4 },
      { code: 'closed-before-banner', attempt: 3, nextDelayMs: 8000, retriesLeft: 3 },
    ]);
    expect(slept).toEqual([2000, 4000, 8000]);
  });

  test('gives up after retries + 1 attempts with the last error; the last failure has no next delay', async () => {
    const { calls, slept, hooks } = recorder();
    let attempts = 0;
    const run = withRetry(
      async (attempt) => {
        attempts = attempt;
        throw failure('reset-before-banner', `reset #${attempt}`);
      },
      { retries: 2, baseDelayMs: 100, maxDelayMs: 1000 },
      hooks,
    );
    await expect(run).rejects.toMatchObject({ code: 'reset-before-banner', message: 'reset #3', exitCode: 75 });
    expect(attempts).toBe(3);
    expect(calls.map((c) => [c.attempt, c.nextDelayMs === undefined, c.retriesLeft])).toEqual([
      [1, false, 2],
      [2, false, 1],
      [3, true, 0],
    ]);
    expect(slept).toHaveLength(2);
  });

  test.each<CauseCode>(['auth-failed', 'host-key-changed', 'host-key-unknown', 'not-ssh', 'remote-permission-denied', 'usage'])(
    'a non-retryable %s stops after one attempt; onFailure gets no next delay',
    async (code) => {
      const { calls, slept, hooks } = recorder();
      const err = failure(code);
      let attempts = 0;
      await expect(
        withRetry(
          async () => {
            attempts++;
            throw err;
          },
          POLICY,
          hooks,
        ),
      ).rejects.toBe(err);
      expect(attempts).toBe(1);
      expect(calls).toEqual<Call[]>([{ code, attempt: 1, nextDelayMs: undefined, retriesLeft: 0 }]);
      expect(slept).toEqual([]);
    },
  );

  test('a permanent failure after transient ones stops there', async () => {
    const { calls, hooks } = recorder();
    const run = withRetry(
      async (attempt) => {
        throw attempt === 1 ? failure('connect-refused') : failure('auth-failed');
      },
      POLICY,
      hooks,
    );
    await expect(run).rejects.toMatchObject({ code: 'auth-failed', exitCode: 4 });
    expect(calls.map((c) => [c.code, c.nextDelayMs === undefined])).toEqual([
      ['connect-refused', false],
      ['auth-failed', true],
    ]);
  });

  test('retries = 0 makes exactly one attempt', async () => {
    const { calls, slept, hooks } = recorder();
    let attempts = 0;
    const run = withRetry(
      async () => {
        attempts++;
        throw failure('banner-timeout');
      },
      { ...POLICY, retries: 0 },
      hooks,
    );
    await expect(run).rejects.toMatchObject({ code: 'banner-timeout' });
    expect(attempts).toBe(1);
    expect(calls).toEqual<Call[]>([{ code: 'banner-timeout', attempt: 1, nextDelayMs: undefined, retriesLeft: 0 }]);
    expect(slept).toEqual([]);
  });

  test('retries = 0 and success returns the value without calling onFailure', async () => {
    const { calls, hooks } = recorder();
    await expect(withRetry(async () => 42, { ...POLICY, retries: 0 }, hooks)).resolves.toBe(42);
    expect(calls).toEqual([]);
  });

  test.each<[string, unknown]>([
    ['an Error', new TypeError('cannot read properties of undefined')],
    ['a string', 'boom'],
  ])('%s that is not a SafeScpError becomes internal and is not retried', async (_name, thrown) => {
    const { calls, hooks } = recorder();
    let attempts = 0;
    const run = withRetry(
      async () => {
        attempts++;
        throw thrown;
      },
      POLICY,
      hooks,
    );
    await expect(run).rejects.toMatchObject({ name: 'SafeScpError', code: 'internal', exitCode: 1, retryable: false });
    expect(attempts).toBe(1);
    expect(calls).toEqual<Call[]>([{ code: 'internal', attempt: 1, nextDelayMs: undefined, retriesLeft: 0 }]);
  });

  test('an abort while waiting stops the wait and rejects with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new SafeScpError('timeout', 'the whole run took longer than --timeout (1000ms)', { phase: 'run' });
    let attempts = 0;
    const waits: number[] = [];
    const run = withRetry(
      async () => {
        attempts++;
        throw failure('reset-before-banner');
      },
      POLICY,
      {
        signal: controller.signal,
        random: () => 0,
        // A sleep that would take forever unless aborted: proves the wait is cut short.
        sleep: (ms, signal) =>
          new Promise<void>((_, reject) => {
            waits.push(ms);
            signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
            queueMicrotask(() => controller.abort(reason));
          }),
      },
    );
    await expect(run).rejects.toBe(reason);
    expect(attempts).toBe(1);
    expect(waits).toEqual([500]);
  });

  test('an attempt failing because the signal aborted it rejects with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new SafeScpError('interrupted', 'interrupted by SIGTERM', { phase: 'run' });
    const { calls, hooks } = recorder();
    const run = withRetry(
      async () => {
        controller.abort(reason);
        throw failure('connection-lost-in-handshake');
      },
      POLICY,
      { ...hooks, signal: controller.signal },
    );
    await expect(run).rejects.toBe(reason);
    expect(calls).toEqual<Call[]>([{ code: 'connection-lost-in-handshake', attempt: 1, nextDelayMs: undefined, retriesLeft: 0 }]);
  });

  test('an already aborted signal makes no attempt', async () => {
    const reason = new SafeScpError('interrupted', 'interrupted by SIGINT', { phase: 'run' });
    let attempts = 0;
    const run = withRetry(
      async () => {
        attempts++;
      },
      POLICY,
      { signal: AbortSignal.abort(reason) },
    );
    await expect(run).rejects.toBe(reason);
    expect(attempts).toBe(0);
  });
});

describe('sleep', () => {
  test('resolves after the delay', async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
  });

  test('rejects at once with the reason of an aborted signal', async () => {
    const reason = new Error('stop');
    await expect(sleep(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  test('rejects when the signal aborts during the wait', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const waiting = sleep(60_000, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });
});
