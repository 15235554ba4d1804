// Downloads remote sources into a local target, never writing outside it whatever names the server sends.
import { renameSync, rmSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import posix from 'node:path/posix';
import { classifyLocalError } from '../classify.js';
import { SafeScpError, usageError } from '../errors.js';
import type { Channels } from '../ssh/channels.js';
import { spread } from './spread.js';
import { isDirMode, isFileMode, type RemoteEntry, type RemoteFs, type RemoteStats } from '../ssh/remote-fs.js';
import { pool, tempName, type TransferState } from './progress.js';
import { spreads } from './ranges.js';
import { SMALL_FILE } from './prefetch.js';
import { lstatOrUndefined, writeBig, writeSmall } from './local-write.js';
import { readIntoMemory, readSpan, readSpread } from './read-pipeline.js';


export interface DownloadOptions {
  readonly recursive: boolean;
  readonly preserve: boolean;
  readonly chunkSize: number;
  readonly bytesInFlight: number;
  /** Files in flight at once (DOWNLOAD_FILES_IN_FLIGHT). */
  readonly filesInFlight: number;
  /** --update: skip a file whose local copy has the remote size and mtime; files written get the remote times. */
  readonly update: boolean;
  /** SFTP channels wanted (--channels): files and a big file's ranges are spread over them. */
  readonly channels: number;
}

/**
 * Files in flight when downloading: twice an upload's. A download's requests are small (open, two reads, close), so
 * they do not pile up in sftp-server's input the way small files' writes do; a 2000-file tree at 50 ms came down
 * in 0.94x the time with 512 as with 256, in 1.05x with 1024 as with 512 (8 alternating pairs each).
 */
export const DOWNLOAD_FILES_IN_FLIGHT = 512;

interface RemoteItem {
  readonly type: 'file' | 'dir';
  readonly remote: string;
  /** Local path segments below the destination root. */
  readonly segments: readonly string[];
  readonly attrs: RemoteStats;
}

/** A name from the server is used only when it is a single, ordinary path segment without control characters. */
export function safeSegment(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\u0000-\u001f\u007f-\u009f]/.test(name);
}

/** A name the server sent that would leave the target: the server misbehaves; never retried. */
function unsafeName(message: string, remotePath?: string): SafeScpError {
  return new SafeScpError('remote-unsafe-name', message, { phase: 'transfer', ...(remotePath === undefined ? {} : { remotePath }) });
}

async function walkRemote(rfs: RemoteFs, source: string, recursive: boolean, limit: number, state: TransferState): Promise<RemoteItem[]> {
  // With -r the source is listed beside its stat, a round trip sooner when it is a directory (as it mostly is).
  const top = recursive ? rfs.readdir(source) : undefined;
  top?.catch(() => undefined);
  const st = await rfs.stat(source);
  if (isFileMode(st.mode)) return [{ type: 'file', remote: source, segments: [], attrs: st }];
  if (!isDirMode(st.mode)) throw new SafeScpError('remote-failure', `remote ${source}: not a regular file or directory`, { phase: 'transfer', remotePath: source });
  if (!recursive) throw usageError(`remote ${source}: is a directory (use -r to copy directories)`);
  const items: RemoteItem[] = [{ type: 'dir', remote: source, segments: [], attrs: st }];
  // Level by level, every directory of a level listed at once (a round trip or two per level, not per directory).
  let level: RemoteItem[] = [items[0] as RemoteItem];
  while (level.length > 0) {
    const listed = new Map<RemoteItem, RemoteEntry[]>();
    await pool(level, rfs.filesInFlight(limit), async (dir) => {
      listed.set(dir, await (dir === items[0] && top ? top : rfs.readdir(dir.remote)));
    });
    const next: RemoteItem[] = [];
    for (const dir of level) {
      const entries = listed.get(dir) ?? [];
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const child of entries.map((entry) => childOf(dir, entry, state))) {
        if (child) items.push(child);
        if (child?.type === 'dir') next.push(child);
      }
    }
    level = next;
  }
  return items;
}

/** The item for one listed entry of `dir`: undefined for '.', '..' and what is neither file nor directory. */
function childOf(dir: RemoteItem, entry: RemoteEntry, state: TransferState): RemoteItem | undefined {
  if (entry.name === '.' || entry.name === '..') return undefined;
  if (!safeSegment(entry.name)) {
    throw unsafeName(`refusing unsafe file name from the server in ${dir.remote}: ${JSON.stringify(entry.name)}; nothing was written outside the target`, dir.remote);
  }
  const remote = posix.join(dir.remote, entry.name);
  const isDir = isDirMode(entry.attrs.mode);
  if (!isDir && !isFileMode(entry.attrs.mode)) {
    state.emit({ kind: 'debug', message: `skipping remote ${remote}: not a regular file or directory` });
    return undefined;
  }
  return { type: isDir ? 'dir' : 'file', remote, segments: [...dir.segments, entry.name], attrs: entry.attrs };
}

/** Creates a directory, refusing to go through an existing symlink (which could lead outside the target). */
async function ensureLocalDir(dir: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
  } catch (err: unknown) {
    const st = await fs.lstat(dir).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      throw new SafeScpError('local-io', `refusing to write through the symbolic link ${dir} (the server sends a directory of that name): remove the link or download elsewhere`, {
        phase: 'local',
        cause: err,
      });
    }
    if (!st?.isDirectory()) throw classifyLocalError(err, 'mkdir', dir);
  }
}

export async function download(channels: Channels, sources: readonly string[], target: string, options: DownloadOptions, state: TransferState): Promise<void> {
  const rfs = channels.first;
  for (const temp of [...state.temps]) {
    await fs.rm(temp, { force: true });
    state.temps.delete(temp);
  }
  const targetAbs = path.resolve(target);
  const targetStat = await fs.stat(targetAbs).catch(() => undefined);
  if (sources.length > 1 && !targetStat?.isDirectory()) {
    throw usageError(`local target ${target} is not a directory (copying ${sources.length} sources needs one)`);
  }
  for (const source of sources) {
    const items = await walkRemote(rfs, source === '' ? '.' : source, options.recursive, options.filesInFlight, state);
    const first = items[0] as RemoteItem;
    // The login directory's name comes from the server (realpath); any other name is the user's own operand.
    const fromServer = first.remote === '.';
    const name = posix.basename(fromServer ? await rfs.realpath('.') : first.remote);
    let root: string;
    if (targetStat?.isDirectory()) {
      if (!safeSegment(name)) {
        const text = `refusing unsafe remote name ${JSON.stringify(name)}`;
        throw fromServer ? unsafeName(`${text} (the server's real path of the login directory)`) : new SafeScpError('remote-failure', text, { phase: 'transfer' });
      }
      root = path.join(targetAbs, name);
    } else {
      root = targetAbs;
      const parent = await fs.stat(path.dirname(root)).catch(() => undefined);
      if (!parent?.isDirectory()) throw new SafeScpError('local-source-missing', `local directory ${path.dirname(target)} does not exist`, { phase: 'local' });
    }
    const localPath = (item: RemoteItem): string => {
      const p = path.join(root, ...item.segments);
      if (p !== root && !p.startsWith(root + path.sep)) throw unsafeName(`refusing to write outside ${root}`, item.remote);
      return p;
    };
    for (const dir of items.filter((i) => i.type === 'dir')) {
      await ensureLocalDir(localPath(dir), options.preserve ? dir.attrs.mode & 0o7777 : 0o755);
    }
    const listed = items.filter((i) => i.type === 'file' && !state.done.has(localPath(i)));
    const files = options.update ? skipUnchanged(listed, localPath, state) : listed;
    channels.wantFor(files.reduce((sum, f) => sum + f.attrs.size, 0), files.length, rfs.filesInFlight(options.filesInFlight));
    await spread(channels, files, (c) => c.filesInFlight(options.filesInFlight), (file, c, release) => downloadFile(channels, c, file, localPath(file), options, state, release));
    if (options.preserve) {
      for (const dir of items.filter((i) => i.type === 'dir').reverse()) {
        await fs.utimes(localPath(dir), dir.attrs.atime, dir.attrs.mtime);
      }
    }
  }
}

/** `release`: a small file's reads are out, so the next file's open may go with them (spread). */
async function downloadFile(channels: Channels, rfs: RemoteFs, item: RemoteItem, dest: string, options: DownloadOptions, state: TransferState, release: () => void): Promise<void> {
  const started = Date.now();
  const existing = lstatOrUndefined(dest);
  if (existing?.isDirectory()) throw new SafeScpError('local-io', `${dest} is a directory; cannot replace it with a file`, { phase: 'local' });
  const temp = path.join(path.dirname(dest), tempName(path.basename(dest)));
  // Only a regular file's mode is kept: a symlink being replaced reports lrwxrwxrwx, which would make the file world-writable.
  const mode = options.preserve ? item.attrs.mode & 0o7777 : existing?.isFile() ? existing.mode & 0o7777 : item.attrs.mode & 0o777 & ~process.umask();
  // -p sets mode and times; --update the times only, so that the next run's quick check can compare.
  const times = options.preserve || options.update ? { atime: item.attrs.atime, mtime: item.attrs.mtime } : undefined;
  const expected = item.attrs.size;
  const handle = await rfs.open(item.remote, 'r');
  state.temps.add(temp);
  try {
    // The size the listing gave is read (over every channel when it is big), then on to the end of the file: it
    // may have grown, and the size checked is what was read. A small file is read into memory and written at once.
    const small = expected <= SMALL_FILE ? readIntoMemory(rfs, handle, item.remote, expected, options, state) : undefined;
    if (small) release();
    const size = small
      ? writeSmall(temp, await small, mode, times)
      : await writeBig(temp, mode, times, async (local) => {
            const to = { remote: item.remote, local };
            return spreads(expected, options.channels)
              ? readSpread(channels, rfs, handle, to, expected, options, state).then((head) => (head < expected ? head : readSpan(rfs, handle, to, expected, expected, true, options, state)))
              : readSpan(rfs, handle, to, 0, expected, true, options, state);
          });
    if (statSync(temp).size !== size) throw new SafeScpError('verify-failed', `size check failed for ${dest}`, { phase: 'verify' });
    renameSync(temp, dest);
    state.temps.delete(temp);
    state.done.set(dest, { source: item.remote, target: dest, bytes: size, verified: true });
    state.emit({ kind: 'file-done', source: item.remote, target: dest, bytes: size, skipped: false, durationMs: Date.now() - started });
  } catch (err: unknown) {
    rmSync(temp, { force: true });
    state.temps.delete(temp);
    throw err;
  } finally {
    // Sent, not waited for: the server handles it before anything sent later on this channel.
    rfs.close(handle, item.remote).catch(() => undefined);
  }
}

/**
 * --update, rsync's quick check the other way: a remote file whose local copy is a regular file of the same size and
 * mtime (whole seconds, as SFTP carries them) is not fetched. Returns the files left to do.
 */
function skipUnchanged(files: readonly RemoteItem[], localPath: (item: RemoteItem) => string, state: TransferState): RemoteItem[] {
  const left: RemoteItem[] = [];
  let skipped = 0;
  for (const file of files) {
    const dest = localPath(file);
    const st = lstatOrUndefined(dest);
    if (st?.isFile() && st.size === file.attrs.size && Math.floor(st.mtimeMs / 1000) === file.attrs.mtime) {
      skipped++;
      state.skipped.set(dest, { source: file.remote, target: dest, bytes: st.size, verified: false, skipped: true });
      state.emit({ kind: 'file-done', source: file.remote, target: dest, bytes: st.size, skipped: true, durationMs: 0 });
    } else left.push(file);
  }
  if (skipped > 0) state.emit({ kind: 'debug', message: `--update: ${skipped} unchanged files skipped (same size and mtime here)` });
  return left;
}
