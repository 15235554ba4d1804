// SFTP version 3 on the wire (draft-ietf-secsh-filexfer-02, with OpenSSH's extensions): the packet types, the
// attributes and a bounds-checked reader for what the server sends (requests.ts writes the requests).

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** Status codes; EOF (1) ends a READ or READDIR. */
export const STATUS = { OK: 0, EOF: 1 } as const;
const STATUS_TEXT = ['No error', 'End of file', 'No such file or directory', 'Permission denied', 'Failure', 'Bad message', 'No connection', 'Connection lost', 'Operation unsupported'];

/** An SFTP status other than OK, as ssh2 reported it (classify.ts reads `code`). */
export function statusError(code: number, message: string): Error & { code: number } {
  return Object.assign(new Error(message || STATUS_TEXT[code] || `status ${code}`), { code });
}

/**
 * The longest READ or WRITE sent as one request to a server with this version string: OpenSSH's and dropbear's
 * sftp-server accept 256 KiB, any server 34000 bytes (what ssh2 assumes too); less 2 KiB of request overhead.
 */
export function sftpLength(serverVersion: string | undefined): number {
  return /^SSH-2\.0-(?:OpenSSH|dropbear)/.test(serverVersion ?? '') ? 256 * 1024 - 2048 : 34000 - 2048;
}

/** The open flags safe-scp uses, as pflags: READ 1, WRITE 2, CREAT 8, TRUNC 0x10, EXCL 0x20. */
export const OPEN_FLAGS = { r: 0x01, 'r+': 0x03, w: 0x1a, wx: 0x3a } as const;
export type OpenFlags = keyof typeof OPEN_FLAGS;

/** Attributes sent with OPEN, MKDIR and SETSTAT: the mode, and both times (seconds) or neither. */
export interface SetAttributes {
  mode?: number;
  atime?: number;
  mtime?: number;
}

export const ATTR = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;
const S_IFMT = 0o170000;
/** The file type in a mode: a directory, a regular file (the only kinds a copy follows). */
export const isDirMode = (mode: number): boolean => (mode & S_IFMT) === 0o040000;
export const isFileMode = (mode: number): boolean => (mode & S_IFMT) === 0o100000;

/** A file's attributes as the server sent them (absent fields are 0); isDirMode and isFileMode read the type. */
export interface Stats {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly atime: number;
  readonly mtime: number;
}

export interface FileEntry {
  filename: string;
  longname: string;
  attrs: Stats;
}

/** Raised on a packet that does not parse: the server is not speaking SFTP as it should. */
export class ProtocolError extends Error {}

/** Reads the fields of one packet from the server; any read past its end is a ProtocolError. */
export class Reader {
  /** Reads `buf` from `at` (past a length field the caller already read, say). */
  constructor(
    private readonly buf: Buffer,
    private at = 0,
  ) {}

  private need(n: number): number {
    if (this.at + n > this.buf.length) throw new ProtocolError('SFTP packet shorter than its fields');
    const at = this.at;
    this.at += n;
    return at;
  }

  get left(): number {
    return this.buf.length - this.at;
  }

  byte(): number {
    return this.buf[this.need(1)] as number;
  }

  uint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }

  /** Exact up to 2^53 and rounded to nearest above, as Number(BigInt) would, without a BigInt per attribute set. */
  uint64(): number {
    const at = this.need(8);
    return this.buf.readUInt32BE(at) * 2 ** 32 + this.buf.readUInt32BE(at + 4);
  }

  bytes(): Buffer {
    const n = this.uint32();
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  attrs(): Stats {
    const flags = this.uint32();
    const size = flags & ATTR.SIZE ? this.uint64() : 0;
    const uid = flags & ATTR.UIDGID ? this.uint32() : 0;
    const gid = flags & ATTR.UIDGID ? this.uint32() : 0;
    const mode = flags & ATTR.PERMISSIONS ? this.uint32() : 0;
    const atime = flags & ATTR.ACMODTIME ? this.uint32() : 0;
    const mtime = flags & ATTR.ACMODTIME ? this.uint32() : 0;
    if (flags & ATTR.EXTENDED) {
      for (let n = this.uint32(); n > 0; n--) {
        this.bytes();
        this.bytes();
      }
    }
    return { mode, uid, gid, size, atime, mtime };
  }
}

/** Bytes from the channel, taken out one packet at a time without copying what arrived in one piece. */
export class ByteQueue {
  private readonly chunks: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  get length(): number {
    return this.total;
  }

  /** The first 4 bytes as a uint32 (the caller checked that 4 are there). */
  peekUInt32(): number {
    let value = 0;
    let n = 0;
    for (const c of this.chunks) {
      for (let j = 0; j < c.length && n < 4; j++, n++) value = value * 256 + (c[j] as number);
      if (n === 4) break;
    }
    return value;
  }

  /** Removes and returns the first `n` bytes (n <= length). */
  take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    this.total -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let filled = 0; filled < n; ) {
      const c = this.chunks[0] as Buffer;
      const used = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, used);
      filled += used;
      if (used === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(used);
    }
    return out;
  }
}
