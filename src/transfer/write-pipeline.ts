// The write pipeline of one upload: pipelined WRITE requests per file, with the read buffers (and so the bytes in
// flight) bounded across all files open at once.
import type fs from 'node:fs/promises';
import { SafeScpError } from '../errors.js';
import type { RemoteFs } from '../ssh/remote-fs.js';
import type { LocalItem } from './local-tree.js';
import { readSmallFile } from './prefetch.js';
import type { TransferState } from './progress.js';

/**
 * The read buffers of one upload, shared by its files: a write holds a slot (and, unless it reads straight into
 * its own packets, a buffer) until the server answered it, so the bytes in flight (and the memory holding them)
 * stay bounded however many files are open at once.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly size: number,
    private slots: number,
  ) {}

  /** A slot; waits while all are taken. Hand it back with release(). */
  async reserve(): Promise<void> {
    if (this.slots > 0) {
      this.slots--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.slots++;
  }

  /** A slot with a buffer to read into. Hand both back with give(). */
  async take(): Promise<Buffer> {
    await this.reserve();
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buffer: Buffer): void {
    this.free.push(buffer);
    this.release();
  }
}

/** How many requests of `chunk` bytes keep `bytes` in flight (at least one). */
export function requestsInFlight(bytes: number, chunk: number): number {
  return Math.max(1, Math.ceil(bytes / chunk));
}

/**
 * Pipelined writes of the bytes [start, end): up to `maxRequests` WRITE requests outstanding (a plain stream crawls,
 * see faults-and-perf.md 3), each sent once the channel has room for it (RemoteFs.writeRoom), each at most the
 * server's write limit. Resolves once the last WRITE is sent, with `answered`, a promise of all of them answered (rejecting
 * with the first failure). Wrapped in an object: a promise resolved with a promise would wait for it, and the
 * caller's next requests would wait a round trip.
 */
export async function sendWrites(
  rfs: RemoteFs,
  handle: Buffer,
  temp: string,
  local: Local,
  start: number,
  end: number,
  maxRequests: number,
  state: TransferState,
  buffers: BufferPool,
): Promise<{ answered: Promise<void> }> {
  const chunk = buffers.size;
  const depth = Math.max(1, maxRequests);
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let failure: unknown;
  const settled = (): void => {
    inFlight--;
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const drain = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  let offset = start;
  while (offset < end && failure === undefined) {
    state.checkAborted();
    const length = Math.min(chunk, end - offset);
    const position = offset;
    offset += length;
    let data: Buffer;
    let pooled: Buffer | undefined;
    if (local.file) {
      pooled = await buffers.take();
      try {
        const { bytesRead } = await local.file.read(pooled, 0, length, position);
        if (bytesRead !== length) {
          throw new SafeScpError('local-io', `${temp}: source file changed size while it was read`, { phase: 'local' });
        }
      } catch (err: unknown) {
        buffers.give(pooled);
        throw err;
      }
      data = length === pooled.length ? pooled : pooled.subarray(0, length);
    } else {
      data = local.data.subarray(position, position + length);
    }
    if (state.limiter.active) await state.limiter.take(length);
    // Awaited here, not inside the write: once this resolves, every WRITE of the span is on the channel, ahead of
    // whatever the caller sends next on the handle (its size check and close).
    const free = await rfs.writeRoom(length);
    inFlight++;
    rfs.write(handle, data, position, temp).then(
      () => {
        free();
        if (pooled) buffers.give(pooled);
        state.progress(length);
        settled();
      },
      (err: unknown) => {
        free();
        if (pooled) buffers.give(pooled);
        failure ??= err;
        settled();
      },
    );
    if (inFlight >= depth) await drain();
  }
  const answered = (async () => {
    while (inFlight > 0) await drain();
    if (failure !== undefined) throw failure;
  })();
  answered.catch(() => undefined);
  return { answered };
}

export function readSmall(item: LocalItem): Buffer {
  const data = Buffer.allocUnsafe(item.size);
  readSmallFile(item.path, data);
  return data;
}

/** A source file: read whole (small) or through a handle. */
export type Local = { readonly data: Buffer; readonly file?: undefined; readonly path?: undefined } | { readonly file: fs.FileHandle; readonly path: string; readonly data?: undefined };

