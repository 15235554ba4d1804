// A big file spread over the connection's SFTP channels: each channel opens the one temporary file and writes the
// ranges it claims, RANGE bytes at a time, so channels that open later join in and a slow one holds up nothing.
import type { Channels } from '../ssh/channels.js';
import type { RemoteFs } from '../ssh/remote-fs.js';
import type { TransferState } from './progress.js';
import { sendWrites, type BufferPool, type Local } from './write-pipeline.js';

/** Bytes a channel claims at a time: 4 channel windows, so a claim costs a round trip of gap in 4 windows' worth. */
export const RANGE = 8 * 1024 * 1024;

/** Whether a file is worth spreading: more than two ranges, and more than one channel wanted. */
export function spreads(size: number, channelsWanted: number): boolean {
  return channelsWanted > 1 && size > 2 * RANGE;
}

/**
 * Writes all of `local` into `temp`, open as `handle` on `own`, over every channel open now or later. Resolves once
 * every WRITE was answered (each answer means the server wrote all of it: the caller's size check on `own` then
 * sees every byte), with the closes of the other channels' handles under way: they go out beside the caller's
 * size check rather than a round trip before it. Rejects with the first failure (after the writes under way were
 * answered and the other handles closed).
 */
export async function writeSpread(
  channels: Channels,
  own: RemoteFs,
  handle: Buffer,
  temp: string,
  local: Local,
  size: number,
  requestsInFlight: number,
  state: TransferState,
  buffers: BufferPool,
): Promise<{ othersClosed: Promise<void> }> {
  const count = Math.ceil(size / RANGE);
  let next = 0;
  let failure: unknown;
  const answered: Array<Promise<void>> = [];
  const run = async (rfs: RemoteFs, h: Buffer): Promise<void> => {
    for (let r = next++; r < count && failure === undefined; r = next++) {
      try {
        const { answered: done } = await sendWrites(rfs, h, temp, local, r * RANGE, Math.min(size, (r + 1) * RANGE), requestsInFlight, state, buffers);
        done.catch((err: unknown) => (failure ??= err));
        answered.push(done);
      } catch (err: unknown) {
        failure ??= err;
      }
    }
  };
  const { others, failure: joined } = await onEveryChannel(channels, own, handle, () => next < count, (rfs) => rfs.open(temp, 'r+'), run);
  failure ??= joined;
  await Promise.allSettled(answered);
  const closes = others.map((o) => o.rfs.close(o.handle, temp));
  if (failure !== undefined) {
    await Promise.allSettled(closes);
    throw failure;
  }
  state.emit({ kind: 'debug', message: `${temp}: ${count} ranges of ${RANGE / 1024 / 1024} MiB written over ${others.length + 1} SFTP channel${others.length === 0 ? '' : 's'}` });
  return { othersClosed: Promise.all(closes).then(() => undefined) };
}

/** The other channels that joined a spread file, each with its own handle on it (for the caller to close). */
export type Joined = Array<{ rfs: RemoteFs; handle: Buffer }>;

/**
 * Runs `run` on `own` with `handle`, and on every other channel open now or later while `more()` says work is left,
 * with the handle `open` gives it there. Resolves once every run has ended, with the channels that joined and the
 * first failure to open or run.
 */
export async function onEveryChannel(
  channels: Channels,
  own: RemoteFs,
  handle: Buffer,
  more: () => boolean,
  open: (rfs: RemoteFs) => Promise<Buffer>,
  run: (rfs: RemoteFs, handle: Buffer) => Promise<void>,
): Promise<{ others: Joined; failure: unknown }> {
  let failure: unknown;
  const others: Joined = [];
  const helpers: Array<Promise<void>> = [];
  const unsubscribe = channels.each((rfs) => {
    if (rfs === own || !more()) return;
    helpers.push(
      open(rfs).then(async (h) => {
        others.push({ rfs, handle: h });
        await run(rfs, h);
      }),
    );
  });
  try {
    await run(own, handle).catch((err: unknown) => (failure ??= err));
    for (let waited = 0; waited < helpers.length; ) {
      const batch = helpers.length;
      const results = await Promise.allSettled(helpers);
      for (const r of results) if (r.status === 'rejected') failure ??= r.reason;
      waited = batch;
    }
  } finally {
    unsubscribe();
  }
  return { others, failure };
}
