// Many hosts, jump hosts and bandwidth limits against real sshd instances on loopback.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { chrootableDir, sshdEnv, makeTree, runCli, tempDir } from './helpers/cli.js';

let work: string;
let chrootRoots: string | undefined;
const servers: Sshd[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (chrootRoots) fs.rmSync(chrootRoots, { recursive: true, force: true });
});

beforeAll(() => {
  work = tempDir('fleet');
});

function envFor(sshd: Sshd, knownHosts: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return sshdEnv(sshd.userKeyPath, knownHosts, work, extra);
}

test('fan-out to 20 loopback addresses with 2 refusing: 18 identical trees, a summary naming the 2 failures, exit 75', async () => {
  const listening = Array.from({ length: 18 }, (_, i) => `127.0.0.${i + 2}`);
  const refusing = ['127.0.0.20', '127.0.0.21'];
  // Each address is its own "server": sshd chroots the SFTP session to a directory per local address.
  const roots = (chrootRoots = chrootableDir('fleet-roots'));
  const chroots = listening.flatMap((address) => {
    fs.mkdirSync(path.join(roots, address), { recursive: true, mode: 0o755 });
    return [`Match LocalAddress ${address}`, `ChrootDirectory ${path.join(roots, address)}`, 'ForceCommand internal-sftp'];
  });
  // sshd listens on at most 16 sockets: two servers share the port and host key, 9 addresses each.
  const sshd = await startSshd({ listenAddresses: listening.slice(0, 9), extraConfig: chroots });
  const twin = await startSshd({
    extraConfig: chroots,
    listenAddresses: listening.slice(9),
    port: sshd.port,
    hostKeyFiles: sshd.hostKeys.map((k) => k.path),
    authorizedKeys: [sshd.userPublicKey],
  });
  servers.push(sshd, twin);
  const src = path.join(work, 'site');
  makeTree(src, 512);
  // One wildcard pin covers every address of this test server.
  const [, type, blob] = (sshd.knownHostsLines().split('\n')[0] ?? '').split(' ');
  const knownHosts = `[127.0.0.*]:${sshd.port} ${type} ${blob}\n`;
  const hosts = [...listening, ...refusing];
  const report = path.join(work, 'fleet-report.json');
  const result = await runCli(
    ['-r', '-q', '--hosts', hosts.join(','), '--parallel', '6', '--retries', '1', '--report', report, '-P', String(sshd.port), src, `${sshd.user}@:/dest`],
    envFor(sshd, knownHosts),
  );
  expect(result.code).toBe(75);
  expect(result.stderr).toMatch(/18 of 20 hosts succeeded/);
  expect(result.stderr).not.toMatch(/Warning/); // e.g. Node's MaxListenersExceededWarning for listeners left on the run's signal
  for (const host of refusing) expect(result.stderr).toMatch(new RegExp(`${host.replace(/\./g, '\\.')}:\\d+\\s+FAILED\\s+75\\s+2\\s.*connect-refused`));
  const json = JSON.parse(fs.readFileSync(report, 'utf8')) as { hosts: Array<{ host: string; ok: boolean; cause: string | null; attempts: number }> };
  expect(json.hosts).toHaveLength(20);
  expect(json.hosts.filter((h) => h.ok)).toHaveLength(18);
  expect(json.hosts.filter((h) => !h.ok).map((h) => [h.host, h.cause])).toEqual(refusing.map((h) => [h, 'connect-refused']));
  for (const host of listening) execFileSync('diff', ['-r', src, path.join(roots, host, 'dest')]);
  expect(sshd.authenticatedConnections() + twin.authenticatedConnections()).toBe(18);
});

test('through a jump host with its own pin an upload succeeds; a wrong pin on the jump host alone fails with exit 3', async () => {
  const bastion = await startSshd({ extraConfig: ['AllowTcpForwarding yes'] });
  const target = await startSshd({ authorizedKeys: [bastion.userPublicKey] });
  servers.push(bastion, target);
  const src = path.join(work, 'via-jump.txt');
  fs.writeFileSync(src, 'through the bastion\n');
  const dest = path.join(work, 'via-jump-dest.txt');
  const pins = bastion.knownHostsLines() + target.knownHostsLines();
  const args = ['-J', `${bastion.user}@127.0.0.1:${bastion.port}`, '-P', String(target.port), src, `${target.user}@127.0.0.1:${dest}`];
  const ok = await runCli(args, envFor(bastion, pins));
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  expect(fs.readFileSync(dest, 'utf8')).toBe('through the bastion\n');
  expect(bastion.authenticatedConnections()).toBe(1);
  expect(target.authenticatedConnections()).toBe(1);

  // Pin another key for the bastion only: the target's pin is right, the jump host's is not.
  const other = await startSshd({});
  servers.push(other);
  const wrongBastionPin = other.knownHostsLines(`127.0.0.1`, bastion.port);
  fs.rmSync(dest);
  const refused = await runCli(args, envFor(bastion, wrongBastionPin + target.knownHostsLines()));
  expect(refused.code).toBe(3);
  expect(refused.stderr).toContain('host-key-changed');
  expect(refused.stderr).toContain(`127.0.0.1:${bastion.port}`);
  expect(target.authenticatedConnections()).toBe(1);
  expect(fs.existsSync(dest)).toBe(false);
});

test('-l 8000 holds a 20 MiB upload to within 15% of 1 MB/s', async () => {
  const sshd = await startSshd({});
  servers.push(sshd);
  const src = path.join(work, 'limited.bin');
  fs.writeFileSync(src, Buffer.alloc(20 * 1024 * 1024, 1));
  const started = Date.now();
  const result = await runCli(['-l', '8000', '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${path.join(work, 'limited-dest.bin')}`], envFor(sshd, sshd.knownHostsLines()));
  const seconds = (Date.now() - started) / 1000;
  expect(result.code).toBe(0);
  const rate = (20 * 1024 * 1024) / seconds / 1e6; // MB/s including connection setup
  expect(rate).toBeGreaterThan(0.85);
  expect(rate).toBeLessThan(1.15);
});
