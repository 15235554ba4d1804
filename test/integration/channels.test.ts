// Several SFTP channels on the one connection, against a real sshd: a big file spread over them survives a reset,
// and a server that allows one session per connection just gets one channel.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { startLatencyProxy, type LatencyProxy } from '../../harness/latency-proxy.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import type { Report } from '../../src/log/report.js';
import { makeTree, runCli, sshdEnv, tempDir, writeRandomFile, type CliResult } from './helpers/cli.js';

let work: string;
const servers: Sshd[] = [];
const proxies: FaultProxy[] = [];
const slowLinks: LatencyProxy[] = [];

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const randomFile = (name: string, size: number): string => writeRandomFile(path.join(work, name), size);
const envFor = (sshd: Sshd, port: number): NodeJS.ProcessEnv => sshdEnv(sshd.userKeyPath, sshd.knownHostsLines('127.0.0.1', port), path.join(work, 'home'));

/**
 * A fresh sshd behind a 20 ms latency link; by default internal-sftp, whose channels open without a login shell,
 * or a given sftp-server command.
 */
async function behindLink(sftpServerPath?: string): Promise<{ sshd: Sshd; link: LatencyProxy; env: NodeJS.ProcessEnv }> {
  const sshd = await startSshd(sftpServerPath ? { sftpServerPath } : { internalSftp: true });
  servers.push(sshd);
  const link = await startLatencyProxy({ targetPort: sshd.port, rttMs: 20, mbitPerS: 1000 });
  slowLinks.push(link);
  return { sshd, link, env: envFor(sshd, link.port) };
}

beforeAll(() => {
  work = tempDir('channels');
  fs.mkdirSync(path.join(work, 'home'));
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(slowLinks.map((p) => p.close()));
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(work, { recursive: true, force: true });
});

/**
 * Copies 64 MiB `from` -> `to` over 4 channels through a fault proxy in front of a fresh sshd (internal-sftp: a
 * channel opens without a login shell, so the extra ones are open well before the cut) that resets the first
 * connection once 40 MiB went by at `at`; -l keeps that attempt going long enough for them to open. Expects what
 * a user would check: exit 0 after one retry on a second connection, the file identical, nothing else in `dir`.
 */
async function copyThroughReset(at: 'mid-transfer' | 'mid-kex', name: string, to: (sshd: Sshd, src: string) => { args: string[]; dir: string }): Promise<CliResult> {
  const sshd = await startSshd({ internalSftp: true });
  servers.push(sshd);
  const proxy = await startFaultProxy({ targetPort: sshd.port, plan: { failFirst: 1, fault: { kind: 'reset', at, afterBytes: 40 * 1024 * 1024 } } });
  proxies.push(proxy);
  const src = randomFile(name, 64 * 1024 * 1024);
  const { args, dir } = to(sshd, src);
  fs.mkdirSync(dir);
  const report = path.join(work, `${name}.json`);
  // --channels given: opened whatever the round trip (loopback's is too short for the default to open them).
  const result = await runCli(['-v', '--channels', '4', '-l', '200000', '--retry-delay', '100ms', '--report', report, '-P', String(proxy.port), ...args], envFor(sshd, proxy.port));

  expect(result.code).toBe(0);
  expect(proxy.faultsTriggered).toBe(1);
  expect((JSON.parse(fs.readFileSync(report, 'utf8')) as Report).attempts.map((a) => a.cause)).toEqual(['connection-lost-mid-transfer', null]);
  // One TCP connection per attempt, the file's ranges over several SFTP channels on it.
  expect(proxy.connections).toBe(2);
  expect(sha(path.join(dir, name))).toBe(sha(src));
  expect(fs.readdirSync(dir)).toEqual([name]);
  return result;
}

test('a 64 MiB upload spread over 4 channels, reset mid-transfer: the retry leaves the file identical and no temporary file', async () => {
  const dir = path.join(work, 'srv-spread');
  const result = await copyThroughReset('mid-transfer', 'spread.bin', (sshd, src) => ({ args: [src, `${sshd.user}@127.0.0.1:${dir}/`], dir }));
  expect(result.stderr).toContain('4 SFTP channels open');
  expect(result.stderr).toMatch(/spread\.bin\.safe-scp-\w+\.part: 8 ranges of 8 MiB written over [234] SFTP channels/);
});

test('by default, a loopback round trip opens no extra channel, and -v says why', async () => {
  const sshd = await startSshd({ internalSftp: true });
  servers.push(sshd);
  const src = randomFile('near.bin', 20 * 1024 * 1024);
  const dir = path.join(work, 'srv-near');
  fs.mkdirSync(dir);
  const result = await runCli(['-v', '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${dir}/`], envFor(sshd, sshd.port));
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/round trip to 127\.0\.0\.1:\d+ \d ms: one channel's window .* no extra SFTP channels/);
  expect(result.stderr).toMatch(/3 ranges of 8 MiB written over 1 SFTP channel$/m);
  expect(sha(path.join(dir, 'near.bin'))).toBe(sha(src));
});

test('MaxSessions 1: the extra channels are refused, the copy goes on over one and -v says so', async () => {
  const sshd = await startSshd({ extraConfig: ['MaxSessions 1'] });
  servers.push(sshd);
  const src = randomFile('one-session.bin', 40 * 1024 * 1024);
  const dir = path.join(work, 'srv-one');
  fs.mkdirSync(dir);
  const result = await runCli(['-v', '--channels', '4', '-P', String(sshd.port), src, `${sshd.user}@127.0.0.1:${dir}/`], envFor(sshd, sshd.port));

  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/refused 3 extra SFTP channels .*going on with 1$/m);
  expect(sha(path.join(dir, 'one-session.bin'))).toBe(sha(src));
  expect(fs.readdirSync(dir)).toEqual(['one-session.bin']);
});

test('over a 20 ms link the extra channels open for work that needs them, not for one small file or an unchanged tree', async () => {
  const { sshd, link, env } = await behindLink();
  const dir = path.join(work, 'srv-link');
  fs.mkdirSync(dir);
  const to = `${sshd.user}@127.0.0.1:${dir}/`;

  const small = await runCli(['-v', '-P', String(link.port), randomFile('small.txt', 1000), to], env);
  expect(small.code).toBe(0);
  expect(small.stderr).not.toMatch(/SFTP channels? open/);

  // 64 MB in 2000 files: one channel needs over 30 windows, far longer than a channel takes to open here.
  const tree = path.join(work, 'link-tree');
  makeTree(tree, 32 * 1024);
  const first = await runCli(['-v', '--update', '-P', String(link.port), '-r', tree, to], env);
  expect(first.code).toBe(0);
  // One extra channel first, then two more if the work left is still worth it: two at least.
  expect(first.stderr).toMatch(/^safe-scp: [234] SFTP channels open to 127\.0\.0\.1:\d+$/m);

  const again = await runCli(['-v', '--update', '-P', String(link.port), '-r', tree, to], env);
  expect(again.code).toBe(0);
  expect(again.stderr).toMatch(/--update: 2000 unchanged files skipped/);
  expect(again.stderr).not.toMatch(/SFTP channels? open/);
});

test('a server whose SFTP channel takes a second to start: a tree one channel moves in a few round trips gets no more', async () => {
  const slowStart = path.join(work, 'slow-sftp-server');
  fs.writeFileSync(slowStart, '#!/bin/sh\nsleep 1\nexec /usr/lib/openssh/sftp-server "$@"\n', { mode: 0o755 });
  const { sshd, link, env } = await behindLink(slowStart);
  const dir = path.join(work, 'srv-slow-start');
  fs.mkdirSync(dir);
  const tree = path.join(work, 'slow-start-tree');
  makeTree(tree, 512);
  const result = await runCli(['-v', '-P', String(link.port), '-r', tree, `${sshd.user}@127.0.0.1:${dir}/`], env);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/^safe-scp: one SFTP channel would move what is left in about -?\d+ ms at a \d+ ms round trip, and the first took \d{4,} ms to open: no more channels$/m);
  expect(result.stderr).not.toMatch(/SFTP channels? open/);
  expect(fs.readdirSync(path.join(dir, 'slow-start-tree'), { recursive: true })).toHaveLength(2200);
});

test('a 64 MiB download spread over 4 channels, reset mid-transfer: the retry leaves the file identical and no temporary file', async () => {
  // The proxy's `mid-kex` point cuts after that many bytes from the server, here well into the download.
  const dir = path.join(work, 'local-down');
  const result = await copyThroughReset('mid-kex', 'down.bin', (sshd, src) => ({ args: [`${sshd.user}@127.0.0.1:${src}`, `${dir}/`], dir }));
  expect(result.stderr).toMatch(/down\.bin: 8 ranges of 8 MiB read over [234] SFTP channels/);
});

test('a tree downloaded over a 20 ms link: its directories listed level by level, its files spread over the channels', async () => {
  const { sshd, link, env } = await behindLink();
  const tree = path.join(work, 'remote-tree');
  makeTree(tree, 32 * 1024);
  const dir = path.join(work, 'local-tree');
  fs.mkdirSync(dir);
  const result = await runCli(['-v', '-P', String(link.port), '-r', `${sshd.user}@127.0.0.1:${tree}`, `${dir}/`], env);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/^safe-scp: [234] SFTP channels open to 127\.0\.0\.1:\d+$/m);
  const files = (root: string): string[] => (fs.readdirSync(root, { recursive: true }) as string[]).sort();
  expect(files(path.join(dir, 'remote-tree'))).toEqual(files(tree));
  for (const f of files(tree).filter((p) => p.endsWith('.bin'))) expect(sha(path.join(dir, 'remote-tree', f))).toBe(sha(path.join(tree, f)));
});
