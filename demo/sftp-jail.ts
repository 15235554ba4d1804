// Errors as SFTP statuses, and the path jail of the embedded server: client path '/x' is <root>/x.
import type { Stats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';

const { STATUS_CODE } = ssh2.utils.sftp;

export class SftpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SftpStatusError';
  }
}

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Maps an error to an SFTP status without leaking real server paths into the message. */
export function toStatus(err: unknown): { code: number; message: string } {
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

export class Jail {
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
