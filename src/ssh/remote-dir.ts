// Listing a remote directory over one open handle: READDIRs two at a time, the CLOSE sent and not waited for.
import type { FileEntry, Stats } from './sftp/wire.js';
import { SafeScpError } from '../errors.js';

export interface RemoteEntry {
  readonly name: string;
  readonly attrs: Stats;
}

/** The requests a listing is made of, each already tied to the directory (RemoteFs supplies them). */
export interface DirRequests {
  open(): Promise<Buffer>;
  /** One READDIR: its names, or false at the end. */
  read(handle: Buffer): Promise<FileEntry[] | false>;
  close(handle: Buffer): Promise<void>;
}

/** Two READDIRs a round: a directory of up to 100,000 rounds' names (OpenSSH: 100 each) is listed. */
const MAX_ROUNDS = 100_000;

/**
 * A directory's entries ('.' and '..' left out). READDIRs go two at a time: a server answers one handle's requests
 * in order, and a directory that fits in one answer (OpenSSH sends up to 100 names) then ends with the second, a
 * round trip sooner. The CLOSE is sent, not waited for: the server handles it before anything sent later.
 */
export async function listDirectory(path: string, requests: DirRequests): Promise<RemoteEntry[]> {
  const handle = await requests.open();
  const entries: RemoteEntry[] = [];
  try {
    // Bounded: each round either ends the listing or brings names; a server that never says EOF is cut off.
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const answers = await Promise.all([requests.read(handle), requests.read(handle)]);
      for (const list of answers) {
        if (list === false) return entries;
        for (const e of list) if (e.filename !== '.' && e.filename !== '..') entries.push({ name: e.filename, attrs: e.attrs });
      }
    }
    throw new SafeScpError('remote-failure', `listing ${path} did not end after ${2 * MAX_ROUNDS} reads`, { phase: 'transfer', remotePath: path });
  } finally {
    requests.close(handle).catch(() => undefined);
  }
}
