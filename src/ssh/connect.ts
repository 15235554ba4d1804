// Opens one SSH connection with an SFTP channel, recording what each phase saw for the diagnosis.
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import { classifyConnectFailure, classifyForwardFailure, connectionLost, type ConnectTrace } from '../classify.js';
import type { HostTarget } from '../config.js';
import { SafeScpError } from '../errors.js';
import { hostKeyAlgorithms, type HostKeyPins } from '../hostkeys/policy.js';
import { hostVerifier } from '../hostkeys/verifier.js';
import type { EventSink } from '../log/events.js';
import type { Identity } from './key.js';
import { Channels, MIN_RTT_MS, openSftp } from './channels.js';
import { writeBatcher } from './write-batch.js';
import { RemoteFs } from './remote-fs.js';
import { cryptoKind } from './ssh2-internals.js';
import { abortPromise, resolveAddress, tapBanner, tcpConnect } from './socket.js';

/** Ciphers in order of speed on AES-NI machines (faults-and-perf.md 3: gcm beats chacha20 by ~40%). */
const CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
] as const;

export interface ConnectOptions {
  readonly target: HostTarget;
  readonly identities: readonly Identity[];
  readonly agent: string | undefined;
  readonly pins: HostKeyPins;
  readonly strictHostKeyChecking: 'yes' | 'accept-new';
  readonly acceptNewFile: string;
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  /** An already-open stream to tunnel through (jump hosts); otherwise a TCP connection is made. */
  readonly sock?: Duplex;
  readonly signal?: AbortSignal | undefined;
  readonly emit: EventSink;
  /** SFTP channels to open (default 1): the session resolves with the first, the others join as they open. */
  readonly channels?: number;
  /** The channels were asked for explicitly: opened even when the round trip is too short for them to help. */
  readonly channelsForced?: boolean;
  /** Called once authentication completes (the host throttle slot is released then). */
  readonly onAuthenticated?: () => void;
}

export interface Session {
  readonly client: Client;
  readonly fs: RemoteFs;
  /** The SFTP channels of this connection, `fs` first (more open on request: Channels.grow). */
  readonly channels: Channels;
  readonly trace: ConnectTrace;
  /** Rejects with a classified error when the connection is lost after it was established. */
  readonly lost: Promise<never>;
  /** Marks the next loss as a stall (the watchdog saw no progress). */
  markStalled(): void;
  close(): void;
}

/** The name and port known_hosts is searched for: HostKeyAlias (port 22, as ssh does) or the host connected to. */
export function hostKeyName(target: HostTarget): { host: string; port: number } {
  return target.hostKeyAlias !== undefined ? { host: target.hostKeyAlias, port: 22 } : { host: target.host, port: target.port };
}

export function newTrace(target: HostTarget): ConnectTrace {
  return { host: target.host, port: target.port, phase: 'dns', preBanner: Buffer.alloc(0) };
}

/** An authenticated connection without SFTP: a jump host, used to tunnel to the next hop. */
export interface Tunnel {
  readonly client: Client;
  readonly lost: Promise<never>;
  /** Opens a direct-tcpip channel to host:port through this hop. */
  forward(host: string, port: number): Promise<Duplex>;
  close(): void;
}

/**
 * Connects, verifies the host key against the pins, authenticates and opens SFTP: one connection, whatever the
 * outcome. A `--host-key` fingerprint does not say its key type; the server shows the key of the first type it has
 * in our preference order, and when that key is not pinned the refusal names its type and fingerprint (exit 3).
 */
export async function openSession(options: ConnectOptions, trace: ConnectTrace): Promise<Session> {
  return (await establish(options, trace, true)) as Session;
}

/** Connects and authenticates to a jump host (pinned and throttled like any host). */
export async function openTunnel(options: ConnectOptions, trace: ConnectTrace): Promise<Tunnel> {
  const session = await establish(options, trace, false);
  const { client } = session;
  return {
    client,
    lost: session.lost,
    close: session.close,
    forward: (host, port) =>
      new Promise<Duplex>((resolve, reject) => {
        client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
          if (err) reject(classifyForwardFailure(options.target, host, port, err));
          else resolve(stream);
        });
      }),
  };
}

async function establish(options: ConnectOptions, trace: ConnectTrace, wantSftp: boolean): Promise<Session | (Omit<Session, 'fs' | 'channels'> & { fs?: undefined; channels?: undefined })> {
  const { target } = options;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      trace.ending = 'timeout';
      reject(new Error('connect timeout'));
    }, options.connectTimeoutMs);
  });
  const abort = abortPromise(options.signal);

  let sock: Duplex;
  try {
    if (options.sock) {
      sock = options.sock;
      trace.phase = 'banner';
    } else {
      trace.phase = 'dns';
      const address = await Promise.race([resolveAddress(target.host, trace), timeout, abort.promise]);
      trace.address = address;
      trace.phase = 'tcp';
      const tcp = await Promise.race([tcpConnect(address, target.port, trace), timeout, abort.promise]);
      // ssh2 leaves Nagle on; request/response SFTP calls then wait on delayed ACKs (faults-and-perf.md 3).
      tcp.setNoDelay(true);
      sock = tcp;
      trace.phase = 'banner';
    }
  } catch (err: unknown) {
    clearTimeout(timer);
    abort.release();
    (options.sock ?? undefined)?.destroy();
    throw classifyConnectFailure(trace, err);
  }

  tapBanner(sock, trace);
  sock.on('error', (err: NodeJS.ErrnoException) => {
    trace.socketError ??= { message: err.message, ...(err.code ? { code: err.code } : {}) };
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') trace.ending ??= 'reset';
  });
  sock.on('end', () => {
    trace.ending ??= 'close';
  });

  const client = new Client();
  let stalled = false;
  let lastError: unknown;
  let rejectLost: (err: SafeScpError) => void = () => undefined;
  const lost = new Promise<never>((_, reject) => {
    rejectLost = reject;
  });
  lost.catch(() => undefined);

  const session = new Promise<Session | (Omit<Session, 'fs' | 'channels'> & { fs?: undefined; channels?: undefined })>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(classifyConnectFailure(trace, err));
      client.end();
      sock.destroy();
    };
    timeout.catch((err: unknown) => fail(err));
    abort.promise.catch((err: unknown) => fail(err));

    client.on('error', (err: Error & { level?: string }) => {
      lastError ??= err;
      if (!settled && (err.level === 'client-authentication' || err.level === 'handshake')) fail(err);
      if (!settled && /Unable to start subsystem/i.test(err.message)) fail(err);
    });
    client.on('close', () => {
      if (!settled) fail(lastError ?? new Error('connection closed'));
      else if (trace.hostKeyRefusal) rejectLost(classifyConnectFailure(trace, lastError ?? new Error('host key refused at re-key')));
      else rejectLost(connectionLost(target.host, target.port, lastError ?? new Error('connection closed'), stalled));
    });
    // Once: ssh2 emits it again after every re-key, which must not move the trace back to 'auth'.
    client.once('handshake', (negotiated) => {
      trace.phase = 'auth';
      trace.algorithms = {
        kex: negotiated.kex,
        hostKey: negotiated.serverHostKey,
        cipher: negotiated.cs.cipher,
        mac: negotiated.cs.mac,
        crypto: cryptoKind(),
      };
    });
    const connected = {
      client,
      trace,
      lost,
      markStalled: (): void => {
        stalled = true;
      },
      close: (): void => {
        client.end();
        // Nothing more is wanted from the server: a caller done with the connection need not wait for the server's
        // side of the close (half a round trip and more). Writes already queued still go out.
        if (sock instanceof Socket) sock.unref();
        setTimeout(() => sock.destroy(), 1000).unref();
      },
    };
    client.on('ready', () => {
      trace.phase = 'sftp';
      options.onAuthenticated?.();
      if (!wantSftp) {
        settled = true;
        clearTimeout(timer);
        trace.phase = 'transfer';
        resolve(connected);
        return;
      }
      client.sftp((err, sftp) => {
        if (err) return fail(err);
        settled = true;
        clearTimeout(timer);
        trace.phase = 'transfer';
        const batch = writeBatcher(sock);
        const fs = new RemoteFs(sftp, lost, batch);
        const channels = new Channels(fs, lost, batch);
        // The extra channels are offered once the first is open, and join while it transfers if the work asks for
        // them (a few small files do not: each costs the server a login shell). Asked for explicitly (--channels),
        // they open at once, whatever the round trip.
        const forced = options.channelsForced === true;
        channels.offer((options.channels ?? 1) - 1, () => openSftp(client), options.emit, `${target.host}:${target.port}`, forced ? 0 : MIN_RTT_MS, forced);
        resolve({
          ...connected,
          fs,
          channels,
          close: () => {
            channels.stop();
            connected.close();
          },
        });
      });
    });

    const config: ConnectConfig = {
      sock: sock as NonNullable<ConnectConfig['sock']>,
      username: target.user,
      readyTimeout: 0,
      keepaliveInterval: options.keepaliveIntervalMs,
      keepaliveCountMax: options.keepaliveCountMax,
      // Answers at once except while accept-new records a new key: see hostkeys/verifier.ts (issue 14).
      hostVerifier: hostVerifier(
        { ...hostKeyName(target), pins: options.pins, strictHostKeyChecking: options.strictHostKeyChecking, acceptNewFile: options.acceptNewFile, emit: options.emit },
        trace,
      ) as unknown as NonNullable<ConnectConfig['hostVerifier']>,
      algorithms: {
        cipher: [...CIPHERS],
        ...(() => {
          const named = hostKeyName(target);
          const restricted = hostKeyAlgorithms(options.pins, named.host, named.port);
          if (restricted) trace.pinnedKeyAlgorithms = restricted;
          return restricted ? { serverHostKey: restricted as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> } : {};
        })(),
      },
      authHandler: [
        ...options.identities.map((id) => ({
          type: 'publickey' as const,
          username: target.user,
          key: id.privateKey,
          ...(id.passphrase === undefined ? {} : { passphrase: id.passphrase }),
        })),
        ...(options.agent ? [{ type: 'agent' as const, username: target.user, agent: options.agent }] : []),
      ] as unknown as NonNullable<ConnectConfig['authHandler']>,
    };
    try {
      client.connect(config);
    } catch (err: unknown) {
      fail(err);
    }
  });
  return session.finally(abort.release);
}
