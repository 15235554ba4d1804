// An SFTP client over a channel from ssh2's public client.subsys('sftp'). What it does that ssh2's own SFTP client
// does not: the small requests of one turn of the event loop go out together, a few SSH packets instead of one
// each (a 2000-file tree is ~10,000 requests; every packet costs the client, sshd and the pipe to sftp-server a
// round of work), and on OpenSSH the limits@openssh.com request, and the caller's first requests, go out with INIT
// instead of a round trip later (OpenSSH's sftp-server handles a channel's requests in order, INIT first).
import type { Client, ClientChannel } from 'ssh2';
import { attrs, data, handle, names, status, statvfsFields, type Answer, type Done, type Got } from './answers.js';
import { ByteQueue, FXP, type FileEntry, type OpenFlags, OPEN_FLAGS, ProtocolError, Reader, Requests, type SetAttributes, type Stats } from './wire.js';


/** Requests shorter than this wait for the end of the turn to go out with the others; longer ones go at once. */
const COALESCE = 32 * 1024;
/** An SSH packet's worth of channel data (OpenSSH's and ssh2's maximum packet size): a long WRITE's first piece. */
const PACKET = 32 * 1024;
/** The longest answer accepted: a READ's 256 KiB (OpenSSH's limit) and its header, with room to spare. */
const MAX_PACKET = 1024 * 1024;

export class SftpClient {
  /** Open handles the server allows (limits@openssh.com): Infinity when unlimited, undefined when it does not say. */
  maxOpenHandles: number | undefined;
  private readonly extensions = new Map<string, string>();
  /** The requests waiting for their answer: how to read it, and what to call if none comes. */
  private readonly answers = new Map<number, { answer: Answer; onError: (err: Error) => void }>();
  private readonly incoming = new ByteQueue();
  /** The requests of this turn, written together by flush(). */
  private readonly out = new Requests();
  private flushing = false;
  private nextId = 0;
  private failure: Error | undefined;
  /** Until the server's VERSION came (or the channel failed first). */
  private starting: { resolve: () => void; reject: (err: Error) => void } | undefined;
  /**
   * Resolves once the server's VERSION (its extensions: offers()) and the limits (maxOpenHandles) are in; rejects
   * when the channel fails first. Requests sent before queue behind INIT.
   */
  readonly ready: Promise<void>;

  private constructor(
    private readonly channel: ClientChannel,
    pipelineLimits: boolean,
  ) {
    this.ready = this.start(pipelineLimits);
    this.ready.catch(() => undefined);
    channel.on('data', (chunk: Buffer) => this.receive(chunk));
    channel.stderr.resume();
    const gone = (): void => this.fail(new Error('No response from server'));
    channel.on('close', gone);
    channel.on('end', gone);
    channel.on('error', (err: Error) => this.fail(err));
  }

  /**
   * Starts SFTP on a new channel of `client`. `openSSH`: the server is OpenSSH, which handles a channel's requests
   * in order after INIT, so limits@openssh.com goes with INIT (elsewhere it waits for VERSION to announce it), and
   * with `early` the client is handed over at once, before `ready`, for the caller's first requests to go with INIT
   * too. Otherwise it is handed over once ready.
   */
  static open(client: Client, openSSH: boolean, early = false): Promise<SftpClient> {
    return new Promise((resolve, reject) => {
      client.subsys('sftp', (err, channel) => {
        if (err) return reject(err);
        const sftp = new SftpClient(channel, openSSH);
        if (openSSH && early) resolve(sftp);
        else sftp.ready.then(() => resolve(sftp), reject);
      });
    });
  }

  private async start(pipelineLimits: boolean): Promise<void> {
    const version = new Promise<void>((resolve, reject) => {
      this.starting = { resolve, reject };
    });
    // Written before the constructor listens on the channel: nothing can have come back yet.
    this.channel.write(Buffer.from([0, 0, 0, 5, FXP.INIT, 0, 0, 0, 3]));
    const limits = pipelineLimits ? this.limits() : undefined;
    await version;
    await (limits ?? (this.extensions.has('limits@openssh.com') ? this.limits() : undefined));
  }

  /** Asks for limits@openssh.com; an answer other than the limits (OP_UNSUPPORTED) leaves them unknown. */
  private limits(): Promise<void> {
    return new Promise((resolve) => {
      this.request(this.begin(FXP.EXTENDED).string('limits@openssh.com'), (type, r) => {
        if (type === FXP.EXTENDED_REPLY) {
          r.uint64();
          r.uint64();
          r.uint64();
          const handles = r.uint64();
          this.maxOpenHandles = handles > 0 ? handles : Infinity;
        }
        resolve();
      }, () => resolve());
    });
  }

  open(path: string, flags: OpenFlags, attrs: SetAttributes, cb: Got<Buffer>): void {
    this.request(this.begin(FXP.OPEN).string(path).uint32(OPEN_FLAGS[flags]).attrs(attrs), handle(cb), cb);
  }

  opendir(path: string, cb: Got<Buffer>): void {
    this.request(this.begin(FXP.OPENDIR).string(path), handle(cb), cb);
  }

  close(h: Buffer, cb: Done): void {
    this.request(this.begin(FXP.CLOSE).string(h), status(cb), cb);
  }

  /** Calls back with the bytes read into `buf` at `off`; EOF is an error with code 1, as in ssh2. */
  read(h: Buffer, buf: Buffer, off: number, len: number, position: number, cb: Got<number>): void {
    this.request(this.begin(FXP.READ).string(h).uint64(position).uint32(len), data(buf, off, len, cb), cb);
  }

  /**
   * A WRITE of `len` bytes of `buf`. A long one is sent as its header with the first SSH packet's worth of data,
   * then the rest of the data as it is, not copied (ssh2 cuts it into packets all the same): `buf` must stay as it
   * is until the WRITE is answered (or the channel failed).
   */
  write(h: Buffer, buf: Buffer, off: number, len: number, position: number, cb: Done): void {
    const req = this.begin(FXP.WRITE).string(h).uint64(position).uint32(len);
    const head = Math.min(len, Math.max(0, PACKET - req.size));
    this.request(req.raw(buf.subarray(off, off + head)), status(cb), cb, head < len ? buf.subarray(off + head, off + len) : undefined);
  }

  stat(path: string, cb: Got<Stats>): void {
    this.request(this.begin(FXP.STAT).string(path), attrs(cb), cb);
  }

  lstat(path: string, cb: Got<Stats>): void {
    this.request(this.begin(FXP.LSTAT).string(path), attrs(cb), cb);
  }

  fstat(h: Buffer, cb: Got<Stats>): void {
    this.request(this.begin(FXP.FSTAT).string(h), attrs(cb), cb);
  }

  setstat(path: string, a: SetAttributes, cb: Done): void {
    this.request(this.begin(FXP.SETSTAT).string(path).attrs(a), status(cb), cb);
  }

  fsetstat(h: Buffer, a: SetAttributes, cb: Done): void {
    this.request(this.begin(FXP.FSETSTAT).string(h).attrs(a), status(cb), cb);
  }

  mkdir(path: string, a: SetAttributes, cb: Done): void {
    this.request(this.begin(FXP.MKDIR).string(path).attrs(a), status(cb), cb);
  }

  remove(path: string, cb: Done): void {
    this.request(this.begin(FXP.REMOVE).string(path), status(cb), cb);
  }

  rename(from: string, to: string, cb: Done): void {
    this.request(this.begin(FXP.RENAME).string(from).string(to), status(cb), cb);
  }

  /** Whether the server announced an extension (posix-rename@openssh.com, statvfs@openssh.com). */
  offers(extension: string): boolean {
    return this.extensions.has(extension);
  }

  /** rename(2), replacing the target (posix-rename@openssh.com: check offers() first). */
  posixRename(from: string, to: string, cb: Done): void {
    this.request(this.begin(FXP.EXTENDED).string('posix-rename@openssh.com').string(from).string(to), status(cb), cb);
  }

  /** statvfs(2) of the filesystem holding `path` (statvfs@openssh.com: check offers() first). */
  statvfs(path: string, cb: Got<Record<string, number>>): void {
    this.request(this.begin(FXP.EXTENDED).string('statvfs@openssh.com').string(path), statvfsFields(cb), cb);
  }

  /** The next names of an open directory; the end is an error with code 1, as in ssh2. */
  readdir(h: Buffer, cb: Got<FileEntry[]>): void {
    this.request(this.begin(FXP.READDIR).string(h), names(cb), cb);
  }

  /** The canonical absolute form of `path`. */
  realpath(path: string, cb: Got<string>): void {
    const named: Got<FileEntry[]> = (err, list) => {
      if (err) return cb(err);
      if (!list?.[0]) throw new ProtocolError('REALPATH answered with no name');
      cb(null, list[0].filename);
    };
    this.request(this.begin(FXP.REALPATH).string(path), names(named), cb);
  }

  /** Starts the next request in `out`, under the next id. */
  private begin(type: number): Requests {
    this.nextId = (this.nextId + 1) >>> 0;
    return this.out.begin(type, this.nextId);
  }

  /**
   * Sends the request just written (and `trailing`, the rest of its bytes, uncopied) and keeps its answer's reader;
   * once the channel has failed, calls `onError` instead. Requests wait for the end of the turn to go out together,
   * unless they are long.
   */
  private request(_written: Requests, answer: Answer, onError: (err: Error) => void, trailing?: Buffer): void {
    const failure = this.failure;
    if (failure) {
      queueMicrotask(() => onError(failure));
      return;
    }
    this.out.end(trailing?.length ?? 0);
    this.answers.set(this.nextId, { answer, onError });
    if (trailing || this.out.length >= COALESCE) {
      this.flush();
      if (trailing) this.channel.write(trailing);
    } else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the requests gathered so far in one piece. */
  private flush(): void {
    this.flushing = false;
    if (this.out.length === 0 || this.failure) return;
    const written = this.out.take();
    // Called once ssh2 copied the bytes into its packets (or when the channel is gone: then the buffer is dropped).
    this.channel.write(written, (err) => {
      if (!err) this.out.release(written);
    });
  }

  private receive(chunk: Buffer): void {
    this.incoming.push(chunk);
    while (this.incoming.length >= 4 && !this.failure) {
      const length = this.incoming.peekUInt32();
      if (length < 5 || length > MAX_PACKET) return this.fail(new ProtocolError(`SFTP packet of ${length} bytes from the server`), true);
      if (this.incoming.length < 4 + length) return;
      this.incoming.take(4);
      const r = new Reader(this.incoming.take(length));
      try {
        this.dispatch(r.byte(), r);
      } catch (err: unknown) {
        if (!(err instanceof ProtocolError)) throw err;
        return this.fail(err, true);
      }
    }
  }

  private dispatch(type: number, r: Reader): void {
    if (type === FXP.VERSION) {
      const starting = this.starting;
      if (!starting) throw new ProtocolError('unexpected SFTP VERSION');
      if (r.uint32() < 3) throw new ProtocolError('the server speaks an SFTP version below 3');
      while (r.left > 0) this.extensions.set(r.string(), r.string());
      this.starting = undefined;
      return starting.resolve();
    }
    const id = r.uint32();
    const waiting = this.answers.get(id);
    if (!waiting) throw new ProtocolError(`SFTP answer to request ${id}, which was not sent or was answered`);
    this.answers.delete(id);
    try {
      waiting.answer(type, r);
    } catch (err: unknown) {
      // An answer that does not parse fails its own request first, then (fail()) all the others.
      if (err instanceof ProtocolError) waiting.onError(new Error(`SFTP protocol error: ${err.message}`));
      throw err;
    }
  }

  /** The channel is gone or the server broke the protocol: every request waiting gets `err`, and so will any later. */
  private fail(err: Error, close = false): void {
    if (this.failure) return;
    this.failure = err instanceof ProtocolError ? new Error(`SFTP protocol error: ${err.message}`) : err;
    this.starting?.reject(this.failure);
    this.starting = undefined;
    const waiting = [...this.answers.values()];
    this.answers.clear();
    for (const { onError } of waiting) onError(this.failure);
    if (close) this.channel.close();
  }
}

/** What RemoteFs uses of a channel (tests pass stand-ins). */
export type Sftp = Pick<
  SftpClient,
  'ready' | 'maxOpenHandles' | 'offers' | 'open' | 'opendir' | 'close' | 'read' | 'write' | 'stat' | 'lstat' | 'fstat' | 'setstat' | 'fsetstat' | 'mkdir' | 'remove' | 'rename' | 'posixRename' | 'statvfs' | 'readdir' | 'realpath'
>;
