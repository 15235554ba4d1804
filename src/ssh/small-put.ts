// A small file's requests after its open (write, attributes, size check, close), and the room its write waits for.
import type { Sftp } from './sftp/client.js';
import type { SetAttributes, Stats } from './sftp/wire.js';
import { classifySftpError } from '../classify.js';
import type { SafeScpError } from '../errors.js';
import type { WriteBatch } from './write-batch.js';

/**
 * How many bytes of small files' writes one channel keeps unanswered at a round trip of `rttMs`: what crosses the
 * link in that time at 16 MB/s, plus 256 KiB waiting at the server. OpenSSH's sftp-server reads 16 KiB from its
 * pipe for every request it handles, so requests smaller than that pile up in its input buffer, which grows 256
 * bytes at a time, each growth a copy of all of it: measured feeding sftp-server directly, 2000 files of 4 KiB
 * took 0.19 s with 32 files in flight and 1.1-2.0 s with 512; 2000 of 16 KiB 0.25 s with 64 and 3.2 s with 256.
 * Over a link the bytes on their way do not pile up, so the allowance grows with the round trip (1000 files of
 * 16 KiB: loopback 1.4 s with 256 KiB against 5.8-10.9 s without a limit; at 50 ms 2.6 s with 1 MiB, 3.2 s with
 * 512 KiB, 4.9 s with 256 KiB or without a limit).
 */
export function smallWritesInFlight(rttMs: number): number {
  return Math.min(2 * 1024 * 1024, 256 * 1024 + Math.round(rttMs * 16_000));
}

/** Small files' data sent on one channel and not yet answered, and the writes waiting for room. */
export class WriteRoom {
  private bytes = 0;
  private readonly waiting: Array<{ bytes: number; send: (free: () => void) => void }> = [];

  constructor(private readonly roundTripMs: () => number) {}

  /**
   * Runs `send` once `bytes` more fit in smallWritesInFlight (at once when nothing is in flight), in the order
   * asked; `send` gets the function that gives the room back once the write is answered.
   */
  take(bytes: number, send: (free: () => void) => void): void {
    this.waiting.push({ bytes, send });
    this.admit();
  }

  private admit(): void {
    const room = smallWritesInFlight(this.roundTripMs());
    for (let next = this.waiting[0]; next && (this.bytes === 0 || this.bytes + next.bytes <= room); next = this.waiting[0]) {
      this.waiting.shift();
      const { bytes, send } = next;
      this.bytes += bytes;
      let freed = false;
      send(() => {
        if (freed) return;
        freed = true;
        this.bytes -= bytes;
        this.admit();
      });
    }
  }
}

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
