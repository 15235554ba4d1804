// Unit tests for the JSON report: the CONTRACT shape, many hosts, control characters stripped from server text.
import { classifyConnectFailure, connectionLost } from '../../../src/classify.js';
import type { CopyResult, HostResult } from '../../../src/result.js';
import { CAUSE_HELP, checksFor } from '../../../src/diagnose/causes.js';
import { SafeScpError } from '../../../src/errors.js';
import type { AttemptEvidence } from '../../../src/log/events.js';
import { buildReport } from '../../../src/log/report.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const RAW_BANNER = '\u001b[31mExceeded MaxStartups\u0007\r\n';

function attempt(extra: Partial<AttemptEvidence> = {}): AttemptEvidence {
  return { host: 'web1', port: 22, attempt: 1, startedAt: '2024-05-01T10:00:00.000Z', durationMs: 40, phase: 'banner', ...extra };
}

function host(extra: Partial<HostResult> = {}): HostResult {
  return { host: 'web1', port: 22, user: 'deploy', ok: true, exitCode: 0, cause: undefined, error: undefined, attempts: 1, bytes: 123, files: 2, skipped: 0, durationMs: 900, ...extra };
}

const INDEX = { source: 'dist/index.html', target: '/srv/app/index.html', bytes: 100, verified: true };
const APP = { source: 'dist/app.js', target: '/srv/app/app.js', bytes: 23, verified: true };
const FILES = [INDEX, APP];

function okRun(): CopyResult {
  return {
    ok: true,
    exitCode: 0,
    cause: undefined,
    error: undefined,
    attempts: [
      attempt({ attempt: 1, bytesBeforeBanner: RAW_BANNER.length, preBannerText: RAW_BANNER, ending: 'close', cause: 'throttled-by-server', error: 'throttled\r\n' }),
      attempt({ attempt: 2, startedAt: '2024-05-01T10:00:02.000Z', durationMs: 800, phase: 'transfer', serverVersion: 'SSH-2.0-OpenSSH_9.6', bytesBeforeBanner: 0 }),
    ],
    files: FILES,
    hosts: [host({ attempts: 2 })],
    durationMs: 2900,
  };
}

function failedRun(): CopyResult {
  const error = classifyConnectFailure(
    { host: 'web1', port: 22, phase: 'banner', preBanner: Buffer.from(RAW_BANNER, 'latin1'), ending: 'close' },
    Object.assign(new Error('Connection lost before handshake'), { level: 'protocol' }),
  );
  return {
    ok: false,
    exitCode: 75,
    cause: 'throttled-by-server',
    error,
    attempts: [attempt({ preBannerText: RAW_BANNER, bytesBeforeBanner: RAW_BANNER.length, ending: 'close', cause: 'throttled-by-server', error: error.message })],
    files: [],
    hosts: [host({ ok: false, exitCode: 75, cause: 'throttled-by-server', error: error.message, bytes: 0, files: 0 })],
    durationMs: 40,
  };
}

describe('buildReport', () => {
  test('a successful run has the contract fields', () => {
    const report = buildReport(okRun(), 0);
    expect(report).toMatchObject({ ok: true, exitCode: 0, cause: null, message: null, phase: null, explanation: null, checks: [], durationMs: 2900 });
    expect(report.files).toEqual(FILES);
    expect(report.attempts).toHaveLength(2);
    expect(report.attempts[1]).toEqual({
      host: 'web1',
      port: 22,
      attempt: 2,
      phase: 'transfer',
      cause: null,
      startedAt: '2024-05-01T10:00:02.000Z',
      durationMs: 800,
      error: null,
      evidence: { serverVersion: 'SSH-2.0-OpenSSH_9.6', bytesBeforeBanner: 0 },
    });
    expect(report.hosts).toEqual([{ host: 'web1', port: 22, ok: true, exitCode: 0, cause: null, attempts: 2, bytes: 123, durationMs: 900, commit: null, skipped: 0 }]);
    expect(report).not.toHaveProperty('details');
  });

  test('a failed attempt keeps its evidence, with server text stripped of control characters', () => {
    const [first] = buildReport(okRun(), 0).attempts;
    expect(first).toMatchObject({ host: 'web1', phase: 'banner', cause: 'throttled-by-server', startedAt: '2024-05-01T10:00:00.000Z', durationMs: 40, error: 'throttled ' });
    expect(first?.evidence).toEqual({ bytesBeforeBanner: RAW_BANNER.length, preBannerText: 'Exceeded MaxStartups', ending: 'close' });
  });

  test('a failed run names cause, message, phase, explanation and checks', () => {
    const report = buildReport(failedRun(), 75);
    expect(report.ok).toBe(false);
    expect(report.exitCode).toBe(75);
    expect(report.cause).toBe('throttled-by-server');
    expect(report.phase).toBe('banner');
    expect(report.message).toBe('web1:22 refused the connection before the SSH version string and said "Exceeded MaxStartups"');
    expect(report.explanation).toBe(CAUSE_HELP['throttled-by-server'].summary);
    expect(report.checks).toEqual(checksFor('throttled-by-server', { host: 'web1', port: 22 }));
    expect(report.checks.join(' ')).not.toContain('{port}');
    expect(report.details).toEqual({ error: 'Connection lost before handshake' });
    expect(report.hosts[0]).toEqual({ host: 'web1', port: 22, ok: false, exitCode: 75, cause: 'throttled-by-server', attempts: 1, bytes: 0, durationMs: 900, commit: null, skipped: 0 });
  });

  test('the analysis lines are whole and free of control characters', () => {
    const report = buildReport(failedRun(), 75);
    expect(report.analysis.length).toBeGreaterThan(1);
    for (const line of report.analysis) {
      expect(line.length).toBeGreaterThan(20);
      expect(line).not.toMatch(CONTROL);
    }
    expect(report.analysis[0]).toContain('"Exceeded MaxStartups"');
  });

  test('a connection lost mid-transfer (error host "host:port") still gets its analysis', () => {
    const error = connectionLost('web1', 22, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), false);
    const lost = (n: number): AttemptEvidence => attempt({ attempt: n, phase: 'transfer', cause: 'connection-lost-mid-transfer', error: error.message, serverVersion: 'SSH-2.0-OpenSSH_9.6' });
    const run: CopyResult = { ...failedRun(), exitCode: 75, cause: error.code, error, attempts: [lost(1), lost(2)] };
    expect(buildReport(run, 75).analysis.join('\n')).toContain('2 attempts lost the connection mid-transfer');
  });

  test('a successful run has no analysis', () => {
    expect(buildReport(okRun(), 0).analysis).toEqual([]);
  });

  test('the exit code passed in wins (e.g. 130 for SIGINT)', () => {
    const run = failedRun();
    run.error = new SafeScpError('interrupted', 'interrupted by SIGINT', { phase: 'run' });
    run.cause = 'interrupted';
    expect(buildReport(run, 130)).toMatchObject({ exitCode: 130, cause: 'interrupted', phase: 'run' });
  });

  test('no string anywhere in the report holds a control character', () => {
    const run = failedRun();
    run.attempts[0] = attempt({ preBannerText: RAW_BANNER, serverVersion: 'SSH-2.0-X\u001b]0;t\u0007', error: 'said\r\n"\u001b[2Jhi"', cause: 'not-ssh' });
    const json = JSON.stringify(buildReport(run, 1));
    const strings: string[] = [];
    JSON.parse(json, (_key, value: unknown) => {
      if (typeof value === 'string') strings.push(value);
      return value;
    });
    for (const s of strings) expect(s).not.toMatch(CONTROL);
    expect(strings).toContain('SSH-2.0-X');
    expect(strings).toContain('said "hi"');
  });

  test('many hosts: one entry per host with its own outcome', () => {
    const error = new SafeScpError('auth-failed', 'authentication to web2:2222 failed', { phase: 'auth', host: 'web2' });
    const run: CopyResult = {
      ok: false,
      exitCode: 4,
      cause: 'auth-failed',
      error,
      attempts: [attempt({ phase: 'transfer' }), attempt({ host: 'web2', port: 2222, phase: 'auth', cause: 'auth-failed', error: error.message })],
      files: [INDEX],
      hosts: [host({ bytes: 100, files: 1 }), host({ host: 'web2', port: 2222, ok: false, exitCode: 4, cause: 'auth-failed', error: error.message, bytes: 0, files: 0 })],
      durationMs: 1000,
    };
    const report = buildReport(run, 4);
    expect(report.hosts.map((h) => [h.host, h.port, h.ok, h.exitCode, h.cause])).toEqual([
      ['web1', 22, true, 0, null],
      ['web2', 2222, false, 4, 'auth-failed'],
    ]);
    expect(report.attempts.map((a) => [a.host, a.port, a.cause])).toEqual([
      ['web1', 22, null],
      ['web2', 2222, 'auth-failed'],
    ]);
    expect(report.files).toHaveLength(1);
  });

  test('the input result is not modified', () => {
    const run = okRun();
    const before = JSON.stringify(run);
    buildReport(run, 0);
    expect(JSON.stringify(run)).toBe(before);
  });

  test('files keep only the contract fields', () => {
    const run = okRun();
    const withExtra = { ...INDEX, tmp: '/srv/app/.index.html.safe-scp-tmp' };
    run.files = [withExtra];
    expect(buildReport(run, 0).files).toEqual([INDEX]);
  });
});
