// Attributes for the embedded SFTP server: stat to SFTP attributes, ls-style long names, SETSTAT, open flags.
import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, chown, truncate, utimes, type FileHandle } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { Attributes } from 'ssh2';
import { SftpStatusError } from './sftp-jail.js';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;

export function toAttrs(st: Stats): Attributes {
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
export function longName(name: string, st: Stats): string {
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

/** SETSTAT attributes as ssh2 delivers them: only the fields the client sent are defined. */
export type InAttrs = Partial<Attributes>;

interface AttrTarget {
  truncate(size: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  utimes(atime: number, mtime: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
}

/** Applies attributes in the order OpenSSH's sftp-server does: size, permissions, times, owner. */
export async function applyAttrs(target: AttrTarget, attrs: InAttrs): Promise<void> {
  if (typeof attrs.size === 'number') await target.truncate(attrs.size);
  if (typeof attrs.mode === 'number') await target.chmod(attrs.mode & 0o7777);
  if (typeof attrs.atime === 'number' && typeof attrs.mtime === 'number') {
    await target.utimes(attrs.atime, attrs.mtime);
  }
  if (typeof attrs.uid === 'number' && typeof attrs.gid === 'number') await target.chown(attrs.uid, attrs.gid);
}

export function pathTarget(realPath: string): AttrTarget {
  return {
    truncate: (size) => truncate(realPath, size),
    chmod: (mode) => chmod(realPath, mode),
    utimes: (atime, mtime) => utimes(realPath, atime, mtime),
    chown: (uid, gid) => chown(realPath, uid, gid),
  };
}

export function fileTarget(fh: FileHandle): AttrTarget {
  return {
    truncate: (size) => fh.truncate(size),
    chmod: (mode) => fh.chmod(mode),
    utimes: (atime, mtime) => fh.utimes(atime, mtime),
    chown: (uid, gid) => fh.chown(uid, gid),
  };
}

export function toOpenFlags(pflags: number): number {
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
export function readStrings(data: Buffer | undefined, count: number): Buffer[] {
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
