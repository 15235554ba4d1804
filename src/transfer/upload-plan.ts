// What an upload does before its files: where each source lands (scp's rules), the remote directories created
// level by level, and one job per file with its final and temporary names.
import path from 'node:path/posix';
import { SafeScpError } from '../errors.js';
import { explainWriteFailure } from '../ssh/disk-space.js';
import type { RemoteFs, RemoteStats } from '../ssh/remote-fs.js';
import type { LocalItem, LocalSource } from './local-tree.js';
import { pool, tempName } from './progress.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
export const isDir = (st: RemoteStats | undefined): boolean => st !== undefined && (st.mode & S_IFMT) === S_IFDIR;
export const isFile = (st: RemoteStats): boolean => (st.mode & S_IFMT) === S_IFREG;

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
  const st = await rfs.statOrUndefined(dest);
  if (isDir(st)) return sources.map((s) => path.join(dest, s.name));
  if (sources.length > 1) {
    throw new SafeScpError('remote-no-such-path', `remote target ${dest} is not a directory (copying ${sources.length} sources needs one)`, { phase: 'transfer', remotePath: dest });
  }
  if (st === undefined) {
    if (dest.endsWith('/')) throw new SafeScpError('remote-no-such-path', `remote directory ${dest} does not exist`, { phase: 'transfer', remotePath: dest });
    const parent = path.dirname(dest);
    if (!isDir(await rfs.statOrUndefined(parent))) {
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
}

/** Creates the directories (parents before children, siblings at one depth in parallel) and lists the file jobs not `done`. */
export async function planUpload(
  rfs: RemoteFs,
  sources: readonly LocalSource[],
  target: string,
  preserve: boolean,
  filesInFlight: number,
  done: (remote: string) => boolean,
): Promise<UploadPlan> {
  const dests = await destinations(rfs, sources, target);
  const created = new Set<string>();
  const jobs: Job[] = [];
  for (const [i, source] of sources.entries()) {
    const dest = destination(dests[i] as string);
    for (const item of source.items) {
      const remote = dest.path(item.rel);
      if (item.type === 'dir') continue;
      if (done(remote)) continue;
      jobs.push(job(item, remote));
    }
    // Parents before children; siblings at one depth in parallel.
    const dirs = source.items.filter((it) => it.type === 'dir');
    const depths = new Map<number, LocalItem[]>();
    for (const d of dirs) {
      const depth = d.rel === '' ? 0 : d.rel.split('/').length;
      const list = depths.get(depth);
      if (list) list.push(d);
      else depths.set(depth, [d]);
    }
    for (const depth of [...depths.keys()].sort((a, b) => a - b)) {
      // mkdir holds no handle: a level's directories all go out at once, a round trip per level.
      await pool(depths.get(depth) ?? [], Math.max(filesInFlight, 1024), async (d) => {
        const dir = dest.path(d.rel);
        if (await ensureDir(rfs, dir, preserve ? d.mode & 0o7777 : 0o755)) created.add(d.rel === '' ? dest.dir : dir);
      });
    }
  }
  return { jobs, created, dests };
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
