// Stand-ins for the unit tests of the SFTP channels (Channels, spread): no connection, no server.
import type { Sftp } from '../../../src/ssh/sftp/client.js';
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';

/** `requests` as an SFTP channel that has started (its VERSION in): what RemoteFs needs of one besides them. */
export const asSftp = (requests: object): Sftp => ({ ready: Promise.resolve(), ...requests }) as unknown as Sftp;
/** An SFTP stand-in for a channel that opens and is never asked anything. */
export const fakeSftp = (): Sftp => asSftp({});
/** A connection that is never lost. */
export const never = new Promise<never>(() => undefined);
/** The first channel: only what Channels reads of it (its probe is answered at once but times nothing). */
export const first = { name: 'first', pending: 0, lastActivity: 0, fastestMs: Infinity, ready: Promise.resolve(), realpath: () => Promise.resolve('/') } as unknown as RemoteFs;

/**
 * A first channel whose requests take `ms` to answer, timed as RemoteFs times them (its quickest answer, which
 * Channels reads as the round trip); `fastestMs` starts as a quicker answer seen before, if given.
 */
export function answeringIn(ms: number, fastestMs = Infinity): RemoteFs {
  const fake = {
    pending: 0,
    lastActivity: 0,
    fastestMs,
    ready: Promise.resolve(),
    realpath: async (): Promise<string> => {
      const sent = Date.now();
      await new Promise((resolve) => setTimeout(resolve, ms));
      fake.fastestMs = Math.min(fake.fastestMs, Date.now() - sent);
      return '/';
    },
  };
  return fake as unknown as RemoteFs;
}
