// accept-new: add one pinned line to a known_hosts file, safely under concurrent runs.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Appends queued per file in this process, so the "already present?" check sees earlier appends. */
const queues = new Map<string, Promise<void>>();

/** Checked structurally: `instanceof Error` fails for errors from another realm (e.g. Jest's VM). */
function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}

async function appendOnce(file: string, line: string): Promise<void> {
  let existing = '';
  try {
    existing = await readFile(file, 'utf8');
  } catch (error: unknown) {
    if (!isMissing(error)) throw error;
  }
  if (existing.split('\n').some((l) => l.replace(/\r$/, '').trim() === line.trim())) return;
  // A file whose last line lacks its newline would otherwise swallow our line into it.
  const prefix = existing.length > 0 && !existing.endsWith('\n') ? '\n' : '';
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // One write of a whole line with O_APPEND: concurrent runs (other processes) cannot interleave
  // inside it. Two processes racing on a new host can still both append the same line; an
  // identical duplicate is harmless to ssh and to us, so no cross-process lock is taken.
  await appendFile(file, `${prefix}${line}\n`, { mode: 0o600, flag: 'a' });
}

/**
 * Appends `line` to the known_hosts `file` unless an identical line is already there. Creates the
 * directory (0700) and the file (0600) if needed; never rewrites existing content. Throws on a
 * line that is empty or spans several lines, since that could inject extra pins.
 */
export async function appendKnownHost(file: string, line: string): Promise<void> {
  if (line.trim() === '' || /[\r\n\0]/.test(line)) {
    throw new Error('a known_hosts line must be one non-empty line');
  }
  const key = resolve(file);
  const previous = queues.get(key) ?? Promise.resolve();
  // Run after the previous append whether it failed or not; its caller sees its own error.
  const current = previous.catch(() => undefined).then(() => appendOnce(key, line));
  queues.set(key, current);
  try {
    await current;
  } finally {
    if (queues.get(key) === current) queues.delete(key);
  }
}
