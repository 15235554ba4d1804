// The read side of a download: pipelined READ requests over one span of a remote file, and a big file's 8 MiB
// ranges read over every SFTP channel into the one local temporary file.
import type { Channels } from '../ssh/channels.js';
import type { RemoteFs } from '../ssh/remote-fs.js';
import type { TransferState } from './progress.js';
import { RANGE, onEveryChannel } from './ranges.js';
import { requestsInFlight } from './write-pipeline.js';

export interface ReadOptions {
  readonly chunkSize: number;
  /** Bytes of read requests in flight per span (as many requests of the chunk size as that takes). */
  readonly bytesInFlight: number;
}

/** Where a span's bytes come from and go to: a local file, or memory (a small file, download.ts). */
export interface ReadTarget {
  readonly remote: string;
  readonly local: { write(data: Buffer, offset: number, length: number, position: number): Promise<unknown> };
}

/** The size of a read past the expected end (the end-of-file probe). */
const PROBE = 4096;

/**
 * Reads [start, end) of the open remote file with up to `bytesInFlight` of reads in flight, writing each at its
 * offset in the local file; with `untilEof`, goes on past `end` until the server says end of file (the file may
 * have grown), the first read past `end` sent with the others and the rest one at a time. Resolves with the end of
 * the last byte written (`start` when there was none); a short read is completed, an early end of file ends it.
 */
export async function readSpan(rfs: RemoteFs, handle: Buffer, to: ReadTarget, start: number, end: number, untilEof: boolean, options: ReadOptions, state: TransferState): Promise<number> {
  const chunk = Math.max(1024, Math.min(options.chunkSize, rfs.maxLength));
  let offset = start;
  let eof = false;
  let reached = start;
  let failure: unknown;
  const inFlight = new Set<Promise<void>>();
  const readAt = (position: number, length: number): Promise<void> => {
    const buffer = Buffer.allocUnsafe(length);
    const request: Promise<void> = (async () => {
      let got = 0;
      // A server may answer a read with fewer bytes than asked; read the rest of this piece.
      while (got < length) {
        const n = await rfs.read(handle, buffer.subarray(got), length - got, position + got, to.remote);
        if (n === 0) {
          eof = true;
          break;
        }
        got += n;
      }
      if (got > 0) {
        await to.local.write(buffer, 0, got, position);
        reached = Math.max(reached, position + got);
        state.progress(got);
      }
    })().then(
      () => {
        inFlight.delete(request);
      },
      (err: unknown) => {
        inFlight.delete(request);
        failure ??= err;
      },
    );
    return request;
  };
  while (!eof && failure === undefined && (untilEof || offset < end)) {
    state.checkAborted();
    // The first read at `end` mostly just meets the end of file: a small one (its buffer and the -l budget it takes
    // are the size asked); a file that grew is read on in whole chunks.
    const length = offset < end ? Math.min(chunk, end - offset) : offset === end ? Math.min(chunk, PROBE) : chunk;
    inFlight.add(readAt(offset, length));
    offset += length;
    await state.limiter.take(length);
    if (offset > end) await Promise.all(inFlight);
    else if (inFlight.size >= requestsInFlight(options.bytesInFlight, chunk)) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  return reached;
}

/**
 * Reads the first `size` bytes of the remote file, open as `handle` on `own`, over every channel open now or later:
 * each channel opens the file for itself and reads the RANGE-byte ranges it claims. Resolves with the end of the
 * last byte written once every range is read (the other channels' handles are then closed, not waited for).
 * Rejects with the first failure (after the reads under way were answered).
 */
export async function readSpread(channels: Channels, own: RemoteFs, handle: Buffer, to: ReadTarget, size: number, options: ReadOptions, state: TransferState): Promise<number> {
  const count = Math.ceil(size / RANGE);
  let next = 0;
  let reached = 0;
  let failure: unknown;
  const run = async (rfs: RemoteFs, h: Buffer): Promise<void> => {
    for (let r = next++; r < count && failure === undefined; r = next++) {
      try {
        const end = await readSpan(rfs, h, to, r * RANGE, Math.min(size, (r + 1) * RANGE), false, options, state);
        reached = Math.max(reached, end);
      } catch (err: unknown) {
        failure ??= err;
      }
    }
  };
  const { others, failure: joined } = await onEveryChannel(channels, own, handle, () => next < count, (rfs) => rfs.open(to.remote, 'r'), run);
  failure ??= joined;
  // Sent, not waited for (as the caller's own handle is): every read on them was answered already.
  for (const o of others) o.rfs.close(o.handle, to.remote).catch(() => undefined);
  if (failure !== undefined) throw failure;
  state.emit({ kind: 'debug', message: `${to.remote}: ${count} ranges of ${RANGE / 1024 / 1024} MiB read over ${others.length + 1} SFTP channel${others.length === 0 ? '' : 's'}` });
  return reached;
}

/** The whole remote file, read with an end-of-file probe beside the reads (one round trip for a small file). */
export async function readIntoMemory(rfs: RemoteFs, handle: Buffer, remote: string, expected: number, options: ReadOptions, state: TransferState): Promise<Buffer> {
  const pieces: Array<{ data: Buffer; position: number }> = [];
  const memory = { write: (data: Buffer, offset: number, length: number, position: number) => Promise.resolve(pieces.push({ data: data.subarray(offset, offset + length), position })) };
  const size = await readSpan(rfs, handle, { remote, local: memory }, 0, expected, true, options, state);
  const whole = Buffer.alloc(size);
  for (const p of pieces) p.data.copy(whole, p.position);
  return whole;
}
