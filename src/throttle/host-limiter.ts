// Per-host connection-attempt throttle shared by every safe-scp process on this machine, kept in files under a private state dir.
//
// Layout of <stateDir>/<hostDirName(hostKey)>/ (every file is created complete, via a temp file + link/rename):
//   lock                 short mutex around "count holders, check the gap, take a slot" (lock-file.ts)
//   lock.break-<token>   claim taken while removing a stale `lock`, so two breakers cannot both remove
//   slot-<token>.json    one per holder {pid, hostname, createdAt, renewMs, ...}: a lease, renewed through its mtime
//                        (slots.ts); the holder unlinks it on release, a waiter removes it once lost (owner.ts)
//   state.json           {lastStartAt}: start of the most recent acquisition, for the interval
//   tmp-<token>          temp files, renamed/linked into place at once
import { createHash } from 'node:crypto';
import path from 'node:path';
import { acquireMutex, jitter, LOCK_STALE_MS, removeQuietly } from './lock-file.js';
import type { SlotOwner } from './owner.js';
import { createLeasedSlot, readLastStart, scanHolders, writeLastStart, type Lease, type ReclaimedSlot, type SlotHolder } from './slots.js';
import { ensureStateDir } from './state-dir.js';

export { ensureStateDir, StateDirError } from './state-dir.js';
export { LEASE_RENEWALS_LOST, type SlotOwner, type StaleReason } from './owner.js';
export type { ReclaimedSlot, SlotHolder } from './slots.js';

export interface ThrottleClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** One check that found the host busy (or inside its interval), told to `onWait`. */
export interface SlotWait {
  readonly hostKey: string;
  /** Time waited so far. */
  readonly waitedMs: number;
  readonly concurrency: number;
  /** `busy`: `concurrency` live holders; `interval`: a slot is free but the last start was under intervalMs ago. */
  readonly reason: 'busy' | 'interval';
  readonly holders: readonly SlotHolder[];
  /** Clock time of the check (holders' createdAt/renewedAt are on the same clock). */
  readonly now: number;
}

export interface HostSlotOptions {
  /** Directory shared by the processes that throttle together (by default <tmp>/safe-scp-<uid>, see config.ts). */
  stateDir: string;
  /** Most holders at once for this host, across all processes (>= 1). */
  concurrency: number;
  /** Least time between the starts of two acquisitions for this host (>= 0; 0 = no gap). */
  intervalMs: number;
  /** Rejects the wait with `signal.reason`. */
  signal?: AbortSignal | undefined;
  clock?: ThrottleClock | undefined;
  /** Give up with HostSlotTimeoutError after this long (0 = one try). Default: wait as long as needed. */
  maxWaitMs?: number | undefined;
  /** Slots without a lease (older versions) and locks older than this are leftovers whatever their pid says. Default 10 minutes. */
  staleAfterMs?: number | undefined;
  /** How often the holder renews its slot's lease (default 2 s); a lease not renewed for 3x this is lost. */
  leaseRenewMs?: number | undefined;
  /** Called at each check that finds the host busy or inside its interval. Must not throw. */
  onWait?: ((wait: SlotWait) => void) | undefined;
}

export interface HostSlot {
  /** How long acquisition waited (0 when the slot was free at once). */
  readonly waitedMs: number;
  /** Clock time recorded as this attempt's start; the next start for the host is at least intervalMs later. */
  readonly startedAt: number;
  /** The holders seen at the last check that had to wait (empty when the slot was free at once). */
  readonly waitedFor: readonly SlotHolder[];
  /** Slots removed during this acquisition because they no longer counted (lease lost, owner gone, too old). */
  readonly reclaimed: readonly ReclaimedSlot[];
  /** True once another process found our lease lost (we were stopped past it) and took the slot away. */
  readonly lost: boolean;
  /** Frees the slot. Idempotent and never rejects: a slot left behind is recovered as stale. */
  release(): Promise<void>;
}

/** maxWaitMs ran out while other holders kept the host busy. */
export class HostSlotTimeoutError extends Error {
  override readonly name = 'HostSlotTimeoutError';
  readonly hostKey: string;
  readonly waitedMs: number;

  constructor(hostKey: string, waitedMs: number, concurrency: number, holders: readonly SlotOwner[], dir: string) {
    const known = holders.filter((h) => h.pid > 0);
    const who = known.length === 0 ? '' : `; held by ${known.slice(0, 5).map((h) => `pid ${h.pid} on ${h.hostname}`).join(', ')}`;
    super(
      `gave up after waiting ${Math.round(waitedMs)} ms for a connection slot to ${hostKey} ` +
        `(host concurrency ${concurrency}${who}); other safe-scp processes on this machine kept it busy ` +
        `(state in ${dir}). Raise --host-concurrency or look for stuck jobs.`,
    );
    this.hostKey = hostKey;
    this.waitedMs = waitedMs;
  }
}

const DEFAULT_STALE_AFTER_MS = 10 * 60_000;
const DEFAULT_LEASE_RENEW_MS = 2_000;
const SLOT_POLL_MS: readonly [number, number] = [20, 100];

const systemClock: ThrottleClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * File-name-safe directory for one host key: a readable prefix (for whoever looks in the state dir)
 * plus a hash, so IPv6 colons, `%zone`, brackets or `/` never reach the file system and two keys
 * that sanitise alike still differ. Host names are case-insensitive, so case is folded first.
 */
export function hostDirName(hostKey: string): string {
  const key = hostKey.trim().toLowerCase();
  const readable = key.replace(/[^a-z0-9.-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return `host-${readable}-${hash}`;
}

/**
 * Waits until this process may start a connection attempt to `hostKey`: fewer than `concurrency`
 * holders exist (across all processes sharing stateDir) and at least `intervalMs` passed since the
 * previous start. Hold the slot from TCP connect until authentication ends, then release it.
 */
export async function acquireHostSlot(hostKey: string, options: HostSlotOptions): Promise<HostSlot> {
  validate(hostKey, options);
  const clock = options.clock ?? systemClock;
  const startedWaiting = clock.now();
  const signal = options.signal;
  signal?.throwIfAborted();

  const dir = await hostStateDir(options.stateDir, hostKey);
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const deadline = options.maxWaitMs === undefined ? undefined : startedWaiting + options.maxWaitMs;
  let waitedFor: SlotHolder[] = [];
  const reclaimed: ReclaimedSlot[] = [];

  /** Sleeps (bounded by the deadline), turning an exhausted deadline into HostSlotTimeoutError and an abort into signal.reason. */
  const pause = async (ms: number): Promise<void> => {
    let wait = ms;
    if (deadline !== undefined) {
      const left = deadline - clock.now();
      if (left <= 0) {
        const owners = waitedFor.map((h) => h.owner);
        throw new HostSlotTimeoutError(hostKey, clock.now() - startedWaiting, options.concurrency, owners, dir);
      }
      wait = Math.min(wait, left);
    }
    try {
      await clock.sleep(wait, signal);
    } catch (error: unknown) {
      // Whatever the clock rejected with, an abort is reported as the caller's own reason.
      signal?.throwIfAborted();
      throw error;
    }
  };
  const mutex = { dir, now: () => clock.now(), signal, lockStaleMs: Math.min(LOCK_STALE_MS, staleAfterMs), pause };

  for (;;) {
    signal?.throwIfAborted();
    const unlock = await acquireMutex(mutex);
    let waitMs: number;
    try {
      const scan = await scanHolders(dir, clock.now(), staleAfterMs);
      reclaimed.push(...scan.reclaimed);
      const holders = scan.live;
      const now = clock.now();
      const lastStartAt = await readLastStart(dir);
      if (lastStartAt !== undefined && lastStartAt > now) {
        // The clock stepped back: a start "in the future" would hold everyone off until the clock
        // caught up. Restamp it as now, so the gap runs from here and ends.
        await writeLastStart(dir, now);
      }
      const gapLeft = remainingGap(lastStartAt === undefined ? undefined : Math.min(lastStartAt, now), now, options.intervalMs);
      if (holders.length < options.concurrency && gapLeft <= 0) {
        // Recorded even when intervalMs is 0, so a process configured with a gap still sees our starts.
        // Written before the slot: if this fails no slot is left behind for the rest of our life.
        await writeLastStart(dir, now);
        const lease = await createLeasedSlot(dir, clock, options.leaseRenewMs ?? DEFAULT_LEASE_RENEW_MS);
        return makeSlot(lease, now - startedWaiting, now, waitedFor, reclaimed);
      }
      const busy = holders.length >= options.concurrency;
      if (busy) waitedFor = holders;
      options.onWait?.({ hostKey, waitedMs: now - startedWaiting, concurrency: options.concurrency, reason: busy ? 'busy' : 'interval', holders, now });
      // Full: poll with jitter so waiting processes do not wake in lockstep. Only the gap: sleep it out.
      waitMs = busy ? jitter(SLOT_POLL_MS) : gapLeft + jitter([0, 10]);
    } finally {
      await unlock();
    }
    await pause(waitMs);
  }
}

function validate(hostKey: string, options: HostSlotOptions): void {
  if (typeof hostKey !== 'string' || hostKey.trim() === '') throw new TypeError('acquireHostSlot: hostKey must be a non-empty string');
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
    throw new RangeError(`acquireHostSlot: concurrency must be an integer >= 1, got ${options.concurrency}`);
  }
  for (const [name, value] of [
    ['intervalMs', options.intervalMs],
    ['maxWaitMs', options.maxWaitMs],
    ['staleAfterMs', options.staleAfterMs],
  ] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
      throw new RangeError(`acquireHostSlot: ${name} must be a finite number >= 0, got ${value}`);
    }
  }
  const renew = options.leaseRenewMs;
  if (renew !== undefined && (!Number.isFinite(renew) || renew < 1)) {
    throw new RangeError(`acquireHostSlot: leaseRenewMs must be a finite number >= 1, got ${renew}`);
  }
}

/** Time left before the next start is allowed (<= 0: now). */
function remainingGap(lastStartAt: number | undefined, now: number, intervalMs: number): number {
  if (lastStartAt === undefined || intervalMs === 0) return 0;
  return lastStartAt + intervalMs - now;
}

function makeSlot(lease: Lease, waitedMs: number, startedAt: number, waitedFor: readonly SlotHolder[], reclaimed: readonly ReclaimedSlot[]): HostSlot {
  let released: Promise<void> | undefined;
  return {
    waitedMs,
    startedAt,
    waitedFor,
    reclaimed,
    get lost() {
      return lease.lost;
    },
    release: () => {
      lease.stop();
      return (released ??= removeQuietly(lease.path));
    },
  };
}

/** `<stateDir>/<hostDirName(hostKey)>`, created (0700) and vetted like the state dir itself. */
export async function hostStateDir(stateDir: string, hostKey: string): Promise<string> {
  const base = await ensureStateDir(stateDir);
  return ensureStateDir(path.join(base, hostDirName(hostKey)));
}
