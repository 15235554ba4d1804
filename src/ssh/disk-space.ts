// After a write failed with SFTP's bare FAILURE: ask the server how much space is left, to tell a full disk.
import { classifyWithSpace, isGenericSftpFailure, type RemoteSpace } from '../classify.js';
import type { SafeScpError } from '../errors.js';

/** The one request this needs (RemoteFs has it; tests pass a fake). */
export interface SpaceQuery {
  statvfs(path: string): Promise<RemoteSpace>;
}

/**
 * `err` as the user should see it: remote-disk-full when the write into `dir` of a `size`-byte file failed with a
 * generic FAILURE and statvfs@openssh.com shows the filesystem full; otherwise `err` unchanged (also when the
 * server does not offer statvfs, or the connection is gone). Call it before removing the temporary file: removing
 * it frees the space that tells.
 */
export async function explainWriteFailure(rfs: SpaceQuery, err: unknown, dir: string, size: number): Promise<unknown> {
  if (!isGenericSftpFailure(err)) return err;
  const space = await rfs.statvfs(dir).catch(() => undefined);
  return classifyWithSpace(err as SafeScpError, space, dir, size);
}
