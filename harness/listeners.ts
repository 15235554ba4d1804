// Small loopback TCP endpoints for diagnosis tests: a non-SSH talker, a silent acceptor, free and closed ports.
import net from 'node:net';

export interface TestListener {
  host: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Destroys every open connection and stops listening. */
  close(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';

/** A port that was free a moment ago (bind to port 0, read the port, close). Racy by nature: use it at once. */
/** Listens on a free port of `host`; resolves with it (later server errors are ignored: the owner handles sockets). */
export async function listenOnFreePort(server: net.Server, host: string, what: string): Promise<number> {
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`${what}: no TCP address`);
  return address.port;
}

export async function freePort(host: string = DEFAULT_HOST): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('freePort: no TCP address');
  return address.port;
}

/** A port with nothing listening on it (connecting gets ECONNREFUSED), for `connect-refused` tests. */
export async function closedPort(host: string = DEFAULT_HOST): Promise<number> {
  return freePort(host);
}

/** Starts a server whose connections are handled by `onSocket`; tracks sockets so close() can end them. */
async function startListener(host: string, onSocket: (socket: net.Socket) => void): Promise<TestListener> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  const port = await listenOnFreePort(server, host, 'listener');
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    get connections() {
      return connections;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

export interface NonSshListenerOptions {
  host?: string;
  /** Answer only after the client sent something (like an HTTP server reading a request). Default false: answer on accept. */
  waitForData?: boolean;
  /** Give up waiting for the client's FIN after this long and destroy the socket. Default 2000 ms. */
  lingerMs?: number;
}

/**
 * A server that is not SSH: writes `text` (e.g. 'HTTP/1.1 400 Bad Request\r\n\r\n') and closes with a
 * clean FIN (it keeps reading what the client sends, so no RST from unread data).
 */
export async function startNonSshListener(text: string, options: NonSshListenerOptions = {}): Promise<TestListener> {
  const lingerMs = options.lingerMs ?? 2000;
  return startListener(options.host ?? DEFAULT_HOST, (socket) => {
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      socket.end(text);
      const timer = setTimeout(() => socket.destroy(), lingerMs);
      socket.once('close', () => clearTimeout(timer));
    };
    socket.on('data', () => {
      if (options.waitForData === true) answer();
    });
    // Both halves ended (ours by end(), theirs by FIN): the socket closes itself; the timer is the fallback.
    socket.on('end', () => answer());
    if (options.waitForData !== true) answer();
  });
}

/** A server that accepts and never answers (reads and discards), until the client leaves or close(). */
export async function startSilentListener(host: string = DEFAULT_HOST): Promise<TestListener> {
  return startListener(host, (socket) => {
    socket.on('data', () => undefined);
    socket.on('end', () => socket.destroy());
  });
}
