// What a fault proxy records per connection, and what tests compute from the records afterwards.
import type { ResolvedFault } from './fault-plan.js';

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
