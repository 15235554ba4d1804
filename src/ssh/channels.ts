// Several SFTP channels on the one SSH connection: one authentication, one TCP connection (what the throttle and
// the server's MaxStartups count), but N sftp-server processes and N channel windows, so a transfer is capped
// neither by one window per round trip (OpenSSH's 2 MiB: 42 MB/s at 50 ms) nor by one single-threaded server.
import type { Client } from 'ssh2';
import type { EventSink } from '../log/events.js';
import { RemoteFs } from './remote-fs.js';
import { SftpClient, type Sftp } from './sftp/client.js';
import type { WriteBatch } from './write-batch.js';

/**
 * Below this round trip one channel is not window-bound (2 MiB per round trip is 400 MB/s at 5 ms, beyond what one
 * connection's ciphers move): extra channels would only cost the server CPU (on loopback, 512 MiB took 3.9 s over
 * 4 channels against 2.7 s over one, on 2 cores).
 */
export const MIN_RTT_MS = 5;
/** OpenSSH's channel window: what one channel has in flight per round trip. */
const WINDOW = 2 * 1024 * 1024;

/** The work a transfer asks the channels for (Channels.wantFor). */
interface Work {
  bytes: number;
  files: number;
  filesInFlight: number;
}

/**
 * How long one channel takes for `work` at this round trip, as far as round trips go: a window of bytes, or a
 * wave of files in flight (an open, then the rest of each file), per round trip. The server's own time is left
 * out, so this errs towards one channel.
 */
export function oneChannelMs(work: Work, rttMs: number): number {
  return Math.max(work.bytes / WINDOW, work.files / work.filesInFlight) * rttMs;
}

/** The SFTP channels of one connection: the first is open when the session is; the others open in the background. */
export class Channels {
  private readonly open: RemoteFs[];
  private readonly listeners = new Set<(rfs: RemoteFs) => void>();
  private opening: Promise<void> = Promise.resolve();
  /** Opens the channels offered and not yet asked for. */
  private offered: (() => void) | undefined;
  /** The probe's answer (its time lands in the first channel's fastestMs), and when it was sent. */
  private probe: Promise<void> | undefined;
  private probeSentAt: number | undefined;
  /** Set once the session is being closed: a channel still opening then fails, and that is no refusal. */
  private stopped = false;
  /** What the transfer asked for (wantFor), weighed against what a channel costs to open, and when. */
  private work: Work | undefined;
  private workAt = Date.now();

  constructor(
    readonly first: RemoteFs,
    private readonly lost: Promise<never>,
    private readonly batch?: WriteBatch,
    /**
     * How long the first channel took from the request to the server's VERSION: what another one costs (a promise
     * while the first requests go out with INIT; it is in before anything sent after INIT is answered).
     */
    private readonly openMs: number | Promise<number> = 0,
  ) {
    this.open = [first];
    first.roundTripMs = () => this.roundTripSoFar();
    // A connection that is lost fails the channels still opening: no refusal either.
    lost.catch(() => this.stop());
  }

  /**
   * Offers up to `extra` more channels, opened once the work asks for them (want()), or at once when `forced`
   * (--channels given). The round trip that decides whether they help is measured now, beside the work's first
   * requests, so that asking costs nothing more.
   */
  offer(extra: number, openOne: () => Promise<Sftp>, emit: EventSink, where: string, minRttMs = MIN_RTT_MS, forced = false): void {
    // Timed in any case: the round trip also sizes the small files' writes each channel keeps in flight.
    void this.sendProbe();
    if (extra <= 0) return;
    this.offered = () => this.grow(extra, openOne, emit, where, minRttMs);
    if (forced) this.want();
  }

  /**
   * Opens the channels offered when the work is more than one channel moves while they open: over 4 windows of
   * bytes (OpenSSH's 2 MiB each) or two waves of files, and (weighed once the round trip is known) over twice what
   * the first channel took to open. Each costs the server a login shell and a few round trips, and helps only with
   * the work left once it is open: against a server whose shell starts slowly, a tree that one channel moves in a
   * few round trips would only wait for them and share its CPU with their starts.
   */
  wantFor(bytes: number, files: number, filesInFlight: number): void {
    this.work = { bytes, files, filesInFlight };
    this.workAt = Date.now();
    if (bytes > 4 * WINDOW || files > 2 * filesInFlight) this.want();
  }

  /** The work is big enough for more channels: opens those offered (once). */
  want(): void {
    const open = this.offered;
    this.offered = undefined;
    open?.();
  }

  /** The first request on the first channel once the server answered INIT: its answer takes a round trip. */
  private sendProbe(): Promise<void> {
    // Sent once the server's VERSION is in: requests sent with INIT wait for sftp-server to start, which is no
    // round trip. Any answer times the round trip (RemoteFs.fastestMs).
    this.probe ??= this.first.ready.then(
      () => {
        this.probeSentAt = Date.now();
        return this.first.realpath('.').then(
          () => undefined,
          () => undefined,
        );
      },
      () => undefined,
    );
    return this.probe;
  }

  /**
   * The round trip as far as known: the quickest answer on any channel, the probe's included (which can wait behind
   * the server's work on requests sent before it, or behind the client's), or while none has come, at least as long
   * as the probe has been waiting (0 before it).
   */
  private roundTripSoFar(): number {
    let fastest = Infinity;
    for (const rfs of this.open) fastest = Math.min(fastest, rfs.fastestMs);
    return fastest < Infinity ? fastest : this.probeSentAt === undefined ? 0 : Date.now() - this.probeSentAt;
  }

  /**
   * Opens up to `extra` more channels once the first has answered a request, while the transfer goes on over those
   * already open: the transfer never waits for them. Each costs the server an sftp-server start (through the user's
   * login shell) and a few round trips, and helps only with the work left once it is open. Asked for explicitly
   * (minRttMs 0) they open all at once; otherwise one, then twice as many as are open, for as long as the work left
   * (as one channel would take it) is over twice what the last ones took to open: on a server whose starts
   * contend for its CPU, three shells at once took four times as long as one. A server that refuses some
   * (MaxSessions) gets fewer: a -v note, not a failure.
   */
  grow(extra: number, openOne: () => Promise<Sftp>, emit: EventSink, where: string, minRttMs = MIN_RTT_MS): void {
    if (extra <= 0) return;
    this.opening = (async () => {
      if (minRttMs > 0) await this.sendProbe();
      const rttMs = minRttMs > 0 ? this.roundTripSoFar() : 0;
      if (rttMs < minRttMs) {
        emit({ kind: 'debug', message: `round trip to ${where} ${rttMs} ms: one channel's window (2 MiB a round trip) does not limit this link, so no extra SFTP channels (each costs the server an sftp-server)` });
        return;
      }
      const alone = minRttMs > 0 && this.work ? oneChannelMs(this.work, rttMs) : Infinity;
      // A first channel that failed to start fails the transfer; here it only means no timing.
      let lastOpenMs = await Promise.resolve(this.openMs).catch(() => 0);
      const refusals: string[] = [];
      let asked = 0;
      for (let left = extra; left > 0 && refusals.length === 0 && !this.stopped; ) {
        const leftMs = alone - (Date.now() - this.workAt);
        if (leftMs < 2 * lastOpenMs) {
          const open = this.open.length === 1 ? 'the first' : `the last of ${this.open.length}`;
          emit({ kind: 'debug', message: `one SFTP channel would move what is left in about ${Math.max(0, Math.round(leftMs))} ms at a ${rttMs} ms round trip, and ${open} took ${lastOpenMs} ms to open: no more channels` });
          break;
        }
        const n = alone === Infinity ? left : Math.min(left, this.open.length);
        left -= n;
        asked += n;
        const started = Date.now();
        await Promise.all(Array.from({ length: n }, () => this.openAnother(openOne, refusals)));
        lastOpenMs = Date.now() - started;
      }
      if (this.stopped) return;
      if (refusals.length > 0) {
        // Looked at once the turn is over: a lost connection fails the opens before it reports itself.
        await new Promise((resolve) => setImmediate(resolve));
        if (!this.stopped) emit({ kind: 'debug', message: `${where} refused ${refusals.length} extra SFTP channel${refusals.length === 1 ? '' : 's'} (${refusals[0]}): the server's MaxSessions may be lower; going on with ${this.open.length}` });
      }
      if (!this.stopped && asked > 0) emit({ kind: 'debug', message: `${this.open.length} SFTP channel${this.open.length === 1 ? '' : 's'} open to ${where}` });
    })();
  }

  private async openAnother(openOne: () => Promise<Sftp>, refusals: string[]): Promise<void> {
    try {
      const rfs = new RemoteFs(await openOne(), this.lost, this.batch, this.first.maxLength);
      rfs.roundTripMs = () => this.roundTripSoFar();
      if (this.stopped) return;
      this.open.push(rfs);
      for (const listener of this.listeners) listener(rfs);
    } catch (err: unknown) {
      refusals.push(err instanceof Error ? err.message : String(err));
    }
  }

  /** The session is closing: channels that fail to open from now on are not reported. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once every channel asked for has opened or been refused. */
  settled(): Promise<void> {
    return this.opening;
  }

  get all(): readonly RemoteFs[] {
    return this.open;
  }

  /** Calls `listener` for each channel open now and for each that opens later; returns the unsubscribe. */
  each(listener: (rfs: RemoteFs) => void): () => void {
    for (const rfs of [...this.open]) listener(rfs);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Requests sent and not yet answered, on all channels (the stall watchdog looks only when some are). */
  get pending(): number {
    return this.open.reduce((sum, rfs) => sum + rfs.pending, 0);
  }

  /** When any channel last had an answer. */
  get lastActivity(): number {
    return this.open.reduce((latest, rfs) => Math.max(latest, rfs.lastActivity), 0);
  }
}

/**
 * Asks for one more SFTP channel on `client` (`openSSH`: the server's version string says OpenSSH; `early`: hand it
 * over before the server's VERSION: SftpClient.open).
 */
export function openSftp(client: Client, openSSH: boolean, early = false): Promise<SftpClient> {
  const opening = SftpClient.open(client, openSSH, early);
  opening.catch(() => undefined);
  return opening;
}
