// Promise wrapper over one SFTP channel (sftp/client.ts) that fails every pending call when the connection dies.
import { classifySftpError, type RemoteSpace } from '../classify.js';
import { listDirectory, type RemoteEntry } from './remote-dir.js';
import type { Sftp } from './sftp/client.js';
import { sftpLength, type FileEntry, type SetAttributes, type Stats } from './sftp/wire.js';
import { sendSmall } from './small-put.js';
import { largeWritesInFlight, smallWritesInFlight, WriteRoom } from './write-room.js';
import type { WriteBatch } from './write-batch.js';

export type RemoteStats = Stats;
export type { RemoteEntry, SetAttributes };
export { isDirMode, isFileMode, sftpLength } from './sftp/wire.js';

/**
 * An SFTP request pending when the connection drops may never be answered (faults-and-perf.md 2.1: with ssh2's own
 * client a pending fastPut hung forever), so every call races `lost`.
 */
export class RemoteFs {
  /** Requests sent and not yet answered (the stall watchdog looks only when some are). */
  pending = 0;
  /** When the server last answered a request. */
  lastActivity = Date.now();
  /**
   * The quickest answer so far, ms: no more than a round trip (Channels.roundTripSoFar). Requests sent before the
   * server's VERSION do not count: they also wait for sftp-server to start.
   */
  fastestMs = Infinity;
  /** Whether the server's VERSION is in (`settled` resolved), asked synchronously for every request's timing. */
  private started = false;
  /** Resolves once the server's VERSION is in, or the channel failed first (the requests then say why). */
  private readonly settled: Promise<void>;

  /** Rejecters of the requests not yet answered; all are called once when the connection is lost. */
  private readonly waiting = new Set<(err: unknown) => void>();
  private lostError: unknown;
  /** The round trip as far as known (Channels sets it): what the rooms for writes allow. */
  roundTripMs: () => number = () => 0;
  /** Small files' writes (putSmall) and the other writes (write), each with a budget of its own (write-room.ts). */
  private readonly room = new WriteRoom(() => smallWritesInFlight(this.roundTripMs()));
  private readonly largeRoom = new WriteRoom(() => largeWritesInFlight(this.roundTripMs()));

  constructor(
    private readonly sftp: Sftp,
    lost: Promise<never>,
    /** Batches this turn's packets into one socket write (write-batch.ts). */
    private readonly batch: WriteBatch = () => undefined,
    /** The longest READ or WRITE sent as one request (sftpLength). */
    readonly maxLength: number = sftpLength(undefined),
  ) {
    this.settled = sftp.ready.then(
      () => {
        this.started = true;
      },
      () => undefined,
    );
    // One subscription, not a Promise.race per request: a race against a promise that stays pending
    // leaves a reaction on it for every request, which piles up over thousands of writes.
    lost.catch((err: unknown) => {
      this.lostError = err;
      for (const reject of this.waiting) reject(err);
      this.waiting.clear();
    });
  }

  /**
   * Open handles the server allows (limits@openssh.com): Infinity when unlimited, undefined when it does not say
   * (or has not yet: see ready).
   */
  get maxOpenHandles(): number | undefined {
    return this.sftp.maxOpenHandles;
  }

  /** Resolves once the server's VERSION and limits are in (requests may be sent before: they queue behind INIT). */
  get ready(): Promise<void> {
    return this.sftp.ready;
  }

  private call<T>(op: string, path: string, start: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    if (this.lostError !== undefined) return Promise.reject(this.lostError);
    this.pending++;
    this.batch();
    const sent = Date.now();
    const timed = this.started;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        this.pending--;
        this.waiting.delete(onLost);
        return true;
      };
      const onLost = (err: unknown): void => {
        if (finish()) reject(err);
      };
      this.waiting.add(onLost);
      try {
        start((err, value) => {
          if (!finish()) return;
          this.lastActivity = Date.now();
          if (timed) this.fastestMs = Math.min(this.fastestMs, this.lastActivity - sent);
          if (err) reject(classifySftpError(err, op, path));
          else resolve(value as T);
        });
      } catch (err: unknown) {
        if (finish()) reject(classifySftpError(err, op, path));
      }
    });
  }

  stat(path: string): Promise<RemoteStats> {
    return this.call('stat', path, (cb) => this.sftp.stat(path, cb));
  }

  lstat(path: string): Promise<RemoteStats> {
    return this.call('lstat', path, (cb) => this.sftp.lstat(path, cb));
  }

  /**
   * How many files to keep open at once, at most `wanted`: half of what the server says it allows, and no more
   * than 32 (the old default, fine everywhere so far) when it does not say.
   */
  filesInFlight(wanted: number): number {
    const limit = this.maxOpenHandles === undefined ? 32 : this.maxOpenHandles === Infinity ? wanted : Math.floor(this.maxOpenHandles / 2);
    return Math.max(1, Math.min(wanted, limit));
  }

  /** stat that answers undefined for "no such file" instead of throwing. */
  async statOrUndefined(path: string): Promise<RemoteStats | undefined> {
    try {
      return await this.stat(path);
    } catch (err: unknown) {
      if (err instanceof Error && 'code' in err && err.code === 'remote-no-such-path') return undefined;
      throw err;
    }
  }

  realpath(path: string): Promise<string> {
    return this.call('realpath', path, (cb) => this.sftp.realpath(path, cb));
  }

  mkdir(path: string, mode?: number): Promise<void> {
    return this.call('mkdir', path, (cb) => this.sftp.mkdir(path, mode === undefined ? {} : { mode }, (err) => cb(err)));
  }

  open(path: string, flags: 'r' | 'r+' | 'wx' | 'w', mode?: number): Promise<Buffer> {
    return this.call('open', path, (cb) => this.sftp.open(path, flags, mode === undefined ? {} : { mode }, cb));
  }

  /**
   * Waits until the channel's writes, whichever file they are of, leave room for `bytes` more (largeWritesInFlight);
   * resolves with the function that gives the room back once the write is answered.
   */
  writeRoom(bytes: number): Promise<() => void> {
    return new Promise((resolve) => this.largeRoom.take(bytes, resolve));
  }

  write(handle: Buffer, data: Buffer, position: number, path: string): Promise<void> {
    return this.call('write', path, (cb) => this.sftp.write(handle, data, 0, data.length, position, (err) => cb(err)));
  }

  /**
   * A whole small file: opens `path` exclusively, then sends its one WRITE (once there is room: WriteRoom), the
   * attributes (when given), an FSTAT and the CLOSE back to back (small-put.ts). Resolves with the FSTAT, taken after
   * the write and before the close; rejects with the first failure in that order, the handle closed either way once
   * the open succeeded; `onOpened` is called once the open is answered.
   */
  putSmall(path: string, data: Buffer, mode: number, attrs: SetAttributes | undefined, flags: 'wx' | 'w' = 'wx', onOpened?: () => void): Promise<RemoteStats> {
    const answered = (): void => {
      this.lastActivity = Date.now();
    };
    return this.call<RemoteStats>('open', path, (done) =>
      this.sftp.open(path, flags, { mode }, (err, handle) => {
        if (err) return done(err);
        if (!handle) return done(new Error('OPEN answered without a handle'));
        answered();
        onOpened?.();
        sendSmall(this.sftp, handle, { path, data, attrs }, { room: this.room, batch: this.batch, answered }, done);
      }),
    );
  }

  /** Reads up to `length` bytes; resolves 0 at end of file. */
  read(handle: Buffer, buffer: Buffer, length: number, position: number, path: string): Promise<number> {
    return this.call<number>('read', path, (cb) =>
      this.sftp.read(handle, buffer, 0, length, position, (err, bytesRead) => {
        // EOF comes as an error with code 1 (SSH_FX_EOF).
        if (err && (err as Error & { code?: unknown }).code === 1) cb(null, 0);
        else cb(err, bytesRead);
      }),
    );
  }

  fstat(handle: Buffer, path: string): Promise<RemoteStats> {
    return this.call('fstat', path, (cb) => this.sftp.fstat(handle, cb));
  }

  fsetstat(handle: Buffer, attrs: SetAttributes, path: string): Promise<void> {
    return this.call('setstat', path, (cb) => this.sftp.fsetstat(handle, attrs, (err) => cb(err)));
  }

  setstat(path: string, attrs: SetAttributes): Promise<void> {
    return this.call('setstat', path, (cb) => this.sftp.setstat(path, attrs, (err) => cb(err)));
  }

  close(handle: Buffer, path: string): Promise<void> {
    return this.call('close', path, (cb) => this.sftp.close(handle, (err) => cb(err)));
  }

  unlink(path: string): Promise<void> {
    return this.call('remove', path, (cb) => this.sftp.remove(path, (err) => cb(err)));
  }

  /** A directory's entries ('.' and '..' left out): remote-dir.ts. */
  readdir(path: string): Promise<RemoteEntry[]> {
    return listDirectory(path, {
      open: () => this.call<Buffer>('readdir', path, (cb) => this.sftp.opendir(path, cb)),
      read: (handle) => this.readdirOnce(handle, path),
      close: (handle) => this.close(handle, path),
    });
  }

  /** One READDIR on an open directory: its names, or false at the end. */
  private readdirOnce(handle: Buffer, path: string): Promise<FileEntry[] | false> {
    return this.call<FileEntry[] | false>('readdir', path, (cb) =>
      this.sftp.readdir(handle, (err, list) => {
        // The end comes as an error with code 1 (SSH_FX_EOF).
        if (err && (err as Error & { code?: unknown }).code === 1) cb(null, false);
        else cb(err, list);
      }),
    );
  }

  /** Free space on the filesystem holding `path` (statvfs@openssh.com); rejects when the server does not offer it. */
  async statvfs(path: string): Promise<RemoteSpace> {
    await this.settled;
    const info = await this.call<Record<string, number>>('statvfs', path, (cb) => {
      if (!this.sftp.offers('statvfs@openssh.com')) throw new Error('the server does not offer statvfs@openssh.com');
      this.sftp.statvfs(path, cb);
    });
    const n = (v: number | undefined): number => v ?? NaN;
    const space = { freeBytes: n(info['f_bavail']) * (n(info['f_frsize']) || n(info['f_bsize'])), freeFiles: n(info['f_favail']) };
    if (!Number.isFinite(space.freeBytes) || !Number.isFinite(space.freeFiles)) throw new Error(`statvfs ${path}: incomplete answer`);
    return space;
  }

  /** Renames over an existing target: atomically where the server offers posix-rename@openssh.com. */
  async replace(from: string, to: string): Promise<void> {
    await this.settled;
    if (this.sftp.offers('posix-rename@openssh.com')) return this.call('rename', to, (cb) => this.sftp.posixRename(from, to, (err) => cb(err)));
    return this.replaceWithoutPosixRename(from, to);
  }

  private async replaceWithoutPosixRename(from: string, to: string): Promise<void> {
    // Plain SFTPv3 rename refuses an existing target: remove it first (not atomic, but never truncated).
    try {
      await this.call('rename', to, (cb) => this.sftp.rename(from, to, (err) => cb(err)));
    } catch {
      await this.unlink(to).catch(() => undefined);
      await this.call('rename', to, (cb) => this.sftp.rename(from, to, (err) => cb(err)));
    }
  }
}
