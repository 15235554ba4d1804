// Running one measured process for the benchmark: wall time, peak RSS and CPU of the process and its waited-for
// children (GNU time when present, else /proc), the machine's busy and stolen CPU during the run, and a bound.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MB, ROOT } from './common.js';

const GNU_TIME = '/usr/bin/time';

export type { Sample } from './common.js';
import type { Sample } from './common.js';

export interface RunOutput extends Sample {
  code: number | null;
  output: string;
}

/** The measurements of a run, without its exit code and output. */
export function sampleOf(r: RunOutput): Sample {
  return { wallS: r.wallS, peakRssMB: r.peakRssMB, cpuS: r.cpuS, machineCpuS: r.machineCpuS, stealS: r.stealS, benchCpuS: r.benchCpuS };
}

/** Busy and stolen ticks (USER_HZ = 100 on Linux) of all CPUs. */
function machineTicks(): { busy: number; steal: number } {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal
    return { busy: (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) + (fields[6] ?? 0) + (fields[7] ?? 0), steal: fields[7] ?? 0 };
  } catch {
    return { busy: 0, steal: 0 };
  }
}

/** cutime + cstime of this process: the CPU of children already waited for (fallback without GNU time). */
function childTicks(): number {
  const text = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[13]) + Number(fields[14]);
}

function vmHwmKb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const hasGnuTime = fs.existsSync(GNU_TIME);
let current: { pid: number } | undefined;
let interrupted = false;

export function run(file: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string }): Promise<RunOutput> {
  const timeFile = path.join(os.tmpdir(), `safe-scp-bench-time-${process.pid}`);
  const argv = hasGnuTime ? ['-f', '%M %U %S', '-o', timeFile, file, ...args] : [...args];
  const command = hasGnuTime ? GNU_TIME : file;
  const ticksBefore = hasGnuTime ? 0 : childTicks();
  const before = machineTicks();
  const started = process.hrtime.bigint();
  const selfBefore = process.cpuUsage();
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout can end the whole run (scp and the ssh it started) by its id.
    const child = spawn(command, argv, { env: options.env, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error(`cannot start ${file}`));
      return;
    }
    current = { pid };
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-16384);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let hwm = 0;
    const poll = hasGnuTime ? undefined : setInterval(() => (hwm = Math.max(hwm, vmHwmKb(pid))), 10);
    const timer = setTimeout(() => {
      output += `\n[bench: killed after ${options.timeoutMs} ms]`;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      current = undefined;
      reject(err);
    });
    child.on('close', (code) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      const self = process.cpuUsage(selfBefore);
      const benchCpuS = (self.user + self.system) / 1e6;
      const after = machineTicks();
      const machineCpuS = (after.busy - before.busy) / 100;
      const stealS = (after.steal - before.steal) / 100;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      current = undefined;
      let peakRssMB = (hwm * 1024) / MB;
      let cpuS = (childTicks() - ticksBefore) / 100;
      if (hasGnuTime) {
        const lines = fs.readFileSync(timeFile, 'utf8').trim().split('\n');
        fs.rmSync(timeFile, { force: true });
        const [rss, user, sys] = (lines.at(-1) ?? '').trim().split(/\s+/).map(Number);
        // GNU time reports exit status on an extra line; the command's own exit code is what matters.
        const failed = lines.find((l) => /exited with non-zero status (\d+)/.test(l));
        if (failed) code = Number(/(\d+)\s*$/.exec(failed)?.[1] ?? code);
        peakRssMB = ((rss ?? 0) * 1024) / MB;
        cpuS = (user ?? 0) + (sys ?? 0);
      }
      resolve({ code, output, wallS, peakRssMB, cpuS, machineCpuS, stealS, benchCpuS });
    });
  });
}

let deadline = Number.POSITIVE_INFINITY;

/** Bounds the whole bench: after `ms` from now, pastDeadline() is true and the sections start no more runs. */
export function setDeadline(ms: number): void {
  deadline = Date.now() + ms;
}

export function pastDeadline(): boolean {
  return Date.now() >= deadline;
}

/** Whether SIGINT/SIGTERM arrived; the loops check it between runs. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** On SIGINT/SIGTERM: mark the bench interrupted and kill the running measured process group. Returns the remover. */
export function onInterrupt(): () => void {
  const handler = (): void => {
    interrupted = true;
    if (current) {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
