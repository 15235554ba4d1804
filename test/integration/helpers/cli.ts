// Runs the built CLI (dist/safe-scp.mjs, the bundled bin) as a user would, capturing exit code, stdout and stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist', 'safe-scp.mjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
}

/**
 * A clean environment: no agent, no ambient SAFE_SCP_* or SSH_* from the developer's shell, and no progress lines
 * (a transfer that happens to take longer than 10 s on a busy machine would otherwise print one; tests of the
 * progress display turn it on with --progress-interval).
 */
export function baseEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { SAFE_SCP_PROGRESS_INTERVAL: '0' };
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SAFE_SCP_') && !k.startsWith('SSH_') && k !== 'GITLAB_CI') env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs `cli` (default: the built bin) with `args`; killed after `timeoutMs`. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000, cli = CLI): CliRun {
  const started = Date.now();
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first (npm test does)`);
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started });
    });
  });
  return { child, done };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs?: number, cli?: string): Promise<CliResult> {
  return startCli(args, env, timeoutMs, cli).done;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `safe-scp-${prefix}-`));
}

/**
 * A fresh directory that sshd accepts under ChrootDirectory: sshd refuses a root unless root owns it and every
 * directory above it and neither group nor others can write them, so the usual /tmp (1777) will not do. It goes
 * under the first of os.tmpdir(), /run and /var/lib whose whole chain qualifies.
 */
export function chrootableDir(prefix: string): string {
  const qualifies = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const st = fs.statSync(d, { throwIfNoEntry: false });
      if (!st || st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
      if (d === path.dirname(d)) return true;
    }
  };
  const base = [os.tmpdir(), '/run', '/var/lib'].find(qualifies);
  if (!base) throw new Error(`no directory for sshd's ChrootDirectory: none of ${os.tmpdir()}, /run, /var/lib is root-owned and unwritable by group and others all the way up`);
  return fs.mkdtempSync(path.join(base, `safe-scp-${prefix}-`));
}

/** 200 directories (10 top-level, 19 below each) holding 10 files of `size` random bytes: 2000 files. */
export function makeTree(root: string, size = 4096): { dirs: number; files: number } {
  let dirs = 0;
  let files = 0;
  const fill = (dir: string): void => {
    fs.mkdirSync(dir, { recursive: true });
    dirs++;
    for (let f = 0; f < 10; f++) {
      fs.writeFileSync(path.join(dir, `file-${f}.bin`), crypto.randomBytes(size));
      files++;
    }
  };
  for (let top = 0; top < 10; top++) {
    const topDir = path.join(root, `dir-${top}`);
    fill(topDir);
    for (let sub = 0; sub < 19; sub++) fill(path.join(topDir, `sub-${sub}`));
  }
  return { dirs, files };
}

/** A file of `size` random bytes at `file` (written in 1 MiB pieces); returns its path. */
export function writeRandomFile(file: string, size: number): string {
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < size; written += 1 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(1 << 20, size - written)));
  fs.closeSync(fd);
  return file;
}

/** Lines of a private key file long enough to identify it if they leaked into output. */
export function secretLines(keyText: string): string[] {
  return keyText.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
}

/** The environment of a run against a harness sshd: its client key, the given pins, fast retries, no gap. */
export function sshdEnv(keyPath: string, knownHosts: string, work: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return baseEnv({
    HOME: work,
    SSH_PRIVATE_KEY: fs.readFileSync(keyPath, 'utf8'),
    SSH_KNOWN_HOSTS: knownHosts,
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFE_SCP_RETRY_DELAY: '100ms',
    ...extra,
  });
}
