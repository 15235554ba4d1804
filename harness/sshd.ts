// Runs a private, throwaway OpenSSH sshd (foreground, logging to stderr) on loopback for integration tests.
// Keys: sshd-keys.ts; the running process (log, readiness, termination): sshd-process.ts.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './listeners.js';
import { descendantsOf } from './procs.js';
import { hostKeyFromFile, makeUserKey, type HostKeyInfo, type KeyType, type UserKey } from './sshd-keys.js';
import { BindFailure, RunningSshd, sleep, type AuthEvent } from './sshd-process.js';

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
