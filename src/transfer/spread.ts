// Deals a transfer's items over every SFTP channel of the connection, channels that open later joining in.
import type { Channels } from '../ssh/channels.js';
import type { RemoteFs } from '../ssh/remote-fs.js';

/**
 * Runs `work` over `items` on every channel, `perChannel(rfs)` slots on each, channels that open later joining in;
 * the first failure stops new work and is thrown once the work under way has ended. A slot holds an item until
 * `release` is called (or the work ends): an item that then only waits for its last answers lets the next one
 * start, so a small file's open goes out while the one before it closes. At most two items share a slot.
 */
export async function spread<T>(
  channels: Channels,
  items: readonly T[],
  perChannel: (rfs: RemoteFs) => number,
  work: (item: T, rfs: RemoteFs, release: () => void) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const running: Array<Promise<void>> = [];
  const worker = async (rfs: RemoteFs): Promise<void> => {
    let finishing: Promise<void> = Promise.resolve();
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      const done = work(item, rfs, release).catch((err: unknown) => {
        if (!failed) {
          failed = true;
          failure = err;
        }
      });
      await Promise.race([released, done]);
      await finishing;
      finishing = done;
    }
    await finishing;
  };
  const unsubscribe = channels.each((rfs) => {
    const n = Math.min(perChannel(rfs), items.length - next);
    for (let i = 0; i < n; i++) running.push(worker(rfs));
  });
  try {
    for (let waited = 0; waited < running.length; ) {
      const batch = running.length;
      await Promise.all(running);
      waited = batch;
    }
  } finally {
    unsubscribe();
  }
  if (failed) throw failure;
}
