// TCP proxy in front of a real server that injects connection faults (RST, FIN, hang) at chosen points, on a schedule.
import net from 'node:net';

/** `reset`: RST (resetAndDestroy). `close`: FIN (clean end). `hang`: never forward or answer again. */
export type FaultKind = 'reset' | 'close' | 'hang';
/**
 * `before-banner`: on accept, before connecting upstream. `after-banner`: after forwarding the server's first
 * line. `mid-kex`: after `afterBytes` bytes from the server. `mid-transfer`: after `afterBytes` bytes uploaded.
 */
export type FaultPoint = 'before-banner' | 'after-banner' | 'mid-kex' | 'mid-transfer';

export interface FaultSpec {
  kind: FaultKind;
  /** Default 'before-banner'. */
  at?: FaultPoint;
  /**
   * before-banner only: text written to the client first, e.g. 'Exceeded MaxStartups\r\n' (with `reset`: the
   * notice, then RST at once, as sshd 9.2 does when it drops a connection past MaxStartups).
   */
  notice?: string;
  /**
   * before-banner only: act exactly this many ms after accept, with the client's ident left unread (recipe D').
   * Default: act as soon as the client's first bytes (its SSH ident) arrived, at most 1000 ms after accept.
   * Waiting for the ident makes the outcome deterministic: an RST that arrives before the client's connect()
   * completed surfaces in Node as 'connect ECONNRESET' (seen 10/10 with delayMs 0) instead of a read error.
   */
  delayMs?: number;
  /** mid-kex: bytes from the server (default 1000); mid-transfer: bytes from the client (default 32 MiB). */
  afterBytes?: number;
  /**
   * `reset` only: ms between the last byte forwarded to the client (banner, partial KEX, notice) and the RST.
   * Default 50 for after-banner / mid-kex / mid-transfer, 0 for before-banner. Why: when data and the RST reach a
   * Node client in the same poll round, libuv reports a plain EOF ('end', no ECONNRESET); the settle time lets
   * the client read the data first, so it then sees ECONNRESET. With 0, ssh2 mostly sees a FIN-shaped close.
   */
  settleMs?: number;
}

/** A fault with every default filled in (`delayMs` absent = wait for the client's first bytes). */
export interface ResolvedFault {
  kind: FaultKind;
  at: FaultPoint;
  notice?: string;
  delayMs?: number;
  afterBytes: number;
  settleMs: number;
}

export type PatternStep = 'pass' | FaultKind | FaultSpec;

/**
 * Which connections get a fault. Counting restarts at 0 on every setPlan(). At most one schedule:
 * - `failFirst: N`: connections 1..N get `fault`, the rest pass;
 * - `rate: 0.3` (+ `seed`): each connection gets `fault` with that probability, from a seeded PRNG (mulberry32);
 * - `pattern: [...]`: step i applies to connection i ('reset' | 'close' | 'hang' take `fault`'s point and options);
 *   after the last step everything passes, unless `repeat`;
 * - none of these: every connection gets `fault` if given, else every connection passes.
 */
export interface FaultPlan {
  /** The fault to apply. Default { kind: 'reset', at: 'before-banner' }. */
  fault?: FaultSpec | FaultKind;
  failFirst?: number;
  rate?: number;
  seed?: number;
  pattern?: PatternStep[];
  repeat?: boolean;
}

export interface ConnectionRecord {
  /** 1-based, in accept order (over the proxy's lifetime). */
  id: number;
  openedAt: number;
  /** When the last of the connection's sockets (client side, upstream) closed. */
  closedAt?: number;
  /** Remote port of the client's socket. */
  clientPort?: number;
  /** Local port of the proxy's socket to the server: sshd logs it as "from 127.0.0.1 port PORT". */
  upstreamLocalPort?: number;
  /** The fault the plan chose for this connection; absent when it passed. */
  fault?: ResolvedFault;
  /** When the fault fired (absent if its point was never reached, e.g. a short upload). */
  faultedAt?: number;
  /** Bytes forwarded server -> client and client -> server. */
  bytesToClient: number;
  bytesToServer: number;
  /** First socket error seen on either side (diagnostic only). */
  error?: string;
}

export interface FaultProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Where the proxy listens. Default 127.0.0.1, random port. */
  host?: string;
  port?: number;
  plan?: FaultPlan;
  /** After a `close` fault, how long to wait for the client's FIN before destroying. Default 2000 ms. */
  lingerMs?: number;
}

const DEFAULT_MID_KEX_BYTES = 1000;
const DEFAULT_MID_TRANSFER_BYTES = 32 * 1024 * 1024;
const DEFAULT_SETTLE_MS = 50;
const IDENT_WAIT_MS = 1000;

/** Deterministic 32-bit PRNG (mulberry32): returns a function yielding floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resolveFault(spec: FaultSpec | FaultKind | undefined, kindOverride?: FaultKind): ResolvedFault {
  const base: FaultSpec = spec === undefined ? { kind: 'reset' } : typeof spec === 'string' ? { kind: spec } : spec;
  const at = base.at ?? 'before-banner';
  const resolved: ResolvedFault = {
    kind: kindOverride ?? base.kind,
    at,
    afterBytes: base.afterBytes ?? (at === 'mid-transfer' ? DEFAULT_MID_TRANSFER_BYTES : DEFAULT_MID_KEX_BYTES),
    settleMs: base.settleMs ?? (at === 'before-banner' ? 0 : DEFAULT_SETTLE_MS),
  };
  if (base.delayMs !== undefined) resolved.delayMs = base.delayMs;
  if (base.notice !== undefined) resolved.notice = base.notice;
  return resolved;
}

function validatePlan(plan: FaultPlan): void {
  const schedules = [plan.failFirst !== undefined, plan.rate !== undefined, plan.pattern !== undefined].filter(Boolean).length;
  if (schedules > 1) throw new Error('FaultPlan: use at most one of failFirst, rate, pattern');
  if (plan.rate !== undefined && !(plan.rate >= 0 && plan.rate <= 1)) throw new Error('FaultPlan: rate must be in [0, 1]');
  if (plan.failFirst !== undefined && !(plan.failFirst >= 0)) throw new Error('FaultPlan: failFirst must be >= 0');
}

/** Turns a plan into a per-connection decision function (stateful: call once per connection, in order). */
export function planDecider(plan: FaultPlan): () => ResolvedFault | undefined {
  validatePlan(plan);
  let index = 0;
  const random = mulberry32(plan.seed ?? 1);
  return () => {
    const i = index++;
    if (plan.failFirst !== undefined) return i < plan.failFirst ? resolveFault(plan.fault) : undefined;
    if (plan.rate !== undefined) return random() < plan.rate ? resolveFault(plan.fault) : undefined;
    if (plan.pattern !== undefined) {
      const length = plan.pattern.length;
      if (length === 0 || (i >= length && plan.repeat !== true)) return undefined;
      const step = plan.pattern[i % length];
      if (step === undefined || step === 'pass') return undefined;
      return typeof step === 'string' ? resolveFault(plan.fault, step) : resolveFault(step);
    }
    return plan.fault === undefined ? undefined : resolveFault(plan.fault);
  };
}

/** The decisions a plan makes for its first `count` connections (undefined = pass). */
export function previewPlan(plan: FaultPlan, count: number): Array<ResolvedFault | undefined> {
  const decide = planDecider(plan);
  return Array.from({ length: Math.max(0, Math.min(count, 1_000_000)) }, () => decide());
}

export interface AuthTimestamp {
  clientPort: number;
  at: number;
}

/**
 * Post hoc: the largest number of connections that were open at the same moment and not yet authenticated.
 * A record's unauthenticated interval runs from openedAt to the earlier of its close and its auth time, where
 * its auth time is the first auth event whose clientPort equals its upstreamLocalPort within
 * [openedAt - tolerance, closedAt + tolerance]. Auth times are moved `toleranceMs` earlier, since a log line
 * arrives a little after sshd accepted the key. Still-open, never-authenticated records count to the end.
 */
export function maxConcurrentUnauthenticated(
  records: readonly Pick<ConnectionRecord, 'openedAt' | 'closedAt' | 'upstreamLocalPort'>[],
  authEvents: readonly AuthTimestamp[],
  toleranceMs = 20,
): number {
  const intervals: Array<{ start: number; end: number }> = [];
  for (const record of records) {
    const closeAt = record.closedAt ?? Number.POSITIVE_INFINITY;
    let authAt = Number.POSITIVE_INFINITY;
    if (record.upstreamLocalPort !== undefined) {
      for (const event of authEvents) {
        if (event.clientPort !== record.upstreamLocalPort) continue;
        if (event.at < record.openedAt - toleranceMs || event.at > closeAt + toleranceMs) continue;
        authAt = Math.min(authAt, event.at);
      }
    }
    const end = Math.max(record.openedAt, Math.min(closeAt, authAt - toleranceMs));
    if (end <= record.openedAt) continue;
    intervals.push({ start: record.openedAt, end });
  }
  return maxOverlap(intervals);
}

/** Most intervals open at one instant. Intervals are half-open [start, end): one ending as another starts is not overlap. */
export function maxOverlap(intervals: ReadonlyArray<{ start: number; end: number }>): number {
  const points = intervals.flatMap(({ start, end }) => [
    { t: start, delta: 1 },
    { t: end, delta: -1 },
  ]);
  points.sort((a, b) => a.t - b.t || a.delta - b.delta);
  let open = 0;
  let max = 0;
  for (const point of points) {
    open += point.delta;
    max = Math.max(max, open);
  }
  return max;
}

type ConnState = 'forwarding' | 'faulted';

interface Conn {
  record: ConnectionRecord;
  client: net.Socket;
  upstream?: net.Socket;
  fault?: ResolvedFault;
  state: ConnState;
  openSockets: number;
  /** Server bytes seen so far, for after-banner (looking for the first '\n'). */
  bannerSeen: boolean;
  timers: Set<NodeJS.Timeout>;
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

export class FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly target: { host: string; port: number };
  /** Per-connection records in accept order (live). */
  readonly records: ConnectionRecord[] = [];
  private decide: () => ResolvedFault | undefined;
  private readonly conns = new Set<Conn>();
  private openCount = 0;
  private maxOpen = 0;
  private faultedCount = 0;
  private passedCount = 0;
  private triggeredCount = 0;
  private closing: Promise<void> | undefined;
  private readonly lingerMs: number;

  /** Use startFaultProxy(). */
  constructor(
    private readonly server: net.Server,
    address: { host: string; port: number },
    options: FaultProxyOptions,
  ) {
    this.host = address.host;
    this.port = address.port;
    this.target = { host: options.targetHost ?? '127.0.0.1', port: options.targetPort };
    this.decide = planDecider(options.plan ?? {});
    this.lingerMs = options.lingerMs ?? 2000;
    server.on('connection', (socket: net.Socket) => this.onConnection(socket));
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.records.length;
  }
  /** Connections the plan chose to fault (whether or not the fault point was reached). */
  get faulted(): number {
    return this.faultedCount;
  }
  /** Connections the plan let through. */
  get passed(): number {
    return this.passedCount;
  }
  /** Faults that actually fired. */
  get faultsTriggered(): number {
    return this.triggeredCount;
  }
  /** Connections open right now. */
  get open(): number {
    return this.openCount;
  }
  /** Largest number of connections open at once so far. */
  get maxConcurrentOpen(): number {
    return this.maxOpen;
  }

  /** Replaces the plan; its schedule counts from the next connection. */
  setPlan(plan: FaultPlan): void {
    this.decide = planDecider(plan);
  }

  /** See the module-level maxConcurrentUnauthenticated(); uses this proxy's records. */
  maxConcurrentUnauthenticated(authEvents: readonly AuthTimestamp[], toleranceMs = 20): number {
    return maxConcurrentUnauthenticated(this.records, authEvents, toleranceMs);
  }

  /** Resolves once `count` connections were accepted in total; rejects after timeoutMs. */
  async waitForConnections(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < Math.ceil(timeoutMs / 10) + 1 && this.records.length < count; i++) {
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.records.length < count) throw new Error(`fault proxy saw ${this.records.length} of ${count} connections within ${timeoutMs} ms`);
  }

  /** Destroys every socket and stops listening; resolves when all connection records are closed (bounded). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const conn of this.conns) {
        for (const timer of conn.timers) clearTimeout(timer);
        conn.timers.clear();
        conn.client.destroy();
        conn.upstream?.destroy();
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([serverClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 3000)))]);
      clearTimeout(timer);
    })();
    return this.closing;
  }

  private later(conn: Conn, ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      conn.timers.delete(timer);
      fn();
    }, ms);
    conn.timers.add(timer);
  }

  private track(conn: Conn, socket: net.Socket): void {
    conn.openSockets++;
    socket.on('error', (error) => {
      conn.record.error ??= errorText(error);
    });
    socket.once('close', () => {
      conn.openSockets--;
      if (conn.openSockets === 0) {
        conn.record.closedAt = Date.now();
        for (const timer of conn.timers) clearTimeout(timer);
        conn.timers.clear();
        this.conns.delete(conn);
        this.openCount--;
      }
    });
  }

  private onConnection(client: net.Socket): void {
    const record: ConnectionRecord = { id: this.records.length + 1, openedAt: Date.now(), bytesToClient: 0, bytesToServer: 0 };
    if (client.remotePort !== undefined) record.clientPort = client.remotePort;
    this.records.push(record);
    const conn: Conn = { record, client, state: 'forwarding', openSockets: 0, bannerSeen: false, timers: new Set() };
    this.conns.add(conn);
    this.openCount++;
    this.maxOpen = Math.max(this.maxOpen, this.openCount);
    this.track(conn, client);
    if (this.closing !== undefined) {
      client.destroy();
      return;
    }
    const fault = this.decide();
    if (fault === undefined) {
      this.passedCount++;
    } else {
      this.faultedCount++;
      conn.fault = fault;
      record.fault = fault;
    }
    client.setNoDelay(true);
    if (fault?.at === 'before-banner') {
      this.beforeBanner(conn, fault);
      return;
    }
    this.connectUpstream(conn);
  }

  private markTriggered(conn: Conn): void {
    conn.state = 'faulted';
    conn.record.faultedAt = Date.now();
    this.triggeredCount++;
  }

  /** Keeps reading (and discarding) the client so its close is noticed and our close is a FIN, not an RST. */
  private drainClient(conn: Conn): void {
    conn.client.on('data', () => undefined);
    conn.client.on('end', () => conn.client.destroy());
    conn.client.resume();
  }

  private beforeBanner(conn: Conn, fault: ResolvedFault): void {
    const { client } = conn;
    const act = (): void => {
      if (client.destroyed || conn.state === 'faulted') return;
      this.markTriggered(conn);
      if (fault.kind === 'reset') {
        if (fault.notice === undefined) reset(client);
        else client.write(fault.notice, () => (fault.settleMs > 0 ? this.later(conn, fault.settleMs, () => reset(client)) : reset(client)));
      } else if (fault.kind === 'close') {
        this.drainClient(conn);
        if (fault.notice !== undefined) client.end(fault.notice);
        else client.end();
        this.later(conn, this.lingerMs, () => client.destroy());
      } else {
        this.drainClient(conn);
        if (fault.notice !== undefined) client.write(fault.notice);
      }
    };
    if (fault.kind === 'hang') {
      act();
    } else if (fault.delayMs !== undefined) {
      // Recipe D': the client's ident stays unread (pauseOnConnect), as when sshd closes without reading.
      if (fault.delayMs > 0) this.later(conn, fault.delayMs, act);
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
      this.later(conn, IDENT_WAIT_MS, onFirst);
    }
  }

  private connectUpstream(conn: Conn): void {
    const { client, record } = conn;
    const upstream = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    conn.upstream = upstream;
    this.track(conn, upstream);
    upstream.setNoDelay(true);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      if (upstream.localPort !== undefined) record.upstreamLocalPort = upstream.localPort;
      if (conn.state === 'forwarding') client.resume();
    });
    upstream.on('data', (chunk: Buffer) => this.fromServer(conn, chunk));
    client.on('data', (chunk: Buffer) => this.fromClient(conn, chunk));
    client.on('end', () => {
      if (conn.state === 'forwarding') upstream.end();
    });
    upstream.on('end', () => {
      if (conn.state === 'forwarding') client.end();
    });
    client.once('close', () => {
      if (conn.state === 'forwarding') upstream.destroy();
    });
    upstream.once('close', () => {
      if (conn.state !== 'forwarding') return;
      // Server went away: refused -> RST to the client (as a dead server would); otherwise a normal close.
      if (client.destroyed) return;
      if (!connected) reset(client);
      else client.end();
      this.later(conn, this.lingerMs, () => client.destroy());
    });
  }

  /** Writes with backpressure: pause `source` until `sink` drains (only while still forwarding). */
  private forward(conn: Conn, source: net.Socket, sink: net.Socket, chunk: Buffer, done?: () => void): void {
    if (sink.destroyed) {
      done?.();
      return;
    }
    const ok = done === undefined ? sink.write(chunk) : sink.write(chunk, () => done());
    if (!ok && conn.state === 'forwarding') {
      source.pause();
      sink.once('drain', () => {
        if (conn.state === 'forwarding' && !source.destroyed) source.resume();
      });
    }
  }

  private fromServer(conn: Conn, chunk: Buffer): void {
    if (conn.state !== 'forwarding') return;
    const { client, record, fault } = conn;
    const upstream = conn.upstream;
    if (upstream === undefined) return;
    let cut = -1;
    if (fault?.at === 'after-banner' && !conn.bannerSeen) {
      const newline = chunk.indexOf(0x0a);
      if (newline >= 0) {
        conn.bannerSeen = true;
        cut = newline + 1;
      }
    } else if (fault?.at === 'mid-kex') {
      const remaining = fault.afterBytes - record.bytesToClient;
      if (remaining < chunk.length) cut = Math.max(0, remaining);
    }
    if (cut < 0 || fault === undefined) {
      record.bytesToClient += chunk.length;
      this.forward(conn, upstream, client, chunk);
      return;
    }
    const head = chunk.subarray(0, cut);
    record.bytesToClient += head.length;
    this.markTriggered(conn);
    const strike = (): void => this.strike(conn, fault);
    if (head.length > 0) this.forward(conn, upstream, client, head, strike);
    else strike();
  }

  private fromClient(conn: Conn, chunk: Buffer): void {
    if (conn.state !== 'forwarding') return;
    const { client, record, fault } = conn;
    const upstream = conn.upstream;
    if (upstream === undefined) return;
    if (fault?.at !== 'mid-transfer' || record.bytesToServer + chunk.length <= fault.afterBytes) {
      record.bytesToServer += chunk.length;
      this.forward(conn, client, upstream, chunk);
      return;
    }
    const head = chunk.subarray(0, Math.max(0, fault.afterBytes - record.bytesToServer));
    record.bytesToServer += head.length;
    this.markTriggered(conn);
    if (head.length > 0) upstream.write(head);
    this.strike(conn, fault);
  }

  /** Applies a triggered after-banner / mid-kex / mid-transfer fault. */
  private strike(conn: Conn, fault: ResolvedFault): void {
    const { client, upstream } = conn;
    if (fault.kind === 'reset') {
      reset(upstream);
      if (fault.settleMs > 0) this.later(conn, fault.settleMs, () => reset(client));
      else reset(client);
      return;
    }
    upstream?.destroy();
    this.drainClient(conn);
    if (fault.kind === 'close') {
      client.end();
      this.later(conn, this.lingerMs, () => client.destroy());
    }
  }
}

/** Starts a fault proxy on 127.0.0.1 (random port) in front of targetHost:targetPort. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  if (options.plan !== undefined) validatePlan(options.plan);
  const host = options.host ?? '127.0.0.1';
  // pauseOnConnect: the client's SSH ident stays unread until we forward it (or close with it unread -> RST).
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
  return new FaultProxy(server, { host, port: address.port }, options);
}
