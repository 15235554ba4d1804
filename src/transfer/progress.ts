// Shared per-run transfer state: what is done (kept across retries), temp files to clean, progress time.
import type { BandwidthLimiter } from '../throttle/bandwidth.js';
import type { EventSink } from '../log/events.js';

export interface FileResult {
  source: string;
  target: string;
  bytes: number;
  verified: boolean;
  /** --update: not sent, the server's copy has the same size and mtime. */
  skipped?: boolean;
  /** --inplace: written over the existing file, not replaced atomically. */
  atomic?: boolean;
}

/** A file written and verified under its staged name, waiting for the commit burst (staging.ts). */
export interface StagedFile {
  readonly staged: string;
  readonly remote: string;
  readonly result: FileResult;
}

/** The least time between two `progress` events of one host. */
const PROGRESS_EVENT_MS = 200;

export class TransferState {
  /** Targets already written and verified; a retry skips them. */
  readonly done = new Map<string, FileResult>();
  /** Remote or local temporary files that may still exist (removed on the next chance). */
  readonly temps = new Set<string>();
  /** --update: files not sent because the server's copy has the same size and mtime. */
  readonly skipped = new Map<string, FileResult>();
  /** Files verified under their staged name and not yet renamed into place, by final name. */
  readonly staged = new Map<string, StagedFile>();
  /** The last commit burst: how many files it renamed and how long it took. */
  commit: { files: number; durationMs: number } | undefined;
  lastProgress = Date.now();
  bytes = 0;

  /** Files written (or downloaded) so far, counted from the `file-done` events. */
  files = 0;
  private lastProgressEvent = 0;

  /** Set per attempt: when it aborts, transfers stop between requests and remove their temp files. */
  signal: AbortSignal | undefined;

  readonly emit: EventSink;

  /** `target`: the host this state belongs to; with it, `progress` events are emitted (a few per second at most). */
  constructor(
    emit: EventSink,
    readonly limiter: BandwidthLimiter,
    readonly target?: { readonly host: string; readonly port: number },
  ) {
    this.emit = (event) => {
      if (event.kind === 'file-done') {
        this.files++;
        this.progressEvent(true);
      }
      emit(event);
    };
  }

  /** Throws the abort reason when the run was interrupted; called between requests. */
  checkAborted(): void {
    if (this.signal?.aborted) throw this.signal.reason;
  }

  progress(bytes: number): void {
    this.bytes += bytes;
    this.lastProgress = Date.now();
    this.progressEvent(false);
  }

  /** A transfer attempt starts; totals when known up front (an upload knows its local tree). */
  started(totals: { bytesTotal?: number; filesTotal?: number }): void {
    if (this.target) this.emit({ kind: 'transfer-start', host: this.target.host, port: this.target.port, ...totals });
  }

  ended(ok: boolean): void {
    if (this.target) this.emit({ kind: 'transfer-end', host: this.target.host, port: this.target.port, bytes: this.bytes, files: this.files, ok });
  }

  private progressEvent(force: boolean): void {
    if (!this.target || (!force && this.lastProgress - this.lastProgressEvent < PROGRESS_EVENT_MS)) return;
    this.lastProgressEvent = this.lastProgress;
    this.emit({ kind: 'progress', host: this.target.host, port: this.target.port, bytes: this.bytes, files: this.files });
  }
}

/** A temporary name beside the final one: same directory, so the rename stays on one file system. */
export function tempName(base: string): string {
  const rand = Math.random().toString(36).slice(2, 10);
  return `.${base.slice(0, 180)}.safe-scp-${rand}.part`;
}

/** Runs `work` over `items` with at most `limit` at once; the first failure stops new work and is thrown. */
export async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const current = items[next++] as T;
      try {
        await work(current);
      } catch (err: unknown) {
        if (!failed) {
          failed = true;
          failure = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}
