// Picks and vets the private directory where safe-scp processes on one machine share throttle state.
import { lstat, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The state directory cannot be created or is not safe to trust (symlink, foreign owner, writable by others). */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
  readonly dir: string;

  constructor(dir: string, problem: string, options?: { cause?: unknown }) {
    super(
      `cannot use throttle state directory ${dir}: ${problem}; ` +
        'point SAFE_SCP_STATE_DIR at a directory that only this user can write',
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.dir = dir;
  }
}

/**
 * `<tmp>/safe-scp-<uid>`: one directory per user, so parallel CI jobs of one runner user share the
 * throttle while other users on the machine can neither see nor disturb it. Pure: creates nothing.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(tmpBase(env), `safe-scp-${userTag()}`);
}

/**
 * Creates `dir` (mode 0700) if needed and checks it can be trusted. The checks use lstat, never stat,
 * because in a shared /tmp another user can plant `safe-scp-<uid>` first as a symlink or as their
 * own directory and then redirect or forge our lock and slot files.
 */
export async function ensureStateDir(dir: string): Promise<string> {
  const resolved = path.resolve(dir);
  try {
    await mkdir(resolved, { recursive: true, mode: 0o700 });
  } catch (error: unknown) {
    // EEXIST: something that is not a directory is in the way; lstat below says what.
    if (errnoCode(error) !== 'EEXIST') throw new StateDirError(resolved, describe(error), { cause: error });
  }
  let info;
  try {
    info = await lstat(resolved);
  } catch (error: unknown) {
    throw new StateDirError(resolved, describe(error), { cause: error });
  }
  if (info.isSymbolicLink()) throw new StateDirError(resolved, 'it is a symbolic link');
  if (!info.isDirectory()) throw new StateDirError(resolved, 'it is not a directory');
  // Windows has no POSIX owner or mode bits to check; %TEMP% there is already per user.
  if (process.platform === 'win32') return resolved;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new StateDirError(resolved, `it is owned by uid ${info.uid}, not by this user (uid ${uid})`);
  }
  const worldWritable = (info.mode & 0o002) !== 0;
  const sticky = (info.mode & 0o1000) !== 0;
  if (worldWritable && !sticky) {
    throw new StateDirError(resolved, `it is world-writable without the sticky bit (mode ${(info.mode & 0o7777).toString(8)})`);
  }
  return resolved;
}

function tmpBase(env: NodeJS.ProcessEnv): string {
  if (process.platform === 'win32') return os.tmpdir();
  // Same lookup order as os.tmpdir(), but from the env we were given so callers and tests can inject it.
  const fromEnv = [env['TMPDIR'], env['TMP'], env['TEMP']].find((value) => value !== undefined && value.trim() !== '');
  return path.resolve(fromEnv ?? '/tmp');
}

function userTag(): string {
  const uid = process.getuid?.();
  if (uid !== undefined) return String(uid);
  // No numeric uid (Windows): the user name, reduced to characters that are safe in a file name.
  let name = 'user';
  try {
    name = os.userInfo().username;
  } catch {
    // userInfo() throws when the user has no passwd entry (some containers); one shared name is fine there.
  }
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'user';
}

export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error as { code: unknown };
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
