// The local side of a download: a new file written under its temporary name (never over an existing one), its mode
// and times set; synchronously for a small file (the page cache answers in microseconds, a promise through the
// thread pool costs tens, and a tree is thousands of files), through a handle for a big one.
import { closeSync, fchmodSync, futimesSync, lstatSync, openSync, writeSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { classifyLocalError } from '../classify.js';

export type Times = { atime: number; mtime: number } | undefined;

export function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

/** Writes `data` as the new file `temp` (never over an existing one), mode and times set; answers its size. */
export function writeSmall(temp: string, data: Buffer, mode: number, times: Times): number {
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o600);
  } catch (err: unknown) {
    throw classifyLocalError(err, 'create', temp);
  }
  try {
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
    fchmodSync(fd, mode);
    if (times) futimesSync(fd, times.atime, times.mtime);
  } finally {
    closeSync(fd);
  }
  return data.length;
}

/** Opens `temp` (never over an existing file), lets `fill` write it, then sets mode and times; answers `fill`'s size. */
export async function writeBig(temp: string, mode: number, times: Times, fill: (local: fs.FileHandle) => Promise<number>): Promise<number> {
  const local = await fs.open(temp, 'wx', 0o600).catch((err: unknown) => {
    throw classifyLocalError(err, 'create', temp);
  });
  try {
    const size = await fill(local);
    await local.chmod(mode);
    if (times) await local.utimes(times.atime, times.mtime);
    return size;
  } finally {
    await local.close();
  }
}
