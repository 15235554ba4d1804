// Linux /proc helpers so the harness can find and end exactly the processes it started (by PID).
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  ppid: number;
  /** One-letter state from /proc/PID/stat (`Z` = zombie, already dead). */
  state: string;
  /** Start time in clock ticks since boot: with the PID, identifies one process across PID reuse. */
  startTime: number;
}

/** Reads /proc/PID/stat; undefined when the process does not exist (or /proc is unavailable). */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." where comm may contain spaces and parentheses.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(' ');
  const state = fields[0];
  const ppid = Number(fields[1]);
  const startTime = Number(fields[19]);
  if (state === undefined || !Number.isFinite(ppid) || !Number.isFinite(startTime)) return undefined;
  return { pid, ppid, state, startTime };
}

/** True while the process exists and is not a zombie (and, if given, still has the same start time). */
export function isProcessAlive(pid: number, startTime?: number): boolean {
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** All live descendants of `root` (children, grandchildren, ...), deepest first. Bounded by /proc's size. */
export function descendantsOf(root: number): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const byParent = new Map<number, ProcStat[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat === undefined || stat.state === 'Z' || stat.state === 'X') continue;
    const siblings = byParent.get(stat.ppid) ?? [];
    siblings.push(stat);
    byParent.set(stat.ppid, siblings);
  }
  const found: ProcStat[] = [];
  const seen = new Set<number>([root]);
  let frontier = [root];
  for (let depth = 0; depth < 64 && frontier.length > 0; depth++) {
    const next: number[] = [];
    for (const pid of frontier) {
      for (const child of byParent.get(pid) ?? []) {
        if (seen.has(child.pid)) continue;
        seen.add(child.pid);
        found.push(child);
        next.push(child.pid);
      }
    }
    frontier = next;
  }
  return found.reverse();
}

/** Sends a signal to one PID, ignoring "no such process". Returns whether the signal was delivered. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
