// Slot files (one per holder, kept alive by the holder's lease renewals) and the host's last start time.
import { readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createExclusive, LOCK_STALE_MS, removeQuietly } from './lock-file.js';
import { newOwner, newToken, readRecord, staleReason, type SlotOwner, type StaleReason } from './owner.js';
import { errnoCode } from './state-dir.js';

/** A holder seen while waiting, and what the waiter knows of it. */
export interface SlotHolder {
  readonly owner: SlotOwner;
  /** Clock time of its last lease renewal (its creation for slots without a lease). */
  readonly renewedAt: number;
}

/** A slot found no longer to count, and removed. */
export interface ReclaimedSlot {
  readonly owner: SlotOwner | undefined;
  readonly reason: StaleReason;
}

export interface HolderScan {
  live: SlotHolder[];
  reclaimed: ReclaimedSlot[];
}

/** Live slot holders; removes the stale ones (lease lost, dead pid on this machine, too old) and leftover temp files. */
export async function scanHolders(dir: string, now: number, staleAfterMs: number): Promise<HolderScan> {
  const scan: HolderScan = { live: [], reclaimed: [] };
  for (const name of await readdir(dir)) {
    const file = path.join(dir, name);
    if (name.startsWith('slot-')) {
      const record = await readRecord(file);
      if (record.kind === 'missing') continue;
      const reason = await staleReason(record, now, staleAfterMs);
      if (reason !== undefined) {
        await removeQuietly(file);
        scan.reclaimed.push({ owner: record.kind === 'record' ? record.owner : undefined, reason });
      } else if (record.kind === 'record') {
        scan.live.push({ owner: record.owner, renewedAt: record.owner.renewMs === undefined ? record.owner.createdAt : record.mtimeMs });
      } else {
        scan.live.push({ owner: { pid: 0, hostname: '?', createdAt: now, token: '?' }, renewedAt: now });
      }
    } else if (name.startsWith('tmp-') || name.startsWith('lock.break-')) {
      // Exist for microseconds unless their writer crashed; by mtime, as they need not hold an owner.
      const info = await stat(file).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs > LOCK_STALE_MS) await removeQuietly(file);
    }
  }
  return scan;
}

/** A slot file whose lease this process renews until release. */
export interface Lease {
  readonly path: string;
  /** True once a renewal found the file gone: someone judged the lease lost and freed the slot. */
  readonly lost: boolean;
  stop(): void;
}

/**
 * Creates our slot file with its mtime at `now` (the lease clock) and renews it every `renewMs` with an
 * unref'd timer, so the lease never keeps the process alive and stops with the process (or its SIGSTOP).
 */
export async function createLeasedSlot(dir: string, clock: { now(): number }, renewMs: number): Promise<Lease> {
  const owner: SlotOwner = { ...(await newOwner(clock.now())), renewMs };
  const slotPath = path.join(dir, `slot-${owner.token}.json`);
  if (!(await createExclusive(dir, slotPath, owner))) throw new Error(`slot file ${slotPath} already exists`);
  await stamp(slotPath, clock.now());
  let lost = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return; // a slow file system: never stack renewals
    busy = true;
    stamp(slotPath, clock.now())
      .catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') return; // a passing error: the next renewal tries again
        lost = true;
        clearInterval(timer);
      })
      .finally(() => (busy = false));
  }, renewMs);
  timer.unref();
  return {
    path: slotPath,
    get lost() {
      return lost;
    },
    stop: () => clearInterval(timer),
  };
}

/** Sets the file's mtime (the lease's renewal time); fails with ENOENT once the slot was taken away. */
async function stamp(file: string, at: number): Promise<void> {
  const seconds = at / 1000;
  await utimes(file, seconds, seconds);
}

export async function readLastStart(dir: string): Promise<number | undefined> {
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

export async function writeLastStart(dir: string, at: number): Promise<void> {
  const tmp = path.join(dir, `tmp-${newToken()}`);
  await writeFile(tmp, JSON.stringify({ lastStartAt: at, pid: process.pid }), { flag: 'wx', mode: 0o600 });
  try {
    await rename(tmp, path.join(dir, 'state.json')); // atomic replace: readers see old or new, never half
  } catch (error: unknown) {
    await removeQuietly(tmp);
    throw error;
  }
}
