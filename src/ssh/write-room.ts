// The room a channel's writes wait for: how many bytes of them may be unanswered at once, by the round trip.

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

/**
 * How many bytes of a big file's writes (requests of up to 254 KiB) one channel keeps unanswered at a round trip of
 * `rttMs`: 512 KiB, and 48 KiB more per millisecond, up to OpenSSH's 2 MiB window (from ~32 ms on). sftp-server
 * handles a request once all of it has come, so these do not pile up the way small ones do; but what reaches it
 * faster than it writes still waits in its input buffer, copied again each time that buffer grows or is compacted.
 * On loopback 512 MiB took 1.8-1.95 s with 256 KiB-1 MiB in flight against 2.4-2.55 s with 2 MiB (`scp`: 2.3-2.6 s).
 * Over a link, what is in flight is mostly on the wire. A channel, not a file: a tree of 1 MiB files otherwise kept
 * 512 KiB in flight for every file open on it.
 */
export function largeWritesInFlight(rttMs: number): number {
  return Math.min(2 * 1024 * 1024, 512 * 1024 + Math.round(rttMs * 48 * 1024));
}

/** One channel's writes sent and not yet answered, within a budget, and the writes waiting for room. */
export class WriteRoom {
  private bytes = 0;
  private readonly waiting: Array<{ bytes: number; send: (free: () => void) => void }> = [];

  /** `budget`: the bytes allowed unanswered now (smallWritesInFlight or largeWritesInFlight at the round trip). */
  constructor(private readonly budget: () => number) {}

  /**
   * Runs `send` once `bytes` more fit in the budget (at once when nothing is in flight), in the order asked; `send`
   * gets the function that gives the room back once the write is answered.
   */
  take(bytes: number, send: (free: () => void) => void): void {
    this.waiting.push({ bytes, send });
    this.admit();
  }

  private admit(): void {
    const room = this.budget();
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
