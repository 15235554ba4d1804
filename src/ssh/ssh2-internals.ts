// The two things safe-scp reads from ssh2 beyond its public API, kept in this one place and trusted only for the
// ssh2 version they were checked against (package.json pins it exactly): whether ssh2's native crypto binding
// loaded, and the SFTP write and read lengths the server announced (limits@openssh.com). With any other ssh2
// version both fall back, to 'unknown' and to the 32 KiB lengths every SFTP server accepts; nothing is written.
import { createRequire } from 'node:module';
import type { SFTPWrapper } from 'ssh2';

/** The ssh2 version whose private fields below were read and tested. */
export const CHECKED_SSH2_VERSION = '1.17.0';
/** The length every SFTP server accepts for a read or a write (draft-ietf-secsh-filexfer: 32768). */
export const SAFE_SFTP_LENGTH = 32768;

const load = createRequire(import.meta.url);

/** The installed ssh2's version, or undefined when it cannot be read. */
export function ssh2Version(): string | undefined {
  try {
    const pkg = load('ssh2/package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** Whether ssh2 encrypts with its native binding ('javascript': ~40% slower), or 'unknown' for another ssh2. */
export function cryptoKind(version = ssh2Version()): 'native' | 'javascript' | 'unknown' {
  if (version !== CHECKED_SSH2_VERSION) return 'unknown';
  try {
    const crypto = load('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown };
    return crypto.bindingAvailable === true ? 'native' : crypto.bindingAvailable === false ? 'javascript' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The server's SFTP write and read limits as ssh2 recorded them, or the safe lengths for another ssh2. */
export function sftpLimits(sftp: SFTPWrapper, version = ssh2Version()): { write: number; read: number } {
  if (version !== CHECKED_SSH2_VERSION) return { write: SAFE_SFTP_LENGTH, read: SAFE_SFTP_LENGTH };
  const fields = sftp as unknown as { _maxWriteLen?: unknown; _maxReadLen?: unknown };
  const valid = (n: unknown): number => (typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : SAFE_SFTP_LENGTH);
  return { write: valid(fields._maxWriteLen), read: valid(fields._maxReadLen) };
}
