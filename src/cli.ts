#!/usr/bin/env node
// The thin shell: parse argv (yargs, SAFE_SCP_<OPTION> env twins), wire signals, print, map causes to exit codes.
import fs from 'node:fs';
import type Yargs from 'yargs';
import { NUMERIC_OPTIONS, OPTIONS, camel, rawOptionsFromArgv, type OptionSpec } from './options.js';
import type { SafeScpEvent } from './log/events.js';
import type { ProgressLine } from './log/progress-line.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const str = (value: unknown): string | undefined => (value === undefined || value === null ? undefined : String(value));

function build(yargs: typeof Yargs, argv: string[]) {
  const parser = yargs(argv)
    .scriptName('safe-scp')
    .usage('$0 [options] SOURCE... TARGET\n\nCopies files like scp, over SFTP: pinned host keys, per-host throttling, retries for transient resets.\nOperands: local path | [user@]host:[path] | scp://[user@]host[:port][/path]')
    .command('$0 [operands..]', false, (y) => y.positional('operands', { type: 'string', array: true }))
    .command('doctor <target>', 'explain connectivity to [user@]host[:port] without transferring (one careful connection)', (y) =>
      y.positional('target', { type: 'string' }),
    )
    // No .env('SAFE_SCP'): it would take every SAFE_SCP_* variable as an option; main() maps the known ones.
    .locale('en')
    .parserConfiguration({ 'duplicate-arguments-array': true, 'strip-aliased': true });
  for (const o of OPTIONS as readonly OptionSpec[]) {
    parser.option(o.name, {
      type: o.value.kind === 'flag' ? 'boolean' : 'string',
      describe: o.describe,
      ...(o.alias !== undefined ? { alias: o.alias } : {}),
      ...(o.default !== undefined ? { defaultDescription: String(o.default) } : {}),
    });
  }
  return parser
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
  const [{ default: yargs }, { hideBin }, { joinNegativeValues }] = await Promise.all([import('yargs'), import('yargs/helpers'), import('./util/argv.js')]);
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
  const [{ ProgressLine }, { optionValue }] = await Promise.all([import('./log/progress-line.js'), import('./config/values.js')]);
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
  // Operands after `--` (scp accepts them, for paths starting with '-') land in argv._.
  const operands = [...((argv['operands'] as unknown[] | undefined) ?? []), ...(doctorTarget === undefined ? ((argv['_'] as unknown[] | undefined) ?? []) : [])];
  const raw = { ...rawOptionsFromArgv(argv, operands.map(String)), hosts };


  let config;
  try {
    config = doctorTarget !== undefined ? resolveDoctorConfig(raw, doctorTarget, process.env) : resolveConfig(raw, process.env);
  } catch (e: unknown) {
    err(`safe-scp: ${e instanceof Error ? e.message : String(e)}`);
    return isSafeScpError(e) ? e.exitCode : 2;
  }

  let progressInterval: number;
  try {
    progressInterval = optionValue('progress-interval', str(argv['progressInterval']));
  } catch (e: unknown) {
    err(`safe-scp: ${e instanceof Error ? e.message : String(e)}`);
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
    if (event.kind === 'ssh-config') plan.push(text.formatSshConfigLine(event));
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

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`safe-scp: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
