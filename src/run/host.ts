// One host's run: connect through its jump hosts (throttled, pinned), transfer, retried as a whole.
import { SafeScpError, isSafeScpError } from '../errors.js';
import type { HostTarget, ResolvedConfig } from '../config.js';
import type { ConnectTrace } from '../classify.js';
import type { AttemptEvidence } from '../log/events.js';
import { withRetry, type RetryHooks } from '../retry.js';
import type { Duplex } from 'node:stream';
import { newTrace, openSession, openTunnel, type Session, type Tunnel } from '../ssh/connect.js';
import { BandwidthLimiter } from '../throttle/bandwidth.js';
import { waitForRunSlot } from '../throttle/wait-for-slot.js';
import { TransferState, type FileResult } from '../transfer/progress.js';
import type { HostResult } from '../result.js';
import type { CopyDeps, Prepared } from './prepare.js';
import { CLEANUP_CONNECT_MS, removeLeftoverTemps } from './cleanup.js';
import { transferWithWatchdog } from './watchdog.js';

export interface HostOutcome {
  result: HostResult;
  files: FileResult[];
  error: SafeScpError | undefined;
}

export async function copyToHost(
  target: HostTarget,
  config: ResolvedConfig,
  prepared: Prepared,
  deps: CopyDeps,
  signal: AbortSignal,
  allAttempts: AttemptEvidence[],
): Promise<HostOutcome> {
  const started = Date.now();
  const state = new TransferState(deps.emit, new BandwidthLimiter(config.limitBytesPerSecond), { host: target.host, port: target.port });
  let attemptCount = 0;
  let lastEvidence: AttemptEvidence | undefined;

  /**
   * Opens the chain of jump hosts (each pinned and throttled on its own) and the target session.
   * `n` 0 is the clean-up connection (not an attempt), which has its own signal and connect timeout.
   */
  const connectChain = async (
    n: number,
    tunnels: Tunnel[],
    onTrace: (trace: ConnectTrace) => void,
    chainSignal: AbortSignal = signal,
    connectTimeoutMs: number = config.connectTimeoutMs,
  ): Promise<Session> => {
    const common = {
      pins: prepared.pins,
      strictHostKeyChecking: config.strictHostKeyChecking,
      acceptNewFile: config.acceptNewFile,
      connectTimeoutMs,
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      keepaliveCountMax: config.keepaliveCountMax,
      signal: chainSignal,
      emit: deps.emit,
    };
    /** Connects one hop while holding that host's throttle slot (released once authenticated). */
    const throttled = async <T>(hop: HostTarget, trace: ConnectTrace, connect: (onAuthenticated: () => void) => Promise<T>): Promise<T> => {
      // Until the slot is ours the attempt is in phase `throttle`; connecting sets `dns` and onwards.
      trace.phase = 'throttle';
      const slot = await waitForRunSlot({
        host: hop.host,
        port: hop.port,
        stateDir: config.stateDir,
        concurrency: config.hostConcurrency,
        intervalMs: config.hostIntervalMs,
        signal: chainSignal,
        emit: deps.emit,
      });
      if (n > 0) deps.emit({ kind: 'connect', host: hop.host, port: hop.port, attempt: n });
      try {
        const connecting = connect(() => void slot.release());
        // The local walk starts once the socket is being opened (connect() gets there after a microtask) and
        // overlaps the server's start-up and the handshake.
        setImmediate(() => void prepared.localSources());
        return await connecting;
      } finally {
        await slot.release();
      }
    };
    // A retry rebuilds the whole chain.
    let sock: Duplex | undefined;
    const jumpHosts = target.jumpHosts ?? config.jumpHosts;
    for (const [i, hop] of jumpHosts.entries()) {
      const hopTrace = newTrace(hop);
      onTrace(hopTrace);
      const through = sock;
      const tunnel = await throttled(hop, hopTrace, (onAuthenticated) =>
        openTunnel({ ...common, ...prepared.credentials(hop), target: hop, onAuthenticated, ...(through ? { sock: through } : {}) }, hopTrace),
      );
      tunnels.push(tunnel);
      const next = jumpHosts[i + 1] ?? target;
      sock = await tunnel.forward(next.host, next.port);
    }
    const targetTrace = newTrace(target);
    onTrace(targetTrace);
    const through = sock;
    return throttled(target, targetTrace, (onAuthenticated) =>
      openSession({ ...common, ...prepared.credentials(target), target, channels: prepared.channels, channelsForced: config.channelsForced, onAuthenticated, ...(through ? { sock: through } : {}) }, targetTrace),
    );
  };

  const attempt = async (n: number): Promise<void> => {
    attemptCount = n;
    const attemptStart = Date.now();
    // The trace of the hop being connected: a jump host's while the chain is built, then the target's.
    let trace = newTrace(target);
    const evidence = (): AttemptEvidence => ({
      host: trace.host,
      port: trace.port,
      attempt: n,
      startedAt: new Date(attemptStart).toISOString(),
      durationMs: Date.now() - attemptStart,
      phase: trace.phase,
      ...(trace.address ? { address: trace.address } : {}),
      ...(trace.dnsMs !== undefined ? { dnsMs: trace.dnsMs } : {}),
      ...(trace.tcpMs !== undefined ? { tcpMs: trace.tcpMs } : {}),
      bytesBeforeBanner: trace.preBanner.length,
      ...(trace.preBanner.length ? { preBannerText: trace.preBanner.toString('latin1') } : {}),
      ...(trace.serverVersion ? { serverVersion: trace.serverVersion } : {}),
      ...(trace.ending ? { ending: trace.ending } : {}),
      ...(trace.algorithms ? { algorithms: trace.algorithms } : {}),
      ...(trace.hostKey ? { hostKey: trace.hostKey } : {}),
    });
    const tunnels: Tunnel[] = [];
    let session: Session | undefined;
    try {
      session = await connectChain(n, tunnels, (t) => (trace = t));
      deps.emit({
        kind: 'connected',
        host: target.host,
        port: target.port,
        attempt: n,
        serverVersion: trace.serverVersion ?? '',
        hostKey: trace.hostKey ?? { type: '', fingerprint: '' },
        ...(trace.algorithms?.['cipher'] ? { cipher: trace.algorithms['cipher'] } : {}),
        ...(trace.algorithms?.['crypto'] === 'native' || trace.algorithms?.['crypto'] === 'javascript' ? { nativeCrypto: trace.algorithms['crypto'] === 'native' } : {}),
      });
      await transferWithWatchdog(session, tunnels, config, prepared, state, signal);
      lastEvidence = evidence();
      allAttempts.push(lastEvidence);
    } catch (err: unknown) {
      lastEvidence = evidence();
      allAttempts.push(lastEvidence);
      throw err;
    } finally {
      session?.close();
      for (const tunnel of tunnels.reverse()) tunnel.close();
    }
  };

  const hooks: RetryHooks = {
    signal,
    ...(deps.random ? { random: deps.random } : {}),
    onFailure: (error, n, nextDelayMs, retriesLeft) => {
      const evidence = lastEvidence?.attempt === n ? lastEvidence : undefined;
      const ev: AttemptEvidence = {
        ...(evidence ?? { host: target.host, port: target.port, attempt: n, startedAt: new Date().toISOString(), durationMs: 0, phase: error.phase }),
        cause: error.code,
        error: error.message,
      };
      if (evidence) Object.assign(evidence, { cause: error.code, error: error.message });
      deps.emit({
        kind: 'attempt-failed',
        evidence: ev,
        cause: error.code,
        phase: error.phase,
        message: error.message,
        retryable: error.retryable,
        ...(nextDelayMs === undefined ? {} : { nextDelayMs }),
        retriesLeft,
      });
    },
  };

  let error: SafeScpError | undefined;
  try {
    await withRetry(attempt, { retries: config.retries, baseDelayMs: config.retryDelayMs, maxDelayMs: config.retryMaxDelayMs }, hooks);
  } catch (err: unknown) {
    error = isSafeScpError(err) ? err : new SafeScpError('internal', String(err), { phase: 'run', cause: err });
    // The run's deadline struck while waiting for a host's slot: say so, in that phase.
    if (error.code === 'timeout' && lastEvidence?.phase === 'throttle') {
      error = new SafeScpError('timeout', `${error.message}, while waiting for a connection slot to ${lastEvidence.host}:${lastEvidence.port} (other safe-scp processes on this machine held it)`, {
        phase: 'throttle',
        host: target.host,
        cause: error,
      });
    }
  }
  // Temp files of an attempt whose connection died are removed by the next attempt; when no attempt
  // follows (out of retries, interrupted, permanent failure) one short extra connection removes them.
  if (error && state.temps.size + state.staged.size > 0) await removeLeftoverTemps(target, config, state, deps, (tunnels, cleanupSignal) =>
    connectChain(0, tunnels, () => undefined, cleanupSignal, Math.min(config.connectTimeoutMs, CLEANUP_CONNECT_MS)),
  );
  const hostFiles = [...state.done.values()];
  const skipped = [...state.skipped.values()];
  return {
    result: {
      host: target.host,
      port: target.port,
      user: target.user,
      ok: !error,
      exitCode: error ? error.exitCode : 0,
      cause: error?.code,
      error: error?.message,
      attempts: attemptCount,
      bytes: hostFiles.reduce((sum, f) => sum + f.bytes, 0),
      files: hostFiles.length,
      skipped: skipped.length,
      durationMs: Date.now() - started,
      ...(state.commit ? { commit: state.commit } : {}),
    },
    files: [...hostFiles, ...skipped],
    error,
  };
}

