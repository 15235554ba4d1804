// Resolves raw options (flags, SAFE_SCP_* env, -o Key=Value) once into a frozen, validated config.
import os from 'node:os';
import path from 'node:path';
import { SafeScpError, usageError } from './errors.js';
import { hasControl, parseOperand, type RemoteOperand } from './operands.js';
import { MAX_TIMER_MS, parseDuration } from './util/duration.js';

/** Options as the CLI (or a library caller) hands them over: strings as typed, not yet checked. */
export interface RawOptions {
  operands: readonly string[];
  port?: string | number | undefined;
  identity?: readonly string[] | undefined;
  recursive?: boolean | undefined;
  preserve?: boolean | undefined;
  staged?: boolean | undefined;
  update?: boolean | undefined;
  inplace?: boolean | undefined;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
  option?: readonly string[] | undefined;
  jumpHost?: string | undefined;
  limit?: string | number | undefined;
  retries?: string | number | undefined;
  retryDelay?: string | number | undefined;
  retryMaxDelay?: string | number | undefined;
  connectTimeout?: string | number | undefined;
  timeout?: string | number | undefined;
  stallTimeout?: string | number | undefined;
  keepaliveInterval?: string | number | undefined;
  hostConcurrency?: string | number | undefined;
  hostInterval?: string | number | undefined;
  knownHosts?: readonly string[] | undefined;
  hostKey?: readonly string[] | undefined;
  acceptNew?: boolean | undefined;
  report?: string | undefined;
  json?: boolean | undefined;
  dryRun?: boolean | undefined;
  stateDir?: string | undefined;
  hosts?: string | undefined;
  parallel?: string | number | undefined;
}

export interface HostTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
}

export interface ResolvedConfig {
  readonly direction: 'upload' | 'download';
  /** Local paths (upload) or remote paths (download). */
  readonly sources: readonly string[];
  /** Remote path (upload) or local path (download). */
  readonly target: string;
  readonly hosts: readonly HostTarget[];
  readonly recursive: boolean;
  readonly preserve: boolean;
  /** Upload: staged commit (every file verified under a temporary name, then all renamed in one burst). */
  readonly staged: boolean;
  /** Upload: skip files whose remote size and mtime equal the local ones; sent files get the local mtime. */
  readonly update: boolean;
  /** Upload: write over existing files in place (no temporary name, not atomic). */
  readonly inplace: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly identityFiles: readonly string[];
  readonly jumpHosts: readonly HostTarget[];
  /** Bandwidth limit in bytes per second, 0 for none. */
  readonly limitBytesPerSecond: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly hostConcurrency: number;
  readonly hostIntervalMs: number;
  /** known_hosts files to read (missing ones are skipped, and said so in the diagnosis). */
  readonly knownHostsFiles: readonly string[];
  readonly hostKeyFingerprints: readonly string[];
  readonly strictHostKeyChecking: 'yes' | 'accept-new';
  /** Where accept-new records first-seen keys. */
  readonly acceptNewFile: string;
  readonly reportFile: string | undefined;
  readonly json: boolean;
  readonly dryRun: boolean;
  readonly stateDir: string;
  readonly parallel: number;
}

/** Every default in one place (CI-friendly: a few attempts over about a minute). */
export const DEFAULTS = {
  port: 22,
  retries: 5,
  retryDelay: '2s',
  retryMaxDelay: '20s',
  connectTimeout: '15s',
  timeout: '30m',
  stallTimeout: '60s',
  keepaliveInterval: '10s',
  keepaliveCountMax: 3,
  hostConcurrency: 1,
  hostInterval: '1s',
  parallel: 4,
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/** `name` is a long option (`retries`) or, when it starts with '-', the option as written (`-o ServerAliveCountMax`). */
function integer(name: string, value: string | number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const text = String(value).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw usageError(`\`${name.startsWith('-') ? name : `--${name}`}\` must be a whole number from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

/** `name` is a long option (`timeout`) or, when it starts with '-', the option as written (`-o ConnectTimeout`). */
function duration(name: string, value: string | number | undefined, fallback: string, min = 0): number {
  const raw = value === undefined || value === '' ? fallback : value;
  const label = name.startsWith('-') ? `\`${name}\`` : `\`--${name}\` (${envTwin(name)})`;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < min) {
    const negative = /^\s*-/.test(String(raw)) ? '; it must not be negative' : '';
    throw usageError(`${label} must be a duration like 500ms, 10s, 2m or plain milliseconds${min ? ` (at least ${min}ms)` : ''}${negative}, got "${String(raw)}"`);
  }
  // Node's timers take at most 2^31 - 1 ms; a longer delay would fire at once (TimeoutOverflowWarning).
  if (ms > MAX_TIMER_MS) {
    throw usageError(`${label} must be at most ${MAX_TIMER_MS}ms (about 24 days), got "${String(raw)}"`);
  }
  return ms;
}

/** `connect-timeout` -> `SAFE_SCP_CONNECT_TIMEOUT`. */
function envTwin(name: string): string {
  return `SAFE_SCP_${name.toUpperCase().replace(/-/g, '_')}`;
}

function seconds(name: string, value: string): string {
  if (!/^\d+$/.test(value)) throw usageError(`\`-o ${name}\` takes whole seconds, got "${value}"`);
  return `${value}s`;
}

/** The OpenSSH -o options that mean something here; anything else is a usage error naming it. */
const SSH_OPTIONS = [
  'Port', 'User', 'IdentityFile', 'ConnectTimeout', 'UserKnownHostsFile', 'StrictHostKeyChecking',
  'ProxyJump', 'ServerAliveInterval', 'ServerAliveCountMax', 'ConnectionAttempts', 'BatchMode',
] as const;
type SshOption = (typeof SSH_OPTIONS)[number];

function parseSshOptions(list: readonly string[]): Map<SshOption, string[]> {
  const result = new Map<SshOption, string[]>();
  for (const item of list) {
    const match = /^\s*([A-Za-z]+)\s*(?:=|\s)\s*(.*?)\s*$/.exec(item);
    if (!match?.[1]) throw usageError(`\`-o ${item}\`: expected Key=Value`);
    const known = SSH_OPTIONS.find((o) => o.toLowerCase() === match[1]?.toLowerCase());
    if (!known) {
      throw usageError(`\`-o ${match[1]}\` is not supported; supported: ${SSH_OPTIONS.join(', ')}`);
    }
    if (hasControl(match[2] ?? '')) throw usageError(`\`-o ${known}\`: the value contains a control character`);
    result.set(known, [...(result.get(known) ?? []), match[2] ?? '']);
  }
  return result;
}

function strictness(value: string): 'yes' | 'accept-new' {
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true' || v === 'ask') return 'yes';
  if (v === 'accept-new') return 'accept-new';
  if (v === 'no' || v === 'off' || v === 'false') {
    throw new SafeScpError('usage',
      'StrictHostKeyChecking=no is refused: safe-scp never trusts an unknown host key. Pin the key instead: ' +
        'put the server\'s known_hosts line into SSH_KNOWN_HOSTS (run `ssh-keyscan -p PORT HOST` once on a trusted ' +
        'machine and check its fingerprint against `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server), ' +
        'or pass `--host-key SHA256:...`; `--accept-new` pins the first key seen.',
      // The CLI then fetches the offered key once (no authentication) to print the exact line to pin.
      { phase: 'config', details: { refusedStrictNo: true } },
    );
  }
  throw usageError(`\`-o StrictHostKeyChecking=${value}\`: expected yes or accept-new`);
}

/** `[user@]host[:port]` as used by -J and --hosts entries. */
export function parseHostSpec(spec: string, what: string): { host: string; user: string | undefined; port: number | undefined } {
  const at = spec.lastIndexOf('@');
  const user = at >= 0 ? spec.slice(0, at) || undefined : undefined;
  const rest = at >= 0 ? spec.slice(at + 1) : spec;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  let host = rest;
  let portText: string | undefined;
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2];
  } else if (rest.split(':').length === 2) {
    [host, portText] = rest.split(':') as [string, string];
  }
  if (hasControl(spec)) throw usageError(`${what}: ${JSON.stringify(spec)} contains a control character`);
  if (!host || /[\s/[\]]/.test(host)) throw usageError(`${what}: invalid host "${spec}", expected [user@]host[:port]`);
  if (portText !== undefined && (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)) {
    throw usageError(`${what}: invalid port in "${spec}", expected 1-65535`);
  }
  return { host, user, port: portText === undefined ? undefined : Number(portText) };
}

function expandHome(file: string, env: Env): string {
  if (file === '~' || file.startsWith('~/')) return path.join(env['HOME'] ?? os.homedir(), file.slice(1));
  return file;
}

/** Resolves and checks everything before any connection is opened. Throws SafeScpError('usage'). */
export function resolveConfig(raw: RawOptions, env: Env): ResolvedConfig {
  const ssh = parseSshOptions(raw.option ?? []);
  const last = (key: SshOption): string | undefined => ssh.get(key)?.at(-1);

  if (raw.operands.length < 2) throw usageError('expected at least one SOURCE and a TARGET (safe-scp [options] SOURCE... TARGET)');
  const operands = raw.operands.map(parseOperand);
  const targetOperand = operands[operands.length - 1];
  const sourceOperands = operands.slice(0, -1);
  if (!targetOperand) throw usageError('missing TARGET');

  let direction: 'upload' | 'download';
  let remote: RemoteOperand;
  if (targetOperand.kind === 'remote') {
    if (sourceOperands.some((o) => o.kind === 'remote')) {
      throw usageError('remote-to-remote copies are not supported: copy to a local directory first, then upload');
    }
    direction = 'upload';
    remote = targetOperand;
  } else {
    const remotes = sourceOperands.filter((o): o is RemoteOperand => o.kind === 'remote');
    if (remotes.length === 0) throw usageError('no remote operand: one side must be [user@]host:path');
    if (remotes.length !== sourceOperands.length) throw usageError('cannot mix local and remote sources in one download');
    const first = remotes[0] as RemoteOperand;
    if (remotes.some((r) => r.host !== first.host || r.user !== first.user || r.port !== first.port)) {
      throw usageError('all remote sources of a download must be on the same host');
    }
    direction = 'download';
    remote = first;
  }

  const defaultUser = env['USER'] ?? env['LOGNAME'] ?? os.userInfo().username;
  const flagPort = raw.port !== undefined && raw.port !== '';
  const port = remote.port ?? integer(flagPort ? 'port' : '-o Port', flagPort ? raw.port : last('Port'), DEFAULTS.port, 1, 65535);
  const user = remote.user ?? last('User') ?? defaultUser;

  let hosts: HostTarget[];
  const hostsOption = raw.hosts?.trim();
  if (hostsOption) {
    if (remote.host) throw usageError(`with --hosts the remote operand names no host: write "${remote.user ? `${remote.user}@` : ''}:${remote.path}"`);
    hosts = parseHostsList(hostsOption).map((entry) => {
      const spec = parseHostSpec(entry, '--hosts');
      return { host: spec.host, port: spec.port ?? port, user: spec.user ?? user };
    });
    if (hosts.length === 0) throw usageError('`--hosts` is empty');
  } else {
    if (!remote.host) throw usageError('the remote operand has no host: write host:path (or use --hosts)');
    hosts = [{ host: remote.host, port, user }];
  }

  // An empty SAFE_SCP_JUMP_HOST (as the component sets it) means unset, not "no jump host".
  const jumpText = raw.jumpHost?.trim() ? raw.jumpHost : last('ProxyJump');
  const jumpHosts: HostTarget[] =
    jumpText && jumpText.toLowerCase() !== 'none'
      ? jumpText.split(',').map((hop) => {
          const spec = parseHostSpec(hop.trim(), '-J');
          return { host: spec.host, port: spec.port ?? 22, user: spec.user ?? defaultUser };
        })
      : [];

  const retriesFromAttempts = last('ConnectionAttempts');
  const retries =
    raw.retries !== undefined && raw.retries !== ''
      ? integer('retries', raw.retries, DEFAULTS.retries, 0, 100)
      : retriesFromAttempts !== undefined
        ? integer('-o ConnectionAttempts', retriesFromAttempts, DEFAULTS.retries + 1, 1, 101) - 1
        : DEFAULTS.retries;

  const connectTimeoutRaw = raw.connectTimeout ?? (last('ConnectTimeout') !== undefined ? seconds('ConnectTimeout', last('ConnectTimeout') ?? '') : undefined);
  const keepaliveRaw = raw.keepaliveInterval ?? (last('ServerAliveInterval') !== undefined ? seconds('ServerAliveInterval', last('ServerAliveInterval') ?? '') : undefined);

  // Checked even with --accept-new, so that StrictHostKeyChecking=no is always refused.
  const sshStrict = last('StrictHostKeyChecking') !== undefined ? strictness(last('StrictHostKeyChecking') ?? '') : undefined;
  const strict = raw.acceptNew ? 'accept-new' : (sshStrict ?? 'yes');

  const home = env['HOME'] ?? os.homedir();
  const explicitKnownHosts = [...(raw.knownHosts ?? []), ...(ssh.get('UserKnownHostsFile') ?? []).flatMap((v) => v.split(/\s+/))]
    .filter((f) => f && f !== '/dev/null')
    .map((f) => expandHome(f, env));
  const userKnownHosts = path.join(home, '.ssh', 'known_hosts');
  const knownHostsFiles = explicitKnownHosts.length > 0 ? explicitKnownHosts : [userKnownHosts];

  const limitKbit = raw.limit === undefined || raw.limit === '' ? 0 : integer('limit', raw.limit, 0, 1, 100_000_000);
  const retryDelayMs = duration('retry-delay', raw.retryDelay, DEFAULTS.retryDelay);
  const retryMaxDelayMs = duration('retry-max-delay', raw.retryMaxDelay, DEFAULTS.retryMaxDelay);
  if (retryMaxDelayMs < retryDelayMs) {
    throw usageError(`\`--retry-max-delay\` (${retryMaxDelayMs}ms) must not be smaller than \`--retry-delay\` (${retryDelayMs}ms)`);
  }

  const config: ResolvedConfig = {
    direction,
    sources: sourceOperands.map((o) => o.path),
    target: targetOperand.path,
    hosts,
    recursive: raw.recursive ?? false,
    preserve: raw.preserve ?? false,
    staged: direction === 'upload' && !raw.inplace && (raw.staged ?? ((raw.recursive ?? false) || sourceOperands.length > 1)),
    update: raw.update ?? false,
    inplace: raw.inplace ?? false,
    quiet: raw.quiet ?? false,
    verbose: raw.verbose ?? false,
    identityFiles: [...(raw.identity ?? []), ...(ssh.get('IdentityFile') ?? [])].map((f) => expandHome(f, env)),
    jumpHosts,
    limitBytesPerSecond: Math.round((limitKbit * 1000) / 8),
    retries,
    retryDelayMs,
    retryMaxDelayMs,
    connectTimeoutMs: duration(raw.connectTimeout === undefined && last('ConnectTimeout') !== undefined ? '-o ConnectTimeout' : 'connect-timeout', connectTimeoutRaw, DEFAULTS.connectTimeout, 100),
    timeoutMs: duration('timeout', raw.timeout, DEFAULTS.timeout, 100),
    stallTimeoutMs: duration('stall-timeout', raw.stallTimeout, DEFAULTS.stallTimeout, 100),
    keepaliveIntervalMs: duration(raw.keepaliveInterval === undefined && last('ServerAliveInterval') !== undefined ? '-o ServerAliveInterval' : 'keepalive-interval', keepaliveRaw, DEFAULTS.keepaliveInterval, 100),
    keepaliveCountMax: integer('-o ServerAliveCountMax', last('ServerAliveCountMax'), DEFAULTS.keepaliveCountMax, 1, 100),
    hostConcurrency: integer('host-concurrency', raw.hostConcurrency, DEFAULTS.hostConcurrency, 1, 64),
    hostIntervalMs: duration('host-interval', raw.hostInterval, DEFAULTS.hostInterval),
    knownHostsFiles,
    hostKeyFingerprints: [...(raw.hostKey ?? [])],
    strictHostKeyChecking: strict,
    acceptNewFile: knownHostsFiles[0] ?? userKnownHosts,
    reportFile: raw.report || undefined,
    json: raw.json ?? false,
    dryRun: raw.dryRun ?? false,
    stateDir: raw.stateDir || path.join(os.tmpdir(), `safe-scp-${process.getuid?.() ?? 'user'}`),
    parallel: integer('parallel', raw.parallel, DEFAULTS.parallel, 1, 256),
  };
  for (const fp of config.hostKeyFingerprints) {
    if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(fp)) {
      throw usageError(`\`--host-key\` must be an OpenSSH SHA256 fingerprint like SHA256:<43 base64 characters>, got "${fp}"`);
    }
  }
  if (config.sources.some((s) => s === '') && direction === 'upload') throw usageError('empty source path');
  if (raw.inplace && raw.staged) throw usageError('`--inplace` and `--staged` cannot be combined: a file written in place has no temporary name to stage');
  if ((raw.inplace || raw.update) && direction === 'download') throw usageError(`\`--${raw.inplace ? 'inplace' : 'update'}\` applies to uploads only`);
  return Object.freeze(config);
}

function parseHostsList(value: string): string[] {
  // `@file` is read by the CLI layer before resolveConfig; here it is a comma or newline list.
  return value
    .split(/[,\n]/)
    .map((s) => s.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** `safe-scp doctor [user@]host[:port]`: the same options, with one host and nothing to copy. */
export function resolveDoctorConfig(raw: RawOptions, target: string, env: Env): ResolvedConfig {
  const spec = parseHostSpec(target.replace(/^ssh:\/\//, ''), 'doctor');
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return resolveConfig(
    {
      ...raw,
      operands: ['.', `${spec.user ? `${spec.user}@` : ''}${host}:`],
      recursive: true,
      ...(spec.port !== undefined ? { port: spec.port } : {}),
    },
    env,
  );
}
