// Issue 4 acceptance: parallel safe-scp processes on one machine throttle their connection attempts to a host
// together, so they never become the burst that trips sshd's MaxStartups.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../../src/harness/fault-proxy.js';
import { startSshd, type Sshd } from '../../src/harness/sshd.js';
import { baseEnv, startCli, tempDir } from './helpers/cli.js';

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
