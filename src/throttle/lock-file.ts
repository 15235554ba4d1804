// The short per-host mutex around "count holders, check the gap, take a slot", and whole-file creation.
import { link, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { identity, newOwner, readRecord, staleReason, type PresentRecord, type SlotOwner } from './owner.js';
import { errnoCode } from './state-dir.js';

/** The mutex is held for a few file operations; an owner this old is stuck (SIGSTOP, dead NFS peer). */
export const LOCK_STALE_MS = 8_000;
/** A breaker holds its claim for two file operations. */
const BREAK_STALE_MS = 5_000;
const MUTEX_POLL_MS: readonly [number, number] = [2, 15];

export interface MutexContext {
  readonly dir: string;
  readonly now: () => number;
  readonly signal: AbortSignal | undefined;
  readonly lockStaleMs: number;
  /** Sleeps between tries; rejects when the caller's deadline or signal ends the wait. */
  readonly pause: (ms: number) => Promise<void>;
}

/** Takes `<dir>/lock`; resolves with the function that releases it (which never rejects). */
export async function acquireMutex(ctx: MutexContext): Promise<() => Promise<void>> {
  const lockPath = path.join(ctx.dir, 'lock');
  for (;;) {
    ctx.signal?.throwIfAborted();
    const me = await newOwner(ctx.now());
    if (await createExclusive(ctx.dir, lockPath, me)) return () => releaseMutex(lockPath, me.token);
    const current = await readRecord(lockPath);
    if (current.kind === 'missing') continue; // released between our link and our read: try again at once
    if ((await staleReason(current, ctx.now(), ctx.lockStaleMs)) !== undefined) {
      if (await breakStaleLock(ctx, lockPath, current)) continue;
    }
    await ctx.pause(jitter(MUTEX_POLL_MS));
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
async function breakStaleLock(ctx: MutexContext, lockPath: string, stale: PresentRecord): Promise<boolean> {
  const claimPath = `${lockPath}.break-${identity(stale)}`;
  const me = await newOwner(ctx.now());
  if (!(await createExclusive(ctx.dir, claimPath, me))) {
    // Another process is breaking it. If that process died meanwhile, its claim would block everyone.
    const claim = await readRecord(claimPath);
    if (claim.kind !== 'missing' && (await staleReason(claim, ctx.now(), BREAK_STALE_MS)) !== undefined) await removeQuietly(claimPath);
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

/**
 * Creates `target` with its full content or not at all: write a private temp file, then link() it
 * to the final name, which fails with EEXIST if the name is taken (an O_EXCL create would expose an
 * empty file to readers for a moment). Falls back to an O_EXCL write where hard links are unsupported.
 */
export async function createExclusive(dir: string, target: string, owner: SlotOwner): Promise<boolean> {
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

export async function removeQuietly(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch {
    // Already gone (released twice, or swept as stale) or not ours to fix now: stale detection covers leftovers.
  }
}

export function jitter([min, max]: readonly [number, number]): number {
  return min + Math.random() * (max - min);
}
