// resolveConfig with ssh_config files: what is read, what wins, what is refused, what is only noted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, type RawOptions, type ResolvedConfig } from '../../../src/config.js';
import { SafeScpError } from '../../../src/errors.js';

let dir: string;
let home: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-sshcfg-'));
  home = path.join(dir, 'home');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Writes `text` as ~/.ssh/config (or another file under the temp dir) and returns its path. */
function write(text: string, rel = path.join('home', '.ssh', 'config')): string {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

function resolve(target: string, extra: Partial<RawOptions> = {}, env: Record<string, string> = {}): ResolvedConfig {
  return resolveConfig({ operands: ['file', target], ...extra }, { HOME: home, USER: 'runner', ...env });
}

function failure(target: string, extra: Partial<RawOptions> = {}): SafeScpError {
  try {
    resolve(target, extra);
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(SafeScpError);
    return err as SafeScpError;
  }
  throw new Error('expected an error');
}

test('a Host alias in ~/.ssh/config gives HostName, Port, User and IdentityFile; the dry-run lines name file:line', () => {
  const file = write('Host web\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n  IdentityFile ~/.ssh/deploy_key\n');
  const c = resolve('web:/srv/app');
  expect(c.hosts[0]).toMatchObject({ host: '10.0.0.5', port: 2222, user: 'deploy', alias: 'web', configIdentityFiles: [path.join(home, '.ssh', 'deploy_key')] });
  // Only this file's lines: the machine's /etc/ssh/ssh_config is read too.
  expect(c.sshConfigLines.filter((l) => l.file === file).map((l) => `${l.host} ${path.basename(l.file)}:${l.line} ${l.keyword} ${l.value}`)).toEqual([
    'web config:2 HostName 10.0.0.5',
    'web config:3 Port 2222',
    'web config:4 User deploy',
    'web config:5 IdentityFile ~/.ssh/deploy_key',
  ]);
});

test('flags, -o and the operand win over the file; -F replaces ~/.ssh/config; -F none reads nothing', () => {
  write('Host web\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n');
  expect(resolve('ops@web:/x', { port: '2200' }).hosts[0]).toMatchObject({ host: '10.0.0.5', port: 2200, user: 'ops' });
  expect(resolve('scp://web:2300/x', { option: ['User=cli'] }).hosts[0]).toMatchObject({ port: 2300, user: 'cli' });
  const other = write('Host web\n  HostName 10.9.9.9\n', 'other_config');
  expect(resolve('web:/x', { sshConfig: other }).hosts[0]).toMatchObject({ host: '10.9.9.9', port: 22, user: 'runner' });
  expect(resolve('web:/x', { sshConfig: 'none' }).hosts[0]).toMatchObject({ host: 'web', port: 22 });
  const missing = failure('web:/x', { sshConfig: path.join(dir, 'nope') });
  expect([missing.code, missing.exitCode]).toEqual(['config', 2]);
});

test('Include is relative to ~/.ssh, globbed, and only read inside a matching block', () => {
  write('Include conf.d/*.conf\nHost web\n  Include only-web\n');
  write('Host web\n  Port 1001\n', path.join('home', '.ssh', 'conf.d', '10-web.conf'));
  write('Host web\n  User from-glob\n', path.join('home', '.ssh', 'conf.d', '20-more.conf'));
  write('IdentityFile ~/.ssh/web_key\n', path.join('home', '.ssh', 'only-web'));
  expect(resolve('web:/x').hosts[0]).toMatchObject({ port: 1001, user: 'from-glob', configIdentityFiles: [path.join(home, '.ssh', 'web_key')] });
  expect(resolve('db:/x').hosts[0]).toMatchObject({ port: 22, user: 'runner' });
});

test('ProxyCommand for the target is a config error naming the line and suggesting ProxyJump; -J wins over it', () => {
  write('Host web\n  HostName 10.0.0.5\n  ProxyCommand ssh -W %h:%p bastion\n');
  const e = failure('web:/x');
  expect([e.code, e.exitCode]).toEqual(['config', 2]);
  expect(e.message).toMatch(/config:3: web uses ProxyCommand/);
  expect(e.message).toContain('ProxyJump');
  expect(resolve('web:/x', { jumpHost: 'bastion' }).hosts[0]?.jumpHosts?.map((h) => h.host)).toEqual(['bastion']);
});

test('ProxyJump from the file: each jump host gets its own block; keywords not used are -v notes', () => {
  write('Host web\n  HostName 10.0.0.5\n  ProxyJump jump\n  ForwardAgent yes\n  ControlMaster auto\nHost jump\n  HostName 10.0.0.1\n  Port 2201\n  User hop\n');
  const c = resolve('web:/x');
  expect(c.hosts[0]?.jumpHosts).toMatchObject([{ host: '10.0.0.1', port: 2201, user: 'hop', alias: 'jump' }]);
  expect(c.jumpHosts).toMatchObject([{ host: '10.0.0.1' }]);
  expect(c.sshConfigNotes.join('\n')).toMatch(/ssh_config for web: not used by safe-scp: ForwardAgent \(.*config:4\), ControlMaster \(.*config:5\)/);
});

test('--hosts entries are each resolved through the file', () => {
  write('Host a\n  HostName 10.0.0.1\n  Port 2001\nHost b\n  HostName 10.0.0.2\n  User bee\n');
  const c = resolve(':/x', { hosts: 'a,b' });
  expect(c.hosts).toMatchObject([{ host: '10.0.0.1', port: 2001, user: 'runner' }, { host: '10.0.0.2', port: 22, user: 'bee' }]);
});

test('default identities only when no -i, IdentityFile or SSH_PRIVATE_KEY; IdentitiesOnly and HostKeyAlias carry through', () => {
  expect(resolve('web:/x').hosts[0]?.configIdentityFiles).toEqual(['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(home, '.ssh', f)));
  expect(resolve('web:/x', {}, { SSH_PRIVATE_KEY: 'x' }).hosts[0]?.configIdentityFiles).toEqual([]);
  expect(resolve('web:/x', { identity: ['k'] }).hosts[0]?.configIdentityFiles).toEqual([]);
  write('Host web\n  IdentitiesOnly yes\n  HostKeyAlias web-key\n');
  expect(resolve('web:/x').hosts[0]).toMatchObject({ identitiesOnly: true, hostKeyAlias: 'web-key' });
  expect(resolve('web:/x', { option: ['IdentitiesOnly=no', 'HostKeyAlias=other'] }).hosts[0]).toMatchObject({ identitiesOnly: false, hostKeyAlias: 'other' });
});

test('global settings from the file: ConnectTimeout, ServerAlive*, ConnectionAttempts, UserKnownHostsFile, LogLevel', () => {
  write('Host web\n  ConnectTimeout 7\n  ServerAliveInterval 20\n  ServerAliveCountMax 4\n  ConnectionAttempts 2\n  UserKnownHostsFile ~/.ssh/kh_%h /dev/null\n  LogLevel ERROR\n');
  const c = resolve('web:/x');
  expect([c.connectTimeoutMs, c.keepaliveIntervalMs, c.keepaliveCountMax, c.retries, c.quiet]).toEqual([7000, 20_000, 4, 1, true]);
  expect(c.knownHostsFiles).toEqual([path.join(home, '.ssh', 'kh_web')]);
  expect(resolve('web:/x', { connectTimeout: '3s', quiet: false }).connectTimeoutMs).toBe(3000);
  write('Host web\n  Port banana\n');
  expect(failure('web:/x').message).toMatch(/config:2: Port must be 1-65535, got "banana"/);
});

test('StrictHostKeyChecking no in a file is a -v note (keys are still checked); accept-new is honoured', () => {
  write('Host *\n  StrictHostKeyChecking no\n');
  const c = resolve('web:/x');
  expect(c.strictHostKeyChecking).toBe('yes');
  expect(c.sshConfigNotes.join('\n')).toMatch(/config:2: StrictHostKeyChecking no is not honoured/);
  write('Host *\n  StrictHostKeyChecking accept-new\n');
  expect(resolve('web:/x').strictHostKeyChecking).toBe('accept-new');
});

test('-o LogLevel, BatchMode, Compression, PreferredAuthentications', () => {
  expect(resolve('web:/x', { option: ['LogLevel=QUIET'] }).quiet).toBe(true);
  expect(resolve('web:/x', { option: ['LogLevel=DEBUG2'] }).verbose).toBe(true);
  const info = resolve('web:/x', { option: ['LogLevel=INFO', 'BatchMode=yes'] });
  expect([info.quiet, info.verbose]).toEqual([false, false]);
  expect(resolve('web:/x', { option: ['Compression=yes'] }).sshConfigNotes).toContain('Compression=yes is ignored: safe-scp does not compress');
  expect(resolve('web:/x', { option: ['PreferredAuthentications=publickey,password'] }).hosts).toHaveLength(1);
  const e = failure('web:/x', { option: ['PreferredAuthentications=password'] });
  expect([e.code, e.message]).toEqual(['usage', expect.stringContaining('leaves out publickey')]);
  expect(failure('web:/x', { option: ['LogLevel=LOUD'] }).code).toBe('usage');
});

test('Match exec is refused (no commands are run), unless an earlier criterion already failed; bad files are config errors', () => {
  write('Match host web exec "touch /tmp/never"\n  Port 1\n');
  const e = failure('web:/x');
  expect([e.code, e.message]).toEqual(['config', expect.stringContaining('Match exec')]);
  expect(resolve('db:/x').hosts[0]?.port).toBe(22);
  write('Host "unterminated\n');
  expect(failure('web:/x').code).toBe('config');
  fs.rmSync(path.join(home, '.ssh', 'config'));
  fs.mkdirSync(path.join(home, '.ssh', 'config'));
  expect(failure('web:/x').message).toMatch(/is a directory/);
});
