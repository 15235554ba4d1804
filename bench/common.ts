// Helpers the benchmark sections share: settings from the environment, data, statistics, formatting, the machine.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository: this module runs as build/bench/common.js (npm run build:tools). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The product's bin, as a user runs it (npm run build). */
export const CLI = path.join(ROOT, 'dist', 'safe-scp.mjs');
export const MB = 1e6;

/** What a section of the bench hands back to main: its Markdown, its part of the JSON, whether a target failed. */
export interface SectionResult {
  markdown: string;
  json: Record<string, unknown>;
  failed: boolean;
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer in ${min}..${max}`);
  return n;
}

/** A comma-separated list from the environment, or undefined when unset. */
export function listEnv(name: string): Set<string> | undefined {
  const raw = process.env[name];
  return raw ? new Set(raw.split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
}

export function randomFile(file: string, size: number): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    const block = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
    for (let written = 0; written < size; ) {
      const n = Math.min(block.length, size - written);
      crypto.randomFillSync(block, 0, n);
      fs.writeSync(fd, block, 0, n);
      written += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The tree shape of the integration tests: `top` directories with `sub` below each, `perDir` files of `size` in every one. */
export function makeTree(root: string, shape: { top: number; sub: number; perDir: number; size: number }): { files: number; dirs: number } {
  let files = 0;
  let dirs = 0;
  const fill = (dir: string): void => {
    fs.mkdirSync(dir, { recursive: true });
    dirs++;
    for (let f = 0; f < shape.perDir; f++) {
      fs.writeFileSync(path.join(dir, `file-${f}.bin`), crypto.randomBytes(shape.size), { mode: 0o644 });
      files++;
    }
  };
  for (let top = 0; top < shape.top; top++) {
    const topDir = path.join(root, `dir-${top}`);
    fill(topDir);
    for (let sub = 0; sub < shape.sub; sub++) fill(path.join(topDir, `sub-${sub}`));
  }
  return { files, dirs };
}

/**
 * Where the data and targets go. A tmpfs keeps the disk out of the measurement: with the targets on a disk, the
 * kernel's write-back of the previous run's 512 MiB lands in the next run and times swing by 2x on this VM,
 * for every tool alike. BENCH_DIR chooses; otherwise /dev/shm when it is a tmpfs with `needBytes` free, else $TMPDIR.
 */
export function benchDir(needBytes: number): string {
  const chosen = process.env['BENCH_DIR'];
  if (chosen) return chosen;
  try {
    const st = fs.statfsSync('/dev/shm');
    const TMPFS_MAGIC = 0x01021994;
    if (st.type === TMPFS_MAGIC && st.bavail * st.bsize > needBytes) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return os.tmpdir();
}

export function fileSystemOf(dir: string): string {
  try {
    return fs.statfsSync(dir).type === 0x01021994 ? 'tmpfs' : 'disk';
  } catch {
    return '?';
  }
}

export function countFiles(root: string): number {
  let n = 0;
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) if (entry.isFile()) n++;
  return n;
}

/** Relative path -> sha256 of every file under `root` (a file: its own digest under ''). */
export function digests(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const hash = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  if (fs.statSync(root).isFile()) return out.set('', hash(root));
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.set(path.relative(root, file), hash(file));
  }
  return out;
}

/** Undefined when `actual` holds exactly the files of `expected` with the same digests, else what differs. */
export function sameDigests(expected: ReadonlyMap<string, string>, actual: ReadonlyMap<string, string>): string | undefined {
  if (actual.size !== expected.size) return `${actual.size} of ${expected.size} files arrived`;
  for (const [name, digest] of expected) if (actual.get(name) !== digest) return `${name || 'the file'} differs (sha256)`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

export interface Summary {
  runs: number;
  medianS: number;
  minS: number;
  maxS: number;
  mbPerS: number;
  peakRssMB: number;
  cpuS: number;
  machineCpuS: number;
  stealS: number;
  benchCpuS: number;
  samples: Sample[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(samples: Sample[], bytes: number): Summary {
  const wall = samples.map((s) => s.wallS);
  const medianS = median(wall);
  return {
    runs: samples.length,
    medianS,
    minS: Math.min(...wall),
    maxS: Math.max(...wall),
    mbPerS: bytes / MB / medianS,
    peakRssMB: Math.max(...samples.map((s) => s.peakRssMB)),
    cpuS: median(samples.map((s) => s.cpuS)),
    machineCpuS: median(samples.map((s) => s.machineCpuS)),
    stealS: median(samples.map((s) => s.stealS)),
    benchCpuS: median(samples.map((s) => s.benchCpuS)),
    samples,
  };
}

export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
export const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
export const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');

export function firstLine(file: string, args: string[]): string {
  try {
    const out = execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n')[0]?.trim() ?? '';
  } catch (err: unknown) {
    const e = err as { stderr?: string };
    return (e.stderr ?? '').split('\n')[0]?.trim() ?? '';
  }
}

/**
 * What the first touch of a fresh memory page costs here (a minor page fault and the kernel zeroing it), in
 * microseconds: 64 MiB taken from the allocator untouched, then one byte written per page. Bare metal and KVM guests
 * take well under a microsecond; some micro-VMs take over 10, and then every process that grows its memory (Node's
 * heap, sftp-server's input buffer, rsync's) pays that per 4 KiB: numbers from such a machine do not carry over.
 */
export function pageTouchUs(): number {
  const bytes = 64 * 2 ** 20;
  const page = 4096;
  const buffer = Buffer.allocUnsafeSlow(bytes);
  const started = process.hrtime.bigint();
  for (let at = 0; at < bytes; at += page) buffer[at] = 1;
  return Number(process.hrtime.bigint() - started) / 1000 / (bytes / page);
}

let described: Record<string, string | number> | undefined;

/** What this machine is, measured once per bench run (both sections' reports print it). */
export function machine(): Record<string, string | number> {
  described ??= describeMachine();
  return described;
}

function describeMachine(): Record<string, string | number> {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  // `ssh -V` prints its version on stderr.
  const ssh = firstLine('sh', ['-c', 'ssh -V 2>&1']);
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    aesNi: /\baes\b/.test(cpuinfo) ? 'yes' : 'no',
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? `${os.type()} ${os.release()}`,
    kernel: os.release(),
    pageTouchUs: Number(pageTouchUs().toFixed(2)),
    node: process.version,
    openssh: ssh,
    rsync: firstLine('rsync', ['--version']).replace(/\s+protocol.*$/, '').replace(/\s+/g, ' '),
  };
}

/** One timed run. */
export interface Sample {
  wallS: number;
  /** Peak resident set size of the largest process in the run (ru_maxrss), MB. */
  peakRssMB: number;
  /** user + sys of the process and its children (rusage). */
  cpuS: number;
  /** Busy CPU of the whole machine (client and sshd side) during the run, from /proc/stat. */
  machineCpuS: number;
  /** CPU time the hypervisor gave to other guests during the run (/proc/stat steal): the run was slowed by that. */
  stealS: number;
  /** user + sys of the bench process itself during the run (the latency proxy runs in it). */
  benchCpuS: number;
}
