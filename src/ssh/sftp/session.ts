// One SFTP session on a channel from ssh2's public client.subsys('sftp'): INIT and VERSION, the requests of a turn
// written together, the answers read and handed to their readers, and what a lost channel or a broken answer does
// to the requests waiting. client.ts puts the requests safe-scp uses on top.
import type { ClientChannel } from 'ssh2';
import type { Answer } from './answers.js';
import { Requests } from './requests.js';
import { ByteQueue, FXP, ProtocolError, Reader } from './wire.js';

/** Requests shorter than this wait for the end of the turn to go out with the others; longer ones go at once. */
const COALESCE = 32 * 1024;
/** The longest answer accepted: a READ's 256 KiB (OpenSSH's limit) and its header, with room to spare. */
const MAX_PACKET = 1024 * 1024;

export class SftpSession {
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

  protected constructor(
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

  /** Whether the server announced an extension (posix-rename@openssh.com, statvfs@openssh.com). */
  offers(extension: string): boolean {
    return this.extensions.has(extension);
  }

  /** Starts the next request in `out`, under the next id. */
  protected begin(type: number): Requests {
    this.nextId = (this.nextId + 1) >>> 0;
    return this.out.begin(type, this.nextId);
  }

  /**
   * Sends the request `written` into `out` since begin() (and `trailing`, the rest of its bytes, uncopied) and keeps
   * its answer's reader; once the channel has failed, calls `onError` instead. Requests wait for the end of the turn
   * to go out together, unless they are long.
   */
  protected request(written: Requests, answer: Answer, onError: (err: Error) => void, trailing?: Buffer): void {
    const failure = this.failure;
    if (failure) {
      queueMicrotask(() => onError(failure));
      return;
    }
    written.end(trailing?.length ?? 0);
    this.answers.set(this.nextId, { answer, onError });
    if (trailing || written.length >= COALESCE) {
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
      // One piece for the length and the packet: a Buffer less per answer (a 2000-file tree has ~8000).
      const r = new Reader(this.incoming.take(4 + length), 4);
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
