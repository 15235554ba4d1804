// Who holds a slot or lock file, and whether that holder still counts: its lease, its pid, its process start time.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, readlink } from 'node:fs/promises';
import os from 'node:os';
import { errnoCode } from './state-dir.js';

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
  /**
   * Slots only: the holder renews its lease (the file's mtime) at least this often; a lease not renewed for
   * LEASE_RENEWALS_LOST times this is lost. Slots without it (older safe-scp) only expire by age.
   */
  renewMs?: number;
}

/** A holder that missed this many renewals in a row is stopped or stuck (SIGSTOP, a frozen VM): its slot is free. */
export const LEASE_RENEWALS_LOST = 3;
/** A file we cannot parse was written by a crashed or non-link writer; give a slow writer this long. */
const CORRUPT_GRACE_MS = 2_000;

export type PresentRecord =
  | { kind: 'record'; owner: SlotOwner; mtimeMs: number }
  | { kind: 'corrupt'; raw: string; mtimeMs: number; ino: number };
export type FileRecord = { kind: 'missing' } | PresentRecord;

export async function readRecord(file: string): Promise<FileRecord> {
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
    return owner === undefined ? { kind: 'corrupt', raw, mtimeMs: info.mtimeMs, ino: info.ino } : { kind: 'record', owner, mtimeMs: info.mtimeMs };
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
  const { pid, hostname, createdAt, token, startTime, pidNamespace, renewMs } = v;
  // pid must be a positive integer: kill(0 or negative, 0) would address whole process groups.
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (typeof hostname !== 'string' || typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  if (typeof token !== 'string' || !/^[A-Za-z0-9-]{1,80}$/.test(token)) return undefined; // used in file names
  const owner: SlotOwner = { pid, hostname, createdAt, token };
  if (typeof startTime === 'string') owner.startTime = startTime;
  if (typeof pidNamespace === 'string') owner.pidNamespace = pidNamespace;
  if (typeof renewMs === 'number' && Number.isFinite(renewMs) && renewMs > 0) owner.renewMs = renewMs;
  return owner;
}

export function identity(record: PresentRecord): string {
  if (record.kind === 'record') return record.owner.token;
  return `c${createHash('sha256').update(`${record.ino}:${record.mtimeMs}:${record.raw}`).digest('hex').slice(0, 24)}`;
}

/** Why a record no longer counts, or undefined while it does. */
export type StaleReason = 'corrupt' | 'lease-expired' | 'too-old' | 'owner-gone';

/**
 * A leased slot counts while its holder renews it (mtime within LEASE_RENEWALS_LOST renewals of now) and
 * its owner lives; any other record counts until `maxAgeMs` after its creation, while its owner lives.
 */
export async function staleReason(record: PresentRecord, now: number, maxAgeMs: number): Promise<StaleReason | undefined> {
  if (record.kind === 'corrupt') return Date.now() - record.mtimeMs > Math.min(CORRUPT_GRACE_MS, maxAgeMs) ? 'corrupt' : undefined;
  const { owner } = record;
  // abs(): an entry stamped far in the future (clock stepped back) must not live forever either.
  if (owner.renewMs !== undefined) {
    if (Math.abs(now - record.mtimeMs) > LEASE_RENEWALS_LOST * owner.renewMs) return 'lease-expired';
  } else if (Math.abs(now - owner.createdAt) > maxAgeMs) {
    return 'too-old';
  }
  return (await ownerAlive(owner)) ? undefined : 'owner-gone';
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

export async function newOwner(now: number): Promise<SlotOwner> {
  const self = await selfIdentity();
  const owner: SlotOwner = { pid: process.pid, hostname: self.hostname, createdAt: now, token: newToken() };
  if (self.startTime !== undefined) owner.startTime = self.startTime;
  if (self.pidNamespace !== undefined) owner.pidNamespace = self.pidNamespace;
  return owner;
}

export function newToken(): string {
  return `${process.pid}-${randomBytes(8).toString('hex')}`;
}
