// Integration test of the embedded SFTP server: ssh2 and OpenSSH clients against a real loopback listener.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Client as SshClient, FileEntryWithStats, SFTPWrapper, Stats as SftpStats } from 'ssh2';
import { startEmbeddedServer, type EmbeddedServer } from '../../demo/embedded-server.js';
import { generateEd25519KeyPair } from '../../src/ssh/keygen.js';
import { baseEnv, runCli } from './helpers/cli.js';

const { Client } = ssh2;
const STEP_MS = 10_000;
const USER = 'deploy';

/** Per-test bound; every step inside has its own shorter bound (STEP_MS). */
const TEST_MS = 60_000;

function withTimeout<T>(label: string, promise: Promise<T>, ms = STEP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: timed out after ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs one ssh2 callback-style SFTP call with a bounded wait. */
function call<T>(label: string, start: (done: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return withTimeout(
    label,
    new Promise<T>((resolve, reject) => {
      start((err, value) => (err ? reject(err) : resolve(value)));
    }),
  );
}

function callVoid(label: string, start: (done: (err?: Error | null) => void) => void): Promise<void> {
  return call<void>(label, (done) => start((err) => done(err, undefined)));
}

/** Bytes of the public key in a known_hosts line ("host type base64"). */
function keyFromLine(line: string): Buffer {
  const b64 = line.split(' ')[2];
  if (b64 === undefined) throw new Error(`bad known_hosts line: ${line}`);
  return Buffer.from(b64, 'base64');
}

function connect(server: EmbeddedServer, privateKey: string, username = USER): Promise<SshClient> {
  const expected = keyFromLine(server.hostKeyLine());
  return withTimeout(
    'connect',
    new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      client
        .on('ready', () => resolve(client))
        .on('error', (err) => reject(err))
        .connect({
          host: server.host,
          port: server.port,
          username,
          privateKey,
          readyTimeout: STEP_MS,
          hostVerifier: (key: Buffer) => key.equals(expected),
        });
    }),
  );
}

function openSftp(client: SshClient): Promise<SFTPWrapper> {
  return call<SFTPWrapper>('sftp', (done) => client.sftp((err, sftp) => done(err, sftp)));
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

function hasCommand(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((dir) => existsSync(path.join(dir, cmd)));
}

describe('embedded SFTP server', () => {
  const clientKeys = generateEd25519KeyPair('test-client');
  const strangerKeys = generateEd25519KeyPair();
  let base: string;
  let root: string;
  let outside: string;
  let local: string;
  let server: EmbeddedServer;
  let client: SshClient | undefined;
  let sftp: SFTPWrapper;

  beforeAll(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-embedded-'));
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    local = path.join(base, 'local');
    await Promise.all([mkdir(root), mkdir(outside), mkdir(local)]);
    server = await startEmbeddedServer({ root, username: USER, authorizedKey: clientKeys.public });
    client = await connect(server, clientKeys.private);
    sftp = await openSftp(client);
  }, TEST_MS);

  afterAll(async () => {
    client?.end();
    await server?.close();
    if (base) await rm(base, { recursive: true, force: true });
  }, TEST_MS);

  test('describes its host key as a known_hosts line and an OpenSSH fingerprint', async () => {
    const line = server.hostKeyLine();
    expect(line).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${server.port} ssh-ed25519 AAAA[A-Za-z0-9+/=]+$`));
    const digest = createHash('sha256').update(keyFromLine(line)).digest('base64').replace(/=+$/, '');
    expect(server.hostKeyFingerprint).toBe(`SHA256:${digest}`);
    if (hasCommand('ssh-keygen')) {
      const file = path.join(base, 'fingerprint_known_hosts');
      await writeFile(file, line + '\n');
      const out = await run('ssh-keygen', ['-l', '-f', file]);
      expect(out.stdout).toContain(server.hostKeyFingerprint);
    }
  }, TEST_MS);

  test('uploads, renames, lists, sets attributes and downloads a tree', async () => {
    const small = path.join(local, 'index.html');
    const big = path.join(local, 'bundle.js');
    const bigData = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(small, '<h1>hello</h1>\n');
    await writeFile(big, bigData);

    expect(await call<string>('realpath', (d) => sftp.realpath('.', d))).toBe('/');
    await callVoid('mkdir', (d) => sftp.mkdir('/site', d));
    await callVoid('mkdir', (d) => sftp.mkdir('/site/assets', { mode: 0o750 }, d));
    expect((await stat(path.join(root, 'site', 'assets'))).isDirectory()).toBe(true);

    await callVoid('fastPut', (d) => sftp.fastPut(small, '/site/.index.html.part', d));
    await callVoid('rename', (d) => sftp.rename('/site/.index.html.part', '/site/index.html', d));
    await callVoid('fastPut', (d) => sftp.fastPut(big, 'site/assets/bundle.js', d)); // relative to '/'
    expect(await readFile(path.join(root, 'site', 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n');
    expect((await readFile(path.join(root, 'site', 'assets', 'bundle.js'))).equals(bigData)).toBe(true);
    expect(existsSync(path.join(root, 'site', '.index.html.part'))).toBe(false);

    // Plain RENAME keeps OpenSSH semantics (refuses an existing target); posix-rename replaces it.
    await writeFile(path.join(local, 'v2.html'), '<h1>v2</h1>\n');
    await callVoid('fastPut', (d) => sftp.fastPut(path.join(local, 'v2.html'), '/site/.v2.part', d));
    await expect(callVoid('rename', (d) => sftp.rename('/site/.v2.part', '/site/index.html', d))).rejects.toMatchObject({
      code: 4,
    });
    await callVoid('posix-rename', (d) => sftp.ext_openssh_rename('/site/.v2.part', '/site/index.html', d));
    expect(await readFile(path.join(root, 'site', 'index.html'), 'utf8')).toBe('<h1>v2</h1>\n');

    // fsync@openssh.com is advertised and works on an open handle.
    const handle = await call<Buffer>('open', (d) => sftp.open('/site/index.html', 'r', d));
    await call<unknown>('fsync', (d) => sftp.ext_openssh_fsync(handle, d));
    const fstat = await call<SftpStats>('fstat', (d) => sftp.fstat(handle, d));
    expect(fstat.size).toBe(12);
    await callVoid('close', (d) => sftp.close(handle, d));

    // Download.
    const back = path.join(local, 'bundle.back.js');
    await callVoid('fastGet', (d) => sftp.fastGet('/site/assets/bundle.js', back, d));
    expect((await readFile(back)).equals(bigData)).toBe(true);

    // Listing with ls-style long names.
    const list = await call<FileEntryWithStats[]>('readdir', (d) => sftp.readdir('/site', d));
    const byName = new Map(list.map((e) => [e.filename, e]));
    expect([...byName.keys()].sort()).toEqual(['assets', 'index.html']);
    expect(byName.get('assets')?.longname).toMatch(/^drwxr-x---\s+\d+\s+\d+\s+\d+\s+\d+ \w{3} [ \d]\d .+ assets$/);
    expect(byName.get('index.html')?.longname).toMatch(/^-rw.+ index\.html$/);
    expect(byName.get('index.html')?.attrs.size).toBe(12);

    // SETSTAT mode and times land on disk; STAT reports them.
    const mtime = 1_600_000_000;
    await callVoid('setstat', (d) =>
      sftp.setstat('/site/index.html', { mode: 0o640, atime: mtime + 5, mtime }, d),
    );
    const onDisk = await stat(path.join(root, 'site', 'index.html'));
    expect(onDisk.mode & 0o777).toBe(0o640);
    expect(Math.floor(onDisk.mtimeMs / 1000)).toBe(mtime);
    const remote = await call<SftpStats>('stat', (d) => sftp.stat('/site/index.html', d));
    expect(remote.mode & 0o777).toBe(0o640);
    expect(remote.mtime).toBe(mtime);
    expect(remote.isFile()).toBe(true);

    // FSETSTAT through a write handle (what fastPut's mode option and `scp -p` do).
    const wh = await call<Buffer>('open', (d) => sftp.open('/site/assets/bundle.js', 'r+', d));
    await callVoid('futimes', (d) => sftp.futimes(wh, mtime, mtime, d));
    await callVoid('fchmod', (d) => sftp.fchmod(wh, 0o600, d));
    await callVoid('close', (d) => sftp.close(wh, d));
    const bundle = await stat(path.join(root, 'site', 'assets', 'bundle.js'));
    expect(bundle.mode & 0o777).toBe(0o600);
    expect(Math.floor(bundle.mtimeMs / 1000)).toBe(mtime);

    // Clean-up operations.
    await callVoid('unlink', (d) => sftp.unlink('/site/assets/bundle.js', d));
    await callVoid('rmdir', (d) => sftp.rmdir('/site/assets', d));
    expect(existsSync(path.join(root, 'site', 'assets'))).toBe(false);
  }, TEST_MS);

  test('safe-scp copies files over 32 KiB up and back: against a server that is not OpenSSH, no request is split behind its CLOSE', async () => {
    const files = { 'big.bin': randomBytes(2 * 1024 * 1024 + 5), 'mid.bin': randomBytes(40 * 1024) };
    const src = path.join(local, 'cli-src');
    await mkdir(src);
    for (const [name, data] of Object.entries(files)) await writeFile(path.join(src, name), data);
    await mkdir(path.join(root, 'cli'));
    const home = path.join(base, 'cli-home');
    await mkdir(home);
    const env = baseEnv({ HOME: home, SSH_PRIVATE_KEY: clientKeys.private, SSH_KNOWN_HOSTS: server.hostKeyLine(), SAFE_SCP_HOST_INTERVAL: '0', SAFE_SCP_STATE_DIR: path.join(home, 'state') });
    const up = await runCli(['-P', String(server.port), path.join(src, 'big.bin'), path.join(src, 'mid.bin'), `${USER}@${server.host}:/cli/`], env, 60_000);
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: '' });
    const back = path.join(local, 'cli-back');
    await mkdir(back);
    const down = await runCli(['-r', '-P', String(server.port), `${USER}@${server.host}:/cli`, `${back}/`], env, 60_000);
    expect({ code: down.code, stderr: down.stderr }).toEqual({ code: 0, stderr: '' });
    const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
    for (const [name, data] of Object.entries(files)) {
      expect({ name, up: sha(await readFile(path.join(root, 'cli', name))), back: sha(await readFile(path.join(back, 'cli', name))) }).toEqual({ name, up: sha(data), back: sha(data) });
    }
  }, TEST_MS);

  test('maps filesystem errors to SFTP status codes', async () => {
    await expect(call<SftpStats>('stat', (d) => sftp.stat('/nope', d))).rejects.toMatchObject({ code: 2 });
    await expect(call<Buffer>('open', (d) => sftp.open('/nope/file', 'w', d))).rejects.toMatchObject({ code: 2 });
    await mkdir(path.join(root, 'exists'));
    await expect(callVoid('mkdir', (d) => sftp.mkdir('/exists', d))).rejects.toMatchObject({ code: 4 });
    await writeFile(path.join(root, 'exists', 'f'), 'x');
    await expect(call<Buffer>('open wx', (d) => sftp.open('/exists/f', 'wx', d))).rejects.toMatchObject({ code: 4 });
    await expect(callVoid('rmdir', (d) => sftp.rmdir('/exists', d))).rejects.toMatchObject({ code: 4 });
    await expect(callVoid('rmdir /', (d) => sftp.rmdir('/', d))).rejects.toMatchObject({ code: 3 });
    await expect(callVoid('close', (d) => sftp.close(Buffer.from('bogus'), d))).rejects.toMatchObject({ code: 4 });
  }, TEST_MS);

  (process.getuid?.() === 0 ? test.skip : test)('reports PERMISSION_DENIED for EACCES', async () => {
    const locked = path.join(root, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o500);
    try {
      await expect(call<Buffer>('open', (d) => sftp.open('/locked/f', 'w', d))).rejects.toMatchObject({ code: 3 });
    } finally {
      await chmod(locked, 0o700);
    }
  }, TEST_MS);

  test('confines every path to the root', async () => {
    const note = path.join(local, 'note.txt');
    await writeFile(note, 'inside');
    await callVoid('fastPut ..', (d) => sftp.fastPut(note, '../../escape.txt', d));
    await callVoid('fastPut /..', (d) => sftp.fastPut(note, '/site/../../../../escape2.txt', d));
    expect(await readFile(path.join(root, 'escape.txt'), 'utf8')).toBe('inside');
    expect(await readFile(path.join(root, 'escape2.txt'), 'utf8')).toBe('inside');
    expect(existsSync(path.join(base, 'escape.txt'))).toBe(false);
    expect(existsSync(path.join(base, 'escape2.txt'))).toBe(false);
    expect(await call<string>('realpath', (d) => sftp.realpath('/../..', d))).toBe('/');

    // '/..' lists the root, never its real parent.
    const list = await call<FileEntryWithStats[]>('readdir', (d) => sftp.readdir('/..', d));
    const names = list.map((e) => e.filename);
    expect(names).toContain('escape.txt');
    expect(names).not.toContain('outside');
    expect(names).not.toContain('local');

    // A symlink pointing outside the root is refused for reads, writes and listings.
    await writeFile(path.join(outside, 'secret'), 'secret');
    await symlink(outside, path.join(root, 'out'));
    await symlink(path.join(outside, 'secret'), path.join(root, 'secret-link'));
    await expect(call<SftpStats>('stat', (d) => sftp.stat('/out', d))).rejects.toMatchObject({ code: 3 });
    await expect(call<SftpStats>('stat', (d) => sftp.stat('/out/secret', d))).rejects.toMatchObject({ code: 3 });
    await expect(call<Buffer>('read link', (d) => sftp.open('/secret-link', 'r', d))).rejects.toMatchObject({
      code: 3,
    });
    await expect(
      callVoid('write via link', (d) => sftp.fastPut(note, '/out/planted.txt', d)),
    ).rejects.toMatchObject({ code: 3 });
    await expect(call<FileEntryWithStats[]>('readdir', (d) => sftp.readdir('/out', d))).rejects.toMatchObject({
      code: 3,
    });
    expect(await readdir(outside)).toEqual(['secret']);
    // The link itself may be inspected (LSTAT does not follow) and removed.
    const linkStat = await call<SftpStats>('lstat', (d) => sftp.lstat('/out', d));
    expect(linkStat.isSymbolicLink()).toBe(true);
    await callVoid('unlink link', (d) => sftp.unlink('/out', d));
    expect(existsSync(outside)).toBe(true);

    // A symlink that stays inside the root works.
    await mkdir(path.join(root, 'real-dir'));
    await symlink(path.join(root, 'real-dir'), path.join(root, 'alias'));
    await callVoid('put via inner link', (d) => sftp.fastPut(note, '/alias/n.txt', d));
    expect(await readFile(path.join(root, 'real-dir', 'n.txt'), 'utf8')).toBe('inside');
    expect(await call<string>('realpath', (d) => sftp.realpath('/alias/n.txt', d))).toBe('/real-dir/n.txt');
  }, TEST_MS);

  test('rejects a wrong client key or user name, and keeps serving', async () => {
    await expect(connect(server, strangerKeys.private)).rejects.toMatchObject({ level: 'client-authentication' });
    await expect(connect(server, clientKeys.private, 'root')).rejects.toMatchObject({
      level: 'client-authentication',
    });
    const again = await connect(server, clientKeys.private);
    again.end();
  }, TEST_MS);

  test('survives broken clients: garbage, resets before the banner, abandoned handshakes', async () => {
    const before = server.connections;
    const garbage = net.connect(server.port, server.host);
    garbage.on('error', () => undefined);
    garbage.resume(); // drain the banner so 'end'/'close' can surface
    await new Promise<void>((resolve) => garbage.once('connect', () => resolve()));
    garbage.write('GET / HTTP/1.1\r\n\r\n' + 'x'.repeat(70_000));
    // The server hangs up on a peer that is not speaking SSH.
    await withTimeout('server hangs up on garbage', new Promise<void>((resolve) => garbage.once('close', () => resolve())));

    const reset = net.connect(server.port, server.host);
    reset.on('error', () => undefined);
    await new Promise<void>((resolve) => reset.once('connect', () => resolve()));
    reset.resetAndDestroy();

    const halfway = net.connect(server.port, server.host);
    halfway.on('error', () => undefined);
    await withTimeout('banner', new Promise<void>((resolve) => halfway.once('data', () => resolve())));
    halfway.write('SSH-2.0-broken\r\n');
    halfway.destroy();

    const ok = await connect(server, clientKeys.private);
    const s = await openSftp(ok);
    expect(await call<string>('realpath', (d) => s.realpath('/', d))).toBe('/');
    ok.end();
    expect(server.connections).toBeGreaterThanOrEqual(before + 4);
  }, TEST_MS);

  const maybeOpenSsh = hasCommand('sftp') ? test : test.skip;
  maybeOpenSsh('serves OpenSSH sftp -b with the pinned key and refuses a wrong pin', async () => {
    const keyFile = path.join(base, 'id_ed25519');
    await writeFile(keyFile, clientKeys.private, { mode: 0o600 });
    const knownHosts = path.join(base, 'known_hosts');
    await writeFile(knownHosts, server.hostKeyLine() + '\n');
    await writeFile(path.join(local, 'a.txt'), 'alpha\n');
    await writeFile(path.join(local, 'b.txt'), 'beta\n');
    const back = path.join(local, 'ossh-back.txt');
    const batch = path.join(base, 'batch');
    await writeFile(
      batch,
      [
        'mkdir /ossh',
        'cd /ossh',
        `put ${path.join(local, 'a.txt')} a.txt`,
        `put ${path.join(local, 'b.txt')} b.txt`,
        'rename a.txt b.txt',
        'chmod 600 b.txt',
        'ls -l',
        `get b.txt ${back}`,
        'pwd',
      ].join('\n') + '\n',
    );
    const sshArgs = (knownHostsFile: string): string[] => [
      '-F', '/dev/null',
      '-P', String(server.port),
      '-i', keyFile,
      '-o', `UserKnownHostsFile=${knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'PasswordAuthentication=no',
      '-o', 'ConnectTimeout=10',
      '-o', 'LogLevel=ERROR',
    ];
    const res = await run('sftp', ['-b', batch, ...sshArgs(knownHosts), `${USER}@${server.host}`]);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/-rw------- .* b\.txt/);
    expect(res.stdout).toContain('Remote working directory: /ossh');
    expect(await readFile(path.join(root, 'ossh', 'b.txt'), 'utf8')).toBe('alpha\n'); // posix-rename replaced it
    expect(existsSync(path.join(root, 'ossh', 'a.txt'))).toBe(false);
    expect((await stat(path.join(root, 'ossh', 'b.txt'))).mode & 0o777).toBe(0o600);
    expect(await readFile(back, 'utf8')).toBe('alpha\n');

    // A known_hosts pinning some other key makes OpenSSH refuse to connect.
    const other = generateEd25519KeyPair().public.split(' ').slice(0, 2).join(' ');
    const wrongHosts = path.join(base, 'known_hosts.wrong');
    await writeFile(wrongHosts, `[${server.host}]:${server.port} ${other}\n`);
    const refused = await run('sftp', ['-b', batch, ...sshArgs(wrongHosts), `${USER}@${server.host}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/host key/i);
  }, TEST_MS);

  test('close() ends connected clients and stops listening', async () => {
    const other = await startEmbeddedServer({ root, username: USER, authorizedKey: clientKeys.public });
    const c = await connect(other, clientKeys.private);
    await openSftp(c);
    const clientClosed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const started = Date.now();
    await withTimeout('close', other.close(), 5_000);
    expect(Date.now() - started).toBeLessThan(3_000);
    await withTimeout('client close', clientClosed, 5_000);
    await expect(connect(other, clientKeys.private)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await other.close(); // idempotent
  }, TEST_MS);
});
