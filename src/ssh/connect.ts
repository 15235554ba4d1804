// Opens one SSH connection with an SFTP channel, recording what each phase saw for the diagnosis.
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client } from 'ssh2';
import { classifyConnectFailure, classifyForwardFailure, connectionLost, type ConnectTrace } from '../classify.js';
import type { HostTarget } from '../config.js';
import { SafeScpError } from '../errors.js';
import { clientConfig, type ConnectOptions } from './client-config.js';
import { Channels, MIN_RTT_MS, openSftp } from './channels.js';
import { writeBatcher } from './write-batch.js';
import { RemoteFs, sftpLength } from './remote-fs.js';
import { cryptoKind } from './native-crypto.js';
import { abortPromise, resolveAddress, tapBanner, tcpConnect } from './socket.js';

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
      const asked = Date.now();
      const openSSH = /^SSH-2\.0-OpenSSH/.test(trace.serverVersion ?? '');
      // Handed over before the server's VERSION on OpenSSH: the transfer's first requests go out with INIT.
      openSftp(client, openSSH, true).then((sftp) => {
        const openMs = sftp.ready.then(() => Date.now() - asked);
        openMs.catch(() => undefined);
        settled = true;
        clearTimeout(timer);
        trace.phase = 'transfer';
        const batch = writeBatcher(sock);
        const fs = new RemoteFs(sftp, lost, batch, sftpLength(trace.serverVersion));
        const channels = new Channels(fs, lost, batch, openMs);
        // The extra channels are offered once the first is open, and join while it transfers if the work asks for
        // them (a few small files do not: each costs the server a login shell). Asked for explicitly (--channels),
        // they open at once, whatever the round trip. Opening them beside the first instead was measured for a
        // 2000-file tree at 50 ms: 5% faster against a server whose channels start cheaply (internal-sftp), 3%
        // slower against one that starts a heavy login shell; and no public signal of the round trip comes before
        // the first channel (authentication's time is mostly the server's own work), so they wait for it.
        const forced = options.channelsForced === true;
        channels.offer((options.channels ?? 1) - 1, () => openSftp(client, openSSH), options.emit, `${target.host}:${target.port}`, forced ? 0 : MIN_RTT_MS, forced);
        resolve({
          ...connected,
          fs,
          channels,
          close: () => {
            channels.stop();
            connected.close();
          },
        });
      }, fail);
    });

    const config = clientConfig(options, sock, trace);
    try {
      client.connect(config);
    } catch (err: unknown) {
      fail(err);
    }
  });
  return session.finally(abort.release);
}
