// Embedded in-process SFTP server on loopback (ssh2 Server, public-key auth, root-confined filesystem) for the demo and tests.
// The SFTP side lives in sftp-session.ts (requests), sftp-jail.ts (paths), sftp-attrs.ts and sftp-extensions.ts.
import { createHash, timingSafeEqual } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ParsedKey } from 'ssh2';
import { generateEd25519KeyPair } from '../src/ssh/keygen.js';
import { advertiseExtensions } from './sftp-extensions.js';
import { Jail } from './sftp-jail.js';
import { SftpSession } from './sftp-session.js';

const { Server: SshServer, utils } = ssh2;

export interface EmbeddedServerOptions {
  /** Directory served; the client's '/' maps onto it. */
  root: string;
  /** The only user name accepted. */
  username: string;
  /** The only client public key accepted, in OpenSSH one-line form ("ssh-ed25519 AAAA... comment"). */
  authorizedKey: Buffer | string;
  /** Host private key (PEM or OpenSSH). A fresh ed25519 key is generated when absent. */
  hostKey?: string;
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
}

export interface EmbeddedServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** known_hosts line pinning this server, e.g. "[127.0.0.1]:40123 ssh-ed25519 AAAA...". */
  hostKeyLine(): string;
  /** OpenSSH-style fingerprint of the host key, "SHA256:...". */
  readonly hostKeyFingerprint: string;
  /** TCP connections accepted since start (including ones that never got past the banner). */
  readonly connections: number;
  /** Ends every client connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
/** Like OpenSSH's LoginGraceTime: unauthenticated connections are dropped after this. */
const LOGIN_GRACE_MS = 30_000;
/** How long close() lets clients say goodbye before their sockets are destroyed. */
const CLOSE_GRACE_MS = 1_000;

// ---------------------------------------------------------------------------------------------
// Keys and authentication

function parseSingleKey(input: Buffer | string, what: string): ParsedKey {
  const parsed: unknown = utils.parseKey(input);
  if (parsed instanceof Error) throw new Error(`${what}: ${parsed.message}`);
  const key: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof key !== 'object' || key === null) throw new Error(`${what}: no key found`);
  return key as ParsedKey;
}

/** Constant-time comparison that does not short-circuit on length. */
function safeEqual(input: Buffer, expected: Buffer): boolean {
  const sameLength = input.length === expected.length;
  const match = timingSafeEqual(input, sameLength ? expected : input);
  return sameLength && match;
}

function sha256Fingerprint(publicBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '');
}

function makeAuthenticator(username: string, authorized: ParsedKey): (ctx: AuthContext) => void {
  const expectedUser = Buffer.from(username, 'utf8');
  const authorizedBlob = authorized.getPublicSSH();
  return (ctx) => {
    const userOk = safeEqual(Buffer.from(ctx.username, 'utf8'), expectedUser);
    if (ctx.method !== 'publickey') {
      ctx.reject(['publickey']);
      return;
    }
    const keyOk = ctx.key.algo === authorized.type && safeEqual(ctx.key.data, authorizedBlob);
    if (!userOk || !keyOk) {
      ctx.reject(['publickey']);
      return;
    }
    if (ctx.signature === undefined) {
      ctx.accept(); // key probe only: answers PK_OK, the client then signs
      return;
    }
    if (ctx.blob === undefined || authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
      ctx.reject(['publickey']);
      return;
    }
    ctx.accept();
  };
}

// ---------------------------------------------------------------------------------------------
// Server

export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const realRoot = await realpath(options.root);
  if (!(await stat(realRoot)).isDirectory()) throw new Error(`root is not a directory: ${options.root}`);
  const jail = new Jail(realRoot);

  const authorized = parseSingleKey(options.authorizedKey, 'authorizedKey');
  const hostKeyText = options.hostKey ?? generateEd25519KeyPair().private;
  const hostKey = parseSingleKey(hostKeyText, 'hostKey');
  if (!hostKey.isPrivateKey()) throw new Error('hostKey: not a private key');
  const hostBlob = hostKey.getPublicSSH();
  const hostKeyFingerprint = sha256Fingerprint(hostBlob);
  const authenticate = makeAuthenticator(options.username, authorized);

  const sockets = new Set<net.Socket>();
  const socketsByPeer = new Map<string, net.Socket>(); // "ip:port" -> socket, to pair with ssh2's Connection
  const loginTimers = new Map<net.Socket, NodeJS.Timeout>();
  const clients = new Set<Connection>();
  let connections = 0;
  let closing: Promise<void> | undefined;

  const ssh = new SshServer({ hostKeys: [hostKeyText] });
  ssh.on('error', () => undefined);
  ssh.on('connection', (client: Connection, info: { ip: string; port: number }) => {
    const socket = socketsByPeer.get(`${info.ip}:${info.port}`);
    clients.add(client);
    const sessions = new Set<SftpSession>();
    client.on('error', () => undefined); // resets, protocol errors: the client just goes away
    client.on('close', () => {
      clients.delete(client);
      for (const s of sessions) s.dispose();
    });
    client.on('authentication', authenticate);
    client.on('ready', () => {
      if (socket !== undefined) {
        clearTimeout(loginTimers.get(socket));
        loginTimers.delete(socket);
      }
    });
    client.on('session', (accept) => {
      const session = accept();
      session.on('sftp', (acceptSftp) => {
        const sftp = acceptSftp();
        advertiseExtensions(sftp);
        sessions.add(new SftpSession(sftp, jail));
      });
    });
  });

  const tcp = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    const peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    socketsByPeer.set(peer, socket);
    const timer = setTimeout(() => socket.destroy(), LOGIN_GRACE_MS);
    timer.unref();
    loginTimers.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(loginTimers.get(socket));
      loginTimers.delete(socket);
      sockets.delete(socket);
      if (socketsByPeer.get(peer) === socket) socketsByPeer.delete(peer);
    });
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    tcp.once('error', onError);
    tcp.listen(options.port ?? 0, HOST, () => {
      tcp.off('error', onError);
      resolve();
    });
  });
  tcp.on('error', () => undefined);

  const address = tcp.address();
  if (address === null || typeof address === 'string') throw new Error('embedded server: no TCP address');
  const port = address.port;
  const knownHostsName = port === 22 ? HOST : `[${HOST}]:${port}`;
  const hostKeyLine = `${knownHostsName} ${hostKey.type} ${hostBlob.toString('base64')}`;

  const close = async (): Promise<void> => {
    const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    for (const client of clients) {
      try {
        client.end();
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (sockets.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const socket of sockets) socket.destroy();
    for (const timer of loginTimers.values()) clearTimeout(timer);
    loginTimers.clear();
    await tcpClosed;
  };

  return {
    host: HOST,
    port,
    hostKeyLine: () => hostKeyLine,
    hostKeyFingerprint,
    get connections() {
      return connections;
    },
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
