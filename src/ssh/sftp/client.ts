// The SFTP requests safe-scp uses, on an SftpSession (session.ts) over a channel from ssh2's public
// client.subsys('sftp'). What it does that ssh2's own SFTP client does not: the small requests of one turn of the
// event loop go out together, a few SSH packets instead of one each (a 2000-file tree is ~10,000 requests; every
// packet costs the client, sshd and the pipe to sftp-server a round of work), and on OpenSSH the limits@openssh.com
// request, and the caller's first requests, go out with INIT instead of a round trip later (OpenSSH's sftp-server
// handles a channel's requests in order, INIT first).
import type { Client } from 'ssh2';
import { attrs, data, handle, names, status, statvfsFields, type Done, type Got } from './answers.js';
import { SftpSession } from './session.js';
import { FXP, type FileEntry, type OpenFlags, OPEN_FLAGS, ProtocolError, type SetAttributes, type Stats } from './wire.js';

/** An SSH packet's worth of channel data (OpenSSH's and ssh2's maximum packet size): a long WRITE's first piece. */
const PACKET = 32 * 1024;

export class SftpClient extends SftpSession {
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
}

/** What RemoteFs uses of a channel (tests pass stand-ins). */
export type Sftp = Pick<
  SftpClient,
  'ready' | 'maxOpenHandles' | 'offers' | 'open' | 'opendir' | 'close' | 'read' | 'write' | 'stat' | 'lstat' | 'fstat' | 'setstat' | 'fsetstat' | 'mkdir' | 'remove' | 'rename' | 'posixRename' | 'statvfs' | 'readdir' | 'realpath'
>;
