// Uploads local sources: directories first, then files through a temp name, verified, renamed into place.
import fs from 'node:fs/promises';
import { classifyLocalError } from '../classify.js';
import { SafeScpError, isSafeScpError } from '../errors.js';
import { explainWriteFailure } from '../ssh/disk-space.js';
import { isFileMode, type RemoteFs, type RemoteStats } from '../ssh/remote-fs.js';
import type { LocalItem, LocalSource } from './local-tree.js';
import { SMALL_FILE, type Prefetch } from './prefetch.js';
import type { TransferState } from './progress.js';
import { BufferPool, readSmall, requestsInFlight, sendWrites, type Local } from './write-pipeline.js';
import { isDir, planUpload, setDirectoryTimes, type Job } from './upload-plan.js';
import type { Channels } from '../ssh/channels.js';
import { spread } from './spread.js';
import { spreads, writeSpread } from './ranges.js';
import { commitStaged, findStaged, lookUp, removeStaged, type Listing } from './staging.js';

export interface UploadOptions {
  readonly preserve: boolean;
  /** Bytes per SFTP write request (at most the server's limit: RemoteFs.maxLength). */
  readonly chunkSize: number;
  /** Bytes of write requests in flight per file or range (requestsInFlight). */
  readonly bytesInFlight: number;
  /** Files in flight at once. */
  readonly filesInFlight: number;
  /** Staged commit (staging.ts): every file verified under a temporary name first, then all renamed in one burst. */
  readonly staged: boolean;
  /** --update: skip a file whose remote size and mtime equal the local ones; sent files get the local mtime. */
  readonly update: boolean;
  /** --inplace: write over the existing file like scp (no temporary name, not atomic). */
  readonly inplace: boolean;
  /** SFTP channels wanted on the connection (--channels): files and a big file's ranges are spread over them. */
  readonly channels: number;
}

/**
 * Measured with `npm run bench` (README, Performance). Writes are as long as the server takes (RemoteFs.maxLength:
 * OpenSSH 254 KiB, others 31952 bytes), up to 2 MiB of them in flight per file and per channel (fewer on a short
 * round trip: largeWritesInFlight): OpenSSH's channel window, as much as a server with that window takes before it
 * answers, and what OpenSSH's own sftp keeps in flight (64 x 32 KiB). With this project's own SFTP client
 * (ssh/sftp/client.ts), 8 x 254 KiB moved 512 MiB on loopback in 0.89x the time of 16 x 128 KiB (medians of 10
 * alternating pairs, 15% less client CPU); at 50 ms the same time. A small file costs two round trips (open; then
 * write, attributes, size check and close together), so over a WAN link the files in flight per channel set the pace
 * of a tree: 256 per channel (capped at half the server's open-handle limit, RemoteFs.filesInFlight) is 2560 files a
 * second per channel at 50 ms. On loopback 64 and more cost the same client CPU. The reads in flight across all
 * files are bounded (BufferPool).
 */
export const UPLOAD_DEFAULTS: UploadOptions = { preserve: false, chunkSize: 256 * 1024, bytesInFlight: 2 * 1024 * 1024, filesInFlight: 256, staged: false, update: false, inplace: false, channels: 4 };

/**
 * Uploads every source over the connection's SFTP channels (files spread over them, a big file's ranges too); files
 * already in `state.done` are skipped (a retry does not resend them).
 */
export async function upload(
  channels: Channels,
  sources: readonly LocalSource[],
  target: string,
  options: UploadOptions,
  state: TransferState,
  prefetch?: Prefetch,
): Promise<void> {
  const rfs = channels.first;
  await removeTemps(rfs, state);
  // The plan's first requests go out now (on a new channel to OpenSSH, with INIT); the files in flight depend on the
  // server's limits, in by the time anything is answered. One listing per directory that existed before this
  // attempt (staged commit, --update), instead of a stat per file.
  const list = (): number => (options.staged || options.update ? rfs.filesInFlight(options.filesInFlight) : 0);
  const planning = planUpload(rfs, sources, target, options.preserve, (remote) => state.done.has(remote), list);
  planning.catch(() => undefined);
  await rfs.ready;
  const filesInFlight = rfs.filesInFlight(options.filesInFlight);
  // What the local side holds decides at once, unless --update may find most of it on the server already.
  const local = sources.flatMap((s) => s.items).filter((it) => it.type === 'file');
  if (!options.update) channels.wantFor(sum(local), local.length, filesInFlight);
  const { jobs, created, dests, listing } = await planning;
  const unchanged = options.update ? skipUnchanged(jobs, listing, state) : jobs;
  if (options.staged) await findStaged(rfs, unchanged, listing, filesInFlight, options.preserve, state);
  const chunk = Math.max(1024, Math.min(options.chunkSize, rfs.maxLength));
  const requests = requestsInFlight(options.bytesInFlight, chunk);
  const buffers = new BufferPool(chunk, 2 * requests * Math.max(1, options.channels));
  const toSend = unchanged.filter((j) => !state.staged.has(j.remote));
  channels.wantFor(sum(toSend.map((j) => j.item)), toSend.length, filesInFlight);
  const context: FileContext = { channels, options, state, buffers, requests, created, listing, prefetch };
  try {
    await spread(channels, toSend, (c) => c.filesInFlight(options.filesInFlight), (j, c, release) => uploadFile(c, j, context, release));
    if (options.staged) {
      const files = [...state.staged.values()];
      const durationMs = await commitStaged(channels.all, files, state);
      state.commit = { files: files.length, durationMs };
      state.emit({ kind: 'commit', files: files.length, durationMs });
    }
  } catch (err: unknown) {
    // A retry resumes from the staged files; a run that ends here (permanent failure, interrupt) removes them.
    if (options.staged && (state.signal?.aborted || !(isSafeScpError(err) && err.retryable))) await removeStaged(rfs, state);
    throw err;
  }
  if (options.preserve) await setDirectoryTimes(rfs, sources, dests);
}

const sum = (files: readonly LocalItem[]): number => files.reduce((total, f) => total + f.size, 0);

/**
 * --update, rsync's quick check: a file whose remote copy has the local size and mtime (whole seconds, as SFTP
 * carries them) is not sent. Returns the jobs left to do.
 */
function skipUnchanged(jobs: readonly Job[], listing: Listing, state: TransferState): Job[] {
  const left: Job[] = [];
  for (const j of jobs) {
    const st = lookUp(listing, j.parent, j.remote);
    if (st !== 'unknown' && st !== undefined && isFileMode(st.mode) && st.size === j.item.size && st.mtime === Math.floor(j.item.mtimeMs / 1000)) {
      state.skipped.set(j.remote, { source: j.item.path, target: j.remote, bytes: j.item.size, verified: false, skipped: true });
      state.emit({ kind: 'file-done', source: j.item.path, target: j.remote, bytes: j.item.size, skipped: true, durationMs: 0 });
    } else left.push(j);
  }
  if (state.skipped.size > 0) state.emit({ kind: 'debug', message: `--update: ${state.skipped.size} unchanged files skipped (same size and mtime on the server)` });
  return left;
}

/** A temporary file the target directory does not let this user create: say why it was needed, and offer --inplace. */
function explainTempRefused(err: unknown, options: UploadOptions, temp: string, dir: string): unknown {
  if (options.inplace || !isSafeScpError(err) || err.code !== 'remote-permission-denied' || err.remotePath !== temp) return err;
  return new SafeScpError(
    'remote-permission-denied',
    `cannot create the temporary file ${temp}: the directory ${dir} is not writable by this user. safe-scp writes each file under a temporary name and renames it into place, so that no reader sees a half-written file; to write over the existing files in place as scp does (not atomic), add --inplace (SAFE_SCP_INPLACE=true)`,
    { phase: 'transfer', remotePath: dir, cause: err, details: { directory: dir, hint: '--inplace' } },
  );
}

/** Removes temporary files an earlier attempt left behind. */
export async function removeTemps(rfs: RemoteFs, state: TransferState): Promise<void> {
  for (const temp of [...state.temps]) {
    await rfs.unlink(temp).catch(() => undefined);
    state.temps.delete(temp);
  }
}

/** What every file of one upload shares. */
interface FileContext {
  readonly channels: Channels;
  readonly options: UploadOptions;
  readonly state: TransferState;
  readonly buffers: BufferPool;
  /** WRITE requests of the pool's size in flight per file or range (options.bytesInFlight). */
  readonly requests: number;
  /** Directories this attempt created: nothing in them is looked up. */
  readonly created: ReadonlySet<string>;
  readonly listing: Listing;
  readonly prefetch: Prefetch | undefined;
}

/** `release`: the file only waits for its last answers now (spread lets the next one start). */
async function uploadFile(rfs: RemoteFs, job: Job, context: FileContext, release: () => void = () => undefined): Promise<void> {
  const { channels, options, state, buffers, requests, listing, prefetch } = context;
  const started = Date.now();
  const { item, remote } = job;
  // One WRITE lands whole or leaves a short file (sftp-server reports a short write as a failure), so a staged file
  // that takes one write is written straight under its staged name: a complete size there means complete content.
  const oneWrite = item.size <= SMALL_FILE && item.size <= buffers.size;
  const straightToStaged = job.staged !== undefined && oneWrite && !options.inplace;
  // --inplace writes the final name itself: no temporary name, no rename (and so not atomic).
  const temp = options.inplace ? remote : straightToStaged ? (job.staged as string) : job.temp;
  const listed = options.preserve || context.created.has(job.parent) ? undefined : lookUp(listing, job.parent, remote);
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
  if (!options.inplace && !straightToStaged) state.temps.add(temp);
  // A staged name of this source version may hold an earlier run's short write: truncated, not refused.
  const flags = options.inplace || straightToStaged ? 'w' : 'wx';
  const times = { atime: item.atimeMs / 1000, mtime: item.mtimeMs / 1000 };
  // -p sets mode and times; --update sets the times only, so that the next run's quick check can compare.
  const attrs = options.preserve ? { mode, ...times } : options.update ? times : undefined;
  let handle: Buffer | undefined;
  try {
    let st: RemoteStats;
    if (local.data && oneWrite) {
      // One write: open, then write + attributes + fstat + close in one go (RemoteFs.putSmall). A mode with group or
      // other write bits goes with the attributes (sftp-server's usual umask 022 would narrow it and cost a request
      // of its own after the size check); any other narrowing is set right after it.
      state.checkAborted();
      if (state.limiter.active) await state.limiter.take(item.size);
      const withMode = (mode & 0o022) !== 0 && !(options.inplace && existing) ? { mode, ...attrs } : attrs;
      st = await rfs.putSmall(temp, local.data, mode, withMode, flags, release);
      state.progress(item.size);
    } else {
      handle = await rfs.open(temp, flags, mode);
      // The last writes, the attributes (-p), the size check and the close go out back to back: a server
      // handles the requests on one file in order, so the cost after the open is one batch, then the rename.
      const open = handle;
      // Spread over several channels, the writes are all answered before the size check on this one (the other
      // channels' handles close beside it); on one channel the check follows the last write in the same batch.
      const written = spreads(item.size, options.channels)
        ? (await writeSpread(channels, rfs, open, temp, local, item.size, requests, state, buffers)).othersClosed
        : (await sendWrites(rfs, open, temp, local, 0, item.size, requests, state, buffers)).answered;
      const setAttrs = attrs ? rfs.fsetstat(open, attrs, temp) : undefined;
      const stat = rfs.fstat(open, temp);
      handle = undefined;
      const closed = rfs.close(open, temp);
      const [w, a, s, c] = await Promise.allSettled([written, setAttrs, stat, closed]);
      for (const r of [w, a, s, c]) if (r.status === 'rejected') throw r.reason;
      st = (s as PromiseFulfilledResult<RemoteStats>).value;
    }
    if (st.size !== item.size) {
      throw new SafeScpError('verify-failed', `size check failed for ${remote}: wrote ${item.size} bytes, server has ${st.size}`, { phase: 'verify', remotePath: remote });
    }
    // The server's umask may have narrowed the mode given at open; set it exactly (no request when it did not).
    if (!options.preserve && !(options.inplace && existing) && (typeof st.mode !== 'number' || (st.mode & 0o7777) !== mode)) await rfs.setstat(temp, { mode });
    if (!options.inplace && !straightToStaged) await rfs.replace(temp, job.staged ?? remote);
    state.temps.delete(temp);
  } catch (err: unknown) {
    if (handle) await rfs.close(handle, temp).catch(() => undefined);
    // Asked while the temporary file still holds the space it took: removing it frees that space.
    const failure = explainTempRefused(await explainWriteFailure(rfs, err, job.parent, item.size), options, temp, job.parent);
    if (!options.inplace) {
      await rfs.unlink(temp).then(
        () => state.temps.delete(temp),
        () => undefined,
      );
    }
    throw failure;
  } finally {
    if (local.file) await local.file.close();
  }
  const result = { source: item.path, target: remote, bytes: item.size, verified: true, ...(options.inplace ? { atomic: false } : {}) };
  if (job.staged) state.staged.set(remote, { staged: job.staged, remote, result });
  else state.done.set(remote, result);
  state.emit({ kind: 'file-done', source: item.path, target: remote, bytes: item.size, skipped: false, durationMs: Date.now() - started, ...(options.inplace ? { inPlace: true } : {}) });
}
