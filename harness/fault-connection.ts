// One connection through the fault proxy: forwards both ways and fires its fault (if the plan chose one) at its point.
import net from 'node:net';
import type { ResolvedFault } from './fault-plan.js';
import type { ConnectionRecord } from './fault-records.js';

const IDENT_WAIT_MS = 1000;

/** What a connection needs from its proxy. */
export interface ConnectionContext {
  target: { host: string; port: number };
  /** After a `close` fault, how long to wait for the client's FIN before destroying. */
  lingerMs: number;
  /** The connection's fault fired. */
  onTriggered(): void;
  /** The last of the connection's sockets closed. */
  onClosed(conn: FaultConnection): void;
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? error.message : `${code}: ${error.message}`;
  }
  return String(error);
}

/**
 * RST via resetAndDestroy(), except while our own end() (a shutdown) is still pending: then libuv refuses
 * (uv_tcp_close_reset -> EINVAL), Node emits 'reset EINVAL' and leaks the handle, and the process later spins
 * forever at exit in Environment::CleanupHandles (Node 20.20). A plain destroy() is used in that case.
 */
function reset(socket: net.Socket | undefined): void {
  if (socket === undefined || socket.destroyed) return;
  if (socket.writableEnded && !socket.writableFinished) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

export class FaultConnection {
  private upstream: net.Socket | undefined;
  private fault: ResolvedFault | undefined;
  private state: 'forwarding' | 'faulted' = 'forwarding';
  private openSockets = 0;
  /** Server bytes seen so far, for after-banner (looking for the first '\n'). */
  private bannerSeen = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Tracks the client socket at once, so that its close is counted even if the connection never starts. */
  constructor(
    readonly record: ConnectionRecord,
    private readonly client: net.Socket,
    private readonly context: ConnectionContext,
  ) {
    this.track(client);
  }

  /** Starts forwarding, or applies a before-banner fault. */
  start(fault: ResolvedFault | undefined): void {
    this.fault = fault;
    if (fault !== undefined) this.record.fault = fault;
    this.client.setNoDelay(true);
    if (fault?.at === 'before-banner') this.beforeBanner(fault);
    else this.connectUpstream();
  }

  /** Cancels its timers and destroys both sockets (the proxy is closing). */
  destroy(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.client.destroy();
    this.upstream?.destroy();
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private track(socket: net.Socket): void {
    this.openSockets++;
    socket.on('error', (error) => {
      this.record.error ??= errorText(error);
    });
    socket.once('close', () => {
      this.openSockets--;
      if (this.openSockets === 0) {
        this.record.closedAt = Date.now();
        for (const timer of this.timers) clearTimeout(timer);
        this.timers.clear();
        this.context.onClosed(this);
      }
    });
  }

  private markTriggered(): void {
    this.state = 'faulted';
    this.record.faultedAt = Date.now();
    this.context.onTriggered();
  }

  /** Keeps reading (and discarding) the client so its close is noticed and our close is a FIN, not an RST. */
  private drainClient(): void {
    this.client.on('data', () => undefined);
    this.client.on('end', () => this.client.destroy());
    this.client.resume();
  }

  private beforeBanner(fault: ResolvedFault): void {
    const { client } = this;
    const act = (): void => {
      if (client.destroyed || this.state === 'faulted') return;
      this.markTriggered();
      if (fault.kind === 'reset') {
        if (fault.notice === undefined) reset(client);
        else client.write(fault.notice, () => (fault.settleMs > 0 ? this.later(fault.settleMs, () => reset(client)) : reset(client)));
      } else if (fault.kind === 'close') {
        this.drainClient();
        if (fault.notice !== undefined) client.end(fault.notice);
        else client.end();
        this.later(this.context.lingerMs, () => client.destroy());
      } else {
        this.drainClient();
        if (fault.notice !== undefined) client.write(fault.notice);
      }
    };
    if (fault.kind === 'hang') {
      act();
    } else if (fault.delayMs !== undefined) {
      // Recipe D': the client's ident stays unread (pauseOnConnect), as when sshd closes without reading.
      if (fault.delayMs > 0) this.later(fault.delayMs, act);
      else act();
    } else {
      let waited = false;
      const onFirst = (): void => {
        if (waited) return;
        waited = true;
        client.off('data', onFirst);
        client.off('end', onFirst);
        client.pause();
        act();
      };
      client.on('data', onFirst);
      client.on('end', onFirst);
      client.resume();
      this.later(IDENT_WAIT_MS, onFirst);
    }
  }

  private connectUpstream(): void {
    const { client, record } = this;
    const upstream = net.connect({ host: this.context.target.host, port: this.context.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    this.track(upstream);
    upstream.setNoDelay(true);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      if (upstream.localPort !== undefined) record.upstreamLocalPort = upstream.localPort;
      if (this.state === 'forwarding') client.resume();
    });
    upstream.on('data', (chunk: Buffer) => this.fromServer(upstream, chunk));
    client.on('data', (chunk: Buffer) => this.fromClient(upstream, chunk));
    client.on('end', () => {
      if (this.state === 'forwarding') upstream.end();
    });
    upstream.on('end', () => {
      if (this.state === 'forwarding') client.end();
    });
    client.once('close', () => {
      if (this.state === 'forwarding') upstream.destroy();
    });
    upstream.once('close', () => {
      if (this.state !== 'forwarding') return;
      // Server went away: refused -> RST to the client (as a dead server would); otherwise a normal close.
      if (client.destroyed) return;
      if (!connected) reset(client);
      else client.end();
      this.later(this.context.lingerMs, () => client.destroy());
    });
  }

  /** Writes with backpressure: pause `source` until `sink` drains (only while still forwarding). */
  private forward(source: net.Socket, sink: net.Socket, chunk: Buffer, done?: () => void): void {
    if (sink.destroyed) {
      done?.();
      return;
    }
    const ok = done === undefined ? sink.write(chunk) : sink.write(chunk, () => done());
    if (!ok && this.state === 'forwarding') {
      source.pause();
      sink.once('drain', () => {
        if (this.state === 'forwarding' && !source.destroyed) source.resume();
      });
    }
  }

  private fromServer(upstream: net.Socket, chunk: Buffer): void {
    if (this.state !== 'forwarding') return;
    const { client, record, fault } = this;
    let cut = -1;
    if (fault?.at === 'after-banner' && !this.bannerSeen) {
      const newline = chunk.indexOf(0x0a);
      if (newline >= 0) {
        this.bannerSeen = true;
        cut = newline + 1;
      }
    } else if (fault?.at === 'mid-kex') {
      const remaining = fault.afterBytes - record.bytesToClient;
      if (remaining < chunk.length) cut = Math.max(0, remaining);
    }
    if (cut < 0 || fault === undefined) {
      record.bytesToClient += chunk.length;
      this.forward(upstream, client, chunk);
      return;
    }
    const head = chunk.subarray(0, cut);
    record.bytesToClient += head.length;
    this.markTriggered();
    const strike = (): void => this.strike(fault);
    if (head.length > 0) this.forward(upstream, client, head, strike);
    else strike();
  }

  private fromClient(upstream: net.Socket, chunk: Buffer): void {
    if (this.state !== 'forwarding') return;
    const { client, record, fault } = this;
    if (fault?.at !== 'mid-transfer' || record.bytesToServer + chunk.length <= fault.afterBytes) {
      record.bytesToServer += chunk.length;
      this.forward(client, upstream, chunk);
      return;
    }
    const head = chunk.subarray(0, Math.max(0, fault.afterBytes - record.bytesToServer));
    record.bytesToServer += head.length;
    this.markTriggered();
    if (head.length > 0) upstream.write(head);
    this.strike(fault);
  }

  /** Applies a triggered after-banner / mid-kex / mid-transfer fault. */
  private strike(fault: ResolvedFault): void {
    const { client, upstream } = this;
    if (fault.kind === 'reset') {
      reset(upstream);
      if (fault.settleMs > 0) this.later(fault.settleMs, () => reset(client));
      else reset(client);
      return;
    }
    upstream?.destroy();
    this.drainClient();
    if (fault.kind === 'close') {
      client.end();
      this.later(this.context.lingerMs, () => client.destroy());
    }
  }
}
