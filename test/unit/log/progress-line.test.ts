// The progress display: figures and wording, the live TTY line (redrawn in place, cleared), plain CI lines.
import type { SafeScpEvent } from '../../../src/log/events.js';
import { ProgressLine, formatBytes, formatEta, formatProgress, type ProgressClock } from '../../../src/log/progress-line.js';

/** A clock the test moves by hand; interval callbacks fire as time passes. */
class FakeClock implements ProgressClock {
  time = 0;
  private timers = new Map<number, { fn: () => void; ms: number; next: number }>();
  private ids = 0;
  now = (): number => this.time;
  setInterval = (fn: () => void, ms: number): unknown => {
    const id = ++this.ids;
    this.timers.set(id, { fn, ms, next: this.time + ms });
    return id;
  };
  clearInterval = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };
  get running(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      const due = [...this.timers.values()].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.time = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.time = end;
  }
}

const MiB = 1024 * 1024;
const where = { host: 'web1', port: 22 };
const start = (bytesTotal?: number, filesTotal?: number): SafeScpEvent => ({ kind: 'transfer-start', ...where, ...(bytesTotal === undefined ? {} : { bytesTotal }), ...(filesTotal === undefined ? {} : { filesTotal }) });
const progress = (bytes: number, files: number): SafeScpEvent => ({ kind: 'progress', ...where, bytes, files });
const end = (bytes: number, files: number): SafeScpEvent => ({ kind: 'transfer-end', ...where, bytes, files, ok: true });

function setup(tty: boolean, intervalMs = 10_000) {
  const clock = new FakeClock();
  const out: string[] = [];
  const line = new ProgressLine({ tty, intervalMs, write: (t) => out.push(t), columns: () => 200, clock });
  return { clock, out, line };
}

describe('formatProgress', () => {
  test('with totals: bytes done of total, percent, rate, ETA, files done of total', () => {
    expect(formatProgress({ bytes: 42 * MiB, bytesTotal: 100 * MiB, files: 3, filesTotal: 10, bytesPerSecond: 2 * MiB })).toBe(
      'safe-scp: 42.0 MiB of 100.0 MiB (42%), 2.00 MiB/s, ETA 29s, 3 of 10 files',
    );
  });

  test('without totals (a download): bytes and rate only', () => {
    expect(formatProgress({ bytes: 1536, files: 1, bytesPerSecond: 512 })).toBe('safe-scp: 1.50 KiB, 512 B/s, 1 file');
  });

  test('units and ETA spelling', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(300 * MiB)).toBe('300.0 MiB');
    expect(formatEta(65_000)).toBe('1m05s');
    expect(formatEta(3_725_000)).toBe('1h02m');
  });
});

describe('ProgressLine without a terminal (CI log)', () => {
  test('one plain line per interval of transfer, with the figures, and nothing after the end', () => {
    const { clock, out, line } = setup(false, 10_000);
    line.onEvent(start(100 * MiB, 2));
    for (let s = 1; s <= 25; s++) {
      clock.advance(999);
      line.onEvent(progress(s * 2 * MiB, s >= 20 ? 1 : 0));
      clock.advance(1);
    }
    expect(out).toEqual([
      'safe-scp: 20.0 MiB of 100.0 MiB (20%), 2.00 MiB/s, ETA 40s, 0 of 2 files\n',
      'safe-scp: 40.0 MiB of 100.0 MiB (40%), 2.00 MiB/s, ETA 30s, 1 of 2 files\n',
    ]);
    line.onEvent(end(100 * MiB, 2));
    expect(clock.running).toBe(0);
    clock.advance(30_000);
    expect(out).toHaveLength(2);
  });

  test('a transfer shorter than the interval prints nothing; interval 0 turns it off', () => {
    const short = setup(false, 10_000);
    short.line.onEvent(start(MiB, 1));
    short.clock.advance(3000);
    short.line.onEvent(end(MiB, 1));
    expect(short.out).toEqual([]);
    const off = setup(false, 0);
    off.line.onEvent(start(MiB, 1));
    off.clock.advance(60_000);
    expect(off.out).toEqual([]);
    expect(off.clock.running).toBe(0);
  });
});

describe('ProgressLine on a terminal', () => {
  test('redraws one line in place (\\r, clear line) and clears it before other output and at the end', () => {
    const { clock, out, line } = setup(true);
    line.onEvent(start(10 * MiB, 1));
    clock.advance(2000);
    line.onEvent(progress(4 * MiB, 0));
    clock.advance(250);
    const drawn = out.filter((t) => t.startsWith('\r\u001b[2Ksafe-scp: '));
    expect(drawn.length).toBeGreaterThanOrEqual(8);
    expect(out.every((t) => !t.includes('\n'))).toBe(true);
    expect(drawn.at(-1)).toContain('4.00 MiB of 10.0 MiB (40%)');

    out.length = 0;
    line.clear();
    expect(out).toEqual(['\r\u001b[2K']);
    line.clear();
    expect(out).toHaveLength(1);

    clock.advance(250);
    out.length = 0;
    line.onEvent(end(10 * MiB, 1));
    expect(out).toEqual(['\r\u001b[2K']);
    expect(clock.running).toBe(0);
  });

  test('a line wider than the terminal is cut, so that it can be redrawn in place', () => {
    const clock = new FakeClock();
    const out: string[] = [];
    const line = new ProgressLine({ tty: true, intervalMs: 10_000, write: (t) => out.push(t), columns: () => 30, clock });
    line.onEvent(start(10 * MiB, 1));
    clock.advance(250);
    expect(out[0]?.replace('\r\u001b[2K', '').length).toBe(29);
    line.close();
    // A pty without a size reports 0 columns: the line is then cut at 79, not to nothing.
    const unsized = new ProgressLine({ tty: true, intervalMs: 10_000, write: (t) => out.push(t), columns: () => 0, clock });
    unsized.onEvent(start(10 * MiB, 1));
    clock.advance(250);
    // eslint-disable-next-line no-control-regex
    expect(out.at(-1)).toMatch(/^\r\u001b\[2Ksafe-scp: 0 B of 10\.0 MiB/);
    unsized.close();
  });

  test('several hosts are summed', () => {
    const { clock, line } = setup(true);
    line.onEvent(start(10 * MiB, 1));
    line.onEvent({ kind: 'transfer-start', host: 'web2', port: 22, bytesTotal: 10 * MiB, filesTotal: 1 });
    line.onEvent(progress(5 * MiB, 0));
    line.onEvent({ kind: 'progress', host: 'web2', port: 22, bytes: 10 * MiB, files: 1 });
    clock.advance(250);
    expect(formatProgress(line.figures())).toMatch(/^safe-scp: 15\.0 MiB of 20\.0 MiB \(75%\), .*1 of 2 files, 2 hosts$/);
    line.close();
  });
});
