// Issue 5 acceptance, end to end: every fault produced for real on loopback (fault proxy, real sshd settings, a
// non-SSH listener, a closed port, a silent listener, no SFTP subsystem, a read-only directory, a wrong key, a
// changed host key, a missing directory) ends with the right exit code and cause code in BOTH the stderr text and
// the --report JSON; no output carries key material, the passphrase, or raw control characters from the server;
// `safe-scp doctor` probes with exactly one connection.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FaultPlan } from '../../harness/fault-plan.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { closedPort, startNonSshListener, startSilentListener, type TestListener } from '../../harness/listeners.js';
import { makeUserKey } from '../../harness/sshd-keys.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { baseEnv, runCli, secretLines, tempDir, type CliResult } from './helpers/cli.js';
import type { Report } from '../../src/log/report.js';

interface Run {
  result: CliResult;
  report: Report;
  reportText: string;
}
interface Output {
  name: string;
  texts: Record<string, string>;
  /** GITLAB_CI=true: section markers (ESC[0K, \r) are expected there and nowhere else. */
  gitlab: boolean;
}

const PASSPHRASE = 'tr0ub4dor-and-3-horses';
/**
 * Small and fast: two attempts for transient faults, 100 ms apart, no host interval. The connect timeout is only
 * reached by the silent listener (which passes its own); elsewhere it is a ceiling, generous because key exchange +
 * auth + SFTP open must fit in it on a loaded CI machine (2 s was missed at load 15 on 2 CPUs).
 */
const fast = (connectTimeout = '15s'): string[] => ['--retries', '1', '--retry-delay', '100ms', '--retry-max-delay', '100ms', '--connect-timeout', connectTimeout, '--host-interval', '0'];

let sshd: Sshd;
let work: string;
let env: NodeJS.ProcessEnv;
/** The encrypted deploy key (SSH_PRIVATE_KEY + SSH_PRIVATE_KEY_PASSPHRASE in every run against sshd). */
let keyText: string;
const secrets: string[] = [];
const outputs: Output[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
let counter = 0;

const remote = (dir: string, user = sshd.user): string => `${user}@127.0.0.1:${dir}`;

function sourceFile(): string {
  const file = path.join(work, `src-${++counter}.txt`);
  fs.writeFileSync(file, `payload ${counter}\n`);
  return file;
}

/** Every string inside a parsed JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** What the last CLI run of the current test printed. */
let lastOutput: string | undefined;

/** A test whose failure message carries the output of its last CLI run (a flaky fault is then diagnosable). */
function scenario(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    lastOutput = undefined;
    try {
      await fn();
    } catch (err: unknown) {
      if (err instanceof Error && lastOutput !== undefined) err.message += `\n\nlast CLI run:\n${lastOutput}`;
      throw err;
    }
  });
}

const printed = (result: CliResult, reportText = ''): string =>
  `exit ${String(result.code)} in ${result.durationMs}ms\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}${reportText ? `\nreport:\n${reportText}` : ''}`;

/** Runs the built CLI with --report; records every output for the secret / control-character checks. */
async function run(name: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  const reportFile = path.join(work, `report-${++counter}.json`);
  const result = await runCli(['--report', reportFile, ...args], { ...env, ...extraEnv }, 60_000);
  const reportText = fs.existsSync(reportFile) ? fs.readFileSync(reportFile, 'utf8') : '';
  lastOutput = printed(result, reportText);
  outputs.push({ name, texts: { stdout: result.stdout, stderr: result.stderr, report: reportText }, gitlab: extraEnv['GITLAB_CI'] === 'true' });
  if (reportText === '') throw new Error(`${name}: no report written (exit ${String(result.code)})\n${result.stderr}`);
  return { result, report: JSON.parse(reportText) as Report, reportText };
}

/**
 * The contract for one failed run: exit code and cause in stderr (attempt lines + diagnostic block) and in the
 * report (top level and every attempt, with the phase that failed).
 */
function expectFailure(r: Run, cause: string, exitCode: number, phase: string, attempts: number): void {
  const attemptLines = r.result.stderr.split('\n').filter((l) => /^safe-scp: attempt \d+ to /.test(l));
  expect({ code: r.result.code, cause: r.report.cause, exitCode: r.report.exitCode, ok: r.report.ok }).toEqual({ code: exitCode, cause, exitCode, ok: false });
  expect(r.result.stderr).toContain(`safe-scp: FAILED [${cause}]`);
  expect(r.result.stderr).toContain(`cause:    ${cause} (exit ${exitCode})`);
  expect(attemptLines).toHaveLength(attempts);
  for (const line of attemptLines) expect(line).toContain(`failed in phase ${phase} [${cause}]`);
  expect(r.report.attempts.map((a) => [a.attempt, a.phase, a.cause])).toEqual(Array.from({ length: attempts }, (_, i) => [i + 1, phase, cause]));
  expect(r.report.phase).toBe(phase);
  expect(r.report.checks.length).toBeGreaterThan(0);
}

beforeAll(async () => {
  work = tempDir('diagnosis');
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  const key = await makeUserKey(work, 'ed25519', PASSPHRASE, { name: 'deploy_key' });
  keyText = fs.readFileSync(key.path, 'utf8');
  // Really encrypted (cipher name inside the openssh-key-v1 blob), so SSH_PRIVATE_KEY_PASSPHRASE is used in every run.
  expect(Buffer.from(keyText.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('latin1')).toContain('aes256-ctr');
  secrets.push(PASSPHRASE, ...secretLines(keyText));
  sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  env = baseEnv({
    HOME: home,
    SSH_PRIVATE_KEY: keyText,
    SSH_PRIVATE_KEY_PASSPHRASE: PASSPHRASE,
    SSH_KNOWN_HOSTS: sshd.knownHostsLines(),
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
  });
});

let authenticatedBefore = 0;
beforeEach(() => {
  authenticatedBefore = sshd.authenticatedConnections();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  // Nothing a user or a CI log sees carries key material, the passphrase, or control characters from the server.
  for (const out of outputs.splice(0)) {
    for (const [stream, text] of Object.entries(out.texts)) {
      const where = `${out.name} ${stream}`;
      for (const secret of secrets) expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
      // GitLab section markers are ours: ESC[0K + section_start/section_end + \r. Anything else is a leak.
      // eslint-disable-next-line no-control-regex
      const rest = out.gitlab ? text.replace(/\u001b\[0Ksection_(?:start|end):\d+:safe_scp_\d+(?:\[collapsed=true\])?\r\u001b\[0K/g, '') : text;
      // eslint-disable-next-line no-control-regex
      const control = rest.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g) ?? [];
      expect({ where, control }).toEqual({ where, control: [] });
      // In the JSON report control characters would be escaped (\u001b, \r): check every parsed string value.
      if (stream === 'report' && text !== '') {
        // eslint-disable-next-line no-control-regex
        const escaped = strings(JSON.parse(text)).filter((v) => /[\u0000-\u001f\u007f-\u009f]/.test(v));
        expect({ where, escaped }).toEqual({ where, escaped: [] });
      }
    }
  }
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sshd?.stop();
  if (work) {
    execFileSync('chattr', ['-R', '-i', work], { stdio: 'ignore' });
    fs.rmSync(work, { recursive: true, force: true });
  }
});

async function proxy(plan: FaultPlan): Promise<FaultProxy> {
  const p = await startFaultProxy({ targetPort: sshd.port, plan });
  cleanups.push(() => p.close());
  return p;
}

async function listener(start: Promise<TestListener>): Promise<TestListener> {
  const l = await start;
  cleanups.push(() => l.close());
  return l;
}

async function viaPort(name: string, port: number, extraEnv: Record<string, string> = {}, connectTimeout?: string): Promise<Run> {
  return run(name, [...fast(connectTimeout), '-P', String(port), sourceFile(), remote(`${work}/`)], { SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', port), ...extraEnv });
}

describe('before the SSH version string (transient: exit 75, retried)', () => {
  scenario('proxy RST before the banner: reset-before-banner', async () => {
    const p = await proxy({ fault: { kind: 'reset' } });
    const r = await viaPort('reset', p.port);
    expectFailure(r, 'reset-before-banner', 75, 'banner', 2);
    expect(p.connections).toBe(2);
    expect(r.report.attempts.map((a) => a.evidence['ending'])).toEqual(['reset', 'reset']);
    expect(r.result.stderr).toContain('ended by RST (reset)');
    expect(r.result.stderr).toMatch(/fail2ban/);
    expect(r.result.stderr).toMatch(/hosts\.deny/);
  });

  scenario('proxy clean close (FIN) before the banner: closed-before-banner', async () => {
    const p = await proxy({ fault: { kind: 'close' } });
    const r = await viaPort('close', p.port);
    expectFailure(r, 'closed-before-banner', 75, 'banner', 2);
    expect(r.report.attempts.map((a) => a.evidence['ending'])).toEqual(['close', 'close']);
    expect(r.result.stderr).toContain('ended by FIN (clean close)');
  });

  scenario('proxy says "Exceeded MaxStartups" then RST: throttled-by-server, quoting the server and naming MaxStartups', async () => {
    const p = await proxy({ fault: { kind: 'reset', notice: 'Exceeded MaxStartups\r\n' } });
    const r = await viaPort('notice', p.port);
    expectFailure(r, 'throttled-by-server', 75, 'banner', 2);
    for (const a of r.report.attempts) expect(String(a.evidence['preBannerText']).trim()).toBe('Exceeded MaxStartups');
    expect(r.result.stderr).toContain('said "Exceeded MaxStartups"');
    expect(r.report.message).toContain('"Exceeded MaxStartups"');
    const diagnostic = r.result.stderr.slice(r.result.stderr.indexOf('safe-scp: FAILED'));
    expect(diagnostic).toContain('server said "Exceeded MaxStartups"');
    expect(diagnostic).toMatch(/MaxStartups.*sshd_config/);
    // sshd-style text + RST reaches Node as a plain end of stream at times: never claim a clean FIN after text.
    expect(diagnostic).not.toContain('FIN (clean close)');
    expect(r.report.analysis.join('\n')).toContain('"Exceeded MaxStartups"');
    expect(r.report.analysis.join('\n')).toMatch(/raise MaxStartups/);
  });

  scenario('a REAL sshd past MaxStartups (1:100:1, one held pre-auth connection) drops us before the banner', async () => {
    const limited = await startSshd({ maxStartups: '1:100:1', authorizedKeys: [] });
    cleanups.push(() => limited.stop());
    // faults-and-perf.md recipe A: connect the held connection ~1 s after start, then leave it idle (it holds the
    // only unauthenticated slot until LoginGraceTime). Check sshd accepted it rather than dropping it.
    await new Promise((r) => setTimeout(r, 1000));
    const held = net.connect({ host: '127.0.0.1', port: limited.port });
    cleanups.push(() => void held.destroy());
    let heldGot = '';
    held.on('data', (d: Buffer) => (heldGot += d.toString('latin1')));
    held.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      held.once('connect', resolve);
      held.once('error', reject);
    });
    await limited.waitForLog(new RegExp(`Connection from 127\\.0\\.0\\.1 port ${held.localPort} `), 5000);
    for (let i = 0; i < 50 && !heldGot.includes('SSH-2.0-'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(heldGot).toMatch(/^SSH-2\.0-OpenSSH/);

    const r = await run('maxstartups', [...fast(), '-P', String(limited.port), sourceFile(), remote(`${work}/`, limited.user)], {
      SSH_KNOWN_HOSTS: limited.knownHostsLines(),
    });
    expect(limited.log()).toMatch(/drop connection #\d+ from \[127\.0\.0\.1\]:\d+ on \[127\.0\.0\.1\]:\d+ past MaxStartups/);
    const causes = ['throttled-by-server', 'reset-before-banner', 'closed-before-banner'];
    expect(causes).toContain(r.report.cause);
    expectFailure(r, r.report.cause ?? '', 75, 'banner', 2);
    // sshd writes "Exceeded MaxStartups\r\n" before dropping; whenever that text reached us it must be the cause
    // of that attempt and be quoted in the diagnostic, with MaxStartups named.
    const heard = r.report.attempts.filter((a) => String(a.evidence['preBannerText'] ?? '').includes('Exceeded MaxStartups'));
    for (const a of heard) expect(a.cause).toBe('throttled-by-server');
    if (heard.length > 0) {
      expect(r.result.stderr).toContain('server said "Exceeded MaxStartups"');
      expect(r.result.stderr).toContain('the server\'s own words before dropping the connection: "Exceeded MaxStartups"');
      expect(r.report.analysis.join('\n')).toMatch(/"Exceeded MaxStartups".*sshd had too many unauthenticated connections/s);
    }
    expect(r.result.stderr).toMatch(/MaxStartups/);
    console.log(`real MaxStartups drop: attempts ${JSON.stringify(r.report.attempts.map((a) => [a.cause, a.evidence['ending'], a.evidence['preBannerText'] ?? '']))}`);
  });

  scenario('closed port: connect-refused', async () => {
    const r = await viaPort('refused', await closedPort());
    expectFailure(r, 'connect-refused', 75, 'tcp', 2);
  });

  scenario('closed port under GITLAB_CI=true: the diagnostic block is a GitLab collapsible section', async () => {
    const r = await viaPort('refused-gitlab', await closedPort(), { GITLAB_CI: 'true' });
    expectFailure(r, 'connect-refused', 75, 'tcp', 2);
    // eslint-disable-next-line no-control-regex
    expect(r.result.stderr).toMatch(/\u001b\[0Ksection_start:\d+:(safe_scp_\d+)\r\u001b\[0Ksafe-scp: FAILED \[connect-refused\]\n[\s\S]*\u001b\[0Ksection_end:\d+:\1\r\u001b\[0K/);
  });

  scenario('a listener that accepts and never answers: banner-timeout', async () => {
    const silent = await listener(startSilentListener());
    const r = await viaPort('silent', silent.port, {}, '1s');
    expectFailure(r, 'banner-timeout', 75, 'banner', 2);
    expect(silent.connections).toBe(2);
    for (const a of r.report.attempts) expect(a.evidence['ending']).toBe('timeout');
  });
});

describe('not an SSH server (exit 1, not retried)', () => {
  scenario('an HTTP server: not-ssh, quoting what it said', async () => {
    const http = await listener(startNonSshListener('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    const r = await viaPort('http', http.port);
    expectFailure(r, 'not-ssh', 1, 'banner', 1);
    expect(http.connections).toBe(1);
    expect(r.result.stderr).toContain('HTTP/1.1 400 Bad Request');
  });

  scenario('control characters the server sends (ESC[31m, BEL, CR) never reach the output', async () => {
    const evil = await listener(startNonSshListener('HTTP/1.1 400 \u001b[31mRed\u001b[0m Alert\u0007\r\n\u001b]0;title\u0007\r\n\r\n'));
    const r = await viaPort('control', evil.port);
    expectFailure(r, 'not-ssh', 1, 'banner', 1);
    // The printable words survive, without `[31m` residue; the afterEach check proves no control character is left.
    expect(r.result.stderr).toContain('HTTP/1.1 400 Red Alert');
    expect(r.result.stderr).not.toContain('[31m');
    expect(r.reportText).not.toContain('[31m');
    // eslint-disable-next-line no-control-regex
    expect(r.result.stderr).not.toMatch(/[\u001b\u0007\r]/);
  });
});

describe('against the real sshd', () => {
  scenario('no SFTP subsystem: sftp-unavailable', async () => {
    const noSftp = await startSshd({ sftp: false, authorizedKeys: [sshdPublicKey()] });
    cleanups.push(() => noSftp.stop());
    const r = await run('no-sftp', [...fast(), '-P', String(noSftp.port), sourceFile(), remote(`${work}/`, noSftp.user)], {
      SSH_KNOWN_HOSTS: noSftp.knownHostsLines(),
    });
    expectFailure(r, 'sftp-unavailable', 1, 'sftp', 1);
    expect(r.result.stderr).toContain('Subsystem sftp');
  });

  scenario('read-only target directory: remote-permission-denied', async () => {
    const dir = path.join(work, 'readonly');
    fs.mkdirSync(dir);
    execFileSync('chattr', ['+i', dir]); // read-only even for root, which this sshd logs in as
    cleanups.push(() => void execFileSync('chattr', ['-i', dir]));
    const r = await run('readonly', [...fast(), '-P', String(sshd.port), sourceFile(), remote(`${dir}/`)]);
    expectFailure(r, 'remote-permission-denied', 1, 'transfer', 1);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  scenario('missing remote parent directory: remote-no-such-path', async () => {
    const r = await run('no-such-path', [...fast(), '-P', String(sshd.port), sourceFile(), remote(path.join(work, 'no', 'such', 'dir', 'file.txt'))]);
    expectFailure(r, 'remote-no-such-path', 1, 'transfer', 1);
    expect(fs.existsSync(path.join(work, 'no'))).toBe(false);
  });

  scenario('a key the server does not accept: auth-failed, and neither key leaks', async () => {
    const other = await makeUserKey(work, 'ed25519', '', { name: 'wrong_key' });
    const otherText = fs.readFileSync(other.path, 'utf8');
    secrets.push(...secretLines(otherText));
    const r = await run('wrong-key', [...fast(), '-P', String(sshd.port), sourceFile(), remote(`${work}/`)], {
      SSH_PRIVATE_KEY: otherText,
      SSH_PRIVATE_KEY_PASSPHRASE: '',
    });
    expectFailure(r, 'auth-failed', 4, 'auth', 1);
  });

  scenario('changed host key (known_hosts pins another key): host-key-changed, one attempt, both fingerprints shown', async () => {
    const impostor = await makeUserKey(work, 'ed25519', '', { name: 'pinned_host_key' });
    const [type, b64] = impostor.publicLine.split(' ');
    const offered = sshd.hostKeys[0]?.fingerprint ?? '';
    const r = await run('host-key-changed', [...fast(), '-P', String(sshd.port), sourceFile(), remote(`${work}/`)], {
      SSH_KNOWN_HOSTS: `[127.0.0.1]:${sshd.port} ${type} ${b64}\n`,
    });
    expectFailure(r, 'host-key-changed', 3, 'host-key', 1);
    expect(r.result.stderr).toContain('not retried');
    for (const fp of [offered, impostor.fingerprint]) {
      expect(r.result.stderr).toContain(fp);
      expect(r.report.message).toContain(fp);
    }
    expect(sshd.authenticatedConnections()).toBe(authenticatedBefore);
  });
});

describe('safe-scp doctor', () => {
  const connections = (s: Sshd): number => s.log().split('\n').filter((l) => /^Connection from /.test(l)).length;

  scenario('against the healthy sshd: exit 0, every phase reported, exactly one connection', async () => {
    const before = connections(sshd);
    const result = await runCli(['doctor', '--host-interval', '0', `${sshd.user}@127.0.0.1:${sshd.port}`], env, 60_000);
    lastOutput = printed(result);
    outputs.push({ name: 'doctor', texts: { stdout: result.stdout, stderr: result.stderr }, gitlab: false });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/banner: +SSH-2\.0-OpenSSH/);
    expect(result.stdout).toMatch(/kex: +kex \S+, hostKey ssh-ed25519, cipher \S+/);
    expect(result.stdout).toContain(`host key: offered ssh-ed25519 ${sshd.hostKeys[0]?.fingerprint}: pinned`);
    expect(result.stdout).toMatch(/auth: +ok/);
    expect(result.stdout).toMatch(/sftp: +ok/);
    expect(result.stdout).toMatch(/verdict: +OK/);
    // sshd's per-connection child may log a moment after the client exits: wait, bounded, then count.
    for (let i = 0; i < 50 && connections(sshd) === before; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    expect(connections(sshd) - before).toBe(1);
  });

  scenario('against a closed port: exit 75, connect-refused', async () => {
    const port = await closedPort();
    const result = await runCli(['doctor', '--host-interval', '0', `root@127.0.0.1:${port}`], env, 60_000);
    lastOutput = printed(result);
    outputs.push({ name: 'doctor-refused', texts: { stdout: result.stdout, stderr: result.stderr }, gitlab: false });
    expect(result.code).toBe(75);
    expect(result.stdout).toMatch(/verdict: +connect-refused \(exit 75\)/);
    expect(result.stdout).toMatch(/tcp: +not connected/);
  });
});

function sshdPublicKey(): string {
  // The deploy key's public half, derived from the private key (ssh-keygen -y needs the passphrase).
  return execFileSync('ssh-keygen', ['-y', '-P', PASSPHRASE, '-f', path.join(work, 'deploy_key')], { encoding: 'utf8' }).trim();
}
