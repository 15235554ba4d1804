// Human-readable lines for stderr: one per failed attempt, progress with -v, a diagnostic block at the end.
import { stripControl } from '../classify.js';
import type { CopyResult } from '../result.js';
import { analyseAttempts, attemptsForHost } from '../diagnose/analysis.js';
import { CAUSE_HELP, checksFor, checksHeading } from '../diagnose/causes.js';
import { formatDuration } from '../util/duration.js';
import type { SafeScpEvent, SlotFreedReason, SlotHolderInfo } from './events.js';
import { portOf } from './report.js';

export interface TextStyle {
  readonly color: boolean;
  /** GitLab CI: fold long blocks into collapsible sections. */
  readonly gitlab: boolean;
  readonly verbose: boolean;
}

const paint = (style: TextStyle, code: string, text: string): string => (style.color ? `\u001b[${code}m${text}\u001b[0m` : text);

/** One event as a stderr line, or undefined when it is not shown at this verbosity. */
export function formatEvent(event: SafeScpEvent, style: TextStyle): string | undefined {
  switch (event.kind) {
    case 'attempt-failed': {
      const e = event.evidence;
      const next =
        event.nextDelayMs !== undefined
          ? `retrying in ${formatDuration(event.nextDelayMs)} (${event.retriesLeft} ${event.retriesLeft === 1 ? 'retry' : 'retries'} left)`
          : event.retryable
            ? 'no retries left'
            : 'not retried: retrying cannot fix this';
      return `${paint(style, '33', 'safe-scp:')} attempt ${e.attempt} to ${e.host}:${e.port} failed in phase ${event.phase} [${event.cause}] after ${formatDuration(e.durationMs)}: ${stripControl(event.message)}; ${next}`;
    }
    case 'host-key-learned':
      return `safe-scp: accept-new: pinned ${event.host}:${event.port} ${event.type} ${event.fingerprint} in ${event.file}`;
    case 'connected':
      return style.verbose
        ? `safe-scp: connected to ${event.host}:${event.port} (attempt ${event.attempt}): ${stripControl(event.serverVersion)}, host key ${event.hostKey.type} ${event.hostKey.fingerprint}${event.cipher ? `, ${event.cipher}` : ''}${event.nativeCrypto === false ? ' (JavaScript crypto: ssh2\'s native binding is not built, expect ~40% lower throughput)' : ''}`
        : undefined;
    case 'connect':
      return style.verbose ? `safe-scp: connecting to ${event.host}:${event.port} (attempt ${event.attempt})` : undefined;
    case 'throttle-wait': {
      // Without -v only a wait long enough to matter, or one that ended by taking a stopped holder's slot.
      const notable = event.waitedMs >= 2_000 || (event.freed ?? []).some((f) => f.reason === 'lease-expired' || f.reason === 'too-old');
      if (!style.verbose && !notable) return undefined;
      const held = event.heldBy?.length ? `; held by ${event.heldBy.map(holderText).join(', ')}` : '';
      const freed = event.freed?.length ? `; freed ${event.freed.map((f) => `pid ${f.pid}'s slot (${FREED_REASON[f.reason]})`).join(', ')}` : '';
      return `safe-scp: waited ${formatDuration(event.waitedMs)} for a connection slot to ${event.host}:${event.port}${held}${freed}`;
    }
    case 'throttle-waiting': {
      if (!style.verbose && !event.notice) return undefined;
      const why =
        event.reason === 'interval'
          ? 'spacing connection starts by --host-interval'
          : `host concurrency ${event.concurrency} in use by ${event.holders.map(holderText).join(', ')}`;
      return `safe-scp: waiting ${formatDuration(event.waitedMs)} so far for a connection slot to ${event.host}:${event.port}: ${why}`;
    }
    case 'file-done':
      if (!style.verbose) return undefined;
      return event.skipped
        ? `safe-scp: ${event.source} = ${event.target} (unchanged, ${event.bytes} bytes: not sent)`
        : `safe-scp: ${event.source} -> ${event.target} (${event.bytes} bytes, ${formatDuration(event.durationMs)}${event.inPlace ? ', written in place: not replaced atomically' : ''})`;
    case 'commit':
      return style.verbose ? `safe-scp: renamed ${event.files} staged file${event.files === 1 ? '' : 's'} into place in ${formatDuration(event.durationMs)}` : undefined;
    case 'debug':
      return style.verbose ? `safe-scp: ${stripControl(event.message)}` : undefined;
    case 'ssh-config':
      return style.verbose ? `safe-scp: ${stripControl(formatSshConfigLine(event))}` : undefined;
    case 'plan':
    case 'plan-entry':
    case 'transfer-start':
    case 'progress':
    case 'transfer-end':
      // Progress is drawn by the CLI's progress line (log/progress-line.ts), not as log lines.
      return undefined;
    default: {
      const never: never = event;
      return never;
    }
  }
}

/**
 * How an attempt ended. A close right after text the server sent is ambiguous: when the text and an RST arrive
 * together, libuv reports a plain end of stream (sshd's MaxStartups drop is an RST on the wire, yet shows here as
 * an end of stream), so only a close with no data before it is known to be a FIN.
 */
function endingLabel(a: { ending?: 'reset' | 'close' | 'timeout'; bytesBeforeBanner?: number; serverVersion?: string }): string {
  if (a.ending === 'reset') return 'RST (reset)';
  if (a.ending === 'timeout') return 'timeout';
  return (a.bytesBeforeBanner ?? 0) > 0 && a.serverVersion === undefined ? 'FIN or RST right after that text (indistinguishable from here)' : 'FIN (clean close)';
}

const FREED_REASON: Readonly<Record<SlotFreedReason, string>> = {
  'lease-expired': 'it stopped renewing its lease: stopped or frozen',
  'owner-gone': 'its process is gone',
  'too-old': 'held longer than any connection takes',
  corrupt: 'unreadable slot file',
};

/** `pid 123 on runner-1 since 12:00:01Z (5.2s), lease renewed 0.4s ago` */
function holderText(h: SlotHolderInfo): string {
  const since = h.since.slice(11, 19);
  const lease = h.renewedMsAgo === undefined ? '' : `, lease renewed ${formatDuration(h.renewedMsAgo)} ago`;
  return `pid ${h.pid} on ${stripControl(h.hostname, 80)} since ${since}Z (${formatDuration(h.heldMs)}${lease})`;
}

let sectionCounter = 0;

/** Wraps lines in a GitLab collapsible section when running in GitLab CI. */
export function section(style: TextStyle, title: string, lines: readonly string[], collapsed = false): string {
  if (!style.gitlab) return [title, ...lines].join('\n');
  const id = `safe_scp_${++sectionCounter}`;
  const now = Math.floor(Date.now() / 1000);
  const opts = collapsed ? '[collapsed=true]' : '';
  return [`\u001b[0Ksection_start:${now}:${id}${opts}\r\u001b[0K${title}`, ...lines, `\u001b[0Ksection_end:${now}:${id}\r\u001b[0K`].join('\n');
}

/** The block printed after a failed run: cause, evidence, what to check. */
export function formatDiagnosis(result: CopyResult, style: TextStyle): string {
  const error = result.error;
  if (!error || !result.cause) return '';
  const help = CAUSE_HELP[result.cause];
  const lines: string[] = [];
  lines.push(`  cause:    ${result.cause} (exit ${result.exitCode})`);
  lines.push(`  error:    ${stripControl(error.message)}`);
  lines.push(`  likely:   ${help.summary}`);
  const attempts = attemptsForHost(result.attempts, error.host);
  if (attempts.length > 0) {
    lines.push('  evidence:');
    for (const a of attempts) {
      const parts = [
        `attempt ${a.attempt}`,
        `${a.host}:${a.port}${a.address && a.address !== a.host ? ` (${a.address})` : ''}`,
        `phase ${a.phase}`,
        a.cause ? `cause ${a.cause}` : 'ok',
        a.dnsMs !== undefined ? `dns ${a.dnsMs}ms` : undefined,
        a.tcpMs !== undefined ? `tcp ${a.tcpMs}ms` : undefined,
        `${a.bytesBeforeBanner ?? 0} bytes before banner`,
        a.preBannerText ? `server said "${stripControl(a.preBannerText).trim().slice(0, 120)}"` : undefined,
        a.ending ? `ended by ${endingLabel(a)}` : undefined,
        a.serverVersion ? `server ${stripControl(a.serverVersion)}` : undefined,
        `${formatDuration(a.durationMs)}`,
      ].filter(Boolean);
      lines.push(`    - ${parts.join(', ')}`);
    }
  }
  const analysis = analyseAttempts(attempts);
  if (analysis.length > 0) {
    lines.push('  analysis:');
    for (const line of analysis) lines.push(`    - ${stripControl(line)}`);
  }
  lines.push(...hostKeyLines(error.details));
  const checks = checksFor(result.cause, { host: error.host, port: portOf(result) });
  if (checks.length > 0) {
    lines.push(`  ${checksHeading(result.cause)}`);
    for (const check of checks) lines.push(`    * ${check}`);
  }
  return section(style, paint(style, '31', `safe-scp: FAILED [${result.cause}]`), lines);
}

/** `{ type, fingerprint, source? }` (or a bare fingerprint string) as `ssh-ed25519 SHA256:... (file:3)`. */
function keyText(value: unknown): string | undefined {
  if (typeof value === 'string') return stripControl(value, 200);
  if (!value || typeof value !== 'object') return undefined;
  const { type, fingerprint, source } = value as Record<string, unknown>;
  if (typeof fingerprint !== 'string') return undefined;
  const from = typeof source === 'string' ? ` (${stripControl(source, 300)})` : '';
  return stripControl(`${typeof type === 'string' ? `${type} ` : ''}${fingerprint}`, 200) + from;
}

/** A refused host key (hostkeys/policy.ts HostKeyDetails) as readable lines: offered, pinned, what to add. */
function hostKeyLines(details: Readonly<Record<string, unknown>>): string[] {
  const offered = keyText(details['offered']);
  if (offered === undefined) return [];
  const host = typeof details['host'] === 'string' ? stripControl(details['host'], 300) : undefined;
  const where = host === undefined ? '' : ` by ${host}${typeof details['port'] === 'number' ? `:${details['port']}` : ''}`;
  const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(keyText).filter((k): k is string => k !== undefined) : []);
  const lines = [`  host key: offered${where}: ${offered}`];
  const pinned = list(details['pinned']);
  for (const key of pinned) lines.push(`  pinned:   ${key}`);
  if (pinned.length === 0 && details['revokedBy'] === undefined) lines.push('  pinned:   nothing for this host');
  for (const key of list(details['portlessPinned'])) lines.push(`  pinned without a port (also accepted here): ${key}`);
  if (typeof details['revokedBy'] === 'string') lines.push(`  revoked:  marked @revoked in ${stripControl(details['revokedBy'], 300)}`);
  for (const ca of list(details['certAuthorities'])) lines.push(`  @cert-authority (not supported): ${ca}`);
  if (typeof details['knownHostsLine'] === 'string') lines.push(`  to pin (after checking the fingerprint on the server): ${stripControl(details['knownHostsLine'], 2000)}`);
  return lines;
}

/** The success line for stdout. */
export function formatSummary(result: CopyResult): string {
  const sent = result.files.filter((f) => !f.skipped);
  const files = sent.length;
  const skipped = result.files.length - files;
  const bytes = sent.reduce((sum, f) => sum + f.bytes, 0);
  const hosts = result.hosts.map((h) => `${h.host}:${h.port}`).join(', ');
  const attempts = result.hosts.reduce((sum, h) => sum + h.attempts, 0);
  const inPlace = sent.filter((f) => f.atomic === false).length;
  return `safe-scp: copied ${files} file${files === 1 ? '' : 's'} (${bytes} bytes)${skipped ? `, skipped ${skipped} unchanged` : ''}${inPlace ? ` (${inPlace} written in place, not atomically)` : ''} with ${hosts} in ${formatDuration(result.durationMs)}, ${attempts} connection attempt${attempts === 1 ? '' : 's'}`;
}

/** Per-host summary for runs with several hosts (stderr and the report carry the same facts). */
export function formatHostTable(result: CopyResult, style: TextStyle): string {
  const rows = result.hosts.map((h) => [
    `${h.host}:${h.port}`,
    h.ok ? 'ok' : 'FAILED',
    String(h.exitCode),
    String(h.attempts),
    String(h.files),
    String(h.bytes),
    formatDuration(h.durationMs),
    h.cause ?? '',
  ]);
  const header = ['host', 'status', 'exit', 'attempts', 'files', 'bytes', 'time', 'cause'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}`;
  const failed = result.hosts.filter((h) => !h.ok).length;
  const title = `safe-scp: ${result.hosts.length - failed} of ${result.hosts.length} hosts succeeded`;
  return section(style, failed ? paint(style, '31', title) : title, [line(header), ...rows.map(line)]);
}

/** `ssh_config web: /home/u/.ssh/config:3 HostName 10.0.0.5`, as -v and --dry-run show an applied line. */
export function formatSshConfigLine(event: { host: string; file: string; line: number; keyword: string; value: string }): string {
  return `ssh_config ${event.host}: ${event.file}:${event.line} ${event.keyword} ${event.value}`;
}
