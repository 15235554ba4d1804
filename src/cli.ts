#!/usr/bin/env node
// The thin shell: parse argv (yargs, SAFE_SCP_<OPTION> env twins), wire signals, print, map causes to exit codes.
import fs from 'node:fs';
import type Yargs from 'yargs';
import type { RawOptions } from './config.js';
import type { SafeScpEvent } from './log/events.js';
import type { ProgressLine } from './log/progress-line.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const list = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/\n/)).map((v) => v.trim()).filter(Boolean);
const str = (value: unknown): string | undefined => (value === undefined || value === null ? undefined : String(value));

function build(yargs: typeof Yargs, argv: string[]) {
  return yargs(argv)
    .scriptName('safe-scp')
    .usage('$0 [options] SOURCE... TARGET\n\nCopies files like scp, over SFTP: pinned host keys, per-host throttling, retries for transient resets.\nOperands: local path | [user@]host:[path] | scp://[user@]host[:port][/path]')
    .command('$0 [operands..]', false, (y) => y.positional('operands', { type: 'string', array: true }))
    .command('doctor <target>', 'explain connectivity to [user@]host[:port] without transferring (one careful connection)', (y) =>
      y.positional('target', { type: 'string' }),
    )
    // No .env('SAFE_SCP'): it would take every SAFE_SCP_* variable as an option; main() maps the known ones.
    .locale('en')
    .parserConfiguration({ 'duplicate-arguments-array': true, 'strip-aliased': true })
    .option('port', { alias: 'P', type: 'string', describe: 'remote port', defaultDescription: '22' })
    .option('identity', { alias: 'i', type: 'string', describe: 'private key file (repeatable); SSH_PRIVATE_KEY is used too' })
    .option('recursive', { alias: 'r', type: 'boolean', describe: 'copy directories recursively' })
    .option('preserve', { alias: 'p', type: 'boolean', describe: 'keep modification times and modes' })
    .option('update', { type: 'boolean', describe: 'skip files whose remote size and mtime equal the local ones (rsync\'s quick check); sent files get the local mtime' })
    .option('inplace', { type: 'boolean', describe: 'write over existing files in place like scp, for directories you cannot write to (not atomic)' })
    .option('staged', { type: 'boolean', describe: 'upload every file under a temporary name, then rename all in one burst (--no-staged: rename each as it arrives)', defaultDescription: 'on for -r and several sources' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'print only errors, warnings and the final diagnosis: no progress, retry lines or success summary' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'print each step' })
    .option('progress-interval', { type: 'string', describe: 'without a terminal, print a progress line this often (0: no progress at all)', defaultDescription: '10s' })
    .option('option', { alias: 'o', type: 'string', describe: 'OpenSSH option Key=Value (Port, User, IdentityFile, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, ProxyJump, ServerAliveInterval, ServerAliveCountMax, ConnectionAttempts, BatchMode)' })
    .option('jump-host', { alias: 'J', type: 'string', describe: 'jump host(s) [user@]host[:port][,...]' })
    .option('limit', { alias: 'l', type: 'string', describe: 'bandwidth limit in Kbit/s' })
    .option('retries', { type: 'string', describe: 'extra attempts after the first for transient failures', defaultDescription: '5' })
    .option('retry-delay', { type: 'string', describe: 'first backoff (full jitter, doubling)', defaultDescription: '2s' })
    .option('retry-max-delay', { type: 'string', describe: 'cap of any backoff', defaultDescription: '20s' })
    .option('connect-timeout', { type: 'string', describe: 'TCP + banner + key exchange + auth, per attempt', defaultDescription: '15s' })
    .option('timeout', { type: 'string', describe: 'deadline for the whole run', defaultDescription: '30m' })
    .option('stall-timeout', { type: 'string', describe: 'fail a transfer that makes no progress this long', defaultDescription: '60s' })
    .option('keepalive-interval', { type: 'string', describe: 'SSH keepalive interval', defaultDescription: '10s' })
    .option('host-concurrency', { type: 'string', describe: 'simultaneous connection attempts per host, across processes', defaultDescription: '1' })
    .option('host-interval', { type: 'string', describe: 'minimum gap between connection attempts to one host (0 = none)', defaultDescription: '1s' })
    .option('known-hosts', { type: 'string', describe: 'known_hosts file (repeatable)', defaultDescription: '~/.ssh/known_hosts' })
    .option('host-key', { type: 'string', describe: 'pinned host key fingerprint SHA256:... (repeatable)' })
    .option('accept-new', { type: 'boolean', describe: 'pin a first-seen host key into the known_hosts file (explicit opt-in)' })
    .option('report', { type: 'string', describe: 'write a JSON report to FILE' })
    .option('json', { type: 'boolean', describe: 'print the result as JSON on stdout' })
    .option('dry-run', { type: 'boolean', describe: 'print the plan; open no connection' })
    .option('state-dir', { type: 'string', describe: 'directory for cross-process throttle state', defaultDescription: '$TMPDIR/safe-scp-UID' })
    .option('hosts', { type: 'string', describe: 'copy to each of these hosts: comma list or @file; the remote operand is then [user@]:path' })
    .option('parallel', { type: 'string', describe: 'hosts in parallel with --hosts', defaultDescription: '4' })
    .version(false)
    .option('version', { type: 'boolean', describe: 'print the version' })
    .help('help')
    .alias('help', 'h')
    .strictOptions()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageFailure(msg);
    });
}

class UsageFailure extends Error {}

async function main(): Promise<number> {
  const stderr = (text: string): void => {
    process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  // A bare `--version` answers before yargs loads (about 100 ms of start-up); with SAFE_SCP_* set, yargs decides.
  if (process.argv.length === 3 && process.argv[2] === '--version' && !Object.keys(process.env).some((k) => k.startsWith('SAFE_SCP'))) {
    process.stdout.write(`safe-scp ${pkg.version}\n`);
    return 0;
  }
  const [{ default: yargs }, { hideBin }, { joinNegativeValues, NUMERIC_OPTIONS }] = await Promise.all([import('yargs'), import('yargs/helpers'), import('./util/argv.js')]);
  const [{ readEnvOptions, bareDurationWarnings }, { unknownOptionsMessage }, { helpEpilogue }] = await Promise.all([
    import('./util/env-options.js'),
    import('./util/suggest.js'),
    import('./util/cli-help.js'),
  ]);
  const parser = build(yargs, joinNegativeValues(hideBin(process.argv), NUMERIC_OPTIONS));
  // Only SAFE_SCP_<known long option> is read (flag > environment > default); any other SAFE_SCP_* is a warning.
  // getOptions() is public yargs API that @types/yargs does not declare.
  const declared = (parser as unknown as { getOptions(): { key: Record<string, unknown>; boolean: string[] } }).getOptions();
  const longOptions = Object.keys(declared.key).filter((k) => k.length > 1 && k !== 'help' && k !== 'version');
  const fromEnv = readEnvOptions(process.env, longOptions, declared.boolean);
  for (const warning of fromEnv.warnings) stderr(warning);
  if (fromEnv.errors.length > 0) {
    stderr(`safe-scp: ${fromEnv.errors.join('; ')}`);
    return 2;
  }
  parser.config(fromEnv.values).epilogue(helpEpilogue(longOptions));
  let argv: Record<string, unknown>;
  try {
    argv = (await parser.parse()) as Record<string, unknown>;
  } catch (err: unknown) {
    const message = err instanceof Error ? err.message : String(err);
    stderr(`safe-scp: ${unknownOptionsMessage(message, longOptions) ?? message}\nRun safe-scp --help for usage.`);
    return 2;
  }
  if (argv['help']) return 0;
  const camel = (option: string): string => option.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const warning of bareDurationWarnings(Object.fromEntries(longOptions.map((o) => [o, argv[camel(o)]])))) stderr(warning);
  if (argv['version']) {
    process.stdout.write(`safe-scp ${pkg.version}\n`);
    return 0;
  }

  // Heavy modules (ssh2) load only when there is work to do: --version and --help stay fast.
  const [{ resolveConfig, resolveDoctorConfig }, { copy }, { SafeScpError, isSafeScpError }, text, { buildReport }, { makeRedactor }, reportFile, { ensureStateDir }] = await Promise.all([
    import('./config.js'),
    import('./copy.js'),
    import('./errors.js'),
    import('./log/text.js'),
    import('./log/report.js'),
    import('./log/redact.js'),
    import('./log/report-file.js'),
    import('./throttle/state-dir.js'),
  ]);
  const [{ ProgressLine }, { parseDuration, MAX_TIMER_MS }] = await Promise.all([import('./log/progress-line.js'), import('./util/duration.js')]);
  const redact = makeRedactor([process.env['SSH_PRIVATE_KEY'], process.env['SSH_PRIVATE_KEY_PASSPHRASE']]);
  let progress: ProgressLine | undefined;
  // The live progress line is cleared before any other line goes to stderr (and redrawn on its next tick).
  const err = (line: string): void => {
    progress?.clear();
    stderr(redact(line));
  };

  let hosts = str(argv['hosts']);
  try {
    if (hosts?.startsWith('@')) hosts = fs.readFileSync(hosts.slice(1), 'utf8');
  } catch {
    err(`safe-scp: --hosts: cannot read ${hosts}`);
    return 2;
  }
  const command = (argv['_'] as unknown[] | undefined)?.[0];
  const doctorTarget = command === 'doctor' ? str(argv['target']) : undefined;
  const raw: RawOptions = {
    // Operands after `--` (scp accepts them, for paths starting with '-') land in argv._.
    operands: [...((argv['operands'] as unknown[] | undefined) ?? []), ...(doctorTarget === undefined ? ((argv['_'] as unknown[] | undefined) ?? []) : [])].map(String),
    port: str(argv['port']),
    identity: list(argv['identity']),
    recursive: argv['recursive'] as boolean | undefined,
    preserve: argv['preserve'] as boolean | undefined,
    staged: argv['staged'] as boolean | undefined,
    update: argv['update'] as boolean | undefined,
    inplace: argv['inplace'] as boolean | undefined,
    quiet: argv['quiet'] as boolean | undefined,
    verbose: argv['verbose'] as boolean | undefined,
    option: list(argv['option']),
    jumpHost: str(argv['jumpHost']),
    limit: str(argv['limit']),
    retries: str(argv['retries']),
    retryDelay: str(argv['retryDelay']),
    retryMaxDelay: str(argv['retryMaxDelay']),
    connectTimeout: str(argv['connectTimeout']),
    timeout: str(argv['timeout']),
    stallTimeout: str(argv['stallTimeout']),
    keepaliveInterval: str(argv['keepaliveInterval']),
    hostConcurrency: str(argv['hostConcurrency']),
    hostInterval: str(argv['hostInterval']),
    knownHosts: list(argv['knownHosts']),
    hostKey: list(argv['hostKey']),
    acceptNew: argv['acceptNew'] as boolean | undefined,
    report: str(argv['report']),
    json: argv['json'] as boolean | undefined,
    dryRun: argv['dryRun'] as boolean | undefined,
    stateDir: str(argv['stateDir']),
    hosts,
    parallel: str(argv['parallel']),
  };

  let config;
  try {
    config = doctorTarget !== undefined ? resolveDoctorConfig(raw, doctorTarget, process.env) : resolveConfig(raw, process.env);
  } catch (e: unknown) {
    err(`safe-scp: ${e instanceof Error ? e.message : String(e)}`);
    if (isSafeScpError(e) && e.details['refusedStrictNo'] === true) await showKeyToPin(raw, doctorTarget, err);
    return isSafeScpError(e) ? e.exitCode : 2;
  }

  const progressInterval = parseDuration(str(argv['progressInterval']) ?? '10s');
  if (progressInterval === undefined || progressInterval > MAX_TIMER_MS) {
    err(`safe-scp: \`--progress-interval\` (SAFE_SCP_PROGRESS_INTERVAL) must be a duration like 500ms, 10s, 2m or plain milliseconds, got "${String(argv['progressInterval'])}"`);
    return 2;
  }
  if (!config.quiet && !config.dryRun && doctorTarget === undefined && progressInterval > 0) {
    progress = new ProgressLine({
      tty: Boolean(process.stderr.isTTY),
      intervalMs: progressInterval,
      write: (t) => void process.stderr.write(t),
      columns: () => process.stderr.columns,
    });
  }

  const style = {
    color: Boolean(process.stderr.isTTY) && !process.env['NO_COLOR'],
    gitlab: process.env['GITLAB_CI'] === 'true',
    verbose: config.verbose,
  };
  const controller = new AbortController();
  let signalExit: number | undefined;
  const onSignal = (name: 'SIGINT' | 'SIGTERM'): void => {
    if (signalExit !== undefined) process.exit(name === 'SIGINT' ? 130 : 143);
    signalExit = name === 'SIGINT' ? 130 : 143;
    err(`safe-scp: ${name}: stopping, removing temporary files`);
    controller.abort(new SafeScpError('interrupted', `interrupted by ${name}`, { phase: 'run' }));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  // Local settings that would fail later are checked now, before any connection: cause `config`, exit 2.
  try {
    await ensureStateDir(config.stateDir);
    if (config.reportFile && doctorTarget === undefined) await reportFile.checkReportPath(config.reportFile);
  } catch (e: unknown) {
    if (signalExit !== undefined) return signalExit;
    err(`safe-scp: ${e instanceof Error ? e.message : String(e)}`);
    return isSafeScpError(e) ? e.exitCode : 2;
  }
  if (signalExit !== undefined) return signalExit;

  const plan: string[] = [];
  const emit = (event: SafeScpEvent): void => {
    progress?.onEvent(event);
    if (event.kind === 'plan-entry') plan.push(`${event.type === 'dir' ? 'mkdir' : 'copy '} ${event.source} -> ${event.target}${event.type === 'file' ? ` (${event.bytes} bytes)` : ''}`);
    if (event.kind === 'plan') {
      plan.push(`plan: ${event.direction} ${event.entries} entries, ${event.bytes} bytes, ${event.user}@${event.host}:${event.port}${event.dryRun ? ' (dry run: no connection opened)' : ''}${event.note ? `; ${event.note}` : ''}`);
    }
    if (config.quiet && event.kind !== 'host-key-learned') return;
    const line = text.formatEvent(event, style);
    if (line !== undefined) err(line);
  };

  if (doctorTarget !== undefined) {
    const [{ doctor }, { formatDoctor }] = await Promise.all([import('./diagnose/doctor.js'), import('./log/doctor.js')]);
    const report = await doctor(config, { env: process.env, emit, signal: controller.signal });
    if (config.json) process.stdout.write(redact(`${JSON.stringify({ ...report, trace: { ...report.trace, preBanner: report.trace.preBanner.toString('latin1') } })}\n`));
    else process.stdout.write(redact(`${formatDoctor(report, style)}\n`));
    return report.exitCode;
  }

  const result = await copy(config, { env: process.env, emit, signal: controller.signal });
  progress?.close();
  const exitCode = result.cause === 'interrupted' && signalExit !== undefined ? signalExit : result.exitCode;
  const report = buildReport(result, exitCode);
  if (config.reportFile) {
    try {
      await reportFile.writeReportFile(config.reportFile, redact(`${JSON.stringify(report, null, 2)}\n`));
    } catch (e: unknown) {
      err(`safe-scp: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (config.json) process.stdout.write(redact(`${JSON.stringify(report)}\n`));
  else if (config.dryRun) process.stdout.write(redact(`${plan.join('\n')}\n`));
  else if (result.ok && !config.quiet) process.stdout.write(redact(`${text.formatSummary(result)}\n`));
  if (config.hosts.length > 1 && !config.dryRun && (!config.quiet || !result.ok)) err(text.formatHostTable(result, style));
  if (!result.ok) err(text.formatDiagnosis({ ...result, exitCode }, style));
  return exitCode;
}

/**
 * After refusing StrictHostKeyChecking=no: one connection, no authentication, to show the offered key
 * and the exact line to pin, so the fix is a copy and paste after checking the fingerprint.
 */
async function showKeyToPin(raw: RawOptions, doctorTarget: string | undefined, err: (line: string) => void): Promise<void> {
  const [{ resolveConfig, resolveDoctorConfig }, { doctor }] = await Promise.all([import('./config.js'), import('./diagnose/doctor.js')]);
  const option = (raw.option ?? []).filter((o) => !/^\s*StrictHostKeyChecking\b/i.test(o));
  try {
    const config = doctorTarget !== undefined ? resolveDoctorConfig({ ...raw, option }, doctorTarget, process.env) : resolveConfig({ ...raw, option }, process.env);
    if (config.hosts.length !== 1) return;
    const report = await doctor(config, { env: { ...process.env, SSH_KNOWN_HOSTS: '' }, emit: () => undefined, hostKeyOnly: true });
    const key = report.trace.hostKey;
    if (!key || !report.trace.hostKeyLine) return;
    err(
      `safe-scp: ${report.target.host}:${report.target.port} offers ${key.type} ${key.fingerprint}. If the server's own key has that fingerprint ` +
        `(check on the server: ssh-keygen -lf /etc/ssh/ssh_host_${key.type.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub), pin it by adding this line to SSH_KNOWN_HOSTS:\n  ${report.trace.hostKeyLine}`,
    );
  } catch {
    // The refusal stands either way; showing the key is a convenience.
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`safe-scp: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
