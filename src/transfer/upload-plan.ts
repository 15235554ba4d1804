// What an upload does before its files: where each source lands (scp's rules), the remote directories created
// in one burst, and one job per file with its final and temporary names.
import path from 'node:path/posix';
import { SafeScpError } from '../errors.js';
import { explainWriteFailure } from '../ssh/disk-space.js';
import { isDirMode, type RemoteFs, type RemoteStats } from '../ssh/remote-fs.js';
import type { LocalItem, LocalSource } from './local-tree.js';
import { pool, tempName } from './progress.js';

export const isDir = (st: RemoteStats | undefined): boolean => st !== undefined && isDirMode(st.mode);

export interface Job {
  readonly item: LocalItem;
  readonly remote: string;
  /** The remote directory the file lands in (normalized), and its temporary name there. */
  readonly parent: string;
  readonly temp: string;
  /** Staged commit: the name the verified file waits under until the burst. */
  staged?: string;
}

/** A job's paths, worked out once when the job list is made rather than in every file's hot path. */
function job(item: LocalItem, remote: string): Job {
  if (item.rel === '') {
    // A single file named by the target itself: the path as given.
    return { item, remote, parent: path.dirname(path.normalize(remote)), temp: path.join(path.dirname(remote), tempName(path.basename(remote))) };
  }
  // destination().path gave a normalized path: plain string work (path.join per file was ~20 µs each in the
  // baseline tiers, ~40 ms of a 2000-file tree before its first request).
  const slash = remote.lastIndexOf('/');
  const parent = slash < 0 ? '.' : slash === 0 ? '/' : remote.slice(0, slash);
  return { item, remote, parent, temp: remote.slice(0, slash + 1) + tempName(remote.slice(slash + 1)) };
}

/**
 * Where one source's items land: `path(rel)` is path.join(base, rel) for a `rel` from the local walk (names
 * joined by '/', never '.' or '..'), with `base` normalized once (`dir`) instead of the whole path again for
 * every file. An empty `rel` is `base` as given (the source is the target itself).
 */
function destination(base: string): { readonly dir: string; path(rel: string): string } {
  const normalized = path.normalize(base);
  const dir = normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
  return { dir, path: (rel) => (!rel ? base : dir === '.' ? rel : dir === '/' ? `/${rel}` : `${dir}/${rel}`) };
}

/** Where each source lands, following scp: into TARGET/<name> when TARGET is a directory. */
async function destinations(rfs: RemoteFs, sources: readonly LocalSource[], target: string): Promise<string[]> {
  const dest = target === '' ? '.' : target;
  // The target's parent is asked for at the same time: needed when the target does not exist, and a round trip less.
  const parentStat = rfs.statOrUndefined(path.dirname(dest));
  parentStat.catch(() => undefined);
  const st = await rfs.statOrUndefined(dest);
  if (isDir(st)) return sources.map((s) => path.join(dest, s.name));
  if (sources.length > 1) {
    throw new SafeScpError('remote-no-such-path', `remote target ${dest} is not a directory (copying ${sources.length} sources needs one)`, { phase: 'transfer', remotePath: dest });
  }
  if (st === undefined) {
    if (dest.endsWith('/')) throw new SafeScpError('remote-no-such-path', `remote directory ${dest} does not exist`, { phase: 'transfer', remotePath: dest });
    const parent = path.dirname(dest);
    if (!isDir(await parentStat)) {
      throw new SafeScpError('remote-no-such-path', `remote directory ${parent} does not exist`, { phase: 'transfer', remotePath: parent });
    }
  } else if ((sources[0] as LocalSource).type === 'dir') {
    throw new SafeScpError('remote-failure', `remote target ${dest} exists and is not a directory`, { phase: 'transfer', remotePath: dest });
  }
  return [dest];
}

/** Creates a remote directory; resolves true when this call created it (so it held nothing before). */
async function ensureDir(rfs: RemoteFs, remote: string, mode: number): Promise<boolean> {
  try {
    await rfs.mkdir(remote, mode);
    return true;
  } catch (err: unknown) {
    // mkdir fails with a generic FAILURE when the directory exists; only then is it fine.
    const st = await rfs.statOrUndefined(remote);
    if (!isDir(st)) throw await explainWriteFailure(rfs, err, path.dirname(remote), 0);
    return false;
  }
}

export interface UploadPlan {
  readonly jobs: Job[];
  /** Directories this attempt created: a file inside cannot exist yet, so nothing there is looked up. */
  readonly created: ReadonlySet<string>;
  /** Where each source lands. */
  readonly dests: readonly string[];
  /** With `list`: the entries of every directory that holds files and existed before (staging.ts's Listing). */
  readonly listing: ReadonlyMap<string, ReadonlyMap<string, RemoteStats>>;
}

/** Creates the directories (one burst, parents before children: makeDirs) and lists the file jobs not `done`. */
export async function planUpload(
  rfs: RemoteFs,
  sources: readonly LocalSource[],
  target: string,
  preserve: boolean,
  done: (remote: string) => boolean,
  /**
   * List the directories that existed (staged commit, --update): this many at once; 0 for no listing. Asked once
   * the target's stat is answered (the server's limits are in by then).
   */
  list: () => number = () => 0,
): Promise<UploadPlan> {
  const planned = destinations(rfs, sources, target);
  // Sent with the target's stat, on the guess that the target is a directory (it mostly is) and each source lands in
  // TARGET/<name>: a round trip sooner. A wrong guess makes nothing: every mkdir's parent is then missing or no
  // directory.
  const guess = sources.map((s) => path.join(target === '' ? '.' : target, s.name));
  const early = sources.map((s, i) => sendMkdirs(rfs, dirsOf(s, guess[i] as string), preserve));
  const dests = await planned;
  const listed = list();
  const created = new Set<string>();
  const listing = new Map<string, Map<string, RemoteStats>>();
  const jobs: Job[] = [];
  for (const [i, source] of sources.entries()) {
    const dest = destination(dests[i] as string);
    for (const item of source.items) {
      const remote = dest.path(item.rel);
      if (item.type === 'dir') continue;
      if (done(remote)) continue;
      jobs.push(job(item, remote));
    }
    const made = await makeDirs(rfs, dirsOf(source, dests[i] as string), preserve, listed, dests[i] === guess[i] ? early[i] : undefined);
    for (const key of made.created) created.add(key);
    for (const [dir, entries] of made.listing) listing.set(dir, entries);
  }
  // The directories that hold files and were neither created nor listed above (a target that already existed).
  if (listed > 0) {
    const more = await listDirs(rfs, [...new Set(jobs.filter((j) => !created.has(j.parent) && !listing.has(j.parent)).map((j) => j.parent))], listed);
    for (const [dir, entries] of more) listing.set(dir, entries);
  }
  return { jobs, created, dests, listing };
}

const dirMode = (d: LocalItem, preserve: boolean): number => (preserve ? d.mode & 0o7777 : 0o755);

/** The directories of `source` when it lands at `base`, parents before children. */
function dirsOf(source: LocalSource, base: string): DirToMake[] {
  const dest = destination(base);
  return source.items.filter((it) => it.type === 'dir').map((d) => ({ d, remote: dest.path(d.rel), key: d.rel === '' ? dest.dir : dest.path(d.rel) }));
}

/** One mkdir for each of `dirs`, all sent now; answers which succeeded. */
function sendMkdirs(rfs: RemoteFs, dirs: readonly DirToMake[], preserve: boolean): Promise<boolean[]> {
  return Promise.all(dirs.map((x) => rfs.mkdir(x.remote, dirMode(x.d, preserve)).then(() => true, () => false)));
}

interface DirToMake {
  readonly d: LocalItem;
  readonly remote: string;
  /** How `created` names it. */
  readonly key: string;
}

/**
 * Creates `dirs` (listed parents before children); answers the keys of those this call created and, when `list`
 * is set (limit: directories listed at once), the listing of those that already existed. Every mkdir goes out in
 * one burst: a server that handles a channel's requests in order (OpenSSH does) creates a parent before its
 * children, so a whole tree costs one round trip. Those that failed are looked at next (listed, which proves them
 * directories, or stat'ed): one that exists is fine; one still missing (a server that reordered the burst, or a
 * parent that could not be made) is retried level by level, which then explains a real failure.
 */
async function makeDirs(
  rfs: RemoteFs,
  dirs: readonly DirToMake[],
  preserve: boolean,
  list: number,
  /** The burst of mkdirs for `dirs`, when it was already sent. */
  sent?: Promise<boolean[]>,
): Promise<{ created: string[]; listing: Map<string, Map<string, RemoteStats>> }> {
  const made = await (sent ?? sendMkdirs(rfs, dirs, preserve));
  const created = dirs.filter((_, i) => made[i]).map((x) => x.key);
  const failed = dirs.filter((_, i) => !made[i]);
  const listing = list > 0 ? await listDirs(rfs, failed.map((x) => x.key), list) : new Map<string, Map<string, RemoteStats>>();
  const unlisted = failed.filter((x) => !listing.has(x.key));
  const stats = await Promise.all(unlisted.map((x) => rfs.statOrUndefined(x.remote).catch(() => undefined)));
  const blocked = unlisted.find((_, i) => stats[i] !== undefined && !isDir(stats[i]));
  if (blocked) throw new SafeScpError('remote-failure', `remote ${blocked.remote} exists and is not a directory; cannot copy the directory ${blocked.d.path} there`, { phase: 'transfer', remotePath: blocked.remote });
  const missing = unlisted.filter((_, i) => stats[i] === undefined);
  // Level by level, as a server that does not keep the order needs; each level's directories at once.
  const depths = new Map<number, DirToMake[]>();
  for (const x of missing) {
    const depth = x.d.rel === '' ? 0 : x.d.rel.split('/').length;
    const level = depths.get(depth);
    if (level) level.push(x);
    else depths.set(depth, [x]);
  }
  for (const depth of [...depths.keys()].sort((a, b) => a - b)) {
    await pool(depths.get(depth) ?? [], 1024, async (x) => {
      if (await ensureDir(rfs, x.remote, dirMode(x.d, preserve))) created.push(x.key);
    });
  }
  return { created, listing };
}

/** Lists `dirs` (`limit` at a time); a directory that cannot be listed is left out, and its files are stat'ed one by one. */
async function listDirs(rfs: RemoteFs, dirs: readonly string[], limit: number): Promise<Map<string, Map<string, RemoteStats>>> {
  const listing = new Map<string, Map<string, RemoteStats>>();
  await pool(dirs, limit, async (dir) => {
    const entries = await rfs.readdir(dir).catch(() => undefined);
    if (entries) listing.set(dir, new Map(entries.map((e) => [e.name, e.attrs])));
  });
  return listing;
}

/** -p: the directories' modes and times, deepest first (a file written inside would change a parent's mtime). */
export async function setDirectoryTimes(rfs: RemoteFs, sources: readonly LocalSource[], dests: readonly string[]): Promise<void> {
  for (const [i, source] of sources.entries()) {
    const dest = destination(dests[i] as string);
    for (const d of source.items.filter((it) => it.type === 'dir').reverse()) {
      await rfs.setstat(dest.path(d.rel), { mode: d.mode, atime: d.atimeMs / 1000, mtime: d.mtimeMs / 1000 });
    }
  }
}
