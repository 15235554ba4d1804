// The WAN-emulating proxy the benchmark puts between the tools and sshd: bytes arrive intact and in order both
// ways, a full buffer pauses the sender without losing anything, and connections close cleanly (FIN both ways).
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { startLatencyProxy, type LatencyProxy } from '../../harness/index.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Peer {
  received: Buffer[];
  ended: Promise<void>;
  closed: Promise<void>;
}

/** Collects what a socket receives; resolves `ended` on its FIN and `closed` on close. */
function peer(socket: net.Socket): Peer {
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { received, ended, closed };
}

/** Writes `data` in chunks of varied sizes (1 byte .. 200 KB) honouring backpressure, then ends. */
async function sendInChunks(socket: net.Socket, data: Buffer): Promise<void> {
  const sizes = [1, 7, 1500, 65536, 200_000, 333];
  let offset = 0;
  for (let i = 0; offset < data.length && i < 100_000; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, data.length - offset);
    const ok = socket.write(data.subarray(offset, offset + n));
    offset += n;
    if (!ok) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
}

describe('latency proxy', () => {
  let server: net.Server;
  let serverSide: Promise<net.Socket>;
  let proxy: LatencyProxy | undefined;

  beforeEach(async () => {
    server = net.createServer({ allowHalfOpen: true });
    serverSide = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const targetPort = (): number => (server.address() as net.AddressInfo).port;

  async function exchange(p: LatencyProxy, upBytes: number, downBytes: number): Promise<{ ms: number }> {
    const up = randomBytes(upBytes);
    const down = randomBytes(downBytes);
    const started = Date.now();
    const client = net.connect({ host: p.host, port: p.port, allowHalfOpen: true });
    const clientPeer = peer(client);
    const remote = await serverSide;
    const serverPeer = peer(remote);
    await Promise.all([sendInChunks(client, up), sendInChunks(remote, down)]);
    await Promise.all([clientPeer.ended, serverPeer.ended]);
    const ms = Date.now() - started;
    await Promise.all([clientPeer.closed, serverPeer.closed]);
    expect(sha(Buffer.concat(serverPeer.received))).toBe(sha(up));
    expect(sha(Buffer.concat(clientPeer.received))).toBe(sha(down));
    return { ms };
  }

  it('delivers both directions intact and in order, adds the delay, and closes cleanly', async () => {
    proxy = await startLatencyProxy({ targetPort: targetPort(), rttMs: 60, mbitPerS: 200 });
    const { ms } = await exchange(proxy, 3 * 1024 * 1024 + 17, 2 * 1024 * 1024 + 5);
    // Handshake round trip plus one way: never faster than that, whatever the load.
    expect(ms).toBeGreaterThanOrEqual(60 + 30 - 5);
    expect(proxy.connections).toBe(1);
    for (let i = 0; i < 100 && proxy.open > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(proxy.open).toBe(0);
  });

  it('pauses a sender that fills the link buffer and still delivers every byte in order', async () => {
    // 8 MiB through a 64 KiB buffer at 400 Mbit/s: the sender is paused and resumed many times.
    proxy = await startLatencyProxy({ targetPort: targetPort(), rttMs: 4, mbitPerS: 400, maxQueueBytes: 64 * 1024 });
    await exchange(proxy, 8 * 1024 * 1024, 1024);
  });

  it('passes data without a bandwidth cap and a zero delay', async () => {
    proxy = await startLatencyProxy({ targetPort: targetPort(), rttMs: 0 });
    await exchange(proxy, 1024 * 1024, 1024 * 1024);
  });

  it('closes the other side when one side resets', async () => {
    proxy = await startLatencyProxy({ targetPort: targetPort(), rttMs: 10, mbitPerS: 100 });
    const client = net.connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('connect', resolve));
    const remote = await serverSide;
    const remoteClosed = new Promise<void>((resolve) => remote.once('close', () => resolve()));
    remote.on('error', () => undefined);
    remote.resume();
    remote.on('end', () => remote.end());
    client.write('hello');
    client.resetAndDestroy();
    await remoteClosed;
    for (let i = 0; i < 100 && proxy.open > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(proxy.open).toBe(0);
  });
});
