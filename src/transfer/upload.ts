// Uploads local sources: directories first, then files through a temp name, verified, renamed into place.
import fs from 'node:fs/promises';
import path from 'node:path/posix';
import { classifyLocalError } from '../classify.js';
import { SafeScpError, isSafeScpError } from '../errors.js';
import { explainWriteFailure } from '../ssh/disk-space.js';
import type { RemoteFs, RemoteStats } from '../ssh/remote-fs.js';
import type { LocalItem, LocalSource } from './local-tree.js';
import { SMALL_FILE, readSmallFile, type Prefetch } from './prefetch.js';
import { pool, tempName, type TransferState } from './progress.js';
import { alreadyStaged, commitStaged, listDirs, lookUp, removeStaged, leftovers, stagedName, type Listing } from './staging.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const isDir = (st: RemoteStats | undefined): boolean => st !== undefined && (st.mode & S_IFMT) === S_IFDIR;

export interface UploadOptions {
  readonly preserve: boolean;
  /** Bytes per SFTP write request. */
  readonly chunkSize: number;
  /** Write requests in flight per file. */
  readonly requestsInFlight: number;
  /** Files in flight at once. */
  readonly filesInFlight: number;
  /** Staged commit (staging.ts): every file verified under a temporary name first, then all renamed in one burst. */
  readonly staged: boolean;
}

/**
 * Measured with `npm run bench` (README, Performance). Writes are capped at the server's limit (OpenSSH: 261120
 * bytes), but 128 KiB writes move a 512 MiB file faster than writes at that limit: the server acts on a WRITE only
 * once all of it has come through sshd and the pipe to sftp-server, so smaller requests keep the three processes
 * busier at once (512 MiB on 2 vCPUs: 1.0-1.15 s at 96-192 KiB, 1.35-1.6 s at 224-255 KiB, for the same total
 * CPU). 16 x 128 KiB in flight is OpenSSH's 2 MiB channel window, as much as a server with that window takes
 * before it answers, and what OpenSSH's own sftp keeps in flight (64 x 32 KiB). 64 files in flight keep a tree of
 * small files moving: the more requests go out in one turn, the fewer packets and system calls carry them
 * (2000-file tree, client CPU: 16 files 0.45 s, 32 0.39 s, 64 0.29 s, 128 0.30 s), capped by the server's
 * open-handle limit (RemoteFs.filesInFlight). The reads in flight across all files are bounded (BufferPool).
 */
export const UPLOAD_DEFAULTS: UploadOptions = { preserve: false, chunkSize: 128 * 1024, requestsInFlight: 16, filesInFlight: 64, staged: false };

interface Job {
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

/** Uploads every source; files already in `state.done` are skipped (a retry does not resend them). */
export async function upload(
  rfs: RemoteFs,
  sources: readonly LocalSource[],
  target: string,
  options: UploadOptions,
  state: TransferState,
  prefetch?: Prefetch,
): Promise<void> {
  await removeTemps(rfs, state);
  const dests = await destinations(rfs, sources, target);
  // Directories this attempt created: a file inside cannot exist yet, so its remote stat is skipped.
  const created = new Set<string>();
  const filesInFlight = rfs.filesInFlight(options.filesInFlight);
  const jobs: Job[] = [];
  for (const [i, source] of sources.entries()) {
    const dest = destination(dests[i] as string);
    for (const item of source.items) {
      const remote = dest.path(item.rel);
      if (item.type === 'dir') continue;
      if (state.done.has(remote)) continue;
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
      await pool(depths.get(depth) ?? [], filesInFlight, async (d) => {
        const dir = dest.path(d.rel);
        if (await ensureDir(rfs, dir, options.preserve ? d.mode & 0o7777 : 0o755)) created.add(d.rel === '' ? dest.dir : dir);
      });
    }
  }
  const listing = options.staged ? await stage(rfs, jobs, created, filesInFlight, options, state) : new Map();
  const buffers = new BufferPool(Math.max(1024, Math.min(options.chunkSize, rfs.maxWriteLength)), 2 * Math.max(1, options.requestsInFlight));
  const toSend = jobs.filter((j) => !state.staged.has(j.remote));
  try {
    await pool(toSend, filesInFlight, (j) => uploadFile(rfs, j, options, state, buffers, created.has(j.parent), listing, prefetch));
    if (options.staged) {
      const files = [...state.staged.values()];
      const durationMs = await commitStaged(rfs, files, state);
      state.commit = { files: files.length, durationMs };
      state.emit({ kind: 'commit', files: files.length, durationMs });
    }
  } catch (err: unknown) {
    // A retry resumes from the staged files; a run that ends here (permanent failure, interrupt) removes them.
    if (options.staged && (state.signal?.aborted || !(isSafeScpError(err) && err.retryable))) await removeStaged(rfs, state);
    throw err;
  }
  if (options.preserve) {
    for (const [i, source] of sources.entries()) {
      const dest = destination(dests[i] as string);
      for (const d of source.items.filter((it) => it.type === 'dir').reverse()) {
        await rfs.setstat(dest.path(d.rel), { mode: d.mode, atime: d.atimeMs / 1000, mtime: d.mtimeMs / 1000 });
      }
    }
  }
}

/**
 * Staged commit, before any file is sent: lists the directories that existed before this attempt (one listing
 * each, instead of a stat per file), finds the files an earlier attempt or run already verified under their staged
 * names (they are not sent again) and removes temporary names a run that could not clean up left beside them.
 */
async function stage(rfs: RemoteFs, jobs: Job[], created: ReadonlySet<string>, limit: number, options: UploadOptions, state: TransferState): Promise<Listing> {
  const listing = await listDirs(rfs, [...new Set(jobs.filter((j) => !created.has(j.parent)).map((j) => j.parent))], limit);
  state.staged.clear();
  const stale: string[] = [];
  for (const j of jobs) {
    const staged = stagedName(j.remote, j.item, options.preserve);
    j.staged = staged;
    stale.push(...leftovers(listing, j.parent, j.remote, staged));
    if (alreadyStaged(listing, j.parent, staged, j.item)) {
      state.staged.set(j.remote, { staged, remote: j.remote, result: { source: j.item.path, target: j.remote, bytes: j.item.size, verified: true } });
    }
  }
  await pool(stale, limit, (p) => rfs.unlink(p).catch(() => undefined));
  if (state.staged.size > 0) state.emit({ kind: 'debug', message: `${state.staged.size} files already verified on the server by an earlier attempt; not sent again` });
  return listing;
}

/** Removes temporary files an earlier attempt left behind. */
export async function removeTemps(rfs: RemoteFs, state: TransferState): Promise<void> {
  for (const temp of [...state.temps]) {
    await rfs.unlink(temp).catch(() => undefined);
    state.temps.delete(temp);
  }
}

async function uploadFile(
  rfs: RemoteFs,
  job: Job,
  options: UploadOptions,
  state: TransferState,
  buffers: BufferPool,
  newParent: boolean,
  listing: Listing,
  prefetch: Prefetch | undefined,
): Promise<void> {
  const started = Date.now();
  const { item, remote, temp } = job;
  const listed = options.preserve || newParent ? undefined : lookUp(listing, job.parent, remote);
  const existing = listed === 'unknown' ? await rfs.statOrUndefined(remote) : listed;
  if (existing && isDir(existing)) {
    throw new SafeScpError('remote-failure', `remote ${remote} is a directory; cannot replace it with a file`, { phase: 'transfer', remotePath: remote });
  }
  // Never wider than the source; a replaced file keeps its mode, as scp does.
  const mode = options.preserve ? item.mode & 0o7777 : existing ? existing.mode & 0o7777 : item.mode & 0o777;

  const local: Local =
    item.size <= SMALL_FILE
      ? { data: prefetch?.get(item.path, item.size) ?? readSmall(item) }
      : {
          file: await fs.open(item.path, 'r').catch((err: unknown) => {
            throw classifyLocalError(err, 'open', item.path);
          }),
          path: item.path,
        };
  state.temps.add(temp);
  let handle: Buffer | undefined;
  try {
    let st: RemoteStats;
    if (local.data && item.size <= buffers.size) {
      // One write: open, then write + attributes + fstat + close in one go (RemoteFs.putSmall).
      state.checkAborted();
      if (state.limiter.active) await state.limiter.take(item.size);
      const attrs = options.preserve ? { mode, atime: item.atimeMs / 1000, mtime: item.mtimeMs / 1000 } : undefined;
      st = await rfs.putSmall(temp, local.data, mode, attrs);
      state.progress(item.size);
    } else {
      handle = await rfs.open(temp, 'wx', mode);
      // The last writes, the attributes (-p), the size check and the close go out back to back: a server
      // handles the requests on one file in order, so the cost after the open is one batch, then the rename.
      const open = handle;
      const written = await sendWrites(rfs, open, temp, local, item.size, options, state, buffers);
      const attrs = options.preserve ? rfs.fsetstat(open, { mode, atime: item.atimeMs / 1000, mtime: item.mtimeMs / 1000 }, temp) : undefined;
      const stat = rfs.fstat(open, temp);
      handle = undefined;
      const closed = rfs.close(open, temp);
      const [w, a, s, c] = await Promise.allSettled([written, attrs, stat, closed]);
      for (const r of [w, a, s, c]) if (r.status === 'rejected') throw r.reason;
      st = (s as PromiseFulfilledResult<RemoteStats>).value;
    }
    if (st.size !== item.size) {
      throw new SafeScpError('verify-failed', `size check failed for ${remote}: wrote ${item.size} bytes, server has ${st.size}`, { phase: 'verify', remotePath: remote });
    }
    // The server's umask may have narrowed the mode given at open; set it exactly (no request when it did not).
    if (!options.preserve && (typeof st.mode !== 'number' || (st.mode & 0o7777) !== mode)) await rfs.setstat(temp, { mode });
    await rfs.replace(temp, job.staged ?? remote);
    state.temps.delete(temp);
  } catch (err: unknown) {
    if (handle) await rfs.close(handle, temp).catch(() => undefined);
    // Asked while the temporary file still holds the space it took: removing it frees that space.
    const failure = await explainWriteFailure(rfs, err, job.parent, item.size);
    await rfs.unlink(temp).then(
      () => state.temps.delete(temp),
      () => undefined,
    );
    throw failure;
  } finally {
    if (local.file) await local.file.close();
  }
  const result = { source: item.path, target: remote, bytes: item.size, verified: true };
  if (job.staged) state.staged.set(remote, { staged: job.staged, remote, result });
  else state.done.set(remote, result);
  state.emit({ kind: 'file-done', source: item.path, target: remote, bytes: item.size, skipped: false, durationMs: Date.now() - started });
}

/**
 * The read buffers of one upload, shared by its files: a write holds a slot (and, unless it reads straight into
 * its own packets, a buffer) until the server answered it, so the bytes in flight (and the memory holding them)
 * stay bounded however many files are open at once.
 */
class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly size: number,
    private slots: number,
  ) {}

  /** A slot; waits while all are taken. Hand it back with release(). */
  async reserve(): Promise<void> {
    if (this.slots > 0) {
      this.slots--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.slots++;
  }

  /** A slot with a buffer to read into. Hand both back with give(). */
  async take(): Promise<Buffer> {
    await this.reserve();
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buffer: Buffer): void {
    this.free.push(buffer);
    this.release();
  }
}

/**
 * Pipelined writes: up to `requestsInFlight` WRITE requests outstanding per file (a plain stream crawls, see
 * faults-and-perf.md 3), each at most the server's write limit. Resolves once the last WRITE is sent, with a
 * promise of all of them answered (rejecting with the first failure).
 */
async function sendWrites(
  rfs: RemoteFs,
  handle: Buffer,
  temp: string,
  local: Local,
  size: number,
  options: UploadOptions,
  state: TransferState,
  buffers: BufferPool,
): Promise<Promise<void>> {
  const chunk = buffers.size;
  const depth = Math.max(1, options.requestsInFlight);
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let failure: unknown;
  const settled = (): void => {
    inFlight--;
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const drain = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  let unsent = 0;
  let allSent: (() => void) | undefined;
  let offset = 0;
  while (offset < size && failure === undefined) {
    state.checkAborted();
    const length = Math.min(chunk, size - offset);
    const position = offset;
    offset += length;
    let data: Buffer | undefined;
    let pooled: Buffer | undefined;
    if (local.file && rfs.writesFromFiles) {
      // Read straight into the request's packets (direct-write.ts); the pool only bounds what is in flight.
      await buffers.reserve();
    } else if (local.file) {
      pooled = await buffers.take();
      try {
        const { bytesRead } = await local.file.read(pooled, 0, length, position);
        if (bytesRead !== length) {
          throw new SafeScpError('local-io', `${temp}: source file changed size while it was read`, { phase: 'local' });
        }
      } catch (err: unknown) {
        buffers.give(pooled);
        throw err;
      }
      data = length === pooled.length ? pooled : pooled.subarray(0, length);
    } else {
      data = local.data.subarray(position, position + length);
    }
    if (state.limiter.active) await state.limiter.take(length);
    inFlight++;
    let request: Promise<void>;
    if (data === undefined) {
      // The file's bytes are still being read: the close must wait until this WRITE is on its way.
      unsent++;
      request = rfs.writeFromFile(handle, local.file as fs.FileHandle, local.path as string, position, length, temp, () => {
        unsent--;
        if (unsent === 0) allSent?.();
      });
    } else request = rfs.write(handle, data, position, temp);
    request.then(
      () => {
        if (data === undefined) buffers.release();
        else if (pooled) buffers.give(pooled);
        state.progress(length);
        settled();
      },
      (err: unknown) => {
        if (data === undefined) buffers.release();
        else if (pooled) buffers.give(pooled);
        failure ??= err;
        settled();
      },
    );
    if (inFlight >= depth) await drain();
  }
  if (unsent > 0) await new Promise<void>((resolve) => (allSent = resolve));
  return (async () => {
    while (inFlight > 0) await drain();
    if (failure !== undefined) throw failure;
  })();
}

function readSmall(item: LocalItem): Buffer {
  const data = Buffer.allocUnsafe(item.size);
  readSmallFile(item.path, data);
  return data;
}

/** A source file: read whole (small) or through a handle. */
type Local = { readonly data: Buffer; readonly file?: undefined; readonly path?: undefined } | { readonly file: fs.FileHandle; readonly path: string; readonly data?: undefined };

