// Issue 4 acceptance: parallel safe-scp processes on one machine throttle their connection attempts to a host
// together, so they never become the burst that trips sshd's MaxStartups.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { buildThrottleForChildren, startChild, waitForLog } from '../unit/throttle/child-harness.js';
import { baseEnv, runCli, startCli, tempDir } from './helpers/cli.js';

let sshd: Sshd;
let p: FaultProxy;
let work: string;

beforeAll(async () => {
  // Past 2 unauthenticated connections sshd drops every new one (rate 100%).
  sshd = await startSshd({ maxStartups: '2:100:2' });
  p = await startFaultProxy({ targetPort: sshd.port });
  work = tempDir('throttle');
});

afterAll(async () => {
  await p?.close();
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('8 processes started together against MaxStartups 2:100:2 all succeed, one unauthenticated connection at a time', async () => {
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  const dest = path.join(work, 'srv');
  fs.mkdirSync(dest);
  const env = baseEnv({
    HOME: home,
    SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'),
    SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', p.port),
  });
  const sources = Array.from({ length: 8 }, (_, i) => {
    const file = path.join(work, `job-${i}.bin`);
    fs.writeFileSync(file, crypto.randomBytes(256 * 1024));
    return file;
  });
  const state = path.join(work, 'state');
  const runs = sources.map((src, i) =>
    startCli(
      ['-P', String(p.port), '--state-dir', state, '--host-interval', '20ms', '--retries', '10', '--retry-delay', '100ms',
        '--report', path.join(work, `report-${i}.json`), src, `${sshd.user}@127.0.0.1:${dest}/`],
      env,
      60_000,
    ),
  );
  const results = await Promise.all(runs.map((r) => r.done));

  expect(results.map((r) => r.code)).toEqual(Array(8).fill(0));
  for (const src of sources) expect(fs.readFileSync(path.join(dest, path.basename(src))).equals(fs.readFileSync(src))).toBe(true);
  expect(fs.readdirSync(dest).filter((n) => n.includes('.safe-scp-'))).toEqual([]);
  // The default --host-concurrency is 1: never two connections between accept and authentication.
  expect(sshd.authEvents.length).toBeGreaterThanOrEqual(8);
  expect(p.maxConcurrentUnauthenticated(sshd.authEvents)).toBeLessThanOrEqual(1);
  // So sshd never had to drop one, and no process needed a retry.
  expect(sshd.log()).not.toMatch(/past MaxStartups/);
  const attempts = sources.map((_, i) => (JSON.parse(fs.readFileSync(path.join(work, `report-${i}.json`), 'utf8')) as { attempts: unknown[] }).attempts.length);
  expect(attempts).toEqual(Array(8).fill(1));
  expect(p.connections).toBe(8);
});

test('a stopped process holding the slot delays a run only until its lease lapses, and the run says whom it waited for', async () => {
  const home = path.join(work, 'home-stopped');
  fs.mkdirSync(home);
  const dest = path.join(work, 'srv-stopped');
  fs.mkdirSync(dest);
  const env = baseEnv({
    HOME: home,
    SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'),
    SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', p.port),
  });
  const src = path.join(work, 'stopped.bin');
  fs.writeFileSync(src, crypto.randomBytes(64 * 1024));
  const state = path.join(work, 'state-stopped');
  const report = path.join(work, 'report-stopped.json');
  const args = ['-P', String(p.port), '--state-dir', state, src, `${sshd.user}@127.0.0.1:${dest}/`];

  // The holder: a process that takes 127.0.0.1:<port>'s slot the way safe-scp does (default 2 s lease) and keeps it.
  const build = await buildThrottleForChildren();
  const log = path.join(work, 'holder.log');
  const holder = startChild(build, { stateDir: state, host: `127.0.0.1:${p.port}`, concurrency: 1, intervalMs: 0, holdMs: 0, log, hang: true });
  const pid = holder.pid;
  if (pid === undefined) throw new Error('no pid');
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  try {
    await waitForLog(log, (events) => events.some((e) => e.event === 'start'), 10_000);

    // While it runs it renews its lease: a run whose --timeout strikes while waiting fails in phase throttle.
    const timedOut = await runCli(['--timeout', '3s', '--report', report, ...args], env, 30_000);
    expect(timedOut.code).toBe(75);
    expect(timedOut.stderr).toMatch(new RegExp(`waiting [\\d.]+s so far for a connection slot to 127\\.0\\.0\\.1:${p.port}: host concurrency 1 in use by pid ${pid} `));
    expect(timedOut.stderr).toMatch(/while waiting for a connection slot/);
    expect(timedOut.stderr).toMatch(/phase throttle/);
    const json = JSON.parse(fs.readFileSync(report, 'utf8')) as { cause: string; phase: string; attempts: Array<{ phase: string }> };
    expect(json.cause).toBe('timeout');
    expect(json.phase).toBe('throttle');
    expect(json.attempts.map((a) => a.phase)).toEqual(['throttle']);
    expect(fs.readdirSync(dest)).toEqual([]);

    // Stopped, it stops renewing: the next run takes the slot once the lease lapses and completes.
    process.kill(pid, 'SIGSTOP');
    const result = await runCli(args, env, 60_000);
    expect(result.code).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'stopped.bin')).equals(fs.readFileSync(src))).toBe(true);
    expect(result.stderr).toMatch(
      new RegExp(`waited [\\d.]+s for a connection slot to 127\\.0\\.0\\.1:${p.port}; held by pid ${pid} .*freed pid ${pid}'s slot \\(it stopped renewing its lease`),
    );
    console.log(`run behind SIGSTOPped holder pid ${pid}: exit ${result.code} in ${result.durationMs} ms; stderr:\n${result.stderr}`);
  } finally {
    if (holder.exitCode === null && holder.signalCode === null) {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    }
    await exited;
    fs.rmSync(build, { recursive: true, force: true });
  }
});
