// The CLI says what it is doing: SAFE_SCP_* namespace warnings, flag suggestions, progress in a pipe and on a pty.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { CLI, runCli, sshdEnv, tempDir, type CliResult } from './helpers/cli.js';

let sshd: Sshd;
let work: string;
let env: NodeJS.ProcessEnv;

const remote = (p: string): string => `${sshd.user}@127.0.0.1:${p}`;
const MiB = 1024 * 1024;

/** A file of `mib` MiB (one random MiB repeated: SSH does not compress, so it costs the same to send). */
function bigFile(name: string, mib: number): string {
  const file = path.join(work, name);
  const chunk = crypto.randomBytes(MiB);
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  return file;
}

/** Runs the built CLI under a pseudo-terminal (util-linux `script`), so that stderr is a TTY; returns what the terminal got. */
function runOnPty(args: readonly string[], runEnv: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...runEnv, COLUMNS: '150' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

beforeAll(async () => {
  sshd = await startSshd({});
  work = tempDir('cliux');
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  env = sshdEnv(sshd.userKeyPath, sshd.knownHostsLines(), home, { SAFE_SCP_PORT: String(sshd.port) });
});

afterAll(async () => {
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a project variable in the SAFE_SCP_ namespace is a warning naming it; the copy goes on', async () => {
  const src = path.join(work, 'hello.txt');
  fs.writeFileSync(src, 'hello\n');
  const dest = path.join(work, 'hello.copy');
  const res = await runCli([src, remote(dest)], { ...env, SAFE_SCP_DST: 'x', SAFE_SCP_RETRYS: '3' });
  expect(res.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('hello\n');
  expect(res.stderr).toContain('ignoring SAFE_SCP_DST');
  expect(res.stderr).toContain('ignoring SAFE_SCP_RETRYS: not an option of safe-scp; did you mean SAFE_SCP_RETRIES?');
});

test('a typo\'d flag is a usage error (exit 2) that suggests the closest flag, and nothing is attempted', async () => {
  const before = sshd.authenticatedConnections();
  const res = await runCli(['--recursve', work, remote(path.join(work, 'never'))], env);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain('unknown option --recursve (did you mean --recursive?)');
  expect(sshd.authenticatedConnections()).toBe(before);
});

test('a bare small number for a duration is read as milliseconds, and said so', async () => {
  const res = await runCli(['--dry-run', path.join(work, 'hello.txt'), remote('/tmp/x')], { ...env, SAFE_SCP_RETRY_DELAY: '2' });
  expect(res.code).toBe(0);
  expect(res.stderr).toContain('--retry-delay (SAFE_SCP_RETRY_DELAY) 2 is read as 2 milliseconds; write 2s for seconds');
});

test('--help ends with the environment twins, the SSH_* variables and the exit codes', async () => {
  const res = await runCli(['--help'], env);
  expect(res.code).toBe(0);
  for (const text of ['SAFE_SCP_RETRY_DELAY', 'SAFE_SCP_PROGRESS_INTERVAL', 'SSH_PRIVATE_KEY_PASSPHRASE', 'SSH_KNOWN_HOSTS', 'SSH_AUTH_SOCK', 'Exit codes']) {
    expect(res.stdout).toContain(text);
  }
  expect(res.stdout).toMatch(/^\s+75\s+transient connection failure/m);
});

test('a 100 MiB upload limited to ~30 s prints a plain progress line every --progress-interval in a pipe', async () => {
  const src = bigFile('big.bin', 100);
  const dest = path.join(work, 'big.copy');
  // 27000 Kbit/s is 3.375 MB/s: 100 MiB takes at least 31 s, so at least 6 intervals of 5 s.
  const res: CliResult = await runCli(['-l', '27000', '--progress-interval', '5s', src, remote(dest)], env, 90_000);
  expect(res.code).toBe(0);
  expect(fs.statSync(dest).size).toBe(100 * MiB);
  const lines = res.stderr.split('\n').filter((l) => /^safe-scp: [\d.]+ (B|KiB|MiB) of 100\.0 MiB \(\d+%\), /.test(l));
  expect(lines.length).toBeGreaterThanOrEqual(3);
  expect(lines.at(-1)).toMatch(/MiB\/s, ETA \d+s, [01] of 1 file$/);
  // Plain lines only: no carriage returns or escape sequences in a CI log.
  expect(res.stderr).not.toContain('\r');
  expect(res.stderr).not.toContain('\u001b');
  fs.rmSync(src);
  fs.rmSync(dest);
}, 120_000);

test('on a terminal the progress line is redrawn in place and cleared before the summary', async () => {
  const src = bigFile('pty.bin', 8);
  const dest = path.join(work, 'pty.copy');
  // 8 MiB at 27000 Kbit/s: at least 2.4 s, about ten redraws at 4 per second.
  const res = await runOnPty(['-l', '27000', src, remote(dest)], { ...env, SAFE_SCP_PROGRESS_INTERVAL: '10s' });
  expect(res.code).toBe(0);
  expect(fs.statSync(dest).size).toBe(8 * MiB);
  const redraws = res.out.split('\r\u001b[2Ksafe-scp: ').length - 1;
  expect(redraws).toBeGreaterThanOrEqual(2);
  // eslint-disable-next-line no-control-regex
  expect(res.out).toMatch(/\r\u001b\[2Ksafe-scp: [\d.]+ (B|KiB|MiB) of 8\.00 MiB/);
  // The last live line is cleared before the summary, which is not glued to it.
  expect(res.out).toContain('\r\u001b[2Ksafe-scp: copied 1 file');
}, 90_000);
