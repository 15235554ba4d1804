// Embedded in-process SFTP server on loopback (ssh2 Server, public-key auth, root-confined filesystem) for the demo and tests.
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rmdir,
  stat,
  truncate,
  unlink,
  utimes,
  type FileHandle,
} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, AuthContext, Connection, FileEntry, ParsedKey, SFTPWrapper } from 'ssh2';
import { generateEd25519KeyPair } from '../src/ssh/keygen.js';

const { Server: SshServer, utils } = ssh2;
const { STATUS_CODE, OPEN_MODE } = utils.sftp;

export interface EmbeddedServerOptions {
  /** Directory served; the client's '/' maps onto it. */
  root: string;
  /** The only user name accepted. */
  username: string;
  /** The only client public key accepted, in OpenSSH one-line form ("ssh-ed25519 AAAA... comment"). */
  authorizedKey: Buffer | string;
  /** Host private key (PEM or OpenSSH). A fresh ed25519 key is generated when absent. */
  hostKey?: string;
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
}

export interface EmbeddedServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** known_hosts line pinning this server, e.g. "[127.0.0.1]:40123 ssh-ed25519 AAAA...". */
  hostKeyLine(): string;
  /** OpenSSH-style fingerprint of the host key, "SHA256:...". */
  readonly hostKeyFingerprint: string;
  /** TCP connections accepted since start (including ones that never got past the banner). */
  readonly connections: number;
  /** Ends every client connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
/** Like OpenSSH's LoginGraceTime: unauthenticated connections are dropped after this. */
const LOGIN_GRACE_MS = 30_000;
/** How long close() lets clients say goodbye before their sockets are destroyed. */
const CLOSE_GRACE_MS = 1_000;
/** Same cap as OpenSSH's sftp-server (SFTP_MAX_READ_LENGTH). */
const MAX_READ_LENGTH = 256 * 1024 - 1024;
const MAX_OPEN_HANDLES = 512;
const READDIR_BATCH = 100;

/** SFTP extensions implemented below and advertised in our VERSION packet. */
const ADVERTISED_EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
];

// ---------------------------------------------------------------------------------------------
// Errors and status codes

class SftpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SftpStatusError';
  }
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Maps an error to an SFTP status without leaking real server paths into the message. */
function toStatus(err: unknown): { code: number; message: string } {
  if (err instanceof SftpStatusError) return { code: err.status, message: err.message };
  const code = errnoCode(err);
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ELOOP':
      return { code: STATUS_CODE.NO_SUCH_FILE, message: `No such file (${code})` };
    case 'EACCES':
    case 'EPERM':
      return { code: STATUS_CODE.PERMISSION_DENIED, message: `Permission denied (${code})` };
    default:
      return { code: STATUS_CODE.FAILURE, message: code !== undefined ? `Failure (${code})` : 'Failure' };
  }
}

// ---------------------------------------------------------------------------------------------
// Path confinement: client path '/x' is <root>/x, nothing resolves outside <root>

class Jail {
  constructor(readonly realRoot: string) {}

  /** Normalises a client path to an absolute virtual path; '..' can never climb above '/'. */
  virtual(clientPath: string): string {
    return path.posix.resolve('/', clientPath);
  }

  private isInside(realPath: string): boolean {
    if (realPath === this.realRoot) return true;
    const prefix = this.realRoot.endsWith(path.sep) ? this.realRoot : this.realRoot + path.sep;
    return realPath.startsWith(prefix);
  }

  private lexicalReal(virtualPath: string): string {
    return virtualPath === '/' ? this.realRoot : path.join(this.realRoot, ...virtualPath.split('/'));
  }

  /** Virtual path for a real path inside the root, or undefined if it is outside. */
  toVirtual(realPath: string): string | undefined {
    if (!this.isInside(realPath)) return undefined;
    const rel = path.relative(this.realRoot, realPath);
    return rel === '' ? '/' : '/' + rel.split(path.sep).join('/');
  }

  /** Real path of the parent directory of virtualPath, with every symlink resolved and checked. */
  private async confinedParent(virtualPath: string): Promise<string> {
    const parent = await realpath(this.lexicalReal(path.posix.dirname(virtualPath)));
    if (!this.isInside(parent)) throw escapeError();
    return parent;
  }

  /** Real path to use for operations on the entry itself (lstat, unlink, rmdir, rename, mkdir). */
  async noFollow(virtualPath: string): Promise<string> {
    if (virtualPath === '/') return this.realRoot;
    return path.join(await this.confinedParent(virtualPath), path.posix.basename(virtualPath));
  }

  /**
   * Real path to use for operations that follow symlinks (open, stat, opendir, setstat). A final
   * symlink is resolved here and must land inside the root; a dangling one is refused.
   */
  async follow(virtualPath: string): Promise<string> {
    const target = await this.noFollow(virtualPath);
    let st: Stats;
    try {
      st = await lstat(target);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return target; // about to be created
      throw err;
    }
    if (!st.isSymbolicLink()) return target;
    let resolved: string;
    try {
      resolved = await realpath(target);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ELOOP') {
        throw new SftpStatusError(STATUS_CODE.NO_SUCH_FILE, 'Dangling symbolic link');
      }
      throw err;
    }
    if (!this.isInside(resolved)) throw escapeError();
    return resolved;
  }
}

function escapeError(): SftpStatusError {
  return new SftpStatusError(STATUS_CODE.PERMISSION_DENIED, 'Path resolves outside the served root');
}

// ---------------------------------------------------------------------------------------------
// Attributes and ls-style long names

function toAttrs(st: Stats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function modeString(mode: number): string {
  const type = mode & fsConstants.S_IFMT;
  const typeChar =
    type === fsConstants.S_IFDIR
      ? 'd'
      : type === fsConstants.S_IFLNK
        ? 'l'
        : type === fsConstants.S_IFCHR
          ? 'c'
          : type === fsConstants.S_IFBLK
            ? 'b'
            : type === fsConstants.S_IFIFO
              ? 'p'
              : type === fsConstants.S_IFSOCK
                ? 's'
                : '-';
  const bit = (mask: number, ch: string): string => (mode & mask ? ch : '-');
  const exec = (xMask: number, specialMask: number, setCh: string, unsetCh: string): string => {
    const x = (mode & xMask) !== 0;
    if (mode & specialMask) return x ? setCh : unsetCh;
    return x ? 'x' : '-';
  };
  return (
    typeChar +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    exec(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') +
    bit(0o020, 'w') +
    exec(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') +
    bit(0o002, 'w') +
    exec(0o001, 0o1000, 't', 'T')
  );
}

function lsDate(mtimeMs: number): string {
  const d = new Date(mtimeMs);
  const month = MONTHS[d.getMonth()] ?? '???';
  const day = String(d.getDate()).padStart(2, ' ');
  const sixMonthsMs = 182 * 24 * 3600 * 1000;
  if (Math.abs(Date.now() - mtimeMs) < sixMonthsMs) {
    const hh = String(d.getHours()).padStart(2, '0');
    const mm = String(d.getMinutes()).padStart(2, '0');
    return `${month} ${day} ${hh}:${mm}`;
  }
  return `${month} ${day}  ${d.getFullYear()}`;
}

/** Same layout as OpenSSH's sftp-server (numeric owner and group). */
function longName(name: string, st: Stats): string {
  return [
    modeString(st.mode),
    String(st.nlink).padStart(4, ' '),
    String(st.uid).padEnd(8, ' '),
    String(st.gid).padEnd(8, ' '),
    String(st.size).padStart(8, ' '),
    lsDate(st.mtimeMs),
    name,
  ].join(' ');
}

// ---------------------------------------------------------------------------------------------
// SFTP session: one per accepted "sftp" subsystem channel

type OpenHandle =
  | { kind: 'file'; fh: FileHandle }
  | { kind: 'dir'; realPath: string; isRoot: boolean; names: string[]; next: number };

/** SETSTAT attributes as ssh2 delivers them: only the fields the client sent are defined. */
type InAttrs = Partial<Attributes>;

interface AttrTarget {
  truncate(size: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  utimes(atime: number, mtime: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
}

/** Applies attributes in the order OpenSSH's sftp-server does: size, permissions, times, owner. */
async function applyAttrs(target: AttrTarget, attrs: InAttrs): Promise<void> {
  if (typeof attrs.size === 'number') await target.truncate(attrs.size);
  if (typeof attrs.mode === 'number') await target.chmod(attrs.mode & 0o7777);
  if (typeof attrs.atime === 'number' && typeof attrs.mtime === 'number') {
    await target.utimes(attrs.atime, attrs.mtime);
  }
  if (typeof attrs.uid === 'number' && typeof attrs.gid === 'number') await target.chown(attrs.uid, attrs.gid);
}

function pathTarget(realPath: string): AttrTarget {
  return {
    truncate: (size) => truncate(realPath, size),
    chmod: (mode) => chmod(realPath, mode),
    utimes: (atime, mtime) => utimes(realPath, atime, mtime),
    chown: (uid, gid) => chown(realPath, uid, gid),
  };
}

function fileTarget(fh: FileHandle): AttrTarget {
  return {
    truncate: (size) => fh.truncate(size),
    chmod: (mode) => fh.chmod(mode),
    utimes: (atime, mtime) => fh.utimes(atime, mtime),
    chown: (uid, gid) => fh.chown(uid, gid),
  };
}

function toOpenFlags(pflags: number): number {
  const read = (pflags & OPEN_MODE.READ) !== 0;
  const write = (pflags & OPEN_MODE.WRITE) !== 0;
  let flags = read && write ? fsConstants.O_RDWR : write ? fsConstants.O_WRONLY : fsConstants.O_RDONLY;
  if (pflags & OPEN_MODE.APPEND) flags |= fsConstants.O_APPEND;
  if (pflags & OPEN_MODE.CREAT) flags |= fsConstants.O_CREAT;
  if (pflags & OPEN_MODE.TRUNC) flags |= fsConstants.O_TRUNC;
  if (pflags & OPEN_MODE.EXCL) flags |= fsConstants.O_EXCL;
  return flags;
}

/** Reads SSH "string" fields (uint32 length + bytes) from an EXTENDED request body. */
function readStrings(data: Buffer | undefined, count: number): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (data === undefined || offset + 4 > data.length) {
      throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'Malformed extended request');
    }
    const len = data.readUInt32BE(offset);
    offset += 4;
    if (offset + len > data.length) throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'Malformed extended request');
    out.push(data.subarray(offset, offset + len));
    offset += len;
  }
  return out;
}

class SftpSession {
  private readonly handles = new Map<string, OpenHandle>();
  private nextHandleId = 0;
  /** Requests run one at a time, in arrival order, like OpenSSH's sftp-server. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly jail: Jail,
  ) {
    const s = sftp;
    s.on('OPEN', (id, filename, flags, attrs: InAttrs) => this.run(id, () => this.open(id, filename, flags, attrs)));
    s.on('READ', (id, handle, offset, len) => this.run(id, () => this.read(id, handle, offset, len)));
    s.on('WRITE', (id, handle, offset, data) => this.run(id, () => this.write(id, handle, offset, data)));
    s.on('CLOSE', (id, handle) => this.run(id, () => this.closeHandle(id, handle)));
    s.on('FSTAT', (id, handle) => this.run(id, () => this.fstat(id, handle)));
    s.on('FSETSTAT', (id, handle, attrs: InAttrs) => this.run(id, () => this.fsetstat(id, handle, attrs)));
    s.on('STAT', (id, p) => this.run(id, () => this.stat(id, p, true)));
    s.on('LSTAT', (id, p) => this.run(id, () => this.stat(id, p, false)));
    s.on('SETSTAT', (id, p, attrs: InAttrs) => this.run(id, () => this.setstat(id, p, attrs)));
    s.on('OPENDIR', (id, p) => this.run(id, () => this.opendir(id, p)));
    s.on('READDIR', (id, handle) => this.run(id, () => this.readdir(id, handle)));
    s.on('MKDIR', (id, p, attrs: InAttrs) => this.run(id, () => this.mkdir(id, p, attrs)));
    s.on('RMDIR', (id, p) => this.run(id, () => this.rmdir(id, p)));
    s.on('REMOVE', (id, p) => this.run(id, () => this.remove(id, p)));
    s.on('RENAME', (id, from, to) => this.run(id, () => this.rename(id, from, to, false)));
    s.on('REALPATH', (id, p) => this.run(id, () => this.realpath(id, p)));
    s.on('EXTENDED', (id, name, data: Buffer | undefined) => this.run(id, () => this.extended(id, name, data)));
    // Client sent EOF: answer what is queued, then close the channel (as sftp-server exiting does).
    s.on('end', () => {
      this.queue = this.queue.then(() => {
        this.dispose();
        try {
          sftp.end();
        } catch {
          // already closed
        }
      });
    });
    s.on('error', () => this.dispose());
    s.on('close', () => this.dispose());
  }

  /** Releases every open handle; called when the channel or its connection goes away. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const handle of this.handles.values()) {
      if (handle.kind === 'file') handle.fh.close().catch(() => undefined);
    }
    this.handles.clear();
  }

  private run(id: number, op: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await op();
      } catch (err) {
        const { code, message } = toStatus(err);
        this.reply(() => this.sftp.status(id, code, message));
      }
    });
  }

  /** Sending never throws into the request queue (the channel may already be gone). */
  private reply(send: () => void): void {
    if (this.closed) return;
    try {
      send();
    } catch {
      // channel closed underneath us; nothing to tell the client
    }
  }

  private ok(id: number): void {
    this.reply(() => this.sftp.status(id, STATUS_CODE.OK));
  }

  private addHandle(h: OpenHandle): Buffer {
    if (this.handles.size >= MAX_OPEN_HANDLES) {
      throw new SftpStatusError(STATUS_CODE.FAILURE, 'Too many open handles');
    }
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(this.nextHandleId);
    this.nextHandleId = (this.nextHandleId + 1) >>> 0;
    this.handles.set(buf.toString('hex'), h);
    return buf;
  }

  private getHandle(handle: Buffer): OpenHandle {
    const h = this.handles.get(handle.toString('hex'));
    if (h === undefined) throw new SftpStatusError(STATUS_CODE.FAILURE, 'Invalid handle');
    return h;
  }

  private getFile(handle: Buffer): FileHandle {
    const h = this.getHandle(handle);
    if (h.kind !== 'file') throw new SftpStatusError(STATUS_CODE.FAILURE, 'Handle is a directory');
    return h.fh;
  }

  private async open(id: number, filename: string, pflags: number, attrs: InAttrs): Promise<void> {
    const real = await this.jail.follow(this.jail.virtual(filename));
    const mode = typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o666;
    const fh = await open(real, toOpenFlags(pflags), mode);
    if (this.closed) {
      await fh.close().catch(() => undefined);
      return;
    }
    let handle: Buffer;
    try {
      handle = this.addHandle({ kind: 'file', fh });
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    this.reply(() => this.sftp.handle(id, handle));
  }

  private async read(id: number, handle: Buffer, offset: number, len: number): Promise<void> {
    const fh = this.getFile(handle);
    const buf = Buffer.allocUnsafe(Math.min(len, MAX_READ_LENGTH));
    const { bytesRead } = await fh.read(buf, 0, buf.length, Number(offset));
    if (bytesRead === 0) {
      this.reply(() => this.sftp.status(id, STATUS_CODE.EOF));
      return;
    }
    this.reply(() => this.sftp.data(id, buf.subarray(0, bytesRead)));
  }

  private async write(id: number, handle: Buffer, offset: number, data: Buffer): Promise<void> {
    const fh = this.getFile(handle);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, Number(offset) + done);
      if (bytesWritten === 0) throw new SftpStatusError(STATUS_CODE.FAILURE, 'Short write');
      done += bytesWritten;
    }
    this.ok(id);
  }

  private async closeHandle(id: number, handle: Buffer): Promise<void> {
    const h = this.getHandle(handle);
    this.handles.delete(handle.toString('hex'));
    if (h.kind === 'file') await h.fh.close();
    this.ok(id);
  }

  private async fstat(id: number, handle: Buffer): Promise<void> {
    const h = this.getHandle(handle);
    const st = h.kind === 'file' ? await h.fh.stat() : await stat(h.realPath);
    this.reply(() => this.sftp.attrs(id, toAttrs(st)));
  }

  private async fsetstat(id: number, handle: Buffer, attrs: InAttrs): Promise<void> {
    const h = this.getHandle(handle);
    await applyAttrs(h.kind === 'file' ? fileTarget(h.fh) : pathTarget(h.realPath), attrs);
    this.ok(id);
  }

  private async stat(id: number, clientPath: string, follow: boolean): Promise<void> {
    const v = this.jail.virtual(clientPath);
    const st = follow ? await stat(await this.jail.follow(v)) : await lstat(await this.jail.noFollow(v));
    this.reply(() => this.sftp.attrs(id, toAttrs(st)));
  }

  private async setstat(id: number, clientPath: string, attrs: InAttrs): Promise<void> {
    const real = await this.jail.follow(this.jail.virtual(clientPath));
    await applyAttrs(pathTarget(real), attrs);
    this.ok(id);
  }

  private async opendir(id: number, clientPath: string): Promise<void> {
    const v = this.jail.virtual(clientPath);
    const real = await this.jail.follow(v);
    const names = await readdir(real);
    const handle = this.addHandle({
      kind: 'dir',
      realPath: real,
      isRoot: real === this.jail.realRoot,
      names: ['.', '..', ...names],
      next: 0,
    });
    this.reply(() => this.sftp.handle(id, handle));
  }

  private async readdir(id: number, handle: Buffer): Promise<void> {
    const h = this.getHandle(handle);
    if (h.kind !== 'dir') throw new SftpStatusError(STATUS_CODE.FAILURE, 'Handle is not a directory');
    const entries: FileEntry[] = [];
    while (entries.length === 0 && h.next < h.names.length) {
      const batch = h.names.slice(h.next, h.next + READDIR_BATCH);
      h.next += batch.length;
      for (const name of batch) {
        // '..' of the root is the root itself: nothing about the real parent leaks out.
        const entryPath = name === '..' && h.isRoot ? h.realPath : path.join(h.realPath, name);
        let st: Stats;
        try {
          st = await lstat(entryPath);
        } catch {
          continue; // removed since OPENDIR
        }
        entries.push({ filename: name, longname: longName(name, st), attrs: toAttrs(st) });
      }
    }
    if (entries.length === 0) {
      this.reply(() => this.sftp.status(id, STATUS_CODE.EOF));
      return;
    }
    this.reply(() => this.sftp.name(id, entries));
  }

  private async mkdir(id: number, clientPath: string, attrs: InAttrs): Promise<void> {
    const real = await this.jail.noFollow(this.jail.virtual(clientPath));
    const mode = typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o777;
    await mkdir(real, { mode });
    this.ok(id);
  }

  private async rmdir(id: number, clientPath: string): Promise<void> {
    const v = this.jail.virtual(clientPath);
    if (v === '/') throw new SftpStatusError(STATUS_CODE.PERMISSION_DENIED, 'Cannot remove the served root');
    await rmdir(await this.jail.noFollow(v));
    this.ok(id);
  }

  private async remove(id: number, clientPath: string): Promise<void> {
    const v = this.jail.virtual(clientPath);
    if (v === '/') throw new SftpStatusError(STATUS_CODE.PERMISSION_DENIED, 'Cannot remove the served root');
    await unlink(await this.jail.noFollow(v));
    this.ok(id);
  }

  /**
   * Plain RENAME keeps SFTPv3/OpenSSH semantics (fails if the target exists);
   * posix-rename@openssh.com replaces the target atomically.
   */
  private async rename(id: number, fromPath: string, toPath: string, overwrite: boolean): Promise<void> {
    const from = this.jail.virtual(fromPath);
    const to = this.jail.virtual(toPath);
    if (from === '/' || to === '/') {
      throw new SftpStatusError(STATUS_CODE.PERMISSION_DENIED, 'Cannot rename the served root');
    }
    const realFrom = await this.jail.noFollow(from);
    const realTo = await this.jail.noFollow(to);
    await lstat(realFrom);
    if (!overwrite) {
      let exists = true;
      try {
        await lstat(realTo);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        exists = false;
      }
      if (exists) throw new SftpStatusError(STATUS_CODE.FAILURE, 'Target exists');
    }
    await rename(realFrom, realTo);
    this.ok(id);
  }

  private async realpath(id: number, clientPath: string): Promise<void> {
    const v = this.jail.virtual(clientPath);
    const real = await this.jail.follow(v); // parent must exist; the last component may not
    let resolved = real;
    try {
      resolved = await realpath(real);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const name = this.jail.toVirtual(resolved) ?? v;
    // Like OpenSSH, REALPATH carries no attributes: ssh2 encodes an empty object as flags 0.
    const noAttrs = {} as Attributes;
    this.reply(() => this.sftp.name(id, [{ filename: name, longname: name, attrs: noAttrs }]));
  }

  private async extended(id: number, name: string, data: Buffer | undefined): Promise<void> {
    switch (name) {
      case 'posix-rename@openssh.com': {
        const [from, to] = readStrings(data, 2);
        if (from === undefined || to === undefined) throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'Malformed');
        await this.rename(id, from.toString('utf8'), to.toString('utf8'), true);
        return;
      }
      case 'fsync@openssh.com': {
        const [handle] = readStrings(data, 1);
        if (handle === undefined) throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'Malformed');
        await this.getFile(handle).sync();
        this.ok(id);
        return;
      }
      default:
        this.reply(() => this.sftp.status(id, STATUS_CODE.OP_UNSUPPORTED, `Unsupported extension ${name}`));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Advertising SFTP extensions.
//
// ssh2's server answers INIT with a fixed VERSION packet (v3, no extension pairs), so clients
// (OpenSSH sftp, ssh2's ext_openssh_*) would never use posix-rename/fsync. We swap that one
// 9-byte packet for one listing ADVERTISED_EXTENSIONS when it is handed to the connection's
// protocol for this channel, keeping the channel window accounting right. If ssh2's internals
// ever look different, we silently fall back to the plain VERSION (the handlers still work).

const PLAIN_VERSION = Buffer.from([0, 0, 0, 5, 2, 0, 0, 0, 3]);

function buildVersionPacket(extensions: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.from([2, 0, 0, 0, 3])];
  for (const [name, value] of extensions) {
    for (const s of [name, value]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

const EXTENDED_VERSION = buildVersionPacket(ADVERTISED_EXTENSIONS);

interface OutgoingChannelState {
  id: number;
  window: number;
  packetSize: number;
}

type ChannelDataFn = (this: unknown, id: number, data: Buffer) => unknown;

const pendingVersionByProtocol = new WeakMap<object, Map<number, OutgoingChannelState>>();

function isOutgoingState(v: unknown): v is OutgoingChannelState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['id'] === 'number' && typeof o['window'] === 'number' && typeof o['packetSize'] === 'number';
}

function advertiseExtensions(sftp: SFTPWrapper): void {
  const internals = sftp as unknown as { _protocol?: unknown; outgoing?: unknown };
  const proto = internals._protocol;
  const outgoing = internals.outgoing;
  if (typeof proto !== 'object' || proto === null || !isOutgoingState(outgoing)) return;
  const sink = proto as { channelData?: unknown };
  if (typeof sink.channelData !== 'function') return;
  let pending = pendingVersionByProtocol.get(proto);
  if (pending === undefined) {
    const waiting = new Map<number, OutgoingChannelState>();
    pending = waiting;
    pendingVersionByProtocol.set(proto, waiting);
    const original = sink.channelData as ChannelDataFn;
    sink.channelData = function channelData(this: unknown, id: number, data: Buffer): unknown {
      const state = waiting.get(id);
      if (state !== undefined) {
        waiting.delete(id); // only the first payload on the channel can be VERSION
        const extra = EXTENDED_VERSION.length - PLAIN_VERSION.length;
        if (
          Buffer.isBuffer(data) &&
          data.equals(PLAIN_VERSION) &&
          state.window >= extra &&
          state.packetSize >= EXTENDED_VERSION.length
        ) {
          state.window -= extra;
          return original.call(this, id, EXTENDED_VERSION);
        }
      }
      return original.call(this, id, data);
    };
  }
  pending.set(outgoing.id, outgoing);
}

// ---------------------------------------------------------------------------------------------
// Keys and authentication

function parseSingleKey(input: Buffer | string, what: string): ParsedKey {
  const parsed: unknown = utils.parseKey(input);
  if (parsed instanceof Error) throw new Error(`${what}: ${parsed.message}`);
  const key: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof key !== 'object' || key === null) throw new Error(`${what}: no key found`);
  return key as ParsedKey;
}

/** Constant-time comparison that does not short-circuit on length. */
function safeEqual(input: Buffer, expected: Buffer): boolean {
  const sameLength = input.length === expected.length;
  const match = timingSafeEqual(input, sameLength ? expected : input);
  return sameLength && match;
}

function sha256Fingerprint(publicBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '');
}

function makeAuthenticator(username: string, authorized: ParsedKey): (ctx: AuthContext) => void {
  const expectedUser = Buffer.from(username, 'utf8');
  const authorizedBlob = authorized.getPublicSSH();
  return (ctx) => {
    const userOk = safeEqual(Buffer.from(ctx.username, 'utf8'), expectedUser);
    if (ctx.method !== 'publickey') {
      ctx.reject(['publickey']);
      return;
    }
    const keyOk = ctx.key.algo === authorized.type && safeEqual(ctx.key.data, authorizedBlob);
    if (!userOk || !keyOk) {
      ctx.reject(['publickey']);
      return;
    }
    if (ctx.signature === undefined) {
      ctx.accept(); // key probe only: answers PK_OK, the client then signs
      return;
    }
    if (ctx.blob === undefined || authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
      ctx.reject(['publickey']);
      return;
    }
    ctx.accept();
  };
}

// ---------------------------------------------------------------------------------------------
// Server

export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const realRoot = await realpath(options.root);
  if (!(await stat(realRoot)).isDirectory()) throw new Error(`root is not a directory: ${options.root}`);
  const jail = new Jail(realRoot);

  const authorized = parseSingleKey(options.authorizedKey, 'authorizedKey');
  const hostKeyText = options.hostKey ?? generateEd25519KeyPair().private;
  const hostKey = parseSingleKey(hostKeyText, 'hostKey');
  if (!hostKey.isPrivateKey()) throw new Error('hostKey: not a private key');
  const hostBlob = hostKey.getPublicSSH();
  const hostKeyFingerprint = sha256Fingerprint(hostBlob);
  const authenticate = makeAuthenticator(options.username, authorized);

  const sockets = new Set<net.Socket>();
  const socketsByPeer = new Map<string, net.Socket>(); // "ip:port" -> socket, to pair with ssh2's Connection
  const loginTimers = new Map<net.Socket, NodeJS.Timeout>();
  const clients = new Set<Connection>();
  let connections = 0;
  let closing: Promise<void> | undefined;

  const ssh = new SshServer({ hostKeys: [hostKeyText] });
  ssh.on('error', () => undefined);
  ssh.on('connection', (client: Connection, info: { ip: string; port: number }) => {
    const socket = socketsByPeer.get(`${info.ip}:${info.port}`);
    clients.add(client);
    const sessions = new Set<SftpSession>();
    client.on('error', () => undefined); // resets, protocol errors: the client just goes away
    client.on('close', () => {
      clients.delete(client);
      for (const s of sessions) s.dispose();
    });
    client.on('authentication', authenticate);
    client.on('ready', () => {
      if (socket !== undefined) {
        clearTimeout(loginTimers.get(socket));
        loginTimers.delete(socket);
      }
    });
    client.on('session', (accept) => {
      const session = accept();
      session.on('sftp', (acceptSftp) => {
        const sftp = acceptSftp();
        advertiseExtensions(sftp);
        sessions.add(new SftpSession(sftp, jail));
      });
    });
  });

  const tcp = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    const peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    socketsByPeer.set(peer, socket);
    const timer = setTimeout(() => socket.destroy(), LOGIN_GRACE_MS);
    timer.unref();
    loginTimers.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(loginTimers.get(socket));
      loginTimers.delete(socket);
      sockets.delete(socket);
      if (socketsByPeer.get(peer) === socket) socketsByPeer.delete(peer);
    });
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    tcp.once('error', onError);
    tcp.listen(options.port ?? 0, HOST, () => {
      tcp.off('error', onError);
      resolve();
    });
  });
  tcp.on('error', () => undefined);

  const address = tcp.address();
  if (address === null || typeof address === 'string') throw new Error('embedded server: no TCP address');
  const port = address.port;
  const knownHostsName = port === 22 ? HOST : `[${HOST}]:${port}`;
  const hostKeyLine = `${knownHostsName} ${hostKey.type} ${hostBlob.toString('base64')}`;

  const close = async (): Promise<void> => {
    const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    for (const client of clients) {
      try {
        client.end();
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (sockets.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const socket of sockets) socket.destroy();
    for (const timer of loginTimers.values()) clearTimeout(timer);
    loginTimers.clear();
    await tcpClosed;
  };

  return {
    host: HOST,
    port,
    hostKeyLine: () => hostKeyLine,
    hostKeyFingerprint,
    get connections() {
      return connections;
    },
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
