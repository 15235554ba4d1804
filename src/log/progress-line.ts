// The CLI's progress display, from the library's transfer-start / progress / transfer-end events: a live line
// redrawn in place on a TTY, one plain line every --progress-interval otherwise (CI logs).
import type { SafeScpEvent } from './events.js';

export interface ProgressFigures {
  bytes: number;
  bytesTotal?: number | undefined;
  files: number;
  filesTotal?: number | undefined;
  /** Recent transfer rate; undefined until there is enough time to measure it. */
  bytesPerSecond?: number | undefined;
  /** Hosts being copied to at once (shown when more than one). */
  hosts?: number | undefined;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` -> `1.5 KiB`. */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** `65_000` -> `1m05s`, for an ETA. */
export function formatEta(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `safe-scp: 42.0 MiB of 100.0 MiB (42%), 3.40 MiB/s, ETA 17s, 3 of 10 files`; without totals bytes and rate only. */
export function formatProgress(f: ProgressFigures): string {
  const parts: string[] = [];
  if (f.bytesTotal !== undefined) {
    const done = Math.min(f.bytes, f.bytesTotal);
    const percent = f.bytesTotal > 0 ? Math.floor((done / f.bytesTotal) * 100) : 100;
    parts.push(`${formatBytes(done)} of ${formatBytes(f.bytesTotal)} (${percent}%)`);
  } else {
    parts.push(formatBytes(f.bytes));
  }
  parts.push(f.bytesPerSecond === undefined ? 'measuring rate' : `${formatBytes(f.bytesPerSecond)}/s`);
  if (f.bytesTotal !== undefined && f.bytesPerSecond !== undefined && f.bytesPerSecond > 0) {
    parts.push(`ETA ${formatEta((Math.max(0, f.bytesTotal - f.bytes) / f.bytesPerSecond) * 1000)}`);
  }
  const files = f.filesTotal !== undefined ? `${Math.min(f.files, f.filesTotal)} of ${f.filesTotal}` : String(f.files);
  parts.push(`${files} file${(f.filesTotal ?? f.files) === 1 ? '' : 's'}`);
  if ((f.hosts ?? 1) > 1) parts.push(`${f.hosts} hosts`);
  return `safe-scp: ${parts.join(', ')}`;
}

export interface ProgressClock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realClock: ProgressClock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export interface ProgressLineOptions {
  /** stderr is a terminal: redraw one line in place; otherwise print a plain line every `intervalMs`. */
  readonly tty: boolean;
  /** Plain-line period; 0 turns progress off (both kinds). */
  readonly intervalMs: number;
  readonly write: (text: string) => void;
  /** Terminal width, so the live line never wraps (a wrapped line cannot be redrawn in place). */
  readonly columns?: () => number | undefined;
  readonly clock?: ProgressClock;
}

interface HostProgress {
  bytes: number;
  files: number;
  bytesTotal: number | undefined;
  filesTotal: number | undefined;
  active: boolean;
}

/** How often the live line is redrawn, and how far back the rate looks. */
const REDRAW_MS = 250;
const RATE_WINDOW_MS = 5_000;
const CLEAR = '\r\u001b[2K';

export class ProgressLine {
  private readonly hosts = new Map<string, HostProgress>();
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  private readonly clock: ProgressClock;
  private timer: unknown;
  private drawn = false;

  constructor(private readonly options: ProgressLineOptions) {
    this.clock = options.clock ?? realClock;
  }

  onEvent(event: SafeScpEvent): void {
    if (this.options.intervalMs <= 0) return;
    if (event.kind !== 'transfer-start' && event.kind !== 'progress' && event.kind !== 'transfer-end') return;
    const key = `${event.host}:${event.port}`;
    const host = this.hosts.get(key) ?? { bytes: 0, files: 0, bytesTotal: undefined, filesTotal: undefined, active: false };
    this.hosts.set(key, host);
    if (event.kind === 'transfer-start') {
      host.active = true;
      host.bytesTotal = event.bytesTotal;
      host.filesTotal = event.filesTotal;
      if (this.timer === undefined) this.start();
    } else {
      host.bytes = event.bytes;
      host.files = event.files;
      if (event.kind === 'transfer-end') host.active = false;
    }
    this.sample();
    if (![...this.hosts.values()].some((h) => h.active)) this.stop();
  }

  /** The figures now, summed over hosts (totals only when every host knows its own). */
  figures(): ProgressFigures {
    const hosts = [...this.hosts.values()];
    const sum = (pick: (h: HostProgress) => number | undefined): number | undefined =>
      hosts.every((h) => pick(h) !== undefined) ? hosts.reduce((n, h) => n + (pick(h) ?? 0), 0) : undefined;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const span = first && last ? last.at - first.at : 0;
    return {
      bytes: hosts.reduce((n, h) => n + (h.bytesTotal === undefined ? h.bytes : Math.min(h.bytes, h.bytesTotal)), 0),
      bytesTotal: sum((h) => h.bytesTotal),
      files: hosts.reduce((n, h) => n + h.files, 0),
      filesTotal: sum((h) => h.filesTotal),
      bytesPerSecond: first && last && span >= 1000 ? ((last.bytes - first.bytes) * 1000) / span : undefined,
      hosts: hosts.length,
    };
  }

  /** Removes the live line, if one is drawn, so that another line can be printed; the next tick draws it again. */
  clear(): void {
    if (!this.drawn) return;
    this.options.write(CLEAR);
    this.drawn = false;
  }

  /** At the end of the run: no line left behind, no timer left running. */
  close(): void {
    this.stop();
    this.clear();
  }

  private sample(): void {
    const now = this.clock.now();
    const bytes = [...this.hosts.values()].reduce((n, h) => n + h.bytes, 0);
    this.samples.push({ at: now, bytes });
    while (this.samples.length > 2 && (this.samples[1]?.at ?? now) <= now - RATE_WINDOW_MS) this.samples.shift();
  }

  private start(): void {
    this.timer = this.clock.setInterval(() => this.tick(), this.options.tty ? REDRAW_MS : this.options.intervalMs);
  }

  private stop(): void {
    if (this.timer !== undefined) this.clock.clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private tick(): void {
    this.sample();
    const line = formatProgress(this.figures());
    if (!this.options.tty) {
      this.options.write(`${line}\n`);
      return;
    }
    // A pty without a size (script(1) run from a pipe) reports 0 columns.
    const width = (this.options.columns?.() || 80) - 1;
    this.options.write(`${CLEAR}${line.length > width ? line.slice(0, Math.max(0, width)) : line}`);
    this.drawn = true;
  }
}
