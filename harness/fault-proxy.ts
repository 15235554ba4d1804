// TCP proxy in front of a real server that injects connection faults (RST, FIN, hang) at chosen points, on a schedule.
// The plan (which connection gets which fault): fault-plan.ts; one connection: fault-connection.ts; records: fault-records.ts.
import net from 'node:net';
import { FaultConnection } from './fault-connection.js';
import { planDecider, validatePlan, type FaultPlan, type ResolvedFault } from './fault-plan.js';
import { maxConcurrentUnauthenticated, type AuthTimestamp, type ConnectionRecord } from './fault-records.js';

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

export class FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly target: { host: string; port: number };
  /** Per-connection records in accept order (live). */
  readonly records: ConnectionRecord[] = [];
  private decide: () => ResolvedFault | undefined;
  private readonly conns = new Set<FaultConnection>();
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
      for (const conn of this.conns) conn.destroy();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([serverClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 3000)))]);
      clearTimeout(timer);
    })();
    return this.closing;
  }

  private onConnection(client: net.Socket): void {
    const record: ConnectionRecord = { id: this.records.length + 1, openedAt: Date.now(), bytesToClient: 0, bytesToServer: 0 };
    if (client.remotePort !== undefined) record.clientPort = client.remotePort;
    this.records.push(record);
    const conn = new FaultConnection(record, client, {
      target: this.target,
      lingerMs: this.lingerMs,
      onTriggered: () => this.triggeredCount++,
      onClosed: (closed) => {
        this.conns.delete(closed);
        this.openCount--;
      },
    });
    this.conns.add(conn);
    this.openCount++;
    this.maxOpen = Math.max(this.maxOpen, this.openCount);
    if (this.closing !== undefined) {
      client.destroy();
      return;
    }
    const fault = this.decide();
    if (fault === undefined) this.passedCount++;
    else this.faultedCount++;
    conn.start(fault);
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
