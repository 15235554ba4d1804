// Stand-ins for the unit tests of the SFTP channels (Channels, spread): no connection, no server.
import type { Sftp } from '../../../src/ssh/sftp/client.js';
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';

/** An SFTP stand-in: RemoteFs only reads its limits at construction. */
export const fakeSftp = (): Sftp => ({}) as unknown as Sftp;
/** A connection that is never lost. */
export const never = new Promise<never>(() => undefined);
/** The first channel: only what Channels reads of it (its probe is answered at once but times nothing). */
export const first = { name: 'first', pending: 0, lastActivity: 0, fastestMs: Infinity, realpath: () => Promise.resolve('/') } as unknown as RemoteFs;

/**
 * A first channel whose requests take `ms` to answer, timed as RemoteFs times them (its quickest answer, which
 * Channels reads as the round trip); `fastestMs` starts as a quicker answer seen before, if given.
 */
export function answeringIn(ms: number, fastestMs = Infinity): RemoteFs {
  const fake = {
    pending: 0,
    lastActivity: 0,
    fastestMs,
    realpath: async (): Promise<string> => {
      const sent = Date.now();
      await new Promise((resolve) => setTimeout(resolve, ms));
      fake.fastestMs = Math.min(fake.fastestMs, Date.now() - sent);
      return '/';
    },
  };
  return fake as unknown as RemoteFs;
}
