// One SFTP session of the embedded server: one per accepted "sftp" subsystem channel.
import type { Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import { applyAttrs, fileTarget, longName, pathTarget, readStrings, toAttrs, toOpenFlags, type InAttrs } from './sftp-attrs.js';
import { errnoCode, SftpStatusError, toStatus, type Jail } from './sftp-jail.js';

const { STATUS_CODE } = ssh2.utils.sftp;

/** Same cap as OpenSSH's sftp-server (SFTP_MAX_READ_LENGTH). */
const MAX_READ_LENGTH = 256 * 1024 - 1024;
const MAX_OPEN_HANDLES = 512;
const READDIR_BATCH = 100;

type OpenHandle =
  | { kind: 'file'; fh: FileHandle }
  | { kind: 'dir'; realPath: string; isRoot: boolean; names: string[]; next: number };

export class SftpSession {
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
