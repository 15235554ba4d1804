// Runs a copy: load keys and pins, plan, then per host connect (throttled, retried) and transfer.
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { SafeScpError, exitSeverity, isSafeScpError } from './errors.js';
import type { HostTarget, ResolvedConfig } from './config.js';
import { classifyLocalError, type ConnectTrace } from './classify.js';
import { loadPins } from './hostkeys/load-pins.js';
import type { HostKeyPins } from './hostkeys/policy.js';
import type { AttemptEvidence, EventSink } from './log/events.js';
import { withRetry, type RetryHooks } from './retry.js';
import type { Duplex } from 'node:stream';
import { newTrace, openSession, openTunnel, type Session, type Tunnel } from './ssh/connect.js';
import { agentSocket, loadIdentities, type Identity } from './ssh/key.js';
import { BandwidthLimiter } from './throttle/bandwidth.js';
import { waitForRunSlot } from './throttle/wait-for-slot.js';
import { download } from './transfer/download.js';
import { checkLocalSource, type LocalSource } from './transfer/local-tree.js';
import { Prefetch } from './transfer/prefetch.js';
import { TransferState, type FileResult } from './transfer/progress.js';
import { spreads } from './transfer/ranges.js';
import { UPLOAD_DEFAULTS, upload } from './transfer/upload.js';
import type { CopyResult, HostResult } from './result.js';

export interface CopyDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly emit: EventSink;
  readonly signal?: AbortSignal | undefined;
  /** Injected randomness for backoff (tests). */
  readonly random?: () => number;
}

interface Prepared {
  /** The keys and agent for one host or jump host (its own IdentityFile lines, IdentitiesOnly). */
  credentials: (hop: HostTarget) => { identities: Identity[]; agent: string | undefined };
  pins: HostKeyPins;
  /** The walked upload sources: the walk starts on the first call, which copyToHost makes once the first connection is under way. */
  localSources: () => Promise<LocalSource[]>;
  prefetch: Prefetch;
  /** SFTP channels to open on each host's connection. */
  channels: number;
}

async function prepare(config: ResolvedConfig, deps: CopyDeps): Promise<Prepared> {
  const agent = agentSocket(deps.env);
  const keysOf = (hop: HostTarget): string => JSON.stringify([hop.identityFiles ?? config.identityFiles, hop.configIdentityFiles ?? []]);
  const loaded = new Map<string, Identity[]>();
  const credentials = (hop: HostTarget): { identities: Identity[]; agent: string | undefined } => ({
    identities: loaded.get(keysOf(hop)) ?? [],
    agent: hop.identitiesOnly ? undefined : agent,
  });
  for (const hop of config.hosts.flatMap((h) => [...(h.jumpHosts ?? config.jumpHosts), h])) {
    if (config.dryRun || loaded.has(keysOf(hop))) continue;
    const onSkip = (message: string): void => deps.emit({ kind: 'debug', message });
    loaded.set(keysOf(hop), await loadIdentities({ identityFiles: hop.identityFiles ?? config.identityFiles, optionalFiles: hop.configIdentityFiles ?? [], onSkip, env: deps.env }));
    const { identities, agent: hopAgent } = credentials(hop);
    if (identities.length === 0 && !hopAgent) {
      const why = agent && hop.identitiesOnly ? ` (IdentitiesOnly=yes for ${hop.alias ?? hop.host}: the agent is not used)` : '';
      throw new SafeScpError('key-invalid', `no key to authenticate with: set SSH_PRIVATE_KEY, pass -i FILE, put a key at ~/.ssh/id_ed25519, or run an ssh-agent (SSH_AUTH_SOCK)${why}`, { phase: 'auth' });
    }
  }
  const { pins, warnings } = await loadPins({ knownHostsFiles: config.knownHostsFiles, fingerprints: config.hostKeyFingerprints, env: deps.env });
  for (const w of warnings) deps.emit({ kind: 'debug', message: w });
  // A bad operand fails here, before any connection; the directory walks then run while the connection is made
  // (a 2000-file tree takes ~50-100 ms to stat, about what the handshake takes), started once the connection is
  // under way so that they do not hold up its start.
  const checked = config.direction === 'upload' ? config.sources.map((source) => checkLocalSource(source, config.recursive)) : [];
  const prefetch = new Prefetch();
  let walked: Promise<LocalSource[]> | undefined;
  const localSources = (): Promise<LocalSource[]> => {
    if (walked) return walked;
    walked = (async (): Promise<LocalSource[]> => {
      const sources: LocalSource[] = [];
      for (const c of checked) sources.push(await c.scan(deps.emit));
      return sources;
    })();
    // Awaited by whoever needs it; a failure is reported there (as the attempt's error), not as unhandled.
    walked.catch(() => undefined);
    // Small files are read while the connection is made (prefetch.ts); the upload reads any it did not get to.
    if (!config.dryRun) walked.then((sources) => prefetch.run(sources)).catch(() => undefined);
    return walked;
  };
  return { credentials, pins, localSources, prefetch, channels: channelsWanted(config) };
}

/**
 * SFTP channels to ask for: --channels for a tree, several sources or a file big enough to spread over them; one for
 * a single smaller file and for downloads (each extra channel costs the server an sftp-server start).
 */
function channelsWanted(config: ResolvedConfig): number {
  if (config.direction !== 'upload' || config.channels <= 1) return 1;
  if (config.recursive || config.sources.length > 1) return config.channels;
  try {
    return spreads(statSync(config.sources[0] ?? '').size, config.channels) ? config.channels : 1;
  } catch {
    return 1;
  }
}

/** Copies as configured. Never throws for a failed run: the result carries the exit code and cause. */
export async function copy(config: ResolvedConfig, deps: CopyDeps): Promise<CopyResult> {
  const started = Date.now();
  const attempts: AttemptEvidence[] = [];
  const files: FileResult[] = [];
  const runAbort = new AbortController();
  const onOuterAbort = (): void => runAbort.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const deadline = setTimeout(() => {
    runAbort.abort(new SafeScpError('timeout', `the whole run took longer than --timeout (${config.timeoutMs}ms)`, { phase: 'run' }));
  }, config.timeoutMs);
  deadline.unref();

  const finish = (hosts: HostResult[], error: SafeScpError | undefined): CopyResult => {
    clearTimeout(deadline);
    deps.signal?.removeEventListener('abort', onOuterAbort);
    const exitCode = error ? error.exitCode : 0;
    return { ok: !error, exitCode, cause: error?.code, error, attempts, files, hosts, durationMs: Date.now() - started };
  };

  for (const line of config.sshConfigLines) deps.emit({ kind: 'ssh-config', ...line });
  for (const message of config.sshConfigNotes) deps.emit({ kind: 'debug', message });
  let prepared: Prepared;
  try {
    prepared = await prepare(config, deps);
  } catch (err: unknown) {
    return finish([], isSafeScpError(err) ? err : classifyLocalError(err, 'prepare', config.sources.join(' ')));
  }

  if (config.dryRun) {
    try {
      emitPlan(config, await prepared.localSources(), deps.emit);
    } catch (err: unknown) {
      return finish([], isSafeScpError(err) ? err : classifyLocalError(err, 'prepare', config.sources.join(' ')));
    }
    return finish([], undefined);
  }

  const results: HostResult[] = [];
  const errors: SafeScpError[] = [];
  const queue = [...config.hosts];
  const worker = async (): Promise<void> => {
    for (let target = queue.shift(); target; target = queue.shift()) {
      const outcome = await copyToHost(target, config, prepared, deps, runAbort.signal, attempts);
      results.push(outcome.result);
      files.push(...outcome.files);
      if (outcome.error) errors.push(outcome.error);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.parallel, config.hosts.length) }, worker));
  prepared.prefetch.clear();
  results.sort((a, b) => config.hosts.findIndex((h) => h.host === a.host && h.port === a.port) - config.hosts.findIndex((h) => h.host === b.host && h.port === b.port));
  const worst = errors.reduce<SafeScpError | undefined>((w, e) => (!w || exitSeverity(e.exitCode) > exitSeverity(w.exitCode) ? e : w), undefined);
  return finish(results, worst);
}

/**
 * The dry-run plan, decided without a connection: where TARGET's existence matters (one source, as scp
 * does it), the entry shows the "TARGET is an existing directory" case and the plan line says so.
 */
function emitPlan(config: ResolvedConfig, localSources: readonly LocalSource[], emit: EventSink): void {
  const target = config.target || '.';
  const intoDirectory = config.sources.length > 1 || target.endsWith('/');
  let bytes = 0;
  let entries = 0;
  for (const source of localSources) {
    const base = `${target.replace(/\/+$/, '')}/${source.name}`;
    for (const item of source.items) {
      entries++;
      bytes += item.size;
      emit({ kind: 'plan-entry', source: item.path, target: item.rel ? `${base}/${item.rel}` : base, bytes: item.size, type: item.type });
    }
  }
  if (config.direction === 'download') {
    for (const s of config.sources) emit({ kind: 'plan-entry', source: s, target: config.target, bytes: 0, type: 'file' });
    entries = config.sources.length;
  }
  const note = !intoDirectory && config.direction === 'upload' ? `if ${target} is not an existing directory, the source becomes ${target} itself` : undefined;
  for (const host of config.hosts) {
    emit({ kind: 'plan', direction: config.direction, host: host.host, port: host.port, user: host.user, entries, bytes, dryRun: true, ...(note ? { note } : {}) });
  }
}

interface HostOutcome {
  result: HostResult;
  files: FileResult[];
  error: SafeScpError | undefined;
}

async function copyToHost(
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
      openSession({ ...common, ...prepared.credentials(target), target, channels: prepared.channels, onAuthenticated, ...(through ? { sock: through } : {}) }, targetTrace),
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
        ...(trace.algorithms?.['crypto'] ? { nativeCrypto: trace.algorithms['crypto'] === 'native' } : {}),
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

/** Bounds of the clean-up connection: it must not hold up a failed or interrupted run for long. */
const CLEANUP_CONNECT_MS = 10_000;
const CLEANUP_TOTAL_MS = 15_000;

/**
 * Removes the temp files a failed attempt could not remove itself (its connection was gone), over one
 * fresh connection (through the same jump hosts, throttled like any attempt) that is never retried and
 * not counted as an attempt. Bounded in time: it must not hold up a failed or interrupted run for long.
 */
async function removeLeftoverTemps(
  target: HostTarget,
  config: ResolvedConfig,
  state: TransferState,
  deps: CopyDeps,
  connect: (tunnels: Tunnel[], signal: AbortSignal) => Promise<Session>,
): Promise<void> {
  const where = `${target.host}:${target.port}`;
  if (config.direction === 'download') {
    for (const temp of [...state.temps]) {
      await rm(temp, { force: true }).then(() => state.temps.delete(temp), () => undefined);
    }
    return;
  }
  const tunnels: Tunnel[] = [];
  let session: Session | undefined;
  const bound = AbortSignal.timeout(CLEANUP_TOTAL_MS);
  const cut = (): void => {
    session?.client.destroy();
  };
  bound.addEventListener('abort', cut, { once: true });
  for (const file of state.staged.values()) state.temps.add(file.staged);
  state.staged.clear();
  try {
    session = await connect(tunnels, bound);
    for (const temp of [...state.temps]) {
      await session.fs.unlink(temp).then(
        () => state.temps.delete(temp),
        (err: unknown) => {
          // Already gone is fine; anything else leaves it listed below.
          if (isSafeScpError(err) && err.code === 'remote-no-such-path') state.temps.delete(temp);
        },
      );
    }
    if (state.temps.size === 0) deps.emit({ kind: 'debug', message: `removed the temporary files of the failed attempt on ${where}` });
  } catch (err: unknown) {
    deps.emit({ kind: 'debug', message: `could not connect to ${where} to remove temporary files: ${err instanceof Error ? err.message : String(err)}` });
  } finally {
    bound.removeEventListener('abort', cut);
    session?.close();
    for (const tunnel of tunnels.reverse()) tunnel.close();
  }
  if (state.temps.size > 0) {
    deps.emit({ kind: 'debug', message: `temporary files left on ${where}: ${[...state.temps].join(', ')}` });
  }
}

/** Runs the transfer; a watchdog ends a connection that makes no progress for --stall-timeout. */
async function transferWithWatchdog(session: Session, tunnels: readonly Tunnel[], config: ResolvedConfig, prepared: Prepared, state: TransferState, signal: AbortSignal): Promise<void> {
  state.lastProgress = Date.now();
  const watchdog = setInterval(() => {
    const idle = Date.now() - Math.max(state.lastProgress, session.channels.lastActivity);
    if (session.channels.pending > 0 && idle > config.stallTimeoutMs) {
      session.markStalled();
      session.client.destroy();
    }
  }, Math.min(1000, config.stallTimeoutMs));
  // On interrupt, transfers stop between requests and remove their temp files while the
  // connection still works; the connection is cut only if that takes too long.
  state.signal = signal;
  let hardStop: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    hardStop = setTimeout(() => session.client.destroy(), 3000);
    hardStop.unref();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let ok = false;
  try {
    const options = { ...UPLOAD_DEFAULTS, preserve: config.preserve, staged: config.staged, update: config.update, inplace: config.inplace, channels: config.channels };
    const work =
      config.direction === 'upload'
        ? prepared.localSources().then((sources) => {
            const files = sources.flatMap((s) => s.items).filter((i) => i.type === 'file');
            state.started({ bytesTotal: files.reduce((sum, i) => sum + i.size, 0), filesTotal: files.length });
            return upload(session.channels, sources, config.target, options, state, prepared.prefetch);
          })
        : (state.started({}), download(session.fs, config.sources, config.target, { ...options, recursive: config.recursive }, state));
    await Promise.race([work, session.lost, ...tunnels.map((t) => t.lost)]);
    ok = true;
  } catch (err: unknown) {
    if (signal.aborted && isSafeScpError(signal.reason)) throw signal.reason;
    throw err;
  } finally {
    state.ended(ok);
    clearInterval(watchdog);
    clearTimeout(hardStop);
    signal.removeEventListener('abort', onAbort);
  }
}
