// Builds the throttle module as plain JS and runs child node processes that use it, for the cross-process tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { maxOverlap as maxIntervalOverlap } from '../../../harness/fault-records.js';

const SRC = path.resolve('src/throttle');

/**
 * Transpiles the limiter's modules into a temp dir (children cannot load .ts; a per-file transpile takes
 * milliseconds, unlike a full tsc run, and does not depend on anyone's dist/ build).
 */
export async function buildThrottleForChildren(): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-throttle-build-'));
  const out = path.join(root, 'throttle');
  await mkdir(out);
  // Only the limiter's own files and the error tree they throw: other modules in src/throttle are not needed and may import more.
  const files = [...['host-limiter.ts', 'lock-file.ts', 'owner.ts', 'slots.ts', 'state-dir.ts'].map((name) => path.join(SRC, name)), path.join(SRC, '..', 'errors.ts')];
  for (const file of files) {
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.NodeNext, target: ts.ScriptTarget.ES2022 },
      fileName: file.replace(/\.ts$/, '.mts'),
    });
    await writeFile(path.join(root, path.relative(path.dirname(SRC), file).replace(/\.ts$/, '.js')), outputText);
  }
  // "type": "module" so the emitted .js files load as ESM with their './x.js' imports unchanged.
  await writeFile(path.join(root, 'package.json'), '{"type":"module"}\n');
  await writeFile(path.join(root, 'child.mjs'), CHILD);
  return root;
}

/** What each child does: wait for the go file, acquire, log, hold, log, release (or hang holding the slot). */
const CHILD = `
import { appendFileSync, existsSync } from 'node:fs';
import { acquireHostSlot } from './throttle/host-limiter.js';
const cfg = JSON.parse(process.argv[2]);
const log = (event, extra = {}) => appendFileSync(cfg.log, JSON.stringify({ pid: process.pid, event, t: Date.now(), ...extra }) + '\\n');
log('ready');
while (cfg.goFile && !existsSync(cfg.goFile)) await new Promise((r) => setTimeout(r, 5));
const slot = await acquireHostSlot(cfg.host, {
  stateDir: cfg.stateDir, concurrency: cfg.concurrency, intervalMs: cfg.intervalMs, maxWaitMs: 15000,
  ...(cfg.leaseRenewMs ? { leaseRenewMs: cfg.leaseRenewMs } : {}),
});
log('start', { startedAt: slot.startedAt, waitedMs: slot.waitedMs });
if (cfg.hang) {
  // Logs once another process took the slot away (the lease lapsed while this process was stopped).
  let told = false;
  setInterval(() => {
    if (slot.lost && !told) {
      told = true;
      log('lost');
    }
  }, 20);
} else {
  await new Promise((r) => setTimeout(r, cfg.holdMs));
  log('end');
  await slot.release();
}
`;

export interface ChildConfig {
  stateDir: string;
  host: string;
  concurrency: number;
  intervalMs: number;
  holdMs: number;
  log: string;
  goFile?: string;
  hang?: boolean;
  /** The holder's lease renewal period (default: the library's). */
  leaseRenewMs?: number;
}

export interface LogEvent {
  pid: number;
  event: 'ready' | 'start' | 'end' | 'lost';
  t: number;
  startedAt?: number;
  waitedMs?: number;
}

export function startChild(buildDir: string, config: ChildConfig): ChildProcess {
  return spawn(process.execPath, [path.join(buildDir, 'child.mjs'), JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Resolves with the exit code; kills (by its own pid) a child that overstays `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve(child.exitCode);
      return;
    }
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`child ${child.pid} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0 && code !== null) reject(new Error(`child ${child.pid} exited ${code}; stderr: ${stderr}`));
      else resolve(code);
    });
  });
}

export async function readLog(file: string): Promise<LogEvent[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LogEvent);
}

export async function waitForLog(file: string, predicate: (events: LogEvent[]) => boolean, timeoutMs: number): Promise<LogEvent[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = await readLog(file);
    if (predicate(events)) return events;
    if (Date.now() > until) throw new Error(`log condition not met within ${timeoutMs} ms: ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Most holders at once: each process's start paired with its next end (still held: open to the end of time). */
export function maxOverlap(events: LogEvent[]): number {
  const open = new Map<number, number[]>();
  const intervals: Array<{ start: number; end: number }> = [];
  for (const e of events) {
    if (e.event === 'start') open.set(e.pid, [...(open.get(e.pid) ?? []), e.t]);
    if (e.event === 'end') {
      const start = open.get(e.pid)?.shift();
      if (start !== undefined) intervals.push({ start, end: e.t });
    }
  }
  for (const starts of open.values()) for (const start of starts) intervals.push({ start, end: Number.POSITIVE_INFINITY });
  return maxIntervalOverlap(intervals);
}

/** A pid that certainly belonged to a process that has exited. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  if (child.pid === undefined) throw new Error('no pid');
  return child.pid;
}
