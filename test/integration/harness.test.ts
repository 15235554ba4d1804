// Proves the test harness itself: private sshd, fault proxy, listeners - driven with the real OpenSSH client.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  closedPort,
  isProcessAlive,
  maxConcurrentUnauthenticated,
  mulberry32,
  previewPlan,
  startFaultProxy,
  startNonSshListener,
  startSilentListener,
  startSshd,
  type FaultPlan,
  type FaultProxy,
  type Sshd,
} from '../../harness/index.js';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(file: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

let server: Sshd;
let work: string;
const proxies: FaultProxy[] = [];

async function proxy(plan: FaultPlan): Promise<FaultProxy> {
  const p = await startFaultProxy({ targetPort: server.port, plan });
  proxies.push(p);
  return p;
}

/** known_hosts for the server reached directly and through `port`. */
async function knownHostsFile(s: Sshd, port: number = s.port): Promise<string> {
  const file = path.join(work, `known_hosts_${s.port}_${port}`);
  await writeFile(file, s.knownHostsLines() + s.knownHostsLines('127.0.0.1', port));
  return file;
}

function sshOptions(s: Sshd, knownHosts: string, connectTimeout = 5): string[] {
  return [
    '-F', 'none',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', `ConnectTimeout=${connectTimeout}`,
    '-i', s.userKeyPath,
  ];
}

async function ssh(s: Sshd, port: number, extra: string[] = [], command = 'true', connectTimeout = 5): Promise<RunResult> {
  const knownHosts = await knownHostsFile(s, port);
  return run('ssh', [...sshOptions(s, knownHosts, connectTimeout), ...extra, '-p', String(port), `${s.user}@127.0.0.1`, command]);
}

async function scp(s: Sshd, port: number, source: string, target: string): Promise<RunResult> {
  const knownHosts = await knownHostsFile(s, port);
  return run('scp', [...sshOptions(s, knownHosts), '-q', '-P', String(port), source, `${s.user}@127.0.0.1:${target}`]);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-harness-test-'));
  server = await startSshd();
}, 20_000);

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
}, 20_000);

describe('startSshd', () => {
  it('serves the real ssh client with the generated keys and logs the auth', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.log()).toMatch(/Server listening on 127\.0\.0\.1 port \d+/);
    const before = server.authenticatedConnections();
    const since = server.logLineCount();
    const result = await ssh(server, server.port, [], 'echo hello');
    expect(result).toMatchObject({ code: 0, stdout: 'hello\n' });
    await server.waitForLog(/Accepted publickey for /, 3000, since);
    await expect(server.waitForLog(/Server listening on/, 50, since)).rejects.toThrow(/did not show/);
    expect(server.authenticatedConnections()).toBe(before + 1);
    const event = server.authEvents.at(-1);
    expect(event).toMatchObject({ user: server.user, method: 'publickey', clientAddress: '127.0.0.1' });
    expect(event?.clientPort).toBeGreaterThan(0);
  }, 15_000);

  it('exposes host keys whose fingerprints equal ssh-keygen -lf, for ed25519, ecdsa and rsa', async () => {
    const multi = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] });
    try {
      expect(multi.hostKeys.map((k) => k.type)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
      for (const key of multi.hostKeys) {
        const keygen = await run('ssh-keygen', ['-lf', `${key.path}.pub`]);
        expect(keygen.code).toBe(0);
        expect(keygen.stdout.split(' ')[1]).toBe(key.fingerprint);
      }
      expect(new Set(multi.hostKeys.map((k) => k.fingerprint)).size).toBe(3);
      // The known_hosts text parses, and ssh accepts it for every key type it may negotiate.
      const lines = multi.knownHostsLines();
      expect(lines).toContain(`[127.0.0.1]:${multi.port} ssh-rsa `);
      const file = path.join(work, 'kh-multi');
      await writeFile(file, lines);
      const listed = await run('ssh-keygen', ['-lf', file]);
      expect(listed.stdout.trim().split('\n').map((l) => l.split(' ')[1])).toEqual(multi.hostKeys.map((k) => k.fingerprint));
      // (plain ssh-rsa = SHA-1 signatures is disabled in OpenSSH 9.2, on both sides.)
      const algs = ['rsa-sha2-256', 'ecdsa-sha2-nistp256', 'ssh-ed25519'];
      const results = await Promise.all(algs.map((alg) => ssh(multi, multi.port, ['-o', `HostKeyAlgorithms=${alg}`])));
      expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(algs.map(() => ({ code: 0, stderr: '' })));
    } finally {
      await multi.stop();
    }
  }, 30_000);

  it('stop() ends the listener and every per-connection child, even with a session open', async () => {
    const s = await startSshd();
    const knownHosts = await knownHostsFile(s);
    const client = spawn('ssh', [...sshOptions(s, knownHosts), '-p', String(s.port), `${s.user}@127.0.0.1`, 'sleep 30'], { stdio: 'ignore' });
    const clientExit = new Promise<number | null>((resolve) => client.once('exit', (code) => resolve(code)));
    try {
      await s.waitForLog(/Starting session: command/, 5000);
      const cmdline = (pid: number): string => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          return '';
        }
      };
      let tree = s.processTree();
      for (let i = 0; i < 250 && !tree.some((pid) => /^(bash -c )?sleep 30/.test(cmdline(pid))); i++) {
        await new Promise((r) => setTimeout(r, 20));
        tree = s.processTree();
      }
      // listener, per-connection sshd, the user's command (as root sshd skips the post-auth privsep child)
      expect(tree.length).toBeGreaterThanOrEqual(3);
      expect(tree.some((pid) => /^(bash -c )?sleep 30/.test(cmdline(pid)))).toBe(true);
      const started = Date.now();
      await s.stop();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(tree.filter((pid) => isProcessAlive(pid))).toEqual([]);
      // No process anywhere still runs with our config (the listener's command line names it).
      const ours = (await readdir('/proc'))
        .filter((entry) => /^\d+$/.test(entry))
        .filter((pid) => cmdline(Number(pid)).includes(s.dir));
      expect(ours).toEqual([]);
      expect(s.running()).toBe(false);
      expect(existsSync(s.dir)).toBe(false);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([clientExit, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 5000)))]);
      clearTimeout(timer);
      expect(code).not.toBe('still running');
    } finally {
      if (client.exitCode === null && client.pid !== undefined) client.kill('SIGKILL');
      await s.stop();
    }
  }, 20_000);

  it('restarts on the same port with other host keys (MITM) and rejects a port in use', async () => {
    const first = await startSshd();
    const port = first.port;
    const pinned = await knownHostsFile(first);
    await first.stop();
    const impostor = await startSshd({ port, hostKeyTypes: ['ed25519'] });
    try {
      expect(impostor.port).toBe(port);
      const result = await run('ssh', [...sshOptions(impostor, pinned), '-p', String(port), `${impostor.user}@127.0.0.1`, 'true']);
      expect(result.code).toBe(255);
      expect(result.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
      await expect(startSshd({ port, startAttempts: 2 })).rejects.toThrow(/Address already in use|Cannot bind/);
    } finally {
      await impostor.stop();
    }
  }, 20_000);
});

describe('fault proxy', () => {
  it('failFirst 1, reset before banner: the first ssh is reset, the second succeeds and joins sshd auth by port', async () => {
    const p = await proxy({ failFirst: 1, fault: { kind: 'reset', at: 'before-banner' } });
    const first = await ssh(server, p.port);
    expect(first.code).toBe(255);
    expect(first.stderr).toMatch(/Connection reset by peer|Connection closed by remote host/);
    const second = await ssh(server, p.port);
    expect(second).toMatchObject({ code: 0 });
    expect({ connections: p.connections, faulted: p.faulted, passed: p.passed, triggered: p.faultsTriggered }).toEqual({
      connections: 2,
      faulted: 1,
      passed: 1,
      triggered: 1,
    });
    const [faultedRecord, passedRecord] = p.records;
    expect(faultedRecord?.fault?.kind).toBe('reset');
    expect(faultedRecord?.upstreamLocalPort).toBeUndefined();
    expect(passedRecord?.fault).toBeUndefined();
    await server.waitForLog(new RegExp(`Accepted publickey for \\S+ from 127\\.0\\.0\\.1 port ${passedRecord?.upstreamLocalPort} `), 3000);
    expect(server.authEvents.some((e) => e.clientPort === passedRecord?.upstreamLocalPort)).toBe(true);
  }, 20_000);

  it('a MaxStartups-style notice shows in ssh -v as "Exceeded MaxStartups", then RST', async () => {
    const p = await proxy({ fault: { kind: 'reset', notice: 'Exceeded MaxStartups\r\n' } });
    const result = await ssh(server, p.port, ['-v']);
    expect(result.code).toBe(255);
    expect(result.stderr).toContain('banner line 0: Exceeded MaxStartups');
    expect(result.stderr).toMatch(/kex_exchange_identification: read: Connection reset by peer/);
  }, 15_000);

  it('a hang fault runs into ssh ConnectTimeout during the banner exchange', async () => {
    const p = await proxy({ fault: 'hang' });
    const result = await ssh(server, p.port, [], 'true', 1);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/timed out/i);
    expect(result.ms).toBeLessThan(5000);
    // The proxy notices the client leaving and closes its side.
    for (let i = 0; i < 100 && p.records[0]?.closedAt === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(p.records[0]?.closedAt).toBeDefined();
    expect(p.open).toBe(0);
  }, 15_000);

  it('after-banner close and mid-kex reset cut the handshake at the chosen byte', async () => {
    const p = await proxy({ pattern: [{ kind: 'close', at: 'after-banner' }, { kind: 'reset', at: 'mid-kex', afterBytes: 700 }, 'pass'] });
    const afterBanner = await ssh(server, p.port);
    const midKex = await ssh(server, p.port);
    const passed = await ssh(server, p.port);
    expect([afterBanner.code, midKex.code, passed.code]).toEqual([255, 255, 0]);
    expect(afterBanner.stderr).toMatch(/Connection closed by|closed by remote host/);
    // After the ident exchange OpenSSH words it "Connection reset by 127.0.0.1 port N".
    expect(midKex.stderr).toMatch(/Connection reset by|Connection closed by/);
    const [r1, r2, r3] = p.records;
    expect(r1?.bytesToClient).toBeGreaterThan(8);
    expect(r1?.bytesToClient).toBeLessThan(100); // just "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u...\r\n"
    expect(r2?.bytesToClient).toBe(700);
    expect(r3?.bytesToClient).toBeGreaterThan(700);
    expect(r1?.faultedAt).toBeDefined();
    expect(r2?.faultedAt).toBeDefined();
  }, 20_000);

  it('a mid-transfer reset cuts an scp upload; after setPlan({}) the same upload succeeds', async () => {
    const source = path.join(work, 'upload.bin');
    const data = randomBytes(4 * 1024 * 1024);
    await writeFile(source, data);
    const target = path.join(work, 'uploaded.bin');
    const p = await proxy({ fault: { kind: 'reset', at: 'mid-transfer', afterBytes: 1024 * 1024 } });
    const cut = await scp(server, p.port, source, target);
    expect(cut.code).not.toBe(0);
    expect(p.records[0]?.bytesToServer).toBe(1024 * 1024);
    expect(p.faultsTriggered).toBe(1);
    const partial = existsSync(target) ? (await stat(target)).size : 0;
    expect(partial).toBeLessThan(data.length);
    p.setPlan({});
    const ok = await scp(server, p.port, source, target);
    expect(ok.code).toBe(0);
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(digest(await readFile(target))).toBe(digest(data));
    expect(p.passed).toBe(1);
  }, 30_000);

  it('a seeded rate is deterministic and the live proxy follows previewPlan', async () => {
    const plan: FaultPlan = { rate: 0.3, seed: 42, fault: 'close' };
    const pattern = (faults: ReadonlyArray<unknown>): string => faults.map((f) => (f === undefined ? '.' : 'X')).join('');
    const a = pattern(previewPlan(plan, 40));
    expect(pattern(previewPlan(plan, 40))).toBe(a);
    expect(pattern(previewPlan({ ...plan, seed: 43 }, 40))).not.toBe(a);
    const faults = a.split('').filter((c) => c === 'X').length;
    expect(faults).toBeGreaterThan(4);
    expect(faults).toBeLessThan(24);

    const silent = await startSilentListener();
    try {
      const p = await startFaultProxy({ targetPort: silent.port, plan });
      proxies.push(p);
      for (let i = 0; i < 20; i++) {
        const socket = net.connect({ host: p.host, port: p.port });
        socket.on('error', () => undefined);
        await p.waitForConnections(i + 1, 2000);
        socket.destroy();
      }
      expect(pattern(p.records.map((r) => r.fault))).toBe(a.slice(0, 20));
      p.setPlan({ pattern: ['hang', 'pass', 'reset'], fault: { kind: 'close', at: 'after-banner' } });
      expect(previewPlan({ pattern: ['hang', 'pass', 'reset'], fault: { kind: 'close', at: 'after-banner' } }, 4)).toEqual([
        { kind: 'hang', at: 'after-banner', afterBytes: 1000, settleMs: 50 },
        undefined,
        { kind: 'reset', at: 'after-banner', afterBytes: 1000, settleMs: 50 },
        undefined,
      ]);
      expect(() => p.setPlan({ failFirst: 1, rate: 0.5 })).toThrow(/at most one/);
    } finally {
      await silent.close();
    }
  }, 15_000);

  it('maxConcurrentUnauthenticated works on synthetic records', () => {
    const records = [
      { openedAt: 0, closedAt: 1000, upstreamLocalPort: 50001 }, // authenticated at 100
      { openedAt: 50, closedAt: 1000, upstreamLocalPort: 50002 }, // authenticated at 300
      { openedAt: 200, closedAt: 250 }, // faulted before banner: no upstream
      { openedAt: 400, upstreamLocalPort: 50004 }, // still open, never authenticated
      { openedAt: 500, closedAt: 900, upstreamLocalPort: 50001 }, // port reused: authenticated at 600
    ];
    const auth = [
      { clientPort: 50001, at: 100 },
      { clientPort: 50002, at: 300 },
      { clientPort: 50001, at: 600 },
    ];
    // [0,80) [50,280) [200,250) [400,inf) [500,580): at most 2 at once (e.g. 50..80, 200..250, 500..580).
    expect(maxConcurrentUnauthenticated(records, auth)).toBe(2);
    expect(maxConcurrentUnauthenticated(records, auth, 0)).toBe(2);
    // Without auth events every interval runs to its close: at 500 records 1, 2, 4 and 5 are open.
    expect(maxConcurrentUnauthenticated(records, [])).toBe(4);
    // A log line arriving just after the next connection opened is absorbed by the tolerance.
    const racy = [
      { openedAt: 0, closedAt: 500, upstreamLocalPort: 1 },
      { openedAt: 105, closedAt: 500, upstreamLocalPort: 2 },
    ];
    expect(maxConcurrentUnauthenticated(racy, [{ clientPort: 1, at: 110 }, { clientPort: 2, at: 200 }], 20)).toBe(1);
    expect(maxConcurrentUnauthenticated(racy, [{ clientPort: 1, at: 110 }, { clientPort: 2, at: 200 }], 0)).toBe(2);
  });

  it('survives clients that vanish at any moment, under every fault, without an unhandled error', async () => {
    const kinds: FaultPlan['pattern'] = [
      'pass',
      { kind: 'reset' },
      { kind: 'close', notice: 'Exceeded MaxStartups\r\n' },
      { kind: 'hang' },
      { kind: 'reset', at: 'after-banner' },
      { kind: 'close', at: 'after-banner' },
      { kind: 'hang', at: 'after-banner' },
      { kind: 'reset', at: 'mid-kex', afterBytes: 100 },
      { kind: 'close', at: 'mid-kex', afterBytes: 100 },
      { kind: 'reset', at: 'mid-transfer', afterBytes: 10 },
    ];
    const p = await proxy({ pattern: kinds, repeat: true });
    const random = mulberry32(7);
    const clients = Array.from({ length: 40 }, async (_, i) => {
      const socket = net.connect({ host: p.host, port: p.port });
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
      socket.write('SSH-2.0-chaos\r\n' + 'x'.repeat(i % 3 === 0 ? 100 : 0));
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 60)));
      if (i % 2 === 0) socket.resetAndDestroy();
      else socket.destroy();
    });
    await Promise.all(clients);
    for (let i = 0; i < 100 && p.open > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(p.open).toBe(0);
    expect(p.connections).toBe(40);
    expect(p.records.every((r) => r.closedAt !== undefined)).toBe(true);
    // resetAndDestroy() during a pending end() fails with 'reset EINVAL' and leaks the handle (the process
    // then spins at exit): the proxy must never do that.
    expect(p.records.filter((r) => r.error?.includes('EINVAL'))).toEqual([]);
    expect(server.running()).toBe(true);
  }, 15_000);

  it('tracks concurrency live and joins it with sshd auth events', async () => {
    const p = await proxy({});
    const results = await Promise.all([ssh(server, p.port), ssh(server, p.port), ssh(server, p.port)]);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(p.maxConcurrentOpen).toBeGreaterThanOrEqual(1);
    const ports = p.records.map((r) => r.upstreamLocalPort);
    for (const port of ports) await server.waitForLog(new RegExp(`Accepted publickey .* port ${port} `), 3000);
    const unauth = p.maxConcurrentUnauthenticated(server.authEvents);
    expect(unauth).toBeGreaterThanOrEqual(1);
    expect(unauth).toBeLessThanOrEqual(3);
  }, 20_000);
});

describe('listeners', () => {
  it('non-SSH, silent and closed ports behave as advertised', async () => {
    const http = await startNonSshListener('HTTP/1.1 400 Bad Request\r\n\r\n');
    const silent = await startSilentListener();
    try {
      const viaSsh = await ssh(server, http.port, ['-v']);
      expect(viaSsh.code).toBe(255);
      expect(viaSsh.stderr).toContain('banner line 0: HTTP/1.1 400 Bad Request');

      const received = await new Promise<{ text: string; ended: boolean }>((resolve) => {
        const socket = net.connect({ host: http.host, port: http.port });
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('end', () => resolve({ text, ended: true }));
        socket.on('error', () => resolve({ text, ended: false }));
      });
      expect(received).toEqual({ text: 'HTTP/1.1 400 Bad Request\r\n\r\n', ended: true });

      const hung = await ssh(server, silent.port, [], 'true', 1);
      expect(hung.code).toBe(255);
      expect(hung.stderr).toMatch(/timed out/i);
      expect(silent.connections).toBe(1);

      const port = await closedPort();
      const refused = await ssh(server, port);
      expect(refused.code).toBe(255);
      expect(refused.stderr).toMatch(/Connection refused/);
    } finally {
      await http.close();
      await silent.close();
    }
  }, 20_000);
});
