// The --report file: checked before any connection, written whole by temp file + rename in its own directory.
import { randomBytes } from 'node:crypto';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { configError, type SafeScpError } from '../errors.js';

function problem(file: string, reason: string, cause?: unknown): SafeScpError {
  return configError(`--report (SAFE_SCP_REPORT): cannot write ${file}: ${reason}`, cause);
}

function reason(error: unknown, file: string): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? (error as { code: unknown }).code : undefined;
  const dir = path.dirname(path.resolve(file));
  if (code === 'ENOENT') return `its directory ${dir} does not exist`;
  if (code === 'ENOTDIR') return `${dir} is not a directory`;
  if (code === 'EACCES' || code === 'EPERM') return `this user may not create files in ${dir}`;
  if (code === 'EROFS') return `${dir} is on a read-only file system`;
  return error instanceof Error ? error.message : String(error);
}

/** A fresh name next to `file`, so the rename stays in one directory (and one file system). */
function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Creates `temp` exclusively (never through an existing name or symlink), writes `text`, closes it. */
async function writeNew(temp: string, text: string): Promise<void> {
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * Fails with cause `config` (exit 2) unless a report can be written to `file`: its directory exists and
 * this user can create a file in it (tried for real, then removed), and `file` is not a directory.
 */
export async function checkReportPath(file: string): Promise<void> {
  const resolved = path.resolve(file);
  const existing = await lstat(resolved).catch(() => undefined);
  if (existing?.isDirectory()) throw problem(file, 'it is a directory');
  const probe = tempName(resolved);
  try {
    await writeNew(probe, '');
  } catch (error: unknown) {
    await unlink(probe).catch(() => undefined);
    throw problem(file, reason(error, file), error);
  }
  await unlink(probe).catch(() => undefined);
}

/**
 * Writes the report under a temporary name in the same directory, then renames it over `file`: a reader
 * never sees half a report, and a symlink at `file` is replaced, not followed. No temp file is left behind.
 */
export async function writeReportFile(file: string, text: string): Promise<void> {
  const resolved = path.resolve(file);
  const temp = tempName(resolved);
  try {
    await writeNew(temp, text);
    await rename(temp, resolved);
  } catch (error: unknown) {
    await unlink(temp).catch(() => undefined);
    throw problem(file, reason(error, file), error);
  }
}
