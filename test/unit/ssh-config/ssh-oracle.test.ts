// safe-scp's reading of ssh_config against OpenSSH's own: `ssh -G -F FILE` (host, port, user) and, for the
// expanded IdentityFile paths, `ssh -v` against a loopback listener that closes (ssh logs each identity file
// after connecting, before the banner). Ten configs: wildcards, negation, first-wins, Match, Include, tokens, -o.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, type RawOptions } from '../../../src/config.js';

interface Case {
  name: string;
  config: (dir: string) => string;
  /** Extra files (relative to the temp dir) the config includes. */
  files?: (dir: string) => Record<string, string>;
  alias: string;
  user?: string;
  port?: number;
  options?: string[];
  /** Compare the expanded IdentityFile paths through `ssh -v` (the host must resolve to loopback). */
  identities?: boolean;
}

const CASES: Case[] = [
  { name: 'wildcards', alias: 'web1.prod', config: () => 'Host web?.prod\n  Port 2201\nHost *.prod\n  User deploy\n  Port 9\n' },
  { name: 'negation', alias: 'bastion', config: () => 'Host * !bastion\n  Port 2222\n  User inner\nHost *\n  User outer\n' },
  { name: 'negation, other host', alias: 'web', config: () => 'Host * !bastion\n  Port 2222\n  User inner\nHost *\n  User outer\n' },
  { name: 'first value wins', alias: 'web', config: () => 'Host web\n  Port 1001\nHost *\n  Port 2002\n  User first\nHost web\n  User second\n  HostName 127.0.0.2\n' },
  {
    name: 'Match host on the HostName, originalhost, user',
    alias: 'web',
    user: 'deploy',
    identities: true,
    config: () => 'Host web\n  HostName 127.0.0.1\nMatch host 127.0.0.* originalhost web user deploy\n  Port 2022\n  IdentityFile ~/.ssh/matched\nMatch host web\n  Port 1\n',
  },
  {
    name: 'Include with a glob, and a conditional Include',
    alias: 'web',
    identities: true,
    files: (dir) => ({ 'inc/a.conf': 'Host web\n  Port 1001\n  HostName 127.0.0.1\n', 'inc/b.conf': 'Host web\n  User included\n  Port 3\n', 'only-web.conf': `IdentityFile ${dir}/k-only-web\n` }),
    config: (dir) => `Include ${dir}/inc/*.conf\nHost web\n  Include ${dir}/only-web.conf\nHost other\n  Include ${dir}/nothing.conf\nHost *\n  Port 9\n  User fallback\n`,
  },
  { name: 'HostName %h', alias: 'app.short', config: () => 'Host *.short\n  HostName %h.example.com\nMatch host *.example.com\n  User long\n' },
  {
    name: 'IdentityFile tokens %d %u %h %r %n %p %C %L %i %k %%',
    alias: 'web',
    identities: true,
    config: () => 'Host web\n  HostName 127.0.0.1\n  User bob\n  IdentityFile ~/.ssh/k_%h_%r_%n_%p\n  IdentityFile %d/keys/%u-%%\n  IdentityFile /etc/keys/%r@%h\n  IdentityFile /etc/k/%C_%L_%i_%k\n',
  },
  { name: '-o and the operand win over the file', alias: 'web', user: 'operand', options: ['Port=3000'], config: () => 'Host web\n  Port 1\n  User file\n  HostName 127.0.0.3\n' },
  {
    name: 'Match final and a negated criterion',
    alias: 'web',
    config: () => 'Host web\n  HostName web.internal\nMatch !host *.internal\n  Port 1\nMatch final host *.internal\n  User final\n  Port 4444\n',
  },
];

let dir: string;
let listener: net.Server;
let listenPort: number;
const pwHome = os.userInfo().homedir;
const localUser = os.userInfo().username;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-sshg-'));
  listener = net.createServer((sock) => setTimeout(() => sock.destroy(), 200).unref());
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  listenPort = (listener.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function ssh(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 15_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

/** ssh expands ~ and %d from the passwd entry, safe-scp from HOME: map one onto the other. */
const toHome = (text: string, home: string): string => text.replace(new RegExp(`${pwHome.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=/|_|$)`, 'g'), home);

function setup(c: Case, i: number): { file: string; home: string } {
  const caseDir = path.join(dir, `case-${i}`);
  const home = path.join(caseDir, 'home');
  fs.mkdirSync(home, { recursive: true });
  for (const [rel, text] of Object.entries(c.files?.(caseDir) ?? {})) {
    fs.mkdirSync(path.dirname(path.join(caseDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(caseDir, rel), text);
  }
  const file = path.join(caseDir, 'ssh_config');
  fs.writeFileSync(file, c.config(caseDir));
  return { file, home };
}

function ours(c: Case, file: string, home: string, port = c.port) {
  const host = `${c.user ? `${c.user}@` : ''}${c.alias}`;
  const operand = port !== undefined ? `scp://${host}:${port}/tmp/x` : `${host}:/tmp/x`;
  const raw: RawOptions = { operands: ['local-file', operand], sshConfig: file, option: c.options ?? [] };
  return resolveConfig(raw, { HOME: home, USER: localUser, PATH: process.env['PATH'] }).hosts[0];
}

describe.each(CASES.map((c, i) => [c.name, c, i] as const))('ssh_config like ssh -G: %s', (_name, c, i) => {
  test('host, port and user', async () => {
    const { file, home } = setup(c, i);
    const args = ['-G', '-F', file, ...(c.user ? ['-l', c.user] : []), ...(c.port ? ['-p', String(c.port)] : []), ...(c.options ?? []).flatMap((o) => ['-o', o]), c.alias];
    const out = await ssh(args);
    const field = (name: string): string | undefined => new RegExp(`^${name} (.*)$`, 'm').exec(out)?.[1];
    const mine = ours(c, file, home);
    expect(mine).toBeDefined();
    expect({ host: mine?.host, port: String(mine?.port), user: mine?.user }).toEqual({ host: field('hostname'), port: field('port'), user: field('user') });
  });

  if (c.identities) {
    test('IdentityFile paths, expanded', async () => {
      const { file, home } = setup(c, i);
      const out = await ssh(['-v', '-F', file, '-p', String(listenPort), '-o', 'BatchMode=yes', ...(c.user ? ['-l', c.user] : []), c.alias, 'true']);
      const theirs = [...out.matchAll(/^debug1: identity file (.*) type -?\d+$/gm)].map((m) => toHome(m[1] ?? '', home)).filter((f) => !f.endsWith('-cert'));
      const mine = ours(c, file, home, listenPort);
      expect(theirs.length).toBeGreaterThan(0);
      expect([...(mine?.identityFiles ?? []), ...(mine?.configIdentityFiles ?? [])]).toEqual(theirs);
    });
  }
});
