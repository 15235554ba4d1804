// A TCP proxy on loopback that behaves like a WAN link: a one-way delay (RTT/2) and a bandwidth cap per direction.
//
// Each direction is a serialization queue: a chunk leaves at max(now, link free) + size / rate and arrives one
// one-way delay later, so order is kept and the rate holds on average whatever the timer jitter. One timer per
// direction (for the head of the queue) delivers every chunk that is due. When a direction holds more than
// `maxQueueBytes` (queued plus not yet written to the receiver), its source socket is paused until half of it
// drained, so memory stays bounded and the sender sees backpressure, like a full router buffer.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { listenOnFreePort } from './listeners.js';

export interface LatencyProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** Round-trip time to add, ms; each direction gets half. */
  rttMs: number;
  /** Bandwidth of each direction, Mbit/s (10^6 bits). 0 or absent: no cap. */
  mbitPerS?: number;
  /**
   * Pause a sender beyond this many bytes in flight per direction (on the wire plus queued for it). Default
   * max(256 KiB, 2 x bandwidth-delay product): half a BDP propagating, the rest a router buffer of ~1.5 BDP.
   * A larger buffer only adds queueing delay (bufferbloat) that window-limited protocols like SSH pay for.
   */
  maxQueueBytes?: number;
}

interface Pending {
  data: Buffer;
  arriveAt: number;
}

/** One direction of one connection. */
class Pipe {
  private readonly queue: Array<Pending | undefined> = [];
  private head = 0;
  private queuedBytes = 0;
  private linkFreeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private sourceEnded = false;
  private paused = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly delayMs: number,
    private readonly bytesPerMs: number,
    private readonly maxBytes: number,
    handshakeMs: number,
  ) {
    this.linkFreeAt = performance.now() + handshakeMs;
    from.on('data', (chunk: Buffer) => this.push(chunk));
    from.on('end', () => {
      this.sourceEnded = true;
      this.flush();
    });
    to.on('drain', () => this.maybeResume());
  }

  /** Bytes accepted from the sender and not yet handed to the receiver's kernel. */
  get inFlight(): number {
    return this.queuedBytes + this.to.writableLength;
  }

  private push(chunk: Buffer): void {
    const now = performance.now();
    const sendTime = this.bytesPerMs > 0 ? chunk.length / this.bytesPerMs : 0;
    const departs = Math.max(now, this.linkFreeAt) + sendTime;
    this.linkFreeAt = departs;
    this.queue.push({ data: chunk, arriveAt: departs + this.delayMs });
    this.queuedBytes += chunk.length;
    if (!this.paused && this.inFlight > this.maxBytes) {
      this.paused = true;
      this.from.pause();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const next = this.queue[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.max(0, next.arriveAt - performance.now()));
  }

  private flush(): void {
    if (this.to.destroyed) return;
    // Timers fire late by up to ~1 ms: deliver what is due within that, in one corked batch.
    const due = performance.now() + 1;
    let wrote = false;
    for (let next = this.queue[this.head]; next !== undefined && next.arriveAt <= due; next = this.queue[this.head]) {
      if (!wrote) this.to.cork();
      wrote = true;
      this.to.write(next.data);
      this.queuedBytes -= next.data.length;
      this.queue[this.head] = undefined;
      this.head++;
    }
    if (wrote) this.to.uncork();
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.head >= this.queue.length && this.sourceEnded && !this.to.writableEnded) this.to.end();
    this.maybeResume();
    this.schedule();
  }

  private maybeResume(): void {
    if (this.paused && this.inFlight <= this.maxBytes / 2 && !this.from.destroyed) {
      this.paused = false;
      this.from.resume();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }
}

export class LatencyProxy {
  readonly host: string;
  readonly port: number;
  private readonly sockets = new Set<net.Socket>();
  private readonly pipes = new Set<Pipe>();
  private accepted = 0;
  private closing: Promise<void> | undefined;

  /** Use startLatencyProxy(). */
  constructor(
    private readonly server: net.Server,
    address: { host: string; port: number },
    private readonly options: LatencyProxyOptions,
  ) {
    this.host = address.host;
    this.port = address.port;
    server.on('connection', (socket: net.Socket) => this.onConnection(socket));
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.accepted;
  }

  /** Connections with a socket still open. */
  get open(): number {
    return Math.ceil(this.sockets.size / 2);
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onConnection(client: net.Socket): void {
    this.accepted++;
    const o = this.options;
    const delayMs = o.rttMs / 2;
    const bytesPerMs = o.mbitPerS !== undefined && o.mbitPerS > 0 ? (o.mbitPerS * 1e6) / 8 / 1000 : 0;
    const bdp = bytesPerMs > 0 ? bytesPerMs * o.rttMs : 0;
    const maxBytes = o.maxQueueBytes ?? Math.max(256 * 1024, 2 * bdp);
    const upstream = new net.Socket({ allowHalfOpen: true });
    this.track(client);
    this.track(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // The TCP handshake costs a round trip before anything flows: nothing leaves either end before it.
    const up = new Pipe(client, upstream, delayMs, bytesPerMs, maxBytes, o.rttMs);
    const down = new Pipe(upstream, client, delayMs, bytesPerMs, maxBytes, o.rttMs);
    this.pipes.add(up);
    this.pipes.add(down);
    let done = false;
    const teardown = (): void => {
      if (done) return;
      done = true;
      up.stop();
      down.stop();
      this.pipes.delete(up);
      this.pipes.delete(down);
      client.destroy();
      upstream.destroy();
    };
    // A reset or error on one side ends both at once; a clean close ends each half in order (Pipe).
    for (const s of [client, upstream]) {
      s.on('error', teardown);
      s.on('close', (hadError) => (hadError ? teardown() : undefined));
    }
    let closedCount = 0;
    const bothClosed = (): void => {
      if (++closedCount === 2) teardown();
    };
    client.once('close', bothClosed);
    upstream.once('close', bothClosed);
    upstream.connect({ host: o.targetHost ?? '127.0.0.1', port: o.targetPort });
  }

  /** Destroys every connection and stops listening. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const pipe of this.pipes) pipe.stop();
      for (const socket of this.sockets) socket.destroy();
      this.server.close(() => resolve());
    });
    return this.closing;
  }
}

export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  if (!(options.rttMs >= 0) || !(options.mbitPerS === undefined || options.mbitPerS >= 0)) {
    throw new Error(`latency proxy: rttMs and mbitPerS must be >= 0 (got ${options.rttMs}, ${options.mbitPerS})`);
  }
  const host = options.host ?? '127.0.0.1';
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listenOnFreePort(server, host, 'latency proxy');
  return new LatencyProxy(server, { host, port }, options);
}
