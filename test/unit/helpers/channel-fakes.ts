// Stand-ins for the unit tests of the SFTP channels (Channels, spread): no connection, no server.
import type { SFTPWrapper } from 'ssh2';
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';

/** An SFTP stand-in: RemoteFs only reads its limits at construction. */
export const fakeSftp = (): SFTPWrapper => ({}) as unknown as SFTPWrapper;
/** A connection that is never lost. */
export const never = new Promise<never>(() => undefined);
/** The first channel: only what Channels reads of it. */
export const first = { name: 'first', pending: 0, lastActivity: 0 } as unknown as RemoteFs;
