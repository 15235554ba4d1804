// The requests' side of SFTP on the wire: requests written back to back into one buffer per turn.
import { ATTR, type SetAttributes } from './wire.js';

/**
 * Buffers kept for the next turns, up to a channel window's worth (32 x 64 KiB): a burst of small files' writes
 * takes that many before ssh2 hands the first back, and the Buffers it dropped are only freed by the next garbage
 * collection, so with fewer spares every burst wrote into fresh memory.
 */
const SPARES = 32;

/**
 * Writes requests back to back into one buffer, each its length, type, id, then its fields: the requests of a turn
 * leave as one piece with no copy but their fields' (a 2000-file tree is ~10,000 requests; a buffer, then a copy
 * into the piece, for each field and request cost more client time than the server takes to answer them).
 */
export class Requests {
  private buf: Buffer;
  private readonly spare: Buffer[] = [];
  /** Where the closed requests end, and where the one being written started. */
  private closed = 0;
  private at = 0;

  constructor(private readonly capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Starts a request after those closed (any request begun and not closed is dropped). */
  begin(type: number, id: number): this {
    this.at = this.closed;
    this.room(9);
    this.buf[this.at + 4] = type;
    this.buf.writeUInt32BE(id >>> 0, this.at + 5);
    this.at += 9;
    return this;
  }

  /** The request's bytes so far. */
  get size(): number {
    return this.at - this.closed;
  }

  /** Bytes of the closed requests. */
  get length(): number {
    return this.closed;
  }

  uint32(n: number): this {
    this.room(4);
    this.at = this.buf.writeUInt32BE(n >>> 0, this.at);
    return this;
  }

  uint64(n: number): this {
    this.room(8);
    this.buf.writeUInt32BE(Math.floor(n / 2 ** 32) >>> 0, this.at);
    this.at = this.buf.writeUInt32BE(n >>> 0, this.at + 4);
    return this;
  }

  string(s: string | Buffer): this {
    if (typeof s !== 'string') return this.uint32(s.length).raw(s);
    const n = Buffer.byteLength(s, 'utf8');
    this.uint32(n).room(n);
    this.at += this.buf.write(s, this.at, 'utf8');
    return this;
  }

  attrs(a: SetAttributes): this {
    const times = a.atime !== undefined && a.mtime !== undefined;
    this.uint32((a.mode !== undefined ? ATTR.PERMISSIONS : 0) | (times ? ATTR.ACMODTIME : 0));
    if (a.mode !== undefined) this.uint32(a.mode);
    if (times) this.uint32(Math.floor(a.atime ?? 0)).uint32(Math.floor(a.mtime ?? 0));
    return this;
  }

  /** Bytes added directly, copied, without a length before them (the start of a WRITE's data: see SftpClient.write). */
  raw(bytes: Buffer): this {
    this.room(bytes.length);
    this.at += bytes.copy(this.buf, this.at);
    return this;
  }

  /** Closes the request; its length field also counts `trailing` bytes that the caller sends right after it. */
  end(trailing = 0): void {
    this.buf.writeUInt32BE(this.at - this.closed - 4 + trailing, this.closed);
    this.closed = this.at;
  }

  /**
   * The closed requests, which the caller hands on (the writer does not touch them until release()), and a fresh
   * start in a spare buffer.
   */
  take(): Buffer {
    const out = this.buf.subarray(0, this.closed);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(this.capacity);
    this.closed = this.at = 0;
    return out;
  }

  /**
   * Gives back what take() returned, once it was copied on: its buffer serves again. Memory written for the first
   * time costs a page fault per 4 KiB, ~10 us on a virtual machine: as much as the copy itself, many times over.
   */
  release(taken: Buffer): void {
    const whole = taken.buffer;
    if (this.spare.length < SPARES && taken.byteOffset === 0 && whole.byteLength === this.capacity) this.spare.push(Buffer.from(whole, 0, this.capacity));
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
}
