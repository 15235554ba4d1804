// The running sshd process: its stderr log parsed line by line (readiness, 'Accepted ...' events, waits) and
// its termination, by PID, of the listener and everything it forked.
import type { ChildProcess } from 'node:child_process';
import { descendantsOf, isProcessAlive, signalPid, type ProcStat } from './procs.js';

export interface AuthEvent {
  /** The client port sshd saw (the proxy's upstream local port when connecting through the fault proxy). */
  clientPort: number;
  clientAddress: string;
  user: string;
  method: string;
  /** Date.now() when the log line arrived (with `-e` sshd's lines carry no timestamp). */
  at: number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise` at most `ms`; the timer is cleared either way so nothing keeps the process alive. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export class BindFailure extends Error {}

/** Parses 'Accepted publickey for root from 127.0.0.1 port 47708 ssh2: ...'. */
const ACCEPTED = /^Accepted (\S+) for (\S+) from (\S+) port (\d+)\b/;
const LISTENING = /^Server listening on /;
const BIND_FAILED = /^Bind to port \d+ on \S+ failed|^Cannot bind any address/;

export class RunningSshd {
  readonly lines: string[] = [];
  readonly authEvents: AuthEvent[] = [];
  private partial = '';
  private waiters: Array<{ regex: RegExp; done: (line: string) => void }> = [];
  exited = false;
  exitInfo = '';
  readonly exitPromise: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.onData(chunk));
    child.stderr?.on('error', () => undefined);
    this.exitPromise = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitInfo = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        resolve();
      });
      child.once('error', (error) => {
        this.exited = true;
        this.exitInfo = `spawn error: ${error.message}`;
        resolve();
      });
    });
  }

  private onData(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.onLine(raw.replace(/\r$/, ''));
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const accepted = ACCEPTED.exec(line);
    if (accepted) {
      this.authEvents.push({
        method: accepted[1] ?? '',
        user: accepted[2] ?? '',
        clientAddress: accepted[3] ?? '',
        clientPort: Number(accepted[4]),
        at: Date.now(),
      });
    }
    if (this.waiters.length > 0) {
      const pending = this.waiters;
      this.waiters = [];
      for (const waiter of pending) {
        if (waiter.regex.test(line)) waiter.done(line);
        else this.waiters.push(waiter);
      }
    }
  }

  log(): string {
    return this.lines.join('\n') + (this.lines.length > 0 ? '\n' : '') + this.partial;
  }

  waitForLog(regex: RegExp, timeoutMs: number, sinceLine: number): Promise<string> {
    const plain = new RegExp(regex.source, regex.flags.replace(/[gy]/g, ''));
    const existing = this.lines.slice(Math.max(0, sinceLine)).find((line) => plain.test(line));
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise<string>((resolve, reject) => {
      const waiter = {
        regex: plain,
        done: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`sshd log did not show ${String(regex)} within ${timeoutMs} ms; log tail:\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  tail(count = 20): string {
    return this.lines.slice(-count).join('\n');
  }

  /** Resolves when `expected` 'Server listening on' lines arrived; rejects on exit, bind failure or timeout. */
  async ready(expected: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Bounded poll on already-parsed lines (never a TCP probe: that would take a MaxStartups slot).
    for (let i = 0; i < Math.ceil(timeoutMs / 20) + 1; i++) {
      if (this.lines.some((line) => BIND_FAILED.test(line))) throw new BindFailure(this.tail());
      if (this.lines.filter((line) => LISTENING.test(line)).length >= expected) return;
      if (this.exited) throw new Error(`sshd exited before it was ready (${this.exitInfo}):\n${this.tail()}`);
      if (Date.now() >= deadline) break;
      await sleep(20);
    }
    throw new Error(`sshd was not ready within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /**
   * Ends the listener and everything it forked, by PID, bounded in time. The whole tree is frozen first
   * (SIGSTOP, top-down: a stopped process cannot fork), then the per-connection children are SIGKILLed while
   * frozen: with SIGTERM, sshd's handlers only set a flag and a session child could still fork the user's
   * command, which would escape as an orphan. The listener gets SIGTERM (its loop exits on the flag).
   */
  async terminate(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.exited) return;
    signalPid(pid, 'SIGSTOP');
    const frozen = new Map<number, ProcStat>();
    for (let round = 0; round < 20; round++) {
      const fresh = descendantsOf(pid).filter((proc) => !frozen.has(proc.pid));
      if (fresh.length === 0) break;
      for (const proc of fresh) {
        signalPid(proc.pid, 'SIGSTOP');
        frozen.set(proc.pid, proc);
      }
      await sleep(5);
    }
    const tree = [...frozen.values()];
    for (const proc of tree) if (isProcessAlive(proc.pid, proc.startTime)) signalPid(proc.pid, 'SIGKILL');
    signalPid(pid, 'SIGTERM');
    signalPid(pid, 'SIGCONT');
    const alive = (): ProcStat[] => tree.filter((proc) => isProcessAlive(proc.pid, proc.startTime));
    for (let i = 0; i < 100 && alive().length > 0; i++) await sleep(20);
    await within(this.exitPromise, 5000);
    if (!this.exited) {
      signalPid(pid, 'SIGKILL');
      await within(this.exitPromise, 2000);
    }
  }
}
