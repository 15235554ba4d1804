// `safe-scp doctor`: one careful connection (throttled, never retried) that reports every phase it reached.
import { hostKeyName } from '../ssh/client-config.js';
import { newTrace, openSession } from '../ssh/connect.js';
import { agentSocket, loadIdentities, type Identity } from '../ssh/key.js';
import type { ConnectTrace } from '../classify.js';
import type { HostTarget, ResolvedConfig } from '../config.js';
import { SafeScpError, isSafeScpError, type CauseCode } from '../errors.js';
import { loadPins } from '../hostkeys/load-pins.js';
import { lookupHost } from '../hostkeys/known-hosts.js';
import type { EventSink } from '../log/events.js';
import { waitForRunSlot } from '../throttle/wait-for-slot.js';

export interface DoctorReport {
  target: HostTarget;
  ok: boolean;
  exitCode: number;
  cause: CauseCode | undefined;
  message: string | undefined;
  trace: ConnectTrace;
  durationMs: number;
  /** known_hosts entries and fingerprints that pin this host (type + fingerprint + source). */
  pins: Array<{ type: string; fingerprint: string; source: string }>;
  hostKeyVerdict: 'pinned' | 'unknown' | 'changed' | 'revoked' | 'not reached';
  auth: 'ok' | 'failed' | 'skipped: no key configured' | 'skipped: key unreadable' | 'not reached';
  keyProblem: string | undefined;
  sftp: 'ok' | 'unavailable' | 'not reached';
}

export interface DoctorOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
}

export async function doctor(config: ResolvedConfig, deps: DoctorOptions): Promise<DoctorReport> {
  const target = config.hosts[0] as HostTarget;
  const started = Date.now();
  const { pins } = await loadPins({ knownHostsFiles: config.knownHostsFiles, fingerprints: config.hostKeyFingerprints, env: deps.env });
  const named = hostKeyName(target);
  const lookup = lookupHost(pins.entries, named.host, named.port);
  const pinList = [
    ...lookup.keys.map((e) => ({ type: e.keyType, fingerprint: e.fingerprint, source: e.source })),
    ...pins.fingerprints.map((fp) => ({ type: 'any type', fingerprint: fp, source: '--host-key' })),
  ];

  let identities: Identity[] = [];
  let keyProblem: string | undefined;
  try {
    identities = await loadIdentities({ identityFiles: target.identityFiles ?? config.identityFiles, optionalFiles: target.configIdentityFiles ?? [], env: deps.env });
  } catch (err: unknown) {
    keyProblem = err instanceof Error ? err.message : String(err);
  }
  const agent = target.identitiesOnly ? undefined : agentSocket(deps.env);
  const haveCredentials = identities.length > 0 || agent !== undefined;

  const trace = newTrace(target);
  let error: SafeScpError | undefined;
  // Doctor must not add to a ban: it takes the same per-host slot as a copy and makes one attempt.
  const slot = await waitForRunSlot({
    host: target.host,
    port: target.port,
    stateDir: config.stateDir,
    concurrency: config.hostConcurrency,
    intervalMs: config.hostIntervalMs,
    signal: deps.signal,
    emit: deps.emit,
  });
  try {
    const session = await openSession(
      {
        target,
        identities,
        agent,
        pins,
        strictHostKeyChecking: 'yes',
        acceptNewFile: config.acceptNewFile,
        connectTimeoutMs: config.connectTimeoutMs,
        keepaliveIntervalMs: config.keepaliveIntervalMs,
        keepaliveCountMax: config.keepaliveCountMax,
        signal: deps.signal,
        emit: deps.emit,
        onAuthenticated: () => void slot.release(),
      },
      trace,
    );
    session.close();
  } catch (err: unknown) {
    error = isSafeScpError(err) ? err : new SafeScpError('internal', String(err), { phase: 'run', cause: err });
  } finally {
    await slot.release();
  }

  const reachedAuth = trace.algorithms !== undefined;
  const authSkipped = error?.code === 'auth-failed' && !haveCredentials;
  const verdict: DoctorReport['hostKeyVerdict'] = trace.hostKeyRefusal
    ? trace.hostKeyRefusal.code === 'host-key-unknown'
      ? 'unknown'
      : trace.hostKeyRefusal.code === 'host-key-revoked'
        ? 'revoked'
        : 'changed'
    : error?.code === 'host-key-changed'
      ? 'changed'
      : reachedAuth
        ? 'pinned'
        : 'not reached';
  const auth: DoctorReport['auth'] = !reachedAuth
    ? 'not reached'
    : authSkipped
      ? keyProblem
        ? 'skipped: key unreadable'
        : 'skipped: no key configured'
      : error?.code === 'auth-failed'
        ? 'failed'
        : error && trace.phase === 'auth'
          ? 'failed'
          : 'ok';
  const sftp: DoctorReport['sftp'] = error?.code === 'sftp-unavailable' ? 'unavailable' : !error ? 'ok' : 'not reached';
  // With no key to try, stopping at authentication is the expected end of a probe, not a failure.
  const effective = authSkipped ? (keyProblem ? new SafeScpError('key-invalid', keyProblem, { phase: 'auth' }) : undefined) : error;
  return {
    target,
    ok: effective === undefined,
    exitCode: effective?.exitCode ?? 0,
    cause: effective?.code,
    message: effective?.message,
    trace,
    durationMs: Date.now() - started,
    pins: pinList,
    hostKeyVerdict: verdict,
    auth,
    keyProblem,
    sftp,
  };
}
