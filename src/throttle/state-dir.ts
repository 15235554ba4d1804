// Picks and vets the private directory where safe-scp processes on one machine share throttle state.
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SafeScpError } from '../errors.js';

/**
 * The state directory cannot be created or is not safe to trust (symlink, foreign owner, writable by others):
 * a configuration error (cause `config`, exit 2) that names the option.
 */
export class StateDirError extends SafeScpError {
  readonly dir: string;

  constructor(dir: string, problem: string, options?: { cause?: unknown }) {
    super(
      'config',
      `--state-dir (SAFE_SCP_STATE_DIR): cannot use throttle state directory ${dir}: ${problem}; ` +
        'point it at a directory that only this user can write',
      { phase: 'config', ...(options?.cause === undefined ? {} : { cause: options.cause }) },
    );
    this.dir = dir;
  }
}

/** How many missing directory levels ensureStateDir creates at most: a bound, so no path can make it loop. */
export const MAX_MISSING_LEVELS = 16;

/**
 * Creates `dir` (mode 0700) if needed and checks it can be trusted. The checks use lstat, never stat,
 * because in a shared /tmp another user can plant `safe-scp-<uid>` first as a symlink or as their
 * own directory and then redirect or forge our lock and slot files.
 */
export async function ensureStateDir(dir: string): Promise<string> {
  const resolved = path.resolve(dir);
  await makeDirs(resolved);
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

/**
 * mkdir -p with a bound. Node's own `mkdir(..., { recursive: true })` never returns for a path such as
 * /proc/x, where mkdir answers ENOENT although the parent exists: it retries the parent and the child forever.
 * Here every missing level is created once, top down, and any error other than EEXIST ends it.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      await lstat(current);
      break;
    } catch (error: unknown) {
      if (errnoCode(error) !== 'ENOENT') throw new StateDirError(dir, describe(error), { cause: error });
    }
    if (missing.length >= MAX_MISSING_LEVELS) throw new StateDirError(dir, `more than ${MAX_MISSING_LEVELS} directory levels are missing`);
    missing.push(current);
    if (path.dirname(current) === current) break;
  }
  for (const level of missing.reverse()) {
    try {
      await mkdir(level, { mode: 0o700 });
    } catch (error: unknown) {
      // EEXIST: another process made it first, or something that is not a directory is in the way; lstat says which.
      if (errnoCode(error) !== 'EEXIST') throw new StateDirError(dir, `cannot create ${level}: ${describe(error)}`, { cause: error });
    }
  }
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
