// A small file's requests after its open (write, attributes, size check, close); its write waits for room (write-room.ts).
import type { Sftp } from './sftp/client.js';
import type { SetAttributes, Stats } from './sftp/wire.js';
import { classifySftpError } from '../classify.js';
import type { SafeScpError } from '../errors.js';
import type { WriteBatch } from './write-batch.js';
import type { WriteRoom } from './write-room.js';

/**
 * Sends an open small file's WRITE (once `room` has space for it), attributes, FSTAT and CLOSE back to back (a
 * server handles one handle's requests in order) and calls `done` once all are answered: with the first failure
 * in that order, else the FSTAT. One callback for the lot: per request, a promise of its own cost more client CPU
 * than the request (a 2000-file tree is 10,000).
 */
export function sendSmall(
  sftp: Sftp,
  handle: Buffer,
  file: { path: string; data: Buffer; attrs: SetAttributes | undefined },
  via: { room: WriteRoom; batch: WriteBatch; answered: () => void },
  done: (err: Error | null, stats?: Stats) => void,
): void {
  const { path, data, attrs } = file;
  const failures: Array<SafeScpError | undefined> = [];
  let stats: Stats | undefined;
  let left = 0;
  const step = (i: number, op: string) => {
    left++;
    return (stepErr: Error | null, value?: Stats): void => {
      via.answered();
      if (stepErr) failures[i] = classifySftpError(stepErr, op, path);
      else if (value !== undefined) stats = value;
      if (--left > 0) return;
      done(failures.find((f) => f !== undefined) ?? null, stats);
    };
  };
  const wrote = data.length > 0 ? step(0, 'write') : undefined;
  const setAttrs = attrs ? step(1, 'setstat') : undefined;
  const stat = step(2, 'fstat');
  const closed = step(3, 'close');
  via.room.take(data.length, (free) => {
    via.batch();
    try {
      if (wrote)
        sftp.write(handle, data, 0, data.length, 0, (e) => {
          free();
          wrote(e);
        });
      else free();
      if (attrs && setAttrs) sftp.fsetstat(handle, attrs, (e) => setAttrs(e));
      sftp.fstat(handle, stat);
      sftp.close(handle, (e) => closed(e));
    } catch (thrown: unknown) {
      free();
      // Not expected (a request that cannot be sent is answered with an error); the answers still to come are ignored.
      done(thrown instanceof Error ? thrown : new Error(String(thrown)));
    }
  });
}
