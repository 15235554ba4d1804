// ~/.ssh/config, -F and default identities, end to end: the built CLI against real sshd instances on loopback.
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { baseEnv, runCli, tempDir } from './helpers/cli.js';

let work: string;
let sshd: Sshd;
const servers: Sshd[] = [];

beforeAll(async () => {
  work = tempDir('sshconfig');
  sshd = await startSshd({});
  servers.push(sshd);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A fresh HOME with ~/.ssh (and the harness client key at `keyName`, when given). */
function makeHome(name: string, keyName?: string): string {
  const home = path.join(work, name);
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  if (keyName) fs.copyFileSync(sshd.userKeyPath, path.join(home, '.ssh', keyName));
  if (keyName) fs.chmodSync(path.join(home, '.ssh', keyName), 0o600);
  return home;
}

/** No SSH_PRIVATE_KEY, no agent: keys come from ssh_config or the default identities. Pins name 127.0.0.1:PORT. */
function envFor(home: string, knownHosts: string): NodeJS.ProcessEnv {
  return baseEnv({
    HOME: home,
    SSH_KNOWN_HOSTS: knownHosts,
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFE_SCP_RETRY_DELAY: '100ms',
  });
}

function source(name: string, text: string): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, text);
  return file;
}

test('a Host alias in ~/.ssh/config (HostName, Port, User, IdentityFile) copies with `safe-scp file web:/dir/`', async () => {
  const home = makeHome('home-alias', 'deploy_key');
  fs.writeFileSync(
    path.join(home, '.ssh', 'config'),
    `Host web\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ~/.ssh/deploy_key\n`,
  );
  const dest = path.join(work, 'dest-alias');
  fs.mkdirSync(dest);
  const src = source('alias.txt', 'through the alias\n');
  const before = sshd.authenticatedConnections();
  const result = await runCli([src, `web:${dest}/`], envFor(home, sshd.knownHostsLines()));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(fs.readFileSync(path.join(dest, 'alias.txt'), 'utf8')).toBe('through the alias\n');
  expect(sshd.authenticatedConnections()).toBe(before + 1);

  // --dry-run shows which lines applied, as file:line keyword value.
  const dry = await runCli(['--dry-run', src, `web:${dest}/`], envFor(home, sshd.knownHostsLines()));
  expect(dry.code).toBe(0);
  expect(dry.stdout).toContain(`ssh_config web: ${path.join(home, '.ssh', 'config')}:2 HostName 127.0.0.1`);
  expect(dry.stdout).toContain(`ssh_config web: ${path.join(home, '.ssh', 'config')}:5 IdentityFile ~/.ssh/deploy_key`);
  expect(dry.stdout).toMatch(new RegExp(`plan: upload .* ${sshd.user}@127\\.0\\.0\\.1:${sshd.port}`));
});

test('-F FILE replaces ~/.ssh/config: another alias copies, the one only in ~/.ssh/config is unknown', async () => {
  const home = makeHome('home-f', 'k');
  fs.writeFileSync(path.join(home, '.ssh', 'config'), `Host web\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  IdentityFile ~/.ssh/k\n`);
  const other = path.join(work, 'other_config');
  fs.writeFileSync(other, `Host deploy-target\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${path.join(home, '.ssh', 'k')}\n`);
  const dest = path.join(work, 'dest-f.txt');
  const src = source('f.txt', 'with -F\n');
  const ok = await runCli(['-F', other, src, `deploy-target:${dest}`], envFor(home, sshd.knownHostsLines()));
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('with -F\n');
  // The env twin does the same; with it, `web` (only in ~/.ssh/config) is looked up as a host name.
  const unknown = await runCli(['--retries', '0', '-i', path.join(home, '.ssh', 'k'), src, `web:${dest}`], { ...envFor(home, sshd.knownHostsLines()), SAFE_SCP_SSH_CONFIG: other });
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr).toMatch(/dns|resolve/i);
  expect(unknown.stderr).toMatch(/\bweb\b/);
});

test('ProxyJump from the config goes through a jump sshd, each host with its own block', async () => {
  const bastion = await startSshd({ extraConfig: ['AllowTcpForwarding yes'], authorizedKeys: [sshd.userPublicKey] });
  servers.push(bastion);
  const home = makeHome('home-jump', 'id_ed25519');
  fs.writeFileSync(
    path.join(home, '.ssh', 'config'),
    [
      'Host app',
      '  HostName 127.0.0.1',
      `  Port ${sshd.port}`,
      '  ProxyJump hop',
      'Host hop',
      '  HostName 127.0.0.1',
      `  Port ${bastion.port}`,
      `Host *`,
      `  User ${sshd.user}`,
      '',
    ].join('\n'),
  );
  const dest = path.join(work, 'dest-jump.txt');
  const src = source('jump.txt', 'via the config jump host\n');
  const before = { bastion: bastion.authenticatedConnections(), target: sshd.authenticatedConnections() };
  const result = await runCli([src, `app:${dest}`], envFor(home, sshd.knownHostsLines() + bastion.knownHostsLines()));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('via the config jump host\n');
  expect(bastion.authenticatedConnections()).toBe(before.bastion + 1);
  expect(sshd.authenticatedConnections()).toBe(before.target + 1);
});

test('ProxyCommand for the target: exit 2, cause config, a message suggesting ProxyJump, no connection', async () => {
  const home = makeHome('home-proxycommand', 'id_ed25519');
  fs.writeFileSync(path.join(home, '.ssh', 'config'), `Host web\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  ProxyCommand ssh -W %h:%p bastion\n`);
  const before = sshd.authenticatedConnections();
  const result = await runCli([source('pc.txt', 'x\n'), `web:${path.join(work, 'never.txt')}`], envFor(home, sshd.knownHostsLines()));
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('ProxyCommand');
  expect(result.stderr).toContain('ProxyJump');
  expect(result.stderr).toContain(`${path.join(home, '.ssh', 'config')}:4`);
  expect(sshd.authenticatedConnections()).toBe(before);
  expect(fs.existsSync(path.join(work, 'never.txt'))).toBe(false);
});

test('without -i, IdentityFile or SSH_PRIVATE_KEY the default identity ~/.ssh/id_ed25519 is used', async () => {
  const home = makeHome('home-default', 'id_ed25519');
  const dest = path.join(work, 'dest-default.txt');
  const result = await runCli(['-P', String(sshd.port), source('default.txt', 'default key\n'), `${sshd.user}@127.0.0.1:${dest}`], envFor(home, sshd.knownHostsLines()));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('default key\n');

  // With no key anywhere the error says where keys are looked for.
  const empty = makeHome('home-none');
  const none = await runCli(['-P', String(sshd.port), source('none.txt', 'x\n'), `${sshd.user}@127.0.0.1:${dest}`], envFor(empty, sshd.knownHostsLines()));
  expect(none.code).toBe(4);
  expect(none.stderr).toContain('~/.ssh/id_ed25519');
});
