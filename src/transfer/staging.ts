// Staged commit of a tree: every file is written and verified under a temporary name first (files an earlier
// attempt verified are found and kept), then all are renamed into place in one pipelined burst, so a run that fails
// before the burst leaves every final name as it was.
import { isFileMode, type RemoteFs, type RemoteStats } from '../ssh/remote-fs.js';
import type { LocalItem } from './local-tree.js';
import type { Job } from './upload-plan.js';
import { pool, type StagedFile, type TransferState } from './progress.js';

const STAGED_SUFFIX = '.staged';

/** A remote directory's entries by name; absent for a directory that could not be listed. */
export type Listing = ReadonlyMap<string, ReadonlyMap<string, RemoteStats>>;

function split(remote: string): { dir: string; base: string } {
  const slash = remote.lastIndexOf('/');
  return { dir: remote.slice(0, slash + 1), base: remote.slice(slash + 1) };
}

const stagedPrefix = (base: string): string => `.${base.slice(0, 180)}.safe-scp-`;

/**
 * The name a verified file waits under. It is derived from what rsync's quick check compares (the source's size
 * and mtime) and from what shapes the file on the server (mode, -p), so a later attempt or a rerun of the same
 * deploy finds what an earlier one verified and does not send it again; a changed source gets another name.
 */
export function stagedName(remote: string, item: LocalItem, preserve: boolean): string {
  // The values themselves, short (base 36, the mode in octal): a SHA-256 of them per file took ~15 ms of a 2000-file
  // tree's start, between the plan's answer and the first file's open.
  const token = `${item.size.toString(36)}-${Math.trunc(item.mtimeMs).toString(36)}-${item.mode.toString(8)}${preserve ? 'p' : ''}`;
  const { dir, base } = split(remote);
  return `${dir}${stagedPrefix(base)}${token}${STAGED_SUFFIX}`;
}

/** What the listing says of `remote`: its stats, undefined when absent, or 'unknown' when its directory was not listed. */
export function lookUp(listing: Listing, parent: string, remote: string): RemoteStats | undefined | 'unknown' {
  const dir = listing.get(parent);
  return dir === undefined ? 'unknown' : dir.get(split(remote).base);
}

/** Whether a complete staged copy of `item` is already on the server (an earlier attempt or run verified it). */
export function alreadyStaged(listing: Listing, parent: string, staged: string, item: LocalItem): boolean {
  const st = lookUp(listing, parent, staged);
  return st !== 'unknown' && st !== undefined && isFileMode(st.mode) && st.size === item.size;
}

/**
 * Temporary names of `remote` that a run which could not clean up left behind: staged copies of another version of
 * the source, and partly written files (`tempName`). They are removed before this upload writes its own.
 */
export function leftovers(listing: Listing, parent: string, remote: string, keep: string): string[] {
  const dir = listing.get(parent);
  if (!dir) return [];
  const { dir: prefix, base } = split(remote);
  const start = stagedPrefix(base);
  const keepName = split(keep).base;
  const left: string[] = [];
  for (const name of dir.keys()) {
    if (name === keepName || !name.startsWith(start)) continue;
    const token = name.slice(start.length);
    // Staged names as stagedName makes them, and as earlier builds did (16 hex digits of a SHA-256).
    if (/^([0-9a-z]+--?[0-9a-z]+-[0-7]+p?|[0-9a-f]{16})\.staged$/.test(token) || /^[0-9a-z]{1,8}\.part$/.test(token)) left.push(`${prefix}${name}`);
  }
  return left;
}

/**
 * Before any file is sent: gives every job its staged name, finds in the listing the files an earlier attempt or
 * run already verified under theirs (they are not sent again: `state.staged`) and removes temporary names a run
 * that could not clean up left beside them (`limit` removals at once).
 */
export async function findStaged(rfs: RemoteFs, jobs: readonly Job[], listing: Listing, limit: number, preserve: boolean, state: TransferState): Promise<void> {
  state.staged.clear();
  const stale: string[] = [];
  for (const j of jobs) {
    const staged = stagedName(j.remote, j.item, preserve);
    j.staged = staged;
    stale.push(...leftovers(listing, j.parent, j.remote, staged));
    if (alreadyStaged(listing, j.parent, staged, j.item)) {
      state.staged.set(j.remote, { staged, remote: j.remote, result: { source: j.item.path, target: j.remote, bytes: j.item.size, verified: true } });
    }
  }
  await pool(stale, limit, (p) => rfs.unlink(p).catch(() => undefined));
  if (state.staged.size > 0) state.emit({ kind: 'debug', message: `${state.staged.size} files already verified on the server by an earlier attempt; not sent again` });
}

/**
 * Renames every staged file into place, all requests in flight at once, dealt over the open channels (each server
 * handles its share back to back); resolves with how long the burst took: the window in which a reader can see old
 * and new files side by side.
 */
export async function commitStaged(channels: readonly RemoteFs[], staged: readonly StagedFile[], state: TransferState): Promise<number> {
  const started = Date.now();
  const shares = await Promise.allSettled(
    channels.map((rfs, c) =>
      pool(
        staged.filter((_, i) => i % channels.length === c),
        staged.length,
        async (file) => {
          await rfs.replace(file.staged, file.remote);
          state.staged.delete(file.remote);
          state.done.set(file.remote, file.result);
        },
      ),
    ),
  );
  for (const share of shares) if (share.status === 'rejected') throw share.reason;
  return Date.now() - started;
}

/** Removes the staged files of a run that gives up (best effort: a connection that is gone leaves them for the clean-up). */
export async function removeStaged(rfs: RemoteFs, state: TransferState): Promise<void> {
  await pool([...state.staged.values()], 64, async (file) => {
    await rfs.unlink(file.staged).then(
      () => state.staged.delete(file.remote),
      () => undefined,
    );
  });
}
