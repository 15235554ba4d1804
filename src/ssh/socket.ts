// The connection's first steps, before SSH: the address, the TCP connection, the raw bytes before the server's
// version line (kept for the diagnosis), and the run's abort signal as a promise.
import dns from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectTrace } from '../classify.js';
import { SafeScpError } from '../errors.js';

export async function resolveAddress(host: string, trace: ConnectTrace): Promise<string> {
  if (net.isIP(host)) return host;
  const started = Date.now();
  // dns.promises is set up on first use: loading node:dns/promises up front cost ~15 ms of every start.
  const { address } = await dns.promises.lookup(host);
  trace.dnsMs = Date.now() - started;
  return address;
}

export function tcpConnect(address: string, port: number, trace: ConnectTrace): Promise<net.Socket> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: address, port });
    const onError = (err: NodeJS.ErrnoException): void => {
      trace.socketError = { message: err.message, ...(err.code ? { code: err.code } : {}) };
      if (err.code === 'ECONNRESET') trace.ending = 'reset';
      sock.destroy();
      reject(err);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      trace.tcpMs = Date.now() - started;
      resolve(sock);
    });
  });
}

/**
 * Watches the raw bytes before the server's version line: ssh2 discards text such as sshd's
 * "Exceeded MaxStartups" that explains a drop. Attached the moment ssh2 adds its own 'data'
 * listener so that no chunk reaches one listener and not the other.
 */
export function tapBanner(sock: Duplex, trace: ConnectTrace): void {
  let pending = Buffer.alloc(0);
  const tap = (chunk: Buffer): void => {
    pending = Buffer.concat([pending, chunk]);
    const text = pending.toString('latin1');
    const at = text.search(/(^|\n)SSH-/);
    if (at >= 0) {
      const start = at === 0 && text.startsWith('SSH-') ? 0 : at + 1;
      const end = text.indexOf('\n', start);
      trace.preBanner = pending.subarray(0, start);
      trace.serverVersion = text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '').slice(0, 255);
      trace.phase = 'kex';
      sock.off('data', tap);
    } else {
      trace.preBanner = pending.subarray(0, 8192);
      if (pending.length > 65536) sock.off('data', tap);
    }
  };
  const onNewListener = (event: string | symbol): void => {
    if (event !== 'data') return;
    sock.off('newListener', onNewListener);
    sock.on('data', tap);
  };
  sock.on('newListener', onNewListener);
}

/**
 * Rejects once `signal` aborts. `release` drops the listener when the caller is past needing it: the run's signal
 * outlives every connection (all hosts of a fan-out, every retry), so listeners left behind pile up on it.
 */
export function abortPromise(signal: AbortSignal | undefined): { promise: Promise<never>; release: () => void } {
  let release = (): void => undefined;
  const promise = new Promise<never>((_, reject) => {
    if (!signal) return;
    const onAbort = (): void => reject(new SafeScpError('interrupted', 'interrupted', { phase: 'run', cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    release = () => signal.removeEventListener('abort', onAbort);
  });
  promise.catch(() => undefined);
  return { promise, release };
}
