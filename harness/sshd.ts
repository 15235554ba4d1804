// Runs a private, throwaway OpenSSH sshd (foreground, logging to stderr) on loopback for integration tests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './listeners.js';
import { descendantsOf, isProcessAlive, signalPid, type ProcStat } from './procs.js';

export type KeyType = 'ed25519' | 'ecdsa' | 'rsa';
export type SshdLogLevel = 'QUIET' | 'FATAL' | 'ERROR' | 'INFO' | 'VERBOSE' | 'DEBUG' | 'DEBUG1' | 'DEBUG2' | 'DEBUG3';

export interface SshdOptions {
  /** Host key types to generate, one HostKey each. Default ['ed25519']. */
  hostKeyTypes?: KeyType[];
  /** Reuse existing host private keys (paths; `.pub` next to each) instead of generating `hostKeyTypes`. */
  hostKeyFiles?: string[];
  /** `MaxStartups` value, e.g. '1:100:1'. Default: sshd's own (10:30:100). */
  maxStartups?: string;
  /** Offer the sftp subsystem. Default true; false removes the Subsystem line (for `sftp-unavailable`). */
  sftp?: boolean;
  /** Use `internal-sftp` instead of /usr/lib/openssh/sftp-server. Default false. */
  internalSftp?: boolean;
  /**
   * Extra sshd_config lines. Lines before the first `Match` go at the TOP of the file, so they override the
   * harness defaults (sshd keeps the first value of most keywords; HostKey/ListenAddress/Port accumulate);
   * a `Match` line and everything after it go at the end.
   */
  extraConfig?: string[];
  /** Default VERBOSE, so 'Accepted publickey ...' lines appear. */
  logLevel?: SshdLogLevel;
  /** Default ['127.0.0.1']. `host` of the result is the first one. */
  listenAddresses?: string[];
  /** Fixed port (e.g. restart with other host keys on the same port). Default: a random free port. */
  port?: number;
  /** Client key type. Default 'ed25519'. */
  userKeyType?: KeyType;
  /** Extra authorized_keys lines (public keys), besides the generated client key. */
  authorizedKeys?: string[];
  /** RSA size for generated RSA keys. Default 2048 (3072 takes ~1.5 s to generate here). */
  rsaBits?: number;
  /** How long to wait for "Server listening on". Default 10000 ms. */
  readyTimeoutMs?: number;
  /** Start attempts (a random port may be taken between choosing and binding). Default 5. */
  startAttempts?: number;
  sshdPath?: string;
  sftpServerPath?: string;
}

export interface HostKeyInfo {
  /** Key algorithm as in known_hosts / the SSH wire, e.g. 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa'. */
  type: string;
  /** The ssh-keygen type it was made with ('ed25519' | 'ecdsa' | 'rsa'), or the wire type for hostKeyFiles. */
  keygenType: string;
  /** Private key path (the public key is `${path}.pub`). */
  path: string;
  /** `TYPE BASE64` (no comment). */
  publicLine: string;
  /** OpenSSH-style `SHA256:...` (no padding), equal to `ssh-keygen -lf`. */
  fingerprint: string;
}

export interface UserKey {
  type: KeyType;
  path: string;
  publicPath: string;
  /** `TYPE BASE64 COMMENT` as in the .pub file, without newline. */
  publicLine: string;
  fingerprint: string;
}

export interface AuthEvent {
  /** The client port sshd saw (the proxy's upstream local port when connecting through the fault proxy). */
  clientPort: number;
  clientAddress: string;
  user: string;
  method: string;
  /** Date.now() when the log line arrived (with `-e` sshd's lines carry no timestamp). */
  at: number;
}

export interface Sshd {
  host: string;
  port: number;
  /** The login name sshd runs as and accepts (the current user). */
  user: string;
  /** Private temp dir: config, keys, authorized_keys. Removed by stop(). */
  dir: string;
  configPath: string;
  /** PID of the sshd listener. */
  pid: number;
  userKeyPath: string;
  /** Public line of the client key (`TYPE BASE64 COMMENT`). */
  userPublicKey: string;
  userKeyFingerprint: string;
  hostKeys: HostKeyInfo[];
  /** known_hosts text, one line per host key, `[host]:port TYPE BASE64` (plain `host` when port is 22). */
  knownHostsLines(host?: string, port?: number): string;
  /** Everything sshd (and its per-connection children) wrote to stderr so far. */
  log(): string;
  /** Number of 'Accepted <method> for ...' lines so far. */
  authenticatedConnections(): number;
  /** One entry per 'Accepted <method> for USER from ADDR port PORT' line, in arrival order (live array). */
  authEvents: AuthEvent[];
  /**
   * Resolves with the first log line matching `regex`, among lines from index `sinceLine` on (default 0: the
   * whole log, including lines already there); rejects after timeoutMs (default 5000).
   */
  waitForLog(regex: RegExp, timeoutMs?: number, sinceLine?: number): Promise<string>;
  /** Number of complete log lines so far (pass it as `sinceLine` to wait only for newer lines). */
  logLineCount(): number;
  /** The listener PID followed by its live descendants (per-connection children, sessions). */
  processTree(): number[];
  /** True until the listener exited. */
  running(): boolean;
  /** SIGTERM the listener and its descendants by PID, wait for them (SIGKILL after a bound), remove `dir`. */
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const SETPRIV = '/usr/bin/setpriv';
const PRIVSEP_DIR = '/run/sshd';

function execFileText(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message} ${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise` at most `ms`; the timer is cleared either way so nothing keeps the process alive. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** OpenSSH SHA256 fingerprint of a public key line (`TYPE BASE64 [comment]`). */
export function fingerprintOf(publicLine: string): string {
  const b64 = publicLine.trim().split(/\s+/)[1];
  if (b64 === undefined) throw new Error(`not a public key line: ${publicLine}`);
  const blob = Buffer.from(b64, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function keygenArgs(type: KeyType, rsaBits: number): string[] {
  if (type === 'rsa') return ['-t', 'rsa', '-b', String(rsaBits)];
  if (type === 'ecdsa') return ['-t', 'ecdsa', '-b', '256'];
  return ['-t', 'ed25519'];
}

/** Generates a key pair with ssh-keygen at `dir/name` (default `id_TYPE`); empty passphrase unless given. */
export async function makeUserKey(
  dir: string,
  type: KeyType = 'ed25519',
  passphrase = '',
  options: { name?: string; rsaBits?: number; comment?: string } = {},
): Promise<UserKey> {
  const keyPath = path.join(dir, options.name ?? `id_${type}`);
  await execFileText(
    'ssh-keygen',
    ['-q', ...keygenArgs(type, options.rsaBits ?? 2048), '-N', passphrase, '-C', options.comment ?? 'safe-scp-test', '-f', keyPath],
    30_000,
  );
  const publicLine = (await readFile(`${keyPath}.pub`, 'utf8')).trim();
  return { type, path: keyPath, publicPath: `${keyPath}.pub`, publicLine, fingerprint: fingerprintOf(publicLine) };
}

async function hostKeyFromFile(keyPath: string, keygenType: string): Promise<HostKeyInfo> {
  const [type, b64] = (await readFile(`${keyPath}.pub`, 'utf8')).trim().split(/\s+/);
  if (type === undefined || b64 === undefined) throw new Error(`bad public key file ${keyPath}.pub`);
  const publicLine = `${type} ${b64}`;
  return { type, keygenType, path: keyPath, publicLine, fingerprint: fingerprintOf(publicLine) };
}

function knownHostsHost(host: string, port: number): string {
  if (port === 22 && !host.includes(':')) return host;
  return `[${host}]:${port}`;
}

interface ConfigInput {
  port: number;
  listenAddresses: string[];
  hostKeys: HostKeyInfo[];
  authorizedKeysPath: string;
  logLevel: SshdLogLevel;
  options: SshdOptions;
}

function renderConfig(input: ConfigInput): string {
  const extra = input.options.extraConfig ?? [];
  const matchAt = extra.findIndex((line) => /^\s*match\s/i.test(line));
  const head = matchAt < 0 ? extra : extra.slice(0, matchAt);
  const tail = matchAt < 0 ? [] : extra.slice(matchAt);
  const sftp = input.options.sftp ?? true;
  const lines = [
    '# sshd_config generated by the safe-scp test harness',
    ...head,
    `Port ${input.port}`,
    ...input.listenAddresses.map((address) => `ListenAddress ${address}`),
    ...input.hostKeys.map((key) => `HostKey ${key.path}`),
    'PidFile none',
    `LogLevel ${input.logLevel}`,
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'PubkeyAuthentication yes',
    `AuthorizedKeysFile ${input.authorizedKeysPath}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    ...(input.options.maxStartups === undefined ? [] : [`MaxStartups ${input.options.maxStartups}`]),
    ...(sftp
      ? [`Subsystem sftp ${input.options.internalSftp === true ? 'internal-sftp' : (input.options.sftpServerPath ?? SFTP_SERVER)}`]
      : []),
    ...tail,
  ];
  return `${lines.join('\n')}\n`;
}

class BindFailure extends Error {}

/** Parses 'Accepted publickey for root from 127.0.0.1 port 47708 ssh2: ...'. */
const ACCEPTED = /^Accepted (\S+) for (\S+) from (\S+) port (\d+)\b/;
const LISTENING = /^Server listening on /;
const BIND_FAILED = /^Bind to port \d+ on \S+ failed|^Cannot bind any address/;

class RunningSshd {
  readonly lines: string[] = [];
  readonly authEvents: AuthEvent[] = [];
  private partial = '';
  private waiters: Array<{ regex: RegExp; done: (line: string) => void }> = [];
  exited = false;
  exitInfo = '';
  readonly exitPromise: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.onData(chunk));
    child.stderr?.on('error', () => undefined);
    this.exitPromise = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitInfo = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        resolve();
      });
      child.once('error', (error) => {
        this.exited = true;
        this.exitInfo = `spawn error: ${error.message}`;
        resolve();
      });
    });
  }

  private onData(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.onLine(raw.replace(/\r$/, ''));
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const accepted = ACCEPTED.exec(line);
    if (accepted) {
      this.authEvents.push({
        method: accepted[1] ?? '',
        user: accepted[2] ?? '',
        clientAddress: accepted[3] ?? '',
        clientPort: Number(accepted[4]),
        at: Date.now(),
      });
    }
    if (this.waiters.length > 0) {
      const pending = this.waiters;
      this.waiters = [];
      for (const waiter of pending) {
        if (waiter.regex.test(line)) waiter.done(line);
        else this.waiters.push(waiter);
      }
    }
  }

  log(): string {
    return this.lines.join('\n') + (this.lines.length > 0 ? '\n' : '') + this.partial;
  }

  waitForLog(regex: RegExp, timeoutMs: number, sinceLine: number): Promise<string> {
    const plain = new RegExp(regex.source, regex.flags.replace(/[gy]/g, ''));
    const existing = this.lines.slice(Math.max(0, sinceLine)).find((line) => plain.test(line));
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise<string>((resolve, reject) => {
      const waiter = {
        regex: plain,
        done: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`sshd log did not show ${String(regex)} within ${timeoutMs} ms; log tail:\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  tail(count = 20): string {
    return this.lines.slice(-count).join('\n');
  }

  /** Resolves when `expected` 'Server listening on' lines arrived; rejects on exit, bind failure or timeout. */
  async ready(expected: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Bounded poll on already-parsed lines (never a TCP probe: that would take a MaxStartups slot).
    for (let i = 0; i < Math.ceil(timeoutMs / 20) + 1; i++) {
      if (this.lines.some((line) => BIND_FAILED.test(line))) throw new BindFailure(this.tail());
      if (this.lines.filter((line) => LISTENING.test(line)).length >= expected) return;
      if (this.exited) throw new Error(`sshd exited before it was ready (${this.exitInfo}):\n${this.tail()}`);
      if (Date.now() >= deadline) break;
      await sleep(20);
    }
    throw new Error(`sshd was not ready within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /**
   * Ends the listener and everything it forked, by PID, bounded in time. The whole tree is frozen first
   * (SIGSTOP, top-down: a stopped process cannot fork), then the per-connection children are SIGKILLed while
   * frozen: with SIGTERM, sshd's handlers only set a flag and a session child could still fork the user's
   * command, which would escape as an orphan. The listener gets SIGTERM (its loop exits on the flag).
   */
  async terminate(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.exited) return;
    signalPid(pid, 'SIGSTOP');
    const frozen = new Map<number, ProcStat>();
    for (let round = 0; round < 20; round++) {
      const fresh = descendantsOf(pid).filter((proc) => !frozen.has(proc.pid));
      if (fresh.length === 0) break;
      for (const proc of fresh) {
        signalPid(proc.pid, 'SIGSTOP');
        frozen.set(proc.pid, proc);
      }
      await sleep(5);
    }
    const tree = [...frozen.values()];
    for (const proc of tree) if (isProcessAlive(proc.pid, proc.startTime)) signalPid(proc.pid, 'SIGKILL');
    signalPid(pid, 'SIGTERM');
    signalPid(pid, 'SIGCONT');
    const alive = (): ProcStat[] => tree.filter((proc) => isProcessAlive(proc.pid, proc.startTime));
    for (let i = 0; i < 100 && alive().length > 0; i++) await sleep(20);
    await within(this.exitPromise, 5000);
    if (!this.exited) {
      signalPid(pid, 'SIGKILL');
      await within(this.exitPromise, 2000);
    }
  }
}

/** Debian's sshd refuses to start as root without its privilege-separation directory. */
async function ensurePrivsepDir(): Promise<void> {
  if (process.getuid?.() !== 0 || existsSync(PRIVSEP_DIR)) return;
  await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
}

/**
 * Starts a private sshd on loopback (random free port unless `port`), with generated host keys and a
 * generated client key authorized for the current user. Ready when sshd logged "Server listening on".
 */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const sshdPath = options.sshdPath ?? SSHD;
  const listenAddresses = options.listenAddresses ?? ['127.0.0.1'];
  const host = listenAddresses[0] ?? '127.0.0.1';
  const logLevel = options.logLevel ?? 'VERBOSE';
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const attempts = Math.max(1, Math.min(options.startAttempts ?? 5, 20));
  const rsaBits = options.rsaBits ?? 2048;
  const user = os.userInfo().username;

  await ensurePrivsepDir();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-sshd-'));
  try {
    const hostKeys =
      options.hostKeyFiles !== undefined
        ? await Promise.all(options.hostKeyFiles.map((file) => hostKeyFromFile(file, '')))
        : await Promise.all(
            (options.hostKeyTypes ?? ['ed25519']).map(async (type) => {
              const key = await makeUserKey(dir, type, '', { name: `ssh_host_${type}_key`, rsaBits, comment: 'safe-scp-test-host' });
              return hostKeyFromFile(key.path, type);
            }),
          );
    for (const key of hostKeys) if (key.keygenType === '') key.keygenType = key.type;
    const userKey = await makeUserKey(dir, options.userKeyType ?? 'ed25519', '', { name: 'client_key', rsaBits });
    const authorizedKeysPath = path.join(dir, 'authorized_keys');
    await writeFile(authorizedKeysPath, [userKey.publicLine, ...(options.authorizedKeys ?? [])].join('\n') + '\n', { mode: 0o600 });
    const configPath = path.join(dir, 'sshd_config');

    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const port = options.port ?? (await freePort(host));
      await writeFile(configPath, renderConfig({ port, listenAddresses, hostKeys, authorizedKeysPath, logLevel, options }), { mode: 0o600 });
      const args = ['-D', '-e', '-f', configPath];
      // setpriv --pdeathsig: the listener dies with the test process even if stop() is never called.
      const child = existsSync(SETPRIV)
        ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', sshdPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn(sshdPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const running = new RunningSshd(child);
      try {
        await running.ready(listenAddresses.length, readyTimeoutMs);
      } catch (error) {
        await running.terminate();
        lastError = error;
        if (error instanceof BindFailure) {
          await sleep(options.port === undefined ? 20 : 200);
          continue;
        }
        throw error;
      }
      return makeHandle(running, { host, port, user, dir, configPath, userKey, hostKeys });
    }
    const detail = lastError instanceof Error ? lastError.message : String(lastError);
    throw new Error(`sshd could not bind after ${attempts} attempts:\n${detail}`);
  } catch (error) {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    throw error;
  }
}

interface HandleInput {
  host: string;
  port: number;
  user: string;
  dir: string;
  configPath: string;
  userKey: UserKey;
  hostKeys: HostKeyInfo[];
}

function makeHandle(running: RunningSshd, input: HandleInput): Sshd {
  const pid = running.child.pid ?? -1;
  let stopping: Promise<void> | undefined;
  return {
    host: input.host,
    port: input.port,
    user: input.user,
    dir: input.dir,
    configPath: input.configPath,
    pid,
    userKeyPath: input.userKey.path,
    userPublicKey: input.userKey.publicLine,
    userKeyFingerprint: input.userKey.fingerprint,
    hostKeys: input.hostKeys,
    knownHostsLines(host = input.host, port = input.port) {
      const name = knownHostsHost(host, port);
      return input.hostKeys.map((key) => `${name} ${key.publicLine}\n`).join('');
    },
    log: () => running.log(),
    authenticatedConnections: () => running.authEvents.length,
    authEvents: running.authEvents,
    waitForLog: (regex, timeoutMs = 5000, sinceLine = 0) => running.waitForLog(regex, timeoutMs, sinceLine),
    logLineCount: () => running.lines.length,
    processTree: () => (running.exited ? [] : [pid, ...descendantsOf(pid).map((proc) => proc.pid)]),
    running: () => !running.exited,
    stop() {
      stopping ??= (async () => {
        await running.terminate();
        await rm(input.dir, { recursive: true, force: true, maxRetries: 3 });
      })();
      return stopping;
    },
  };
}
