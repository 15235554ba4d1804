// Per-host connection-attempt throttle shared by every safe-scp process on this machine, kept in files under a private state dir.
//
// Layout of <stateDir>/<hostDirName(hostKey)>/ (every file is created complete, via a temp file + link/rename):
//   lock                 short mutex around "count holders, check the gap, take a slot" (owner JSON)
//   lock.break-<token>   claim taken while removing a stale `lock`, so two breakers cannot both remove
//   slot-<token>.json    one per holder {pid, hostname, createdAt, ...}; the holder unlinks it on release
//   state.json           {lastStartAt}: start of the most recent acquisition, for the interval
//   tmp-<token>          temp files, renamed/linked into place at once
import { createHash, randomBytes } from 'node:crypto';
import { link, open, readdir, readFile, readlink, rename, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureStateDir, errnoCode } from './state-dir.js';

export { defaultStateDir, ensureStateDir, StateDirError } from './state-dir.js';

export interface ThrottleClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface HostSlotOptions {
  /** Directory shared by the processes that throttle together (see defaultStateDir). */
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
  /** Slots and locks older than this are someone's leftovers whatever their pid says. Default 10 minutes. */
  staleAfterMs?: number | undefined;
}

export interface HostSlot {
  /** How long acquisition waited (0 when the slot was free at once). */
  readonly waitedMs: number;
  /** Clock time recorded as this attempt's start; the next start for the host is at least intervalMs later. */
  readonly startedAt: number;
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

/** What slot and lock files contain. */
export interface SlotOwner {
  pid: number;
  hostname: string;
  createdAt: number;
  token: string;
  /** Linux /proc/<pid>/stat start time: tells a recycled pid from the original owner. */
  startTime?: string;
  /** Linux pid namespace: pids are only comparable inside one (containers sharing a volume). */
  pidNamespace?: string;
}

export const DEFAULT_STALE_AFTER_MS = 10 * 60_000;
/** The mutex is held for a few file operations; an owner this old is stuck (SIGSTOP, dead NFS peer). */
const LOCK_STALE_MS = 30_000;
/** A breaker holds its claim for two file operations. */
const BREAK_STALE_MS = 5_000;
/** A file we cannot parse was written by a crashed or non-link writer; give a slow writer this long. */
const CORRUPT_GRACE_MS = 2_000;
const SLOT_POLL_MS: readonly [number, number] = [20, 100];
const MUTEX_POLL_MS: readonly [number, number] = [2, 15];

export const systemClock: ThrottleClock = {
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
  const ctx: Context = {
    dir,
    hostKey,
    clock,
    signal,
    concurrency: options.concurrency,
    startedWaiting,
    deadline: options.maxWaitMs === undefined ? undefined : startedWaiting + options.maxWaitMs,
    staleAfterMs,
    lockStaleMs: Math.min(LOCK_STALE_MS, staleAfterMs),
    lastHolders: [],
  };

  for (;;) {
    signal?.throwIfAborted();
    const unlock = await acquireMutex(ctx);
    let waitMs: number;
    try {
      const holders = await liveHolders(ctx);
      const now = clock.now();
      const lastStartAt = await readLastStart(dir);
      if (lastStartAt !== undefined && lastStartAt > now) {
        // The clock stepped back: a start "in the future" would hold everyone off until the clock
        // caught up. Restamp it as now, so the gap runs from here and ends.
        await writeLastStart(ctx, now);
      }
      const gapLeft = remainingGap(lastStartAt === undefined ? undefined : Math.min(lastStartAt, now), now, options.intervalMs);
      if (holders.length < options.concurrency && gapLeft <= 0) {
        // Recorded even when intervalMs is 0, so a process configured with a gap still sees our starts.
        // Written before the slot: if this fails no slot is left behind for the rest of our life.
        await writeLastStart(ctx, now);
        const slotPath = await createSlot(ctx);
        return makeSlot(slotPath, now - startedWaiting, now);
      }
      ctx.lastHolders = holders;
      // Full: poll with jitter so waiting processes do not wake in lockstep. Only the gap: sleep it out.
      waitMs = holders.length >= options.concurrency ? jitter(SLOT_POLL_MS) : gapLeft + jitter([0, 10]);
    } finally {
      await unlock();
    }
    await pause(ctx, waitMs);
  }
}

interface Context {
  readonly dir: string;
  readonly hostKey: string;
  readonly clock: ThrottleClock;
  readonly signal: AbortSignal | undefined;
  readonly concurrency: number;
  readonly startedWaiting: number;
  readonly deadline: number | undefined;
  readonly staleAfterMs: number;
  readonly lockStaleMs: number;
  lastHolders: SlotOwner[];
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
}

/** Time left before the next start is allowed (<= 0: now). */
function remainingGap(lastStartAt: number | undefined, now: number, intervalMs: number): number {
  if (lastStartAt === undefined || intervalMs === 0) return 0;
  return lastStartAt + intervalMs - now;
}

function makeSlot(slotPath: string, waitedMs: number, startedAt: number): HostSlot {
  let released: Promise<void> | undefined;
  return {
    waitedMs,
    startedAt,
    release: () => (released ??= removeQuietly(slotPath)),
  };
}

/** Sleeps (bounded by the deadline), turning an exhausted deadline into HostSlotTimeoutError and an abort into signal.reason. */
async function pause(ctx: Context, ms: number): Promise<void> {
  let wait = ms;
  if (ctx.deadline !== undefined) {
    const left = ctx.deadline - ctx.clock.now();
    if (left <= 0) {
      throw new HostSlotTimeoutError(ctx.hostKey, ctx.clock.now() - ctx.startedWaiting, ctx.concurrency, ctx.lastHolders, ctx.dir);
    }
    wait = Math.min(wait, left);
  }
  try {
    await ctx.clock.sleep(wait, ctx.signal);
  } catch (error: unknown) {
    // Whatever the clock rejected with, an abort is reported as the caller's own reason.
    ctx.signal?.throwIfAborted();
    throw error;
  }
}

function jitter([min, max]: readonly [number, number]): number {
  return min + Math.random() * (max - min);
}

// ---- the mutex --------------------------------------------------------------------------------

async function acquireMutex(ctx: Context): Promise<() => Promise<void>> {
  const lockPath = path.join(ctx.dir, 'lock');
  for (;;) {
    ctx.signal?.throwIfAborted();
    const me = await newOwner(ctx.clock);
    if (await createExclusive(ctx.dir, lockPath, me)) return () => releaseMutex(lockPath, me.token);
    const current = await readRecord(lockPath);
    if (current.kind === 'missing') continue; // released between our link and our read: try again at once
    if (await isStale(current, ctx.clock.now(), ctx.lockStaleMs)) {
      if (await breakStaleLock(ctx, lockPath, current)) continue;
    }
    await pause(ctx, jitter(MUTEX_POLL_MS));
  }
}

async function releaseMutex(lockPath: string, token: string): Promise<void> {
  // Only remove our own lock: if it was ever judged stale and broken, the file is someone else's now.
  // Never throws: it runs in a finally, and an error here must not hide a slot we just took.
  const current = await readRecord(lockPath).catch(() => undefined);
  if (current?.kind === 'record' && current.owner.token === token) await removeQuietly(lockPath);
}

/**
 * Removes a stale lock without the classic race where two processes both judge it stale, one
 * removes it and takes a new lock, and the other then removes that new one. Removal needs the
 * claim `lock.break-<identity of the stale lock>` (exclusive create) and a re-read showing the same
 * lock; the claim is dropped only after the removal, so a late breaker re-reads and sees a new lock.
 */
async function breakStaleLock(ctx: Context, lockPath: string, stale: PresentRecord): Promise<boolean> {
  const claimPath = `${lockPath}.break-${identity(stale)}`;
  const me = await newOwner(ctx.clock);
  if (!(await createExclusive(ctx.dir, claimPath, me))) {
    // Another process is breaking it. If that process died meanwhile, its claim would block everyone.
    const claim = await readRecord(claimPath);
    if (claim.kind !== 'missing' && (await isStale(claim, ctx.clock.now(), BREAK_STALE_MS))) await removeQuietly(claimPath);
    return false;
  }
  try {
    const again = await readRecord(lockPath);
    if (again.kind === 'missing' || identity(again) !== identity(stale)) return false;
    await removeQuietly(lockPath);
    return true;
  } finally {
    await removeQuietly(claimPath);
  }
}

// ---- holders and state ------------------------------------------------------------------------

/** Live slot holders; removes the stale ones (dead pid on this machine, or too old) and leftover temp files. */
async function liveHolders(ctx: Context): Promise<SlotOwner[]> {
  const live: SlotOwner[] = [];
  const now = ctx.clock.now();
  for (const name of await readdir(ctx.dir)) {
    const file = path.join(ctx.dir, name);
    if (name.startsWith('slot-')) {
      const record = await readRecord(file);
      if (record.kind === 'missing') continue;
      if (await isStale(record, now, ctx.staleAfterMs)) await removeQuietly(file);
      else if (record.kind === 'record') live.push(record.owner);
      else live.push({ pid: 0, hostname: '?', createdAt: now, token: '?' });
    } else if (name.startsWith('tmp-') || name.startsWith('lock.break-')) {
      // Exist for microseconds unless their writer crashed; by mtime, as they need not hold an owner.
      const info = await stat(file).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs > LOCK_STALE_MS) await removeQuietly(file);
    }
  }
  return live;
}

async function createSlot(ctx: Context): Promise<string> {
  const owner = await newOwner(ctx.clock);
  const slotPath = path.join(ctx.dir, `slot-${owner.token}.json`);
  if (!(await createExclusive(ctx.dir, slotPath, owner))) throw new Error(`slot file ${slotPath} already exists`);
  return slotPath;
}

async function readLastStart(dir: string): Promise<number | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'lastStartAt' in parsed) {
      const { lastStartAt } = parsed as { lastStartAt: unknown };
      if (typeof lastStartAt === 'number' && Number.isFinite(lastStartAt)) return lastStartAt;
    }
    return undefined;
  } catch {
    return undefined; // missing or damaged: no gap to honour
  }
}

async function writeLastStart(ctx: Context, at: number): Promise<void> {
  const tmp = path.join(ctx.dir, `tmp-${newToken()}`);
  await writeFile(tmp, JSON.stringify({ lastStartAt: at, pid: process.pid }), { flag: 'wx', mode: 0o600 });
  try {
    await rename(tmp, path.join(ctx.dir, 'state.json')); // atomic replace: readers see old or new, never half
  } catch (error: unknown) {
    await removeQuietly(tmp);
    throw error;
  }
}

// ---- records and ownership --------------------------------------------------------------------

type PresentRecord =
  | { kind: 'record'; owner: SlotOwner }
  | { kind: 'corrupt'; raw: string; mtimeMs: number; ino: number };
type FileRecord = { kind: 'missing' } | PresentRecord;

async function readRecord(file: string): Promise<FileRecord> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error: unknown) {
    if (errnoCode(error) === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  try {
    // Stat and read through one handle, so both describe the same file even if it is replaced meanwhile.
    const info = await handle.stat();
    const raw = await handle.readFile('utf8');
    const owner = parseOwner(raw);
    return owner === undefined ? { kind: 'corrupt', raw, mtimeMs: info.mtimeMs, ino: info.ino } : { kind: 'record', owner };
  } finally {
    await handle.close();
  }
}

function parseOwner(raw: string): SlotOwner | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const { pid, hostname, createdAt, token, startTime, pidNamespace } = v;
  // pid must be a positive integer: kill(0 or negative, 0) would address whole process groups.
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (typeof hostname !== 'string' || typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  if (typeof token !== 'string' || !/^[A-Za-z0-9-]{1,80}$/.test(token)) return undefined; // used in file names
  const owner: SlotOwner = { pid, hostname, createdAt, token };
  if (typeof startTime === 'string') owner.startTime = startTime;
  if (typeof pidNamespace === 'string') owner.pidNamespace = pidNamespace;
  return owner;
}

function identity(record: PresentRecord): string {
  if (record.kind === 'record') return record.owner.token;
  return `c${createHash('sha256').update(`${record.ino}:${record.mtimeMs}:${record.raw}`).digest('hex').slice(0, 24)}`;
}

async function isStale(record: PresentRecord, now: number, maxAgeMs: number): Promise<boolean> {
  if (record.kind === 'corrupt') return Date.now() - record.mtimeMs > Math.min(CORRUPT_GRACE_MS, maxAgeMs);
  const { owner } = record;
  // abs(): an entry stamped far in the future (clock stepped back) must not live forever either.
  if (Math.abs(now - owner.createdAt) > maxAgeMs) return true;
  return !(await ownerAlive(owner));
}

/** True unless we can prove the owner is gone; processes on other machines or pid namespaces count as alive. */
async function ownerAlive(owner: SlotOwner): Promise<boolean> {
  const self = await selfIdentity();
  if (owner.hostname !== self.hostname) return true;
  if (owner.pidNamespace !== undefined && self.pidNamespace !== undefined && owner.pidNamespace !== self.pidNamespace) return true;
  if (owner.pid !== process.pid) {
    try {
      process.kill(owner.pid, 0);
    } catch (error: unknown) {
      // EPERM: the pid exists but belongs to another user, so it is alive.
      if (errnoCode(error) === 'ESRCH') return false;
    }
  }
  if (owner.startTime === undefined) return true;
  const current = owner.pid === process.pid ? self.startTime : await processStartTime(owner.pid);
  // A different start time means the pid was recycled by an unrelated process.
  return current === undefined || current === owner.startTime;
}

interface SelfIdentity {
  hostname: string;
  startTime: string | undefined;
  pidNamespace: string | undefined;
}

let selfIdentityPromise: Promise<SelfIdentity> | undefined;

function selfIdentity(): Promise<SelfIdentity> {
  selfIdentityPromise ??= (async () => ({
    hostname: os.hostname(),
    startTime: await processStartTime(process.pid),
    pidNamespace: process.platform === 'linux' ? await readlink('/proc/self/ns/pid').catch(() => undefined) : undefined,
  }))();
  return selfIdentityPromise;
}

async function processStartTime(pid: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function newOwner(clock: ThrottleClock): Promise<SlotOwner> {
  const self = await selfIdentity();
  const owner: SlotOwner = { pid: process.pid, hostname: self.hostname, createdAt: clock.now(), token: newToken() };
  if (self.startTime !== undefined) owner.startTime = self.startTime;
  if (self.pidNamespace !== undefined) owner.pidNamespace = self.pidNamespace;
  return owner;
}

function newToken(): string {
  return `${process.pid}-${randomBytes(8).toString('hex')}`;
}

/**
 * Creates `target` with its full content or not at all: write a private temp file, then link() it
 * to the final name, which fails with EEXIST if the name is taken (an O_EXCL create would expose an
 * empty file to readers for a moment). Falls back to an O_EXCL write where hard links are unsupported.
 */
async function createExclusive(dir: string, target: string, owner: SlotOwner): Promise<boolean> {
  const data = JSON.stringify(owner);
  const tmp = path.join(dir, `tmp-${owner.token}`);
  await writeFile(tmp, data, { flag: 'wx', mode: 0o600 });
  try {
    await link(tmp, target);
    return true;
  } catch (error: unknown) {
    const code = errnoCode(error);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
  } finally {
    await removeQuietly(tmp);
  }
  try {
    await writeFile(target, data, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error: unknown) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
}

async function removeQuietly(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch {
    // Already gone (released twice, or swept as stale) or not ours to fix now: stale detection covers leftovers.
  }
}

/** `<stateDir>/<hostDirName(hostKey)>`, created (0700) and vetted like the state dir itself. */
export async function hostStateDir(stateDir: string, hostKey: string): Promise<string> {
  const base = await ensureStateDir(stateDir);
  return ensureStateDir(path.join(base, hostDirName(hostKey)));
}
