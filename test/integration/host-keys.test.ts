// Host-key pinning against real sshd instances: key types, man in the middle, accept-new, refusals.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { sshdEnv, runCli, startCli, tempDir } from './helpers/cli.js';

let work: string;
const servers: Sshd[] = [];

beforeAll(() => {
  work = tempDir('hostkeys');
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function envFor(sshd: Sshd, knownHosts: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return sshdEnv(sshd.userKeyPath, knownHosts, work, extra);
}

const connections = (sshd: Sshd): number => sshd.log().split('Connection from').length - 1;

function source(name: string): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, `${name}\n`);
  return file;
}

test('a server with ed25519, ecdsa and RSA host keys: pinning any single one of them connects', async () => {
  const sshd = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] });
  servers.push(sshd);
  expect(sshd.hostKeys.map((k) => k.type)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
  const src = source('multi.txt');
  for (const key of sshd.hostKeys) {
    const pin = `[127.0.0.1]:${sshd.port} ${key.publicLine}\n`;
    const dest = path.join(work, `multi-${key.keygenType}.txt`);
    const result = await runCli(['-v', '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${dest}`], envFor(sshd, pin));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`host key ${key.type} ${key.fingerprint}`);
    expect(fs.readFileSync(dest, 'utf8')).toBe('multi.txt\n');
  }
  // A hashed known_hosts line.
  const hashedFile = path.join(work, 'hashed_known_hosts');
  fs.writeFileSync(hashedFile, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys[1]?.publicLine}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', hashedFile], { stdio: 'ignore' });
  expect(fs.readFileSync(hashedFile, 'utf8')).toMatch(/^\|1\|/);
  const hashed = await runCli(['--known-hosts', hashedFile, '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${path.join(work, 'hashed.txt')}`], envFor(sshd, ''));
  expect(hashed.code).toBe(0);
});

test('fingerprint pins only, against a server with three key types: exactly one connection, for a match and a mismatch', async () => {
  const sshd = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] });
  servers.push(sshd);
  const [ed25519, , rsa] = sshd.hostKeys;
  const src = source('fp.txt');
  const dest = path.join(work, 'fp-target.txt');
  const args = (fp: string): string[] => ['--host-key', fp, '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${dest}`];

  // The server shows its ed25519 key first: a pin of its RSA key is refused in that one connection, naming what it showed.
  const mismatch = await runCli(args(rsa?.fingerprint ?? ''), envFor(sshd, ''));
  expect(mismatch.code).toBe(3);
  expect(mismatch.stderr).toContain('host-key-changed');
  expect(mismatch.stderr).toContain(`ssh-ed25519 ${ed25519?.fingerprint}`);
  expect(mismatch.stderr).toContain('a fingerprint does not name its key type');
  expect(connections(sshd)).toBe(1);
  expect(fs.existsSync(dest)).toBe(false);

  const match = await runCli(args(ed25519?.fingerprint ?? ''), envFor(sshd, ''));
  expect(match.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('fp.txt\n');
  expect(connections(sshd)).toBe(2);
});

test('a man in the middle (another sshd with another key on the pinned address) fails with exit 3 after exactly one connection, nothing written', async () => {
  const real = await startSshd({});
  const pin = real.knownHostsLines();
  const port = real.port;
  const key = fs.readFileSync(real.userKeyPath, 'utf8');
  await real.stop();
  const mitm = await startSshd({ port });
  servers.push(mitm);
  const dest = path.join(work, 'mitm-target.txt');
  const env = { ...envFor(mitm, pin), SSH_PRIVATE_KEY: key };
  const result = await runCli(['-P', String(port), '--retries', '3', source('mitm.txt'), `${mitm.user}@127.0.0.1:${dest}`], env);
  expect(result.code).toBe(3);
  expect(result.stderr).toContain('host-key-changed');
  expect(result.stderr).toContain(mitm.hostKeys[0]?.fingerprint);
  expect(connections(mitm)).toBe(1);
  expect(mitm.authenticatedConnections()).toBe(0);
  expect(fs.existsSync(dest)).toBe(false);
});

test('@revoked refuses a key even when it is also pinned', async () => {
  const sshd = await startSshd({});
  servers.push(sshd);
  const line = sshd.knownHostsLines().trim();
  const result = await runCli(['-P', String(sshd.port), source('revoked.txt'), `${sshd.user}@127.0.0.1:${path.join(work, 'revoked-target.txt')}`], envFor(sshd, `${line}\n@revoked ${line}\n`));
  expect(result.code).toBe(3);
  expect(result.stderr).toContain('host-key-revoked');
  expect(connections(sshd)).toBe(1);
});

test('accept-new pins the first key into the known_hosts file and says so; concurrent runs write whole lines', async () => {
  const sshd = await startSshd({});
  servers.push(sshd);
  const file = path.join(work, 'accept', 'known_hosts');
  const args = (dest: string): string[] => ['--accept-new', '--known-hosts', file, '-P', String(sshd.port), source('accept.txt'), `${sshd.user}@127.0.0.1:${path.join(work, dest)}`];
  const runs = [0, 1, 2, 3].map((i) => startCli(args(`accept-${i}.txt`), envFor(sshd, '')));
  const results = await Promise.all(runs.map((r) => r.done));
  // A run that starts after another has pinned the key finds it pinned and says nothing.
  for (const r of results) expect(r.code).toBe(0);
  const said = results.filter((r) => r.stderr.includes(`accept-new: pinned 127.0.0.1:${sshd.port} ssh-ed25519 ${sshd.hostKeys[0]?.fingerprint}`));
  expect(said.length).toBeGreaterThanOrEqual(1);
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  expect(lines.length).toBeGreaterThanOrEqual(1);
  for (const line of lines) expect(line).toBe(sshd.knownHostsLines().trim());
  // Once pinned, a plain run (no accept-new) connects, and a changed key is refused.
  const plain = await runCli(['--known-hosts', file, '-P', String(sshd.port), source('after.txt'), `${sshd.user}@127.0.0.1:${path.join(work, 'after.txt.out')}`], envFor(sshd, ''));
  expect(plain.code).toBe(0);
});

test('StrictHostKeyChecking=no is refused with exit 2 before any connection, saying how to fetch and check the key on a trusted machine', async () => {
  const sshd = await startSshd({});
  servers.push(sshd);
  const dest = path.join(work, 'strict-no.txt');
  const result = await runCli(['-o', 'StrictHostKeyChecking=no', '-P', String(sshd.port), source('no.txt'), `${sshd.user}@127.0.0.1:${dest}`], envFor(sshd, ''));
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('StrictHostKeyChecking=no is refused');
  expect(result.stderr).toContain('ssh-keyscan');
  expect(result.stderr).toContain('ssh-keygen -lf');
  expect(connections(sshd)).toBe(0);
  expect(fs.existsSync(dest)).toBe(false);
});
