// --update (rsync's quick check) and --inplace (directories the user cannot write to), end to end against a real sshd.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import type { Report } from '../../src/log/report.js';
import { runCli, sshdEnv, tempDir } from './helpers/cli.js';

let sshd: Sshd;
let work: string;
let env: NodeJS.ProcessEnv;
let counter = 0;

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

beforeAll(async () => {
  sshd = await startSshd({});
  work = tempDir('update-inplace');
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  env = sshdEnv(sshd.userKeyPath, sshd.knownHostsLines('127.0.0.1', sshd.port), home);
});

afterAll(async () => {
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

type Run = { code: number | null; stderr: string; stdout: string; report: Report };

/** The CLI with -v and a report, `args` as given (operands included). */
async function runArgs(args: string[], extraEnv: Record<string, string> = {}, server: Sshd = sshd): Promise<Run> {
  const reportFile = path.join(work, `report-${++counter}.json`);
  const result = await runCli(['-v', '-P', String(server.port), '--report', reportFile, ...args], { ...env, SSH_KNOWN_HOSTS: server.knownHostsLines('127.0.0.1', server.port), ...extraEnv }, 60_000);
  return { ...result, report: JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report };
}

/** An upload: the last of `args` is the remote target's path. */
function run(args: string[], extraEnv: Record<string, string> = {}, server: Sshd = sshd, user = sshd.user): Promise<Run> {
  return runArgs([...args.slice(0, -1), `${user}@127.0.0.1:${args.at(-1) as string}`], extraEnv, server);
}

/** `count` random files f<i>.txt of `base + i` bytes, dealt over `dirs` directories d0, d1, ... under `root`. */
function writeTree(root: string, count: number, dirs: number, base: number): void {
  for (let i = 0; i < count; i++) {
    fs.mkdirSync(path.join(root, `d${i % dirs}`), { recursive: true });
    fs.writeFileSync(path.join(root, `d${i % dirs}`, `f${i}.txt`), crypto.randomBytes(base + i));
  }
}

test('--update: a second deploy of an unchanged tree sends nothing; a changed file is sent, with the local mtime', async () => {
  const local = path.join(work, 'site');
  writeTree(local, 40, 4, 1000);
  const target = path.join(work, 'srv');
  fs.mkdirSync(target);

  const first = await run(['-r', '--update', local, `${target}/`]);
  expect(first.code).toBe(0);
  const remote = (rel: string): string => path.join(target, 'site', rel);
  const localFile = path.join(local, 'd1', 'f1.txt');
  // Sent files carry the local mtime (whole seconds), so the next run can compare; the mode was not touched by -p.
  expect(Math.floor(fs.statSync(remote('d1/f1.txt')).mtimeMs / 1000)).toBe(Math.floor(fs.statSync(localFile).mtimeMs / 1000));

  const second = await run(['-r', '--update', local, `${target}/`]);
  expect(second.code).toBe(0);
  expect(second.stdout + second.stderr).toMatch(/copied 0 files \(0 bytes\), skipped 40 unchanged/);
  expect(second.report.hosts[0]?.skipped).toBe(40);
  expect(second.report.files.filter((f) => f.skipped)).toHaveLength(40);

  // Same size, new content and mtime: the quick check sees the mtime and sends it.
  fs.writeFileSync(localFile, crypto.randomBytes(1001));
  fs.utimesSync(localFile, new Date(), new Date(Date.now() + 5000));
  const third = await run(['-r', '--update', local, `${target}/`]);
  expect(third.code).toBe(0);
  expect(third.stdout + third.stderr).toMatch(/copied 1 file \(1001 bytes\), skipped 39 unchanged/);
  expect(sha(remote('d1/f1.txt'))).toBe(sha(localFile));
  expect(fs.readdirSync(path.join(target, 'site', 'd1')).filter((n) => n.includes('.safe-scp-'))).toEqual([]);
});

test('--update downloading: a second fetch of an unchanged tree reads nothing; a changed file is fetched, with the remote mtime', async () => {
  const served = path.join(work, 'served');
  writeTree(served, 30, 3, 500);
  const into = path.join(work, 'fetched');
  fs.mkdirSync(into);
  const fetch = (): Promise<Run> => runArgs(['-r', '--update', `${sshd.user}@127.0.0.1:${served}`, `${into}/`]);
  const local = (rel: string): string => path.join(into, 'served', rel);

  const first = await fetch();
  expect(first.code).toBe(0);
  const remoteFile = path.join(served, 'd1', 'f1.txt');
  expect(Math.floor(fs.statSync(local('d1/f1.txt')).mtimeMs / 1000)).toBe(Math.floor(fs.statSync(remoteFile).mtimeMs / 1000));

  const second = await fetch();
  expect(second.code).toBe(0);
  expect(second.stdout + second.stderr).toMatch(/copied 0 files \(0 bytes\), skipped 30 unchanged/);
  expect(second.report.files.filter((f) => f.skipped)).toHaveLength(30);

  fs.writeFileSync(remoteFile, crypto.randomBytes(501));
  fs.utimesSync(remoteFile, new Date(), new Date(Date.now() + 5000));
  const third = await fetch();
  expect(third.code).toBe(0);
  expect(third.stdout + third.stderr).toMatch(/copied 1 file \(501 bytes\), skipped 29 unchanged/);
  expect(sha(local('d1/f1.txt'))).toBe(sha(remoteFile));
});

// A non-root login (nobody, through internal-sftp: its shell is nologin) that may write a file but not its directory.
const asRoot = process.getuid?.() === 0;
(asRoot || process.env['CI'] ? test : test.skip)('a directory the user cannot write to: the error says why and offers --inplace, which writes in place and says so', async () => {
  // sshd reads authorized_keys as the user: a copy nobody can read.
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-keys-'));
  fs.chmodSync(keys, 0o755);
  const authorized = path.join(keys, 'authorized_keys');
  fs.writeFileSync(authorized, fs.readFileSync(`${sshd.userKeyPath}.pub`), { mode: 0o644 });
  const server = await startSshd({ internalSftp: true, hostKeyFiles: [sshd.hostKeys[0]?.path as string], extraConfig: [`AuthorizedKeysFile ${authorized}`] });
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-ro-'));
    fs.chmodSync(dir, 0o755);
    const page = path.join(dir, 'index.html');
    fs.writeFileSync(page, 'old version\n');
    fs.chownSync(page, 65534, 65534);
    const src = path.join(work, 'index.html');
    fs.writeFileSync(src, 'new version, longer than the old one\n');

    const refused = await run([src, `${dir}/`], {}, server, 'nobody');
    expect(refused.code).toBe(1);
    expect(refused.report.cause).toBe('remote-permission-denied');
    expect(refused.stderr).toContain(`the directory ${dir} is not writable by this user`);
    expect(refused.stderr).toContain('--inplace');
    expect(fs.readFileSync(page, 'utf8')).toBe('old version\n');

    const inplace = await run(['--inplace', src, `${dir}/`], {}, server, 'nobody');
    expect(inplace.code).toBe(0);
    expect(fs.readFileSync(page, 'utf8')).toBe('new version, longer than the old one\n');
    expect(inplace.stderr).toContain('written in place: not replaced atomically');
    expect(inplace.report.files).toEqual([expect.objectContaining({ target: page, verified: true, atomic: false })]);
    expect(fs.readdirSync(dir)).toEqual(['index.html']);
    fs.rmSync(dir, { recursive: true, force: true });
  } finally {
    await server.stop();
    fs.rmSync(keys, { recursive: true, force: true });
  }
});
