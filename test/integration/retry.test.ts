// Issue 4 acceptance, end to end: the built CLI through a fault-injecting proxy in front of a real OpenSSH sshd.
// Asserts what a user would check: exit code, files on the server, the JSON report, stderr.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FaultPlan } from '../../harness/fault-plan.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { backoffDelay } from '../../src/retry.js';
import { baseEnv, makeTree, runCli, startCli, tempDir, writeRandomFile, type CliResult } from './helpers/cli.js';
import type { Report } from '../../src/log/report.js';


let sshd: Sshd;
let work: string;
let env: NodeJS.ProcessEnv;
const proxies: FaultProxy[] = [];
let counter = 0;

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const temps = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.includes('.safe-scp-'));
/** Bytes written so far to the temporary files in `dir` (0 when there is none). */
const tempBytes = (dir: string): number => temps(dir).reduce((sum, n) => sum + (fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.size ?? 0), 0);

/** A file of `size` random bytes under the work dir (written in 1 MiB pieces). */
function randomFile(name: string, size: number): string {
  return writeRandomFile(path.join(work, name), size);
}

/** A fresh, empty remote directory (the server is on this machine, so it is also a local path). */
function remoteDir(name: string): string {
  const dir = path.join(work, 'srv', `${name}-${++counter}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function proxy(plan: FaultPlan): Promise<FaultProxy> {
  const p = await startFaultProxy({ targetPort: sshd.port, plan });
  proxies.push(p);
  return p;
}

/** Runs the CLI against the proxy with a report file; returns the result and the parsed report. */
async function viaProxy(p: FaultProxy, args: string[], extraEnv: Record<string, string> = {}): Promise<{ result: CliResult; report: Report }> {
  const reportFile = path.join(work, `report-${++counter}.json`);
  const result = await runCli(['-P', String(p.port), '--report', reportFile, ...args], { ...env, SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', p.port), ...extraEnv }, 60_000);
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
  return { result, report };
}

const remote = (p: string): string => `${sshd.user}@127.0.0.1:${p}`;
const end = (a: Report['attempts'][number]): number => Date.parse(a.startedAt) + a.durationMs;

beforeAll(async () => {
  sshd = await startSshd({});
  work = tempDir('retry');
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  env = baseEnv({
    HOME: home,
    SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'),
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
  });
});

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the first 3 connections fail before the banner: 4 attempts, waits follow the backoff', () => {
  const policy = { retries: 5, baseDelayMs: 200, maxDelayMs: 1000 };
  const cases: Array<[string, NonNullable<FaultPlan['fault']>, string]> = [
    ['reset (RST)', { kind: 'reset' }, 'reset-before-banner'],
    ['close (FIN)', { kind: 'close' }, 'closed-before-banner'],
    ['"Exceeded MaxStartups" then RST', { kind: 'reset', notice: 'Exceeded MaxStartups\r\n' }, 'throttled-by-server'],
  ];
  test.each(cases)('%s', async (_name, fault, cause) => {
    const p = await proxy({ failFirst: 3, fault });
    const src = randomFile(`backoff-${++counter}.txt`, 1000);
    const dir = remoteDir('backoff');
    const { result, report } = await viaProxy(p, ['--retry-delay', '200ms', '--retry-max-delay', '1s', '--host-interval', '0', src, remote(`${dir}/`)]);

    expect(result.code).toBe(0);
    expect(sha(path.join(dir, path.basename(src)))).toBe(sha(src));
    expect(p.connections).toBe(4);
    expect(report).toMatchObject({ ok: true, exitCode: 0, cause: null });
    expect(report.attempts.map((a) => [a.attempt, a.phase, a.cause])).toEqual([
      [1, 'banner', cause],
      [2, 'banner', cause],
      [3, 'banner', cause],
      [4, 'transfer', null],
    ]);
    if (cause === 'throttled-by-server') {
      expect(report.attempts[0]?.evidence['preBannerText']).toContain('Exceeded MaxStartups');
      expect(result.stderr).toContain('Exceeded MaxStartups');
    }
    // One line per failed attempt on stderr, each naming the wait that follows.
    expect(result.stderr.match(/attempt \d+ to 127\.0\.0\.1:\d+ failed in phase banner/g)).toHaveLength(3);
    expect(result.stderr.match(/retrying in \d+(?:\.\d)?m?s/g)).toHaveLength(3);

    // The gap between attempt n's end and attempt n+1's start is the backoff for retry n.
    for (let n = 1; n <= 3; n++) {
      const gap = Date.parse((report.attempts[n] as Report['attempts'][number]).startedAt) - end(report.attempts[n - 1] as Report['attempts'][number]);
      const floor = backoffDelay(n, policy, () => 0);
      const ceiling = backoffDelay(n, policy, () => 1);
      expect({ retry: n, gap, inRange: gap >= floor - 5 && gap <= ceiling + 150 }).toEqual({ retry: n, gap, inRange: true });
    }
  });
});

test('SAFE_SCP_RETRIES=0 with one reset: exit 75 after exactly one attempt', async () => {
  const p = await proxy({ failFirst: 1, fault: { kind: 'reset' } });
  const src = randomFile('once.txt', 100);
  const dir = remoteDir('once');
  const { result, report } = await viaProxy(p, [src, remote(`${dir}/`)], { SAFE_SCP_RETRIES: '0' });

  expect(result.code).toBe(75);
  expect(p.connections).toBe(1);
  expect(report).toMatchObject({ ok: false, exitCode: 75, cause: 'reset-before-banner' });
  expect(report.attempts).toHaveLength(1);
  expect(result.stderr).toMatch(/attempt 1 to 127\.0\.0\.1:\d+ failed in phase banner \[reset-before-banner\].*no retries left/);
  expect(result.stderr).toContain('FAILED [reset-before-banner]');
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('a reset halfway through a 64 MiB upload: the retry sends only what was missing, the result is whole, no temp file remains', async () => {
  const smalls = Array.from({ length: 8 }, (_, i) => randomFile(`small-${i}.bin`, 64 * 1024));
  const big = randomFile('big.bin', 64 * 1024 * 1024);
  const dir = remoteDir('resume');
  const p = await proxy({ failFirst: 1, fault: { kind: 'reset', at: 'mid-transfer', afterBytes: 32 * 1024 * 1024 } });
  const { result, report } = await viaProxy(p, ['-v', '--retry-delay', '100ms', ...smalls, big, remote(`${dir}/`)]);

  expect(result.code).toBe(0);
  expect(p.connections).toBe(2);
  expect(p.faultsTriggered).toBe(1);
  expect(report.attempts.map((a) => [a.phase, a.cause])).toEqual([
    ['transfer', 'connection-lost-mid-transfer'],
    ['transfer', null],
  ]);
  // Every file arrived whole, and nothing half-written is left beside them.
  for (const file of [...smalls, big]) expect(sha(path.join(dir, path.basename(file)))).toBe(sha(file));
  expect(temps(dir)).toEqual([]);
  expect(fs.readdirSync(dir).sort()).toEqual([...smalls, big].map((f) => path.basename(f)).sort());
  expect(report.files).toHaveLength(9);

  // Each file is reported done exactly once: the small ones in attempt 1, the big one in attempt 2.
  for (const file of [...smalls, big]) {
    const line = `${file} -> ${path.join(dir, path.basename(file))} (`;
    expect({ file, times: result.stderr.split(line).length - 1 }).toEqual({ file, times: 1 });
  }
  // Staged commit (several sources): the small files were verified under their staged names before the reset and
  // renamed into place with the big one, in the final burst of attempt 2.
  const faultedAt = p.records[0]?.faultedAt ?? 0;
  for (const file of smalls) expect(fs.statSync(path.join(dir, path.basename(file))).ctimeMs).toBeGreaterThan(faultedAt);
  expect(report.hosts[0]?.commit).toMatchObject({ files: 9 });
  // The second connection carried the big file (plus protocol overhead), not the small ones again.
  const second = p.records[1]?.bytesToServer ?? 0;
  expect(second).toBeGreaterThan(64 * 1024 * 1024);
  expect(second).toBeLessThan(64 * 1024 * 1024 + 8 * 64 * 1024);
});

test('a reset halfway through a tree download: the retry fetches what was missing, the tree is whole, no temp file remains', async () => {
  const served = path.join(work, 'served-tree');
  makeTree(served, 8192);
  const into = path.join(work, `fetched-${++counter}`);
  fs.mkdirSync(into);
  // The proxy's `mid-kex` point counts the bytes from the server: here about half of the tree's 16 MB.
  const p = await proxy({ failFirst: 1, fault: { kind: 'reset', at: 'mid-kex', afterBytes: 8 * 1024 * 1024 } });
  const { result, report } = await viaProxy(p, ['-v', '--channels', '4', '--retry-delay', '100ms', '-r', remote(served), `${into}/`]);

  expect(result.code).toBe(0);
  expect(p.faultsTriggered).toBe(1);
  expect(report.attempts.map((a) => a.cause)).toEqual(['connection-lost-mid-transfer', null]);
  const files = (root: string): string[] => (fs.readdirSync(root, { recursive: true }) as string[]).sort();
  const local = path.join(into, 'served-tree');
  expect(files(local)).toEqual(files(served));
  for (const f of files(served).filter((n) => n.endsWith('.bin'))) expect({ f, sha: sha(path.join(local, f)) }).toEqual({ f, sha: sha(path.join(served, f)) });
  expect(files(local).filter((n) => n.includes('.safe-scp-'))).toEqual([]);
  // What attempt 1 finished is not fetched again: every file is reported done once.
  expect(result.stderr.split(' -> ').length - 1).toBe(files(served).filter((n) => n.endsWith('.bin')).length);
});

test('out of retries after a mid-transfer reset: exit 75, and the dead attempt\'s temp file is still removed', async () => {
  const src = randomFile('exhausted.bin', 16 * 1024 * 1024);
  const dir = remoteDir('exhausted');
  const p = await proxy({ failFirst: 1, fault: { kind: 'reset', at: 'mid-transfer', afterBytes: 8 * 1024 * 1024 } });
  const { result, report } = await viaProxy(p, ['-v', src, remote(`${dir}/`)], { SAFE_SCP_RETRIES: '0' });

  expect(result.code).toBe(75);
  expect(report).toMatchObject({ ok: false, exitCode: 75, cause: 'connection-lost-mid-transfer' });
  expect(report.attempts).toHaveLength(1);
  // The temp file could not be removed over the dead connection: one extra, uncounted connection removes it.
  expect(p.connections).toBe(2);
  expect(result.stderr).toContain('removed the temporary files of the failed attempt');
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('a stalled transfer (hang mid-upload) fails the attempt within a bounded time and the retry succeeds', async () => {
  const src = randomFile('stall.bin', 16 * 1024 * 1024);
  const dir = remoteDir('stall');
  const p = await proxy({ failFirst: 1, fault: { kind: 'hang', at: 'mid-transfer', afterBytes: 4 * 1024 * 1024 } });
  const { result, report } = await viaProxy(p, ['--stall-timeout', '2s', '--keepalive-interval', '500ms', '--retry-delay', '100ms', src, remote(`${dir}/`)]);

  expect(result.code).toBe(0);
  expect(p.connections).toBe(2);
  expect(report.attempts).toHaveLength(2);
  const first = report.attempts[0] as Report['attempts'][number];
  expect(first.phase).toBe('transfer');
  expect(['stalled', 'connection-lost-mid-transfer']).toContain(first.cause);
  // Keepalive (3 x 500ms) or the 2s watchdog ends it; either way well under 6s.
  expect(first.durationMs).toBeLessThan(6000);
  expect(result.stderr).toMatch(/attempt 1 to .* failed in phase transfer \[(stalled|connection-lost-mid-transfer)\]/);
  expect(sha(path.join(dir, 'stall.bin'))).toBe(sha(src));
  expect(temps(dir)).toEqual([]);
});

describe('a fault during the handshake is retried', () => {
  const cases: Array<[string, NonNullable<FaultPlan['fault']>]> = [
    ['RST mid key exchange', { kind: 'reset', at: 'mid-kex', afterBytes: 600 }],
    ['FIN right after the banner', { kind: 'close', at: 'after-banner' }],
  ];
  test.each(cases)('%s', async (_name, fault) => {
    const p = await proxy({ failFirst: 1, fault });
    const src = randomFile(`kex-${++counter}.txt`, 5000);
    const dir = remoteDir('kex');
    const { result, report } = await viaProxy(p, ['--retry-delay', '100ms', src, remote(`${dir}/`)]);

    expect(result.code).toBe(0);
    expect(p.connections).toBe(2);
    expect(p.faultsTriggered).toBe(1);
    expect(report.attempts).toHaveLength(2);
    const first = report.attempts[0] as Report['attempts'][number];
    expect(first.phase).toBe('kex');
    expect(first.cause).toBe('connection-lost-in-handshake');
    expect(first.evidence['serverVersion']).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(sha(path.join(dir, path.basename(src)))).toBe(sha(src));
  });
});

test('SIGTERM while the connection hangs mid-upload: exit 143 within seconds, the old file whole, no temp file', async () => {
  const dir = remoteDir('signal-hang');
  const target = path.join(dir, 'site.bin');
  const old = randomFile('old-hang.bin', 1024 * 1024);
  fs.copyFileSync(old, target);
  const src = randomFile('new-hang.bin', 16 * 1024 * 1024);
  const p = await proxy({ failFirst: 1, fault: { kind: 'hang', at: 'mid-transfer', afterBytes: 4 * 1024 * 1024 } });
  const run = startCli(['-P', String(p.port), src, remote(target)], { ...env, SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', p.port) }, 60_000);
  for (let i = 0; i < 500 && p.records[0]?.faultedAt === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  expect(p.faultsTriggered).toBe(1);
  // The upload is under way (its temporary file holds data) when the connection hangs: then the signal.
  for (let i = 0; i < 500 && tempBytes(dir) === 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(tempBytes(dir)).toBeGreaterThan(0);
  const sentAt = Date.now();
  run.child.kill('SIGTERM');
  const result = await run.done;

  expect(result.code).toBe(143);
  // Requests pending on a dead connection never answer: it is cut after 3 s, then the temp file is removed.
  expect(Date.now() - sentAt).toBeLessThan(8000);
  expect(sha(target)).toBe(sha(old));
  expect(temps(dir)).toEqual([]);
});

describe('an interrupted upload exits 143 / 130 and leaves the previous file whole and no temp file', () => {
  const cases: Array<['SIGTERM' | 'SIGINT', number]> = [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ];
  test.each(cases)('%s', async (signal, code) => {
    const dir = remoteDir('signal');
    const target = path.join(dir, 'site.bin');
    const old = randomFile(`old-${signal}.bin`, 1024 * 1024);
    fs.copyFileSync(old, target);
    const src = randomFile(`new-${signal}.bin`, 32 * 1024 * 1024);
    // -l 80000 (10 MB/s): about 3 s for 32 MiB, so the signal surely lands mid-transfer.
    const run = startCli(['-P', String(sshd.port), '-l', '80000', src, remote(target)], { ...env, SSH_KNOWN_HOSTS: sshd.knownHostsLines() }, 60_000);
    let exited = false;
    void run.done.then(() => (exited = true));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !exited && temps(dir).length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(temps(dir)).toHaveLength(1);
    // Data is arriving (1 MiB of the 32 in the temporary file) before the signal is sent.
    while (Date.now() < deadline && !exited && tempBytes(dir) < 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
    expect(tempBytes(dir)).toBeGreaterThanOrEqual(1024 * 1024);
    const sentAt = Date.now();
    run.child.kill(signal);
    const result = await run.done;

    expect(result.code).toBe(code);
    expect(Date.now() - sentAt).toBeLessThan(5000);
    expect(result.stderr).toContain(`${signal}: stopping`);
    expect(sha(target)).toBe(sha(old));
    expect(temps(dir)).toEqual([]);
  });
});
