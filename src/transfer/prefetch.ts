// Reads small source files ahead, while the connection is still being set up.
//
// Between authentication and a usable SFTP channel the client mostly waits: the server starts a session, a
// shell and sftp-server (~150 ms on the benchmark machine, more with heavy shell start-up files). Reading the
// small files then, into shared slabs, takes that work off the transfer, where the client's CPU is the limit
// for a tree of small files. A file that cannot be read ahead, or changed size since the walk, is simply read
// again by the upload, which reports any error at the usual place.
import { closeSync, openSync, readSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { classifyLocalError } from '../classify.js';
import { SafeScpError } from '../errors.js';
import type { LocalSource } from './local-tree.js';

/** Files up to this size are read whole (upload.ts reads them the same way when not read ahead). */
export const SMALL_FILE = 64 * 1024;
const SLAB = 1024 * 1024;
/** Files read per turn of the event loop, so the handshake is never held up for long. */
const PER_TURN = 64;

/**
 * Reads the whole small file `path` into `target` (its size as walked), synchronously: from the page cache that
 * takes tens of microseconds, where a thread-pool round trip per open, read and close was most of a small file's
 * cost. Throws a classified local error, also when the file is shorter than `target` now.
 */
export function readSmallFile(path: string, target: Buffer): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err: unknown) {
    throw classifyLocalError(err, 'open', path);
  }
  try {
    let got = 0;
    while (got < target.length) {
      const n = readSync(fd, target, got, target.length - got, got);
      if (n === 0) throw new SafeScpError('local-io', `${path}: source file changed size while it was read`, { phase: 'local' });
      got += n;
    }
  } catch (err: unknown) {
    throw classifyLocalError(err, 'read', path);
  } finally {
    closeSync(fd);
  }
}

export class Prefetch {
  private readonly files = new Map<string, Buffer>();
  private slab = Buffer.alloc(0);
  private used = 0;
  private bytes = 0;
  private stopped = false;

  constructor(private readonly budget = 32 * 1024 * 1024) {}

  /** The bytes read ahead for `path` when it had `size` bytes, or undefined (then read it yourself). */
  get(path: string, size: number): Buffer | undefined {
    const data = this.files.get(path);
    return data?.length === size ? data : undefined;
  }

  /** Stops reading ahead and lets go of what was read. */
  clear(): void {
    this.stopped = true;
    this.files.clear();
    this.slab = Buffer.alloc(0);
  }

  /** Reads the small files of `sources` until the budget is spent, a few dozen per turn of the event loop. */
  async run(sources: readonly LocalSource[]): Promise<void> {
    let inTurn = 0;
    for (const source of sources) {
      for (const item of source.items) {
        if (this.stopped || this.bytes >= this.budget) return;
        if (item.type !== 'file' || item.size > SMALL_FILE || this.files.has(item.path)) continue;
        const data = this.read(item.path, item.size);
        if (data) {
          this.files.set(item.path, data);
          this.bytes += data.length;
        }
        if (++inTurn >= PER_TURN) {
          inTurn = 0;
          await nextTurn();
        }
      }
    }
  }

  private read(path: string, size: number): Buffer | undefined {
    if (this.used + size > this.slab.length) {
      // Written once now, while the client waits on the handshake: memory's first touch costs a page fault per 4 KiB
      // (~10 us on a virtual machine), which the transfer would otherwise pay when it copies the file into a request.
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB, size)).fill(0);
      this.used = 0;
    }
    const target = this.slab.subarray(this.used, this.used + size);
    try {
      readSmallFile(path, target);
    } catch {
      return undefined;
    }
    this.used += size;
    return target;
  }
}
