// Unit tests for the stderr text: per-attempt lines, the diagnostic block, GitLab collapsible sections.
import { classifyConnectFailure, connectionLost } from '../../../src/classify.js';
import type { CopyResult, HostResult } from '../../../src/result.js';
import { SafeScpError } from '../../../src/errors.js';
import type { AttemptEvidence, SafeScpEvent } from '../../../src/log/events.js';
import { formatDiagnosis, formatEvent, formatSummary, section, type TextStyle } from '../../../src/log/text.js';

const PLAIN: TextStyle = { color: false, gitlab: false, verbose: false };
const VERBOSE: TextStyle = { ...PLAIN, verbose: true };
const GITLAB: TextStyle = { color: false, gitlab: true, verbose: false };
// Control characters other than the newline that separates lines.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function evidence(extra: Partial<AttemptEvidence> = {}): AttemptEvidence {
  return {
    host: 'web1.example.com',
    port: 22,
    attempt: 1,
    startedAt: '2024-05-01T10:00:00.000Z',
    durationMs: 120,
    phase: 'banner',
    ...extra,
  };
}

function hostResult(extra: Partial<HostResult> = {}): HostResult {
  return {
    host: 'web1.example.com',
    port: 22,
    user: 'deploy',
    ok: false,
    exitCode: 75,
    cause: 'throttled-by-server',
    error: 'throttled',
    attempts: 2,
    bytes: 0,
    files: 0,
    skipped: 0,
    durationMs: 2600,
    ...extra,
  };
}

function failed(error: SafeScpError, attempts: AttemptEvidence[], hosts: HostResult[] = [hostResult()]): CopyResult {
  return { ok: false, exitCode: error.exitCode, cause: error.code, error, attempts, files: [], hosts, durationMs: 2600 };
}

/** Two throttled attempts: MaxStartups text then FIN, then a bare RST. */
function throttledRun(): CopyResult {
  const raw = '\u001b[31mExceeded MaxStartups\u0007\r\n';
  const error = classifyConnectFailure(
    { host: 'web1.example.com', port: 22, phase: 'banner', preBanner: Buffer.from(raw, 'latin1'), ending: 'close' },
    Object.assign(new Error('Connection lost before handshake'), { level: 'protocol' }),
  );
  return failed(error, [
    evidence({ attempt: 1, address: '203.0.113.7', dnsMs: 3, tcpMs: 11, bytesBeforeBanner: raw.length, preBannerText: raw, ending: 'reset', cause: 'reset-before-banner', error: 'reset' }),
    evidence({ attempt: 2, address: '203.0.113.7', tcpMs: 9, bytesBeforeBanner: raw.length, preBannerText: raw, ending: 'close', cause: 'throttled-by-server', error: error.message, durationMs: 1500 }),
  ]);
}

describe('formatEvent', () => {
  function attemptFailed(extra: Partial<Extract<SafeScpEvent, { kind: 'attempt-failed' }>> = {}): SafeScpEvent {
    return {
      kind: 'attempt-failed',
      evidence: evidence({ attempt: 2, port: 2222 }),
      cause: 'reset-before-banner',
      phase: 'banner',
      message: 'kex_exchange_identification: connection to web1.example.com:2222 reset by peer before the SSH version string',
      retryable: true,
      nextDelayMs: 4000,
      retriesLeft: 3,
      ...extra,
    };
  }

  test('attempt-failed names the attempt, host:port, phase, cause and the next delay', () => {
    expect(formatEvent(attemptFailed(), PLAIN)).toBe(
      'safe-scp: attempt 2 to web1.example.com:2222 failed in phase banner [reset-before-banner] after 120ms: ' +
        'kex_exchange_identification: connection to web1.example.com:2222 reset by peer before the SSH version string; retrying in 4s (3 retries left)',
    );
  });

  test.each<[string, Partial<Extract<SafeScpEvent, { kind: 'attempt-failed' }>>, string]>([
    ['one retry left', { nextDelayMs: 1500, retriesLeft: 1 }, '; retrying in 1.5s (1 retry left)'],
    ['sub-second delay', { nextDelayMs: 500, retriesLeft: 5 }, '; retrying in 500ms (5 retries left)'],
    ['out of retries', { retriesLeft: 0 }, '; no retries left'],
    ['not retryable', { retriesLeft: 0, retryable: false, cause: 'auth-failed', phase: 'auth' }, '; not retried: retrying cannot fix this'],
  ])('attempt-failed: %s', (_name, extra, ending) => {
    // The last attempt's event carries no nextDelayMs at all.
    const { nextDelayMs, ...rest } = attemptFailed() as Extract<SafeScpEvent, { kind: 'attempt-failed' }>;
    const event: SafeScpEvent = { ...rest, ...extra };
    expect(nextDelayMs).toBe(4000);
    const line = formatEvent(event, PLAIN) ?? '';
    expect(line.endsWith(ending)).toBe(true);
    expect(line).toContain(`in phase ${extra.phase ?? 'banner'} [${extra.cause ?? 'reset-before-banner'}]`);
  });

  test('attempt-failed strips control characters from the message', () => {
    const line = formatEvent(attemptFailed({ message: 'server said "\u001b[2JExceeded\r\nMaxStartups\u0000"' }), PLAIN) ?? '';
    expect(line).toContain('server said "Exceeded MaxStartups"');
    expect(line).not.toMatch(CONTROL);
  });

  test('with color the prefix is yellow', () => {
    // eslint-disable-next-line no-control-regex
    expect(formatEvent(attemptFailed(), { ...PLAIN, color: true })).toMatch(/^\u001b\[33msafe-scp:\u001b\[0m attempt 2/);
  });

  test('host-key-learned is always shown', () => {
    const event: SafeScpEvent = { kind: 'host-key-learned', host: 'web1', port: 22, type: 'ssh-ed25519', fingerprint: 'SHA256:abc', file: '/home/ci/.ssh/known_hosts', line: 'web1 ssh-ed25519 AAAA' };
    expect(formatEvent(event, PLAIN)).toBe('safe-scp: accept-new: pinned web1:22 ssh-ed25519 SHA256:abc in /home/ci/.ssh/known_hosts');
  });

  test.each<[string, SafeScpEvent, string]>([
    ['connect', { kind: 'connect', host: 'web1', port: 22, attempt: 1 }, 'safe-scp: connecting to web1:22 (attempt 1)'],
    [
      'connected',
      { kind: 'connected', host: 'web1', port: 22, attempt: 1, serverVersion: 'SSH-2.0-OpenSSH_9.6\u001b[0m', hostKey: { type: 'ssh-ed25519', fingerprint: 'SHA256:abc' }, cipher: 'aes128-gcm@openssh.com' },
      'safe-scp: connected to web1:22 (attempt 1): SSH-2.0-OpenSSH_9.6, host key ssh-ed25519 SHA256:abc, aes128-gcm@openssh.com',
    ],
    [
      'connected, JavaScript crypto',
      { kind: 'connected', host: 'web1', port: 22, attempt: 1, serverVersion: 'SSH-2.0-OpenSSH_9.6', hostKey: { type: 'ssh-ed25519', fingerprint: 'SHA256:abc' }, cipher: 'aes128-gcm@openssh.com', nativeCrypto: false },
      "safe-scp: connected to web1:22 (attempt 1): SSH-2.0-OpenSSH_9.6, host key ssh-ed25519 SHA256:abc, aes128-gcm@openssh.com (JavaScript crypto: ssh2's native binding is not built, expect ~40% lower throughput)",
    ],
    ['throttle-wait', { kind: 'throttle-wait', host: 'web1', port: 22, waitedMs: 1000 }, 'safe-scp: waited 1s for a connection slot to web1:22'],
    ['file-done', { kind: 'file-done', source: 'dist/a.js', target: '/srv/a.js', bytes: 10, skipped: false, durationMs: 5 }, 'safe-scp: dist/a.js -> /srv/a.js (10 bytes, 5ms)'],
    ['debug', { kind: 'debug', message: 'known_hosts\u0007 missing' }, 'safe-scp: known_hosts missing'],
  ])('%s is shown only with -v', (_name, event, line) => {
    expect(formatEvent(event, PLAIN)).toBeUndefined();
    expect(formatEvent(event, VERBOSE)).toBe(line);
  });

  test('waiting for a host slot: every reported check with -v, only the notices without; the holder is named', () => {
    const holder = { pid: 4242, hostname: 'runner-1', since: '2025-01-02T10:00:01.500Z', heldMs: 7_300, renewedMsAgo: 400 };
    const waiting = (notice: boolean): SafeScpEvent => ({ kind: 'throttle-waiting', host: 'web1', port: 22, waitedMs: 2_100, concurrency: 1, reason: 'busy', holders: [holder], notice });
    const line = 'safe-scp: waiting 2.1s so far for a connection slot to web1:22: host concurrency 1 in use by pid 4242 on runner-1 since 10:00:01Z (7.3s, lease renewed 400ms ago)';
    expect(formatEvent(waiting(false), PLAIN)).toBeUndefined();
    expect(formatEvent(waiting(false), VERBOSE)).toBe(line);
    expect(formatEvent(waiting(true), PLAIN)).toBe(line);
    const gap: SafeScpEvent = { kind: 'throttle-waiting', host: 'web1', port: 22, waitedMs: 300, concurrency: 2, reason: 'interval', holders: [], notice: false };
    expect(formatEvent(gap, VERBOSE)).toBe('safe-scp: waiting 300ms so far for a connection slot to web1:22: spacing connection starts by --host-interval');
  });

  test('a wait that ended by freeing a stopped holder\'s slot is shown without -v, and says why', () => {
    const event: SafeScpEvent = {
      kind: 'throttle-wait',
      host: 'web1',
      port: 22,
      waitedMs: 900,
      heldBy: [{ pid: 4242, hostname: 'runner-1', since: '2025-01-02T10:00:01.500Z', heldMs: 9_000, renewedMsAgo: 6_100 }],
      freed: [{ pid: 4242, hostname: 'runner-1', reason: 'lease-expired' }],
    };
    expect(formatEvent(event, PLAIN)).toBe(
      "safe-scp: waited 900ms for a connection slot to web1:22; held by pid 4242 on runner-1 since 10:00:01Z (9s, lease renewed 6.1s ago); " +
        "freed pid 4242's slot (it stopped renewing its lease: stopped or frozen)",
    );
    // A crashed holder's slot freed at once is routine: only with -v.
    expect(formatEvent({ kind: 'throttle-wait', host: 'web1', port: 22, waitedMs: 60, freed: [{ pid: 7, hostname: 'runner-1', reason: 'owner-gone' }] }, PLAIN)).toBeUndefined();
  });

  test('plan events are never printed as lines', () => {
    expect(formatEvent({ kind: 'plan', direction: 'upload', host: 'web1', port: 22, user: 'deploy', entries: 1, bytes: 1, dryRun: true }, VERBOSE)).toBeUndefined();
    expect(formatEvent({ kind: 'plan-entry', source: 'a', target: 'b', bytes: 1, type: 'file' }, VERBOSE)).toBeUndefined();
  });
});

describe('formatDiagnosis', () => {
  test('a successful run has no diagnosis', () => {
    const ok: CopyResult = { ok: true, exitCode: 0, cause: undefined, error: undefined, attempts: [evidence({ phase: 'transfer' })], files: [], hosts: [], durationMs: 10 };
    expect(formatDiagnosis(ok, PLAIN)).toBe('');
  });

  test('names the cause, the evidence of every attempt and what to check', () => {
    const text = formatDiagnosis(throttledRun(), PLAIN);
    const lines = text.split('\n');
    expect(lines[0]).toBe('safe-scp: FAILED [throttled-by-server]');
    expect(lines[1]).toBe('  cause:    throttled-by-server (exit 75)');
    expect(lines[2]).toContain('  error:    web1.example.com:22 refused the connection before the SSH version string and said "Exceeded MaxStartups"');
    expect(lines[3]).toMatch(/^ {2}likely: {3}.*MaxStartups/);
    expect(lines[4]).toBe('  evidence:');
    expect(lines[5]).toBe(
      '    - attempt 1, web1.example.com:22 (203.0.113.7), phase banner, cause reset-before-banner, dns 3ms, tcp 11ms, ' +
        '28 bytes before banner, server said "Exceeded MaxStartups", ended by RST (reset), 120ms',
    );
    expect(lines[6]).toBe(
      '    - attempt 2, web1.example.com:22 (203.0.113.7), phase banner, cause throttled-by-server, tcp 9ms, ' +
        '28 bytes before banner, server said "Exceeded MaxStartups", ended by FIN or RST right after that text (indistinguishable from here), 1.5s',
    );
    // Other sections (e.g. an analysis across attempts) may come between; the checks come after the evidence.
    expect(lines.indexOf('  check on the server:')).toBeGreaterThan(6);
    expect(text).toContain('    * sshd MaxStartups');
    expect(text).toContain('fail2ban-client status sshd');
    expect(text).not.toMatch(CONTROL);
  });

  test('an attempt with no bytes and a timeout says so', () => {
    const error = classifyConnectFailure({ host: 'web1.example.com', port: 22, phase: 'banner', preBanner: Buffer.alloc(0), ending: 'timeout' }, new Error('connect timeout'));
    const text = formatDiagnosis(failed(error, [evidence({ bytesBeforeBanner: 0, ending: 'timeout', cause: 'banner-timeout' })]), PLAIN);
    expect(text).toContain('0 bytes before banner, ended by timeout');
    expect(text).not.toContain('server said');
    expect(text).toContain('cause:    banner-timeout (exit 75)');
  });

  test('the server version is shown without control characters', () => {
    const error = new SafeScpError('kex-no-common-algorithm', 'no common algorithm with web1.example.com:22', { phase: 'kex', host: 'web1.example.com' });
    const text = formatDiagnosis(failed(error, [evidence({ phase: 'kex', serverVersion: 'SSH-2.0-Evil\u001b]0;title\u0007', cause: 'kex-no-common-algorithm' })]), PLAIN);
    expect(text).toContain('server SSH-2.0-Evil,');
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain('cause:    kex-no-common-algorithm (exit 1)');
  });

  test('only the failing host\'s attempts are evidence', () => {
    const error = classifyConnectFailure({ host: 'web2', port: 22, phase: 'tcp', preBanner: Buffer.alloc(0) }, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const text = formatDiagnosis(failed(error, [evidence({ host: 'web1', phase: 'transfer' }), evidence({ host: 'web2', phase: 'tcp', cause: 'connect-refused' })]), PLAIN);
    expect(text).toContain('attempt 1, web2:22, phase tcp, cause connect-refused');
    expect(text).not.toContain('web1:22');
  });

  test('a connection lost mid-transfer (error host "host:port") still shows its attempts', () => {
    const error = connectionLost('web1.example.com', 22, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), false);
    const text = formatDiagnosis(failed(error, [evidence({ phase: 'transfer', cause: 'connection-lost-mid-transfer', ending: 'reset' })]), PLAIN);
    expect(text).toContain('  evidence:');
    expect(text).toContain('attempt 1, web1.example.com:22, phase transfer, cause connection-lost-mid-transfer');
  });

  test('a changed host key shows the offered key', () => {
    const error = new SafeScpError('host-key-changed', 'host key for web1.example.com:22 changed', {
      phase: 'host-key',
      host: 'web1.example.com',
      details: { offered: { type: 'ssh-ed25519', fingerprint: 'SHA256:new' }, pinned: ['SHA256:old'] },
    });
    const text = formatDiagnosis(failed(error, [evidence({ phase: 'host-key', cause: 'host-key-changed' })]), PLAIN);
    expect(text).toContain('  host key: offered: ssh-ed25519 SHA256:new');
    expect(text).toContain('  pinned:   SHA256:old');
    expect(text).not.toContain('{"');
    expect(text).toContain('cause:    host-key-changed (exit 3)');
  });

  test('a changed host key is rendered as readable lines: offered, each pin with its source', () => {
    const error = new SafeScpError('host-key-changed', 'Host key CHANGED for web1.example.com:2402', {
      phase: 'host-key',
      host: 'web1.example.com',
      details: {
        host: 'web1.example.com',
        port: 2402,
        offered: { type: 'ssh-ed25519', fingerprint: 'SHA256:new' },
        pinned: [
          { type: 'ssh-rsa', fingerprint: 'SHA256:old', source: 'SSH_KNOWN_HOSTS:3' },
          { type: 'any type', fingerprint: 'SHA256:other', source: '--host-key' },
        ],
      },
    });
    const lines = formatDiagnosis(failed(error, [evidence({ port: 2402, phase: 'host-key', cause: 'host-key-changed' })]), PLAIN).split('\n');
    expect(lines).toContain('  host key: offered by web1.example.com:2402: ssh-ed25519 SHA256:new');
    expect(lines).toContain('  pinned:   ssh-rsa SHA256:old (SSH_KNOWN_HOSTS:3)');
    expect(lines).toContain('  pinned:   any type SHA256:other (--host-key)');
    expect(lines.join('\n')).not.toMatch(/[{}"]/);
  });

  test('an unknown host key shows the line to pin', () => {
    const error = new SafeScpError('host-key-unknown', 'Host key UNKNOWN for web1.example.com', {
      phase: 'host-key',
      host: 'web1.example.com',
      details: { host: 'web1.example.com', port: 22, offered: { type: 'ssh-ed25519', fingerprint: 'SHA256:new' }, pinned: [], knownHostsLine: 'web1.example.com ssh-ed25519 AAAAC3' },
    });
    const text = formatDiagnosis(failed(error, [evidence({ phase: 'host-key', cause: 'host-key-unknown' })]), PLAIN);
    expect(text).toContain('  pinned:   nothing for this host');
    expect(text).toContain('  to pin (after checking the fingerprint on the server): web1.example.com ssh-ed25519 AAAAC3');
  });

  test('the advice uses the real port, not 22', () => {
    const run = throttledRun();
    const onPort = (port: number): CopyResult => ({ ...run, attempts: run.attempts.map((a) => ({ ...a, port })), hosts: [hostResult({ port })] });
    const text = formatDiagnosis(onPort(2402), PLAIN);
    expect(text).toContain('rules on port 2402;');
    expect(text).not.toMatch(/port 22\b|\{port\}/);
    const refused = new SafeScpError('banner-timeout', 'no banner', { phase: 'banner', host: 'web1.example.com' });
    const banner = formatDiagnosis(failed(refused, [evidence({ port: 2402, cause: 'banner-timeout' })], [hostResult({ port: 2402 })]), PLAIN);
    expect(banner).toContain('`ss -tlnp | grep :2402`');
    const timeout = new SafeScpError('connect-timeout', 'timed out', { phase: 'tcp', host: 'web1.example.com' });
    expect(formatDiagnosis(failed(timeout, [evidence({ port: 2402, phase: 'tcp', cause: 'connect-timeout' })]), PLAIN)).toContain('`nc -vz web1.example.com 2402`');
  });

  test('local causes say to check this machine, not the server', () => {
    const missing = new SafeScpError('local-source-missing', 'dist: no such file or directory', { phase: 'local' });
    const text = formatDiagnosis({ ok: false, exitCode: 1, cause: 'local-source-missing', error: missing, attempts: [], files: [], hosts: [], durationMs: 3 }, PLAIN);
    expect(text).toContain('  check on this machine:');
    expect(text).not.toContain('check on the server');
    expect(formatDiagnosis(throttledRun(), PLAIN)).toContain('  check on the server:');
  });

  test('in GitLab CI the block is a collapsible section with start and end markers', () => {
    const before = Math.floor(Date.now() / 1000);
    const text = formatDiagnosis(throttledRun(), GITLAB);
    const after = Math.floor(Date.now() / 1000);
    const lines = text.split('\n');
    // eslint-disable-next-line no-control-regex
    const start = /^\u001b\[0Ksection_start:(\d+):(safe_scp_\d+)\r\u001b\[0Ksafe-scp: FAILED \[throttled-by-server\]$/.exec(lines[0] ?? '');
    // eslint-disable-next-line no-control-regex
    const end = /^\u001b\[0Ksection_end:(\d+):(safe_scp_\d+)\r\u001b\[0K$/.exec(lines.at(-1) ?? '');
    expect(start).not.toBeNull();
    expect(end).not.toBeNull();
    expect(end?.[2]).toBe(start?.[2]);
    const ts = Number(start?.[1]);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(after);
    expect(lines[1]).toBe('  cause:    throttled-by-server (exit 75)');
    // Server text inside the section is clean; only the markers carry control characters.
    for (const line of lines.slice(1, -1)) expect(line).not.toMatch(CONTROL);
  });

  test('with color the title is red', () => {
    expect(formatDiagnosis(throttledRun(), { ...PLAIN, color: true }).split('\n')[0]).toBe('\u001b[31msafe-scp: FAILED [throttled-by-server]\u001b[0m');
  });
});

describe('section', () => {
  test('outside GitLab it is the title and the lines', () => {
    expect(section(PLAIN, 'title', ['a', 'b'])).toBe('title\na\nb');
  });

  test('in GitLab each section gets its own id; collapsed adds the option', () => {
    const first = section(GITLAB, 'one', ['x'], true);
    const second = section(GITLAB, 'two', ['y']);
    const id = (text: string): string | undefined => /section_start:\d+:(safe_scp_\d+)/.exec(text)?.[1];
    // eslint-disable-next-line no-control-regex
    expect(first).toMatch(/section_start:\d+:safe_scp_\d+\[collapsed=true\]\r\u001b\[0Kone\nx\n/);
    expect(second).not.toContain('collapsed');
    expect(id(first)).not.toBe(id(second));
  });
});

describe('formatSummary', () => {
  test('counts files, bytes, hosts and attempts', () => {
    const result: CopyResult = {
      ok: true,
      exitCode: 0,
      cause: undefined,
      error: undefined,
      attempts: [],
      files: [
        { source: 'dist/a.js', target: '/srv/a.js', bytes: 100, verified: true },
        { source: 'dist/b.js', target: '/srv/b.js', bytes: 23, verified: true },
      ],
      hosts: [hostResult({ ok: true, exitCode: 0, cause: undefined, error: undefined, attempts: 3, bytes: 123, files: 2 })],
      durationMs: 1500,
    };
    expect(formatSummary(result)).toBe('safe-scp: copied 2 files (123 bytes) with web1.example.com:22 in 1.5s, 3 connection attempts');
  });
});
