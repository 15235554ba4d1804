// End-to-end: the built CLI against a real OpenSSH sshd, asserting what a user would check.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { CLI, ROOT, baseEnv, makeTree, runCli, secretLines, startCli, tempDir, type CliResult } from './helpers/cli.js';


let sshd: Sshd;
let work: string;
let keyText: string;
let env: NodeJS.ProcessEnv;
const outputs: CliResult[] = [];

async function cli(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<CliResult> {
  const merged: NodeJS.ProcessEnv = { ...env };
  // An undefined value removes the variable (e.g. no SSH_PRIVATE_KEY when testing the agent).
  for (const [k, v] of Object.entries(extraEnv)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const result = await runCli(args, merged);
  outputs.push(result);
  return result;
}

const remote = (p: string): string => `${sshd.user}@127.0.0.1:${p}`;
const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

beforeAll(async () => {
  sshd = await startSshd({});
  work = tempDir('copy');
  keyText = fs.readFileSync(sshd.userKeyPath, 'utf8');
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  env = baseEnv({
    HOME: home,
    SSH_PRIVATE_KEY: keyText,
    SSH_KNOWN_HOSTS: sshd.knownHostsLines(),
    SAFE_SCP_PORT: String(sshd.port),
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFE_SCP_RETRY_DELAY: '100ms',
  });
});

afterAll(async () => {
  await sshd?.stop();
  if (work) {
    execFileSync('chattr', ['-R', '-i', work], { stdio: 'ignore' });
    fs.rmSync(work, { recursive: true, force: true });
  }
});

afterEach(() => {
  // No private key material in anything a user or a CI log would see.
  for (const out of outputs.splice(0)) {
    for (const line of secretLines(keyText)) {
      expect(out.stdout).not.toContain(line);
      expect(out.stderr).not.toContain(line);
    }
  }
});

test('uploads a 2000-file, 200-directory tree over exactly one authenticated connection, and downloads it back', async () => {
  const src = path.join(work, 'tree');
  const shape = makeTree(src);
  expect(shape).toEqual({ dirs: 200, files: 2000 });
  const dest = path.join(work, 'srv-x');
  const before = sshd.authenticatedConnections();

  const up = await cli(['-r', src, remote(dest)]);
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
  expect(up.stdout).toMatch(/copied 2000 files/);
  // `-r tree host:/srv/x` with /srv/x missing creates it as the copy (scp semantics).
  execFileSync('diff', ['-r', src, dest]);
  expect(sshd.authenticatedConnections() - before).toBe(1);
  expect(fs.readdirSync(dest, { recursive: true }).filter((n) => String(n).includes('.safe-scp-'))).toEqual([]);

  const down = path.join(work, 'down');
  fs.mkdirSync(down);
  const back = await cli(['-r', remote(dest), down]);
  expect(back.code).toBe(0);
  execFileSync('diff', ['-r', src, path.join(down, 'srv-x')]);
});

test('the bin runs one bundled file that loads ssh2\'s native crypto binding and negotiates aes128-gcm', async () => {
  // The bin and its bundle, copied beside the package.json it reads: no other file of dist/ is loaded.
  const pkgDir = path.join(work, 'bundle-only');
  fs.mkdirSync(path.join(pkgDir, 'bin'), { recursive: true });
  fs.copyFileSync(CLI, path.join(pkgDir, 'bin', 'safe-scp.mjs'));
  fs.copyFileSync(path.join(ROOT, 'dist', 'safe-scp.cjs'), path.join(pkgDir, 'bin', 'safe-scp.cjs'));
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkgDir, 'node_modules'));
  const file = path.join(work, 'bundle-probe.bin');
  fs.writeFileSync(file, crypto.randomBytes(300_000));
  const report = path.join(work, 'bundle-report.json');
  const res = await runCli(['--report', report, file, remote(path.join(work, 'bundle-probe.copy'))], env, undefined, path.join(pkgDir, 'bin', 'safe-scp.mjs'));
  fs.rmSync(pkgDir, { recursive: true }); // the node_modules link too (chattr -R in afterAll stops at symlinks)
  outputs.push(res);
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  expect(sha(path.join(work, 'bundle-probe.copy'))).toBe(sha(file));
  const parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as { attempts: Array<{ evidence: { algorithms?: Record<string, string> } }> };
  expect(parsed.attempts.at(-1)?.evidence.algorithms).toMatchObject({ cipher: 'aes128-gcm@openssh.com', crypto: 'native' });
});

test('into an existing directory, -r copies to DIR/<basename>, and -p keeps mode and mtime', async () => {
  const src = path.join(work, 'small');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o750 });
  fs.utimesSync(path.join(src, 'run.sh'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
  const dest = path.join(work, 'existing');
  fs.mkdirSync(dest);
  const result = await cli(['-r', '-p', src, remote(dest)]);
  expect(result.code).toBe(0);
  const st = fs.statSync(path.join(dest, 'small', 'run.sh'));
  expect(st.mode & 0o777).toBe(0o750);
  expect(st.mtime.toISOString()).toBe('2020-01-02T03:04:05.000Z');
});

test('a replaced file keeps its mode without -p and is never widened', async () => {
  const target = path.join(work, 'secret.conf');
  fs.writeFileSync(target, 'old', { mode: 0o600 });
  fs.chmodSync(target, 0o600);
  const src = path.join(work, 'secret-src.conf');
  fs.writeFileSync(src, 'new', { mode: 0o666 });
  fs.chmodSync(src, 0o666);
  expect((await cli([src, remote(target)])).code).toBe(0);
  expect(fs.readFileSync(target, 'utf8')).toBe('new');
  expect(fs.statSync(target).mode & 0o777).toBe(0o600);
});

test('a reader of the final path sees only the old or the new content while a large file is replaced; a killed run leaves the old file', async () => {
  const size = 64 * 1024 * 1024;
  const oldFile = path.join(work, 'old.bin');
  const newFile = path.join(work, 'new.bin');
  fs.writeFileSync(oldFile, crypto.randomBytes(size));
  fs.writeFileSync(newFile, crypto.randomBytes(size));
  const target = path.join(work, 'site.bin');
  expect((await cli([oldFile, remote(target)])).code).toBe(0);
  const oldHash = sha(oldFile);
  const newHash = sha(newFile);
  expect(sha(target)).toBe(oldHash);

  // -l 200000 (25 MB/s): about 3 s for 64 MiB, so the reader surely samples while the new content is uploaded.
  const replacing = (): boolean => fs.readdirSync(work).some((n) => n.startsWith('.site.bin.safe-scp-'));
  const run = startCli(['-l', '200000', newFile, remote(target)], env);
  const seen = new Set<string>();
  let finished = false;
  let duringUpload = 0;
  void run.done.then(() => (finished = true));
  const until = Date.now() + 60_000;
  for (let i = 0; i < 5000 && !finished && Date.now() < until; i++) {
    const midway = replacing();
    seen.add(sha(target));
    if (midway && replacing()) duringUpload++;
    await new Promise((r) => setTimeout(r, 5));
  }
  const result = await run.done;
  expect(result.code).toBe(0);
  seen.add(sha(target));
  expect(duringUpload).toBeGreaterThan(0);
  expect([...seen].every((h) => h === oldHash || h === newHash)).toBe(true);
  expect(sha(target)).toBe(newHash);

  // Kill -9 in the middle of replacing it again: the previous content stays, whole.
  const killed = startCli(['-l', '80000', oldFile, remote(target)], env);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !fs.readdirSync(work).some((n) => n.startsWith('.site.bin.safe-scp-'))) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // Killed once the temporary file holds part of the new content (1 MiB of 64).
  const tempSize = (): number =>
    fs.readdirSync(work).filter((n) => n.startsWith('.site.bin.safe-scp-')).reduce((sum, n) => sum + (fs.statSync(path.join(work, n), { throwIfNoEntry: false })?.size ?? 0), 0);
  while (Date.now() < deadline && tempSize() < 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
  expect(tempSize()).toBeGreaterThanOrEqual(1024 * 1024);
  killed.child.kill('SIGKILL');
  await killed.done;
  expect(sha(target)).toBe(newHash);
});

test('exit 1: a read-only target directory gives remote-permission-denied, nothing is retried', async () => {
  const dir = path.join(work, 'readonly');
  fs.mkdirSync(dir);
  execFileSync('chattr', ['+i', dir]); // read-only even for root, which this sshd logs in as
  const src = path.join(work, 'ro-src.txt');
  fs.writeFileSync(src, 'x');
  const result = await cli([src, remote(`${dir}/`)]);
  execFileSync('chattr', ['-i', dir]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('remote-permission-denied');
  expect(result.stderr.match(/attempt \d+ to/g)).toHaveLength(1);
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('exit 2: bad options name what was wrong and are refused before any transfer', async () => {
  const connections = (): number => sshd.log().split('Connection from').length;
  const before = connections();
  const unknown = await cli(['-o', 'ForwardX11=yes', 'a', remote('/tmp/x')]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('`-o ForwardX11` is not supported');
  const badRetries = await cli(['a', remote('/tmp/x')], { SAFE_SCP_RETRIES: 'many' });
  expect(badRetries.code).toBe(2);
  expect(badRetries.stderr).toContain('`--retries` must be a whole number');
  expect(connections()).toBe(before);
  // StrictHostKeyChecking=no is refused too; it then fetches the offered key once, without
  // authenticating, only to print the line to pin (see host-keys.test.ts).
  const authBefore = sshd.authenticatedConnections();
  const no = await cli(['-o', 'StrictHostKeyChecking=no', 'a', remote('/tmp/x')]);
  expect(no.code).toBe(2);
  expect(no.stderr).toContain('SSH_KNOWN_HOSTS');
  expect(sshd.authenticatedConnections()).toBe(authBefore);
});

test('exit 3: an unpinned host is refused after one connection, with the line to pin it', async () => {
  const src = path.join(work, 'unpinned.txt');
  fs.writeFileSync(src, 'x');
  const target = path.join(work, 'unpinned-target.txt');
  const result = await cli([src, remote(target)], { SSH_KNOWN_HOSTS: '' });
  expect(result.code).toBe(3);
  expect(result.stderr).toContain('host-key-unknown');
  expect(result.stderr).toContain(sshd.hostKeys[0]?.fingerprint);
  expect(result.stderr).toContain(`[127.0.0.1]:${sshd.port} ssh-ed25519`);
  expect(result.stderr.match(/attempt \d+ to/g)).toHaveLength(1);
  expect(fs.existsSync(target)).toBe(false);
});

test('exit 4: a wrong key is auth-failed, an unreadable key is key-invalid, and neither leaks the key', async () => {
  const other = path.join(work, 'other_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const otherText = fs.readFileSync(other, 'utf8');
  const src = path.join(work, 'auth.txt');
  fs.writeFileSync(src, 'x');
  const wrong = await cli([src, remote(path.join(work, 'auth-target.txt'))], { SSH_PRIVATE_KEY: otherText });
  expect(wrong.code).toBe(4);
  expect(wrong.stderr).toContain('auth-failed');
  for (const line of secretLines(otherText)) expect(wrong.stderr + wrong.stdout).not.toContain(line);

  const mangled = keyText.replace(/\n/g, '\\n').slice(0, -40);
  const invalid = await cli([src, remote(path.join(work, 'auth-target.txt'))], { SSH_PRIVATE_KEY: mangled });
  expect(invalid.code).toBe(4);
  expect(invalid.stderr).toContain('key-invalid');
  expect(fs.existsSync(path.join(work, 'auth-target.txt'))).toBe(false);
});

test('--dry-run prints the plan and opens no connection; --json prints the report on stdout', async () => {
  const src = path.join(work, 'dry.txt');
  fs.writeFileSync(src, 'hello');
  const before = sshd.log().split('Connection from').length;
  const dry = await cli(['--dry-run', src, remote('/tmp/nowhere')]);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/dry run: no connection opened/);
  expect(sshd.log().split('Connection from').length).toBe(before);

  const json = await cli(['--json', src, remote(path.join(work, 'json-target.txt'))]);
  expect(json.code).toBe(0);
  const report = JSON.parse(json.stdout) as { ok: boolean; exitCode: number; files: Array<{ bytes: number; verified: boolean }> };
  expect(report).toMatchObject({ ok: true, exitCode: 0, files: [{ bytes: 5, verified: true }] });
});

test('authenticates through the agent at SSH_AUTH_SOCK, and with an encrypted -i key plus SSH_PRIVATE_KEY_PASSPHRASE', async () => {
  const agentSock = path.join(work, 'agent.sock');
  const agentOut = execFileSync('ssh-agent', ['-a', agentSock], { encoding: 'utf8' });
  const agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agentOut)?.[1]);
  try {
    execFileSync('ssh-add', [sshd.userKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
    const src = path.join(work, 'agent.txt');
    fs.writeFileSync(src, 'via agent');
    const viaAgent = await cli([src, remote(path.join(work, 'agent-target.txt'))], { SSH_PRIVATE_KEY: undefined, SSH_AUTH_SOCK: agentSock });
    expect(viaAgent.code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'agent-target.txt'), 'utf8')).toBe('via agent');
  } finally {
    if (agentPid > 0) process.kill(agentPid, 'SIGTERM');
  }

  const encrypted = path.join(work, 'encrypted_key');
  fs.copyFileSync(sshd.userKeyPath, encrypted);
  fs.chmodSync(encrypted, 0o600);
  execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'correct horse battery', '-f', encrypted]);
  const src = path.join(work, 'encrypted.txt');
  fs.writeFileSync(src, 'encrypted key');
  const ok = await cli(['-i', encrypted, src, remote(path.join(work, 'encrypted-target.txt'))], { SSH_PRIVATE_KEY: undefined, SSH_PRIVATE_KEY_PASSPHRASE: 'correct horse battery' });
  expect(ok.code).toBe(0);
  const wrong = await cli(['-i', encrypted, src, remote(path.join(work, 'encrypted-target.txt'))], { SSH_PRIVATE_KEY: undefined, SSH_PRIVATE_KEY_PASSPHRASE: 'wrong horse' });
  expect(wrong.code).toBe(4);
  expect(wrong.stderr).toContain('key-invalid');
  expect(wrong.stderr + wrong.stdout).not.toContain('correct horse battery');
  expect(wrong.stderr + wrong.stdout).not.toContain('wrong horse');
});

test('IPv6 operands: [::1]:path and scp://user@[::1]:port/path, upload and download', async () => {
  const v6 = await startSshd({ listenAddresses: ['::1'] });
  try {
    const [, type, blob] = (v6.knownHostsLines().split('\n')[0] ?? '').split(' ');
    const pins = `[::1]:${v6.port} ${type} ${blob}\n`;
    const v6env = { SSH_PRIVATE_KEY: fs.readFileSync(v6.userKeyPath, 'utf8'), SSH_KNOWN_HOSTS: pins, SAFE_SCP_PORT: String(v6.port) };
    const src = path.join(work, 'v6.txt');
    fs.writeFileSync(src, 'over IPv6\n');
    const up = await cli([src, `${v6.user}@[::1]:${path.join(work, 'v6-up.txt')}`], v6env);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'v6-up.txt'), 'utf8')).toBe('over IPv6\n');
    const down = await cli([`scp://${v6.user}@[::1]:${v6.port}/${path.join(work, 'v6-up.txt')}`, path.join(work, 'v6-down.txt')], { ...v6env, SAFE_SCP_PORT: '1' });
    expect(down.code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'v6-down.txt'), 'utf8')).toBe('over IPv6\n');
  } finally {
    await v6.stop();
  }
});
