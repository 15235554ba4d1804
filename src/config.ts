// Resolves raw options (flags, SAFE_SCP_* env, -o Key=Value) once into a frozen, validated config.
import os from 'node:os';
import path from 'node:path';
import { configError, usageError } from './errors.js';
import { splitOperands } from './operands.js';
import { DEFAULTS, type RawOptions } from './options.js';
import { sshConfigContext, type HostSettings } from './ssh-config/host.js';
import { TargetResolver, checkPreferredAuthentications, logLevel, type AppliedLine } from './ssh-config/targets.js';
import { expandHome, parseHostSpec, parseHostsList } from './config/host-spec.js';
import type { HostTarget } from './config/host-target.js';
import { fileStrictness, parseSshOptions, strictness, type SshOption } from './config/ssh-options.js';
import { integer, optionValue, seconds, yesNo } from './config/values.js';

export { DEFAULTS, type RawOptions } from './options.js';
export { parseHostSpec } from './config/host-spec.js';
export type { HostTarget } from './config/host-target.js';

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
  /** SFTP channels to open on the one connection (files and big files' ranges are spread over them). */
  readonly channels: number;
  /** --channels was given: open that many even on a short round trip. */
  readonly channelsForced: boolean;
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
  /** ssh_config lines that applied, per host as typed (for --dry-run and -v). */
  readonly sshConfigLines: readonly AppliedLine[];
  /** -v notes: ssh_config keywords and -o options that safe-scp accepts but does not act on. */
  readonly sshConfigNotes: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** Resolves and checks everything before any connection is opened. Throws SafeScpError('usage'). */
export function resolveConfig(raw: RawOptions, env: Env): ResolvedConfig {
  const ssh = parseSshOptions(raw.option ?? []);
  const last = (key: SshOption): string | undefined => ssh.get(key)?.at(-1);

  const { direction, remote, sourceOperands, targetOperand } = splitOperands(raw.operands);

  const defaultUser = env['USER'] ?? env['LOGNAME'] ?? os.userInfo().username;
  const home = env['HOME'] ?? os.homedir();
  const flagPort = raw.port !== undefined && raw.port !== '';
  const givenPort = flagPort || last('Port') !== undefined ? optionValue('port', flagPort ? raw.port : last('Port'), flagPort ? 'port' : '-o Port') : undefined;
  const givenUser = last('User');
  // An empty SAFE_SCP_JUMP_HOST (as the component sets it) means unset, not "no jump host".
  const jumpText = raw.jumpHost?.trim() ? raw.jumpHost : last('ProxyJump');
  const identitiesOnlyOption = last('IdentitiesOnly');
  const resolver = new TargetResolver({
    ctx: sshConfigContext(raw.sshConfig, home, defaultUser),
    identityFiles: [...(raw.identity ?? []), ...(ssh.get('IdentityFile') ?? [])].map((f) => expandHome(f, env)),
    envKey: Boolean(env['SSH_PRIVATE_KEY']),
    commandLine: [...ssh.keys()].map((k) => k.toLowerCase()),
    hostKeyAlias: last('HostKeyAlias') || undefined,
    identitiesOnly: identitiesOnlyOption === undefined ? undefined : yesNo('IdentitiesOnly', identitiesOnlyOption),
    jump: jumpText,
    parseHostSpec,
  });

  let hosts: HostTarget[];
  let firstSettings: HostSettings | undefined;
  const hostsOption = raw.hosts?.trim();
  if (hostsOption) {
    if (remote.host) throw usageError(`with --hosts the remote operand names no host: write "${remote.user ? `${remote.user}@` : ''}:${remote.path}"`);
    hosts = parseHostsList(hostsOption).map((entry) => {
      const spec = parseHostSpec(entry, '--hosts');
      const { target, settings } = resolver.target(spec.host, spec.user ?? remote.user ?? givenUser, spec.port ?? remote.port ?? givenPort);
      firstSettings ??= settings;
      return target;
    });
    if (hosts.length === 0) throw usageError('`--hosts` is empty');
  } else {
    if (!remote.host) throw usageError('the remote operand has no host: write host:path (or use --hosts)');
    const { target, settings } = resolver.target(remote.host, remote.user ?? givenUser, remote.port ?? givenPort);
    firstSettings = settings;
    hosts = [target];
  }
  const firstHost = hosts[0] as HostTarget;
  const jumpHosts = [...(firstHost.jumpHosts ?? [])];

  // Settings for the whole run come from -o, else from the first host's ssh_config block.
  const fromFile = (key: SshOption, check?: RegExp, expected?: string): string | undefined => {
    const v = firstSettings?.value(key.toLowerCase());
    if (v && check && !check.test(v.value)) throw configError(`${v.where}: ${key} must be ${expected ?? 'valid'}, got "${v.value}"`);
    return v?.value;
  };
  const opt = (key: SshOption, check?: RegExp, expected?: string): string | undefined => last(key) ?? fromFile(key, check, expected);
  const notes = resolver.notes();
  const level = last('LogLevel') !== undefined ? logLevel(last('LogLevel') ?? '', '-o LogLevel', false) : firstSettings?.value('loglevel') ? logLevel(firstSettings.value('loglevel')?.value ?? '', firstSettings.value('loglevel')?.where ?? '', true) : undefined;
  const batch = opt('BatchMode');
  if (batch !== undefined) yesNo('BatchMode', batch); // safe-scp never prompts: either value is fine
  // Compression from a file is in the notes with the other keywords not used.
  const compression = last('Compression');
  if (compression !== undefined) {
    yesNo('Compression', compression);
    notes.push(`Compression=${compression} is ignored: safe-scp does not compress`);
  }
  if (last('PreferredAuthentications') !== undefined) checkPreferredAuthentications(last('PreferredAuthentications') ?? '', '-o PreferredAuthentications', false);
  for (const s of resolver.resolved) {
    const pa = s.value('preferredauthentications');
    if (pa) checkPreferredAuthentications(pa.value, pa.where, true);
  }

  const retriesFromAttempts = opt('ConnectionAttempts', /^\d+$/, 'a whole number');
  const retries =
    raw.retries !== undefined && raw.retries !== ''
      ? optionValue('retries', raw.retries)
      : retriesFromAttempts !== undefined
        ? integer('-o ConnectionAttempts', retriesFromAttempts, DEFAULTS.retries + 1, 1, 101) - 1
        : DEFAULTS.retries;

  const connectTimeoutText = opt('ConnectTimeout', /^\d+$/, 'whole seconds');
  const keepaliveText = opt('ServerAliveInterval', /^\d+$/, 'whole seconds');
  const connectTimeoutRaw = raw.connectTimeout ?? (connectTimeoutText !== undefined ? seconds('ConnectTimeout', connectTimeoutText) : undefined);
  const keepaliveRaw = raw.keepaliveInterval ?? (keepaliveText !== undefined ? seconds('ServerAliveInterval', keepaliveText) : undefined);

  // Checked even with --accept-new, so that StrictHostKeyChecking=no is always refused.
  const sshStrict = last('StrictHostKeyChecking') !== undefined ? strictness(last('StrictHostKeyChecking') ?? '') : undefined;
  const strict = raw.acceptNew ? 'accept-new' : (sshStrict ?? fileStrictness(firstSettings, notes));

  const explicitKnownHosts = [...(raw.knownHosts ?? []), ...(ssh.get('UserKnownHostsFile') ?? []).flatMap((v) => v.split(/\s+/))]
    .filter((f) => f && f !== '/dev/null')
    .map((f) => expandHome(f, env));
  // UserKnownHostsFile lines of every host and jump host (pins are per host name, so their union is safe).
  const fileKnownHosts = [...new Set(resolver.resolved.flatMap((r) => r.knownHostsFiles ?? []))].filter((f) => f !== '/dev/null');
  const userKnownHosts = path.join(home, '.ssh', 'known_hosts');
  const knownHostsFiles = explicitKnownHosts.length > 0 ? explicitKnownHosts : fileKnownHosts.length > 0 ? fileKnownHosts : [userKnownHosts];

  const limitKbit = raw.limit === undefined || raw.limit === '' ? 0 : optionValue('limit', raw.limit);
  const retryDelayMs = optionValue('retry-delay', raw.retryDelay);
  const retryMaxDelayMs = optionValue('retry-max-delay', raw.retryMaxDelay);
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
    channels: optionValue('channels', raw.channels),
    channelsForced: raw.channels !== undefined && String(raw.channels).trim() !== '',
    quiet: raw.quiet ?? level === 'quiet',
    verbose: raw.verbose ?? level === 'verbose',
    identityFiles: firstHost.identityFiles ?? [],
    jumpHosts,
    limitBytesPerSecond: Math.round((limitKbit * 1000) / 8),
    retries,
    retryDelayMs,
    retryMaxDelayMs,
    connectTimeoutMs: optionValue('connect-timeout', connectTimeoutRaw, raw.connectTimeout === undefined && last('ConnectTimeout') !== undefined ? '-o ConnectTimeout' : 'connect-timeout'),
    timeoutMs: optionValue('timeout', raw.timeout),
    stallTimeoutMs: optionValue('stall-timeout', raw.stallTimeout),
    keepaliveIntervalMs: optionValue('keepalive-interval', keepaliveRaw, raw.keepaliveInterval === undefined && last('ServerAliveInterval') !== undefined ? '-o ServerAliveInterval' : 'keepalive-interval'),
    keepaliveCountMax: integer('-o ServerAliveCountMax', opt('ServerAliveCountMax', /^\d+$/, 'a whole number'), DEFAULTS.keepaliveCountMax, 1, 100),
    hostConcurrency: optionValue('host-concurrency', raw.hostConcurrency),
    hostIntervalMs: optionValue('host-interval', raw.hostInterval),
    knownHostsFiles,
    hostKeyFingerprints: [...(raw.hostKey ?? [])],
    strictHostKeyChecking: strict,
    acceptNewFile: knownHostsFiles[0] ?? userKnownHosts,
    reportFile: raw.report || undefined,
    json: raw.json ?? false,
    dryRun: raw.dryRun ?? false,
    stateDir: raw.stateDir || path.join(os.tmpdir(), `safe-scp-${process.getuid?.() ?? 'user'}`),
    parallel: optionValue('parallel', raw.parallel),
    sshConfigLines: resolver.appliedLines(),
    sshConfigNotes: notes,
  };
  for (const fp of config.hostKeyFingerprints) {
    if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(fp)) {
      throw usageError(`\`--host-key\` must be an OpenSSH SHA256 fingerprint like SHA256:<43 base64 characters>, got "${fp}"`);
    }
  }
  if (config.sources.some((s) => s === '') && direction === 'upload') throw usageError('empty source path');
  if (raw.inplace && raw.staged) throw usageError('`--inplace` and `--staged` cannot be combined: a file written in place has no temporary name to stage');
  if (raw.inplace && direction === 'download') throw usageError('`--inplace` applies to uploads only');
  return Object.freeze(config);
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
