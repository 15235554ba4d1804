// The whole decision against real OpenSSH: what does `ssh` itself conclude for the same files?
//
// ssh is run with StrictHostKeyChecking=yes against `sshd -i` spawned as its ProxyCommand (no
// network, no port), so it stops at one of four outcomes we can read from stderr: revoked, changed,
// unknown, or (key accepted) an authentication failure. Our side simulates ssh2's negotiation:
// the first algorithm of hostKeyAlgorithms() (or ssh2's default list) that the server has a key
// for decides which key the server offers; decideHostKey() then judges it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parseKnownHosts } from '../../../src/hostkeys/known-hosts.js';
import { decideHostKey, hostKeyAlgorithms } from '../../../src/hostkeys/policy.js';
import { generateKey, makeTempDir, removeTempDir, sshKeygen, type TestKey } from './ssh-tools.js';

const SSHD = '/usr/sbin/sshd'; // sshd refuses to re-exec unless started by absolute path
const haveOpenSsh = existsSync(SSHD) && existsSync('/usr/bin/ssh');
const EXEC_TIMEOUT_MS = 20_000;

/** ssh2's own default serverHostKey order, used when hostKeyAlgorithms() returns undefined. */
const SSH2_DEFAULT = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

type Outcome = 'ok' | 'host-key-unknown' | 'host-key-changed' | 'host-key-revoked' | 'kex-no-common-algorithm';
type Server = 'ed' | 'ed+rsa' | 'ec';

interface OracleCase {
  name: string;
  server: Server;
  lines: string[];
  hash?: boolean;
  host: string;
  port: number;
  /** Set only where we deliberately differ from ssh; the reason is in the case name. */
  divergence?: { ssh: Outcome; ours: Outcome };
}

const CASES: OracleCase[] = [
  { name: 'empty known_hosts', server: 'ed', lines: [], host: 'h.example.com', port: 2222 },
  { name: 'pinned', server: 'ed', lines: ['[h.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'pinned, port 22', server: 'ed', lines: ['h.example.com {S_ED}'], host: 'h.example.com', port: 22 },
  { name: '[host]:22 line, port 22', server: 'ed', lines: ['[h.example.com]:22 {S_ED}'], host: 'h.example.com', port: 22 },
  // ssh's "checking without port identifier": a bare-host key is good on any port when nothing
  // is recorded under [host]:port, and only then.
  { name: 'bare-host line, other port', server: 'ed', lines: ['h.example.com {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bare-host line with another key, other port', server: 'ed', lines: ['h.example.com {X_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bare-host line, but another key under [host]:port', server: 'ed', lines: ['h.example.com {S_ED}', '[h.example.com]:2222 {X_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bare-host line, [host]:port only a CA', server: 'ed', lines: ['h.example.com {S_ED}', '@cert-authority [h.example.com]:2222 {X_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bare-host revoked, other port', server: 'ed', lines: ['@revoked h.example.com {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bare-host wildcard, other port', server: 'ed', lines: ['*.example.com {S_ED}'], host: 'h.example.com', port: 2222 },
  {
    // ssh's order_hostkeyalgs only looks at [host]:port, so it negotiates Ed25519 and never sees
    // the RSA key its own port-less fallback would accept: a false "unknown" we avoid.
    name: 'two server keys, RSA pinned for the bare host, other port (divergence: ssh misses it)',
    server: 'ed+rsa',
    lines: ['h.example.com {S_RSA}'],
    host: 'h.example.com',
    port: 2222,
    divergence: { ssh: 'host-key-unknown', ours: 'ok' },
  },
  { name: 'other key', server: 'ed', lines: ['[h.example.com]:2222 {X_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'revoked and pinned', server: 'ed', lines: ['[h.example.com]:2222 {S_ED}', '@revoked * {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'revoked only', server: 'ed', lines: ['@revoked [h.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'revoked for another host', server: 'ed', lines: ['[h.example.com]:2222 {S_ED}', '@revoked other {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'star', server: 'ed', lines: ['* {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'bracket wildcard', server: 'ed', lines: ['[*.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'negated', server: 'ed', lines: ['[*.example.com]:2222,![h.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'upper-case pattern', server: 'ed', lines: ['[H.Example.COM]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'hashed', server: 'ed', lines: ['[h.example.com]:2222 {S_ED}'], hash: true, host: 'h.example.com', port: 2222 },
  { name: 'hashed, other key', server: 'ed', lines: ['[h.example.com]:2222 {X_ED}'], hash: true, host: 'h.example.com', port: 2222 },
  { name: 'cert authority only', server: 'ed', lines: ['@cert-authority [h.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'two server keys, RSA pinned', server: 'ed+rsa', lines: ['[h.example.com]:2222 {S_RSA}'], host: 'h.example.com', port: 2222 },
  { name: 'two server keys, Ed25519 pinned', server: 'ed+rsa', lines: ['[h.example.com]:2222 {S_ED}'], host: 'h.example.com', port: 2222 },
  { name: 'two server keys, wrong Ed25519 and right RSA', server: 'ed+rsa', lines: ['[h.example.com]:2222 {X_ED}', '[h.example.com]:2222 {S_RSA}'], host: 'h.example.com', port: 2222 },
  { name: 'two server keys, Ed25519 revoked, RSA pinned', server: 'ed+rsa', lines: ['@revoked * {S_ED}', '[h.example.com]:2222 {S_RSA}'], host: 'h.example.com', port: 2222 },
  { name: 'ECDSA server pinned', server: 'ec', lines: ['[h.example.com]:2222 {S_EC}'], host: 'h.example.com', port: 2222 },
  {
    // CONTRACT: offered algorithms are limited to the pinned types, so ssh2 finds no common host
    // key algorithm where ssh (which only reorders) negotiates Ed25519 and reports "changed".
    name: 'only another type pinned (divergence: restricted list)',
    server: 'ed',
    lines: ['[h.example.com]:2222 {X_RSA}'],
    host: 'h.example.com',
    port: 2222,
    divergence: { ssh: 'host-key-changed', ours: 'kex-no-common-algorithm' },
  },
];

let dir: string | undefined;
const keys: Record<string, TestKey> = {};

function requireDir(): string {
  if (dir === undefined) throw new Error('no temp dir');
  return dir;
}

const SERVER_KEYS: Record<Server, string[]> = { ed: ['S_ED'], 'ed+rsa': ['S_ED', 'S_RSA'], ec: ['S_EC'] };

(haveOpenSsh ? describe : describe.skip)('decisions agree with OpenSSH ssh (StrictHostKeyChecking=yes)', () => {
  beforeAll(async () => {
    dir = await makeTempDir();
    keys.S_ED = await generateKey(dir, 'S_ED', ['-t', 'ed25519']);
    keys.S_RSA = await generateKey(dir, 'S_RSA', ['-t', 'rsa', '-b', '2048']);
    keys.S_EC = await generateKey(dir, 'S_EC', ['-t', 'ecdsa', '-b', '256']);
    keys.X_ED = await generateKey(dir, 'X_ED', ['-t', 'ed25519']);
    keys.X_RSA = await generateKey(dir, 'X_RSA', ['-t', 'rsa', '-b', '2048']);
    for (const [server, names] of Object.entries(SERVER_KEYS)) {
      const config = [
        ...names.map((n) => `HostKey ${join(requireDir(), n)}`),
        'UsePAM no',
        'StrictModes no',
        'PidFile none',
        'LogLevel QUIET',
        'AuthorizedKeysFile none',
      ].join('\n');
      await writeFile(join(requireDir(), `sshd-${server}.conf`), `${config}\n`);
    }
  }, 60_000);

  afterAll(async () => {
    await removeTempDir(dir);
  });

  function key(name: string): TestKey {
    const found = keys[name];
    if (found === undefined) throw new Error(`no key ${name}`);
    return found;
  }

  /** Runs ssh and classifies where it stopped. */
  function runSsh(knownHosts: string, server: Server, host: string, port: number): Promise<Outcome> {
    const args = [
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'CheckHostIP=no',
      '-o', 'UpdateHostKeys=no',
      '-o', 'PubkeyAuthentication=no',
      '-o', 'PasswordAuthentication=no',
      '-o', 'KbdInteractiveAuthentication=no',
      '-o', 'GSSAPIAuthentication=no',
      '-o', `ProxyCommand=${SSHD} -i -f ${join(requireDir(), `sshd-${server}.conf`)}`,
      '-p', String(port),
      `nobody@${host}`,
      'true',
    ];
    return new Promise((resolve, reject) => {
      execFile('ssh', args, { timeout: EXEC_TIMEOUT_MS, encoding: 'utf8' }, (error, _stdout, stderr) => {
        if (error === null) return reject(new Error('ssh unexpectedly succeeded'));
        if (/REVOKED HOST KEY/.test(stderr)) return resolve('host-key-revoked');
        if (/HOST IDENTIFICATION HAS CHANGED/.test(stderr)) return resolve('host-key-changed');
        if (/host key is known for .* and you have requested strict checking/.test(stderr)) return resolve('host-key-unknown');
        if (/Permission denied/.test(stderr)) return resolve('ok');
        return reject(new Error(`unclassified ssh outcome: ${stderr}`));
      });
    });
  }

  /** What safe-scp would conclude: simulated ssh2 negotiation, then decideHostKey. */
  function ours(text: string, path: string, server: Server, host: string, port: number): Outcome {
    const { entries } = parseKnownHosts(text, path);
    const pins = { entries, fingerprints: [] };
    const offeredAlgorithms = hostKeyAlgorithms(pins, host, port) ?? SSH2_DEFAULT;
    const serverKeys = SERVER_KEYS[server].map(key);
    for (const algorithm of offeredAlgorithms) {
      const wantType = algorithm.startsWith('rsa-sha2-') ? 'ssh-rsa' : algorithm;
      const offered = serverKeys.find((k) => k.type === wantType);
      if (offered === undefined) continue;
      const decision = decideHostKey(pins, host, port, offered.blob);
      return decision.ok ? 'ok' : decision.code;
    }
    return 'kex-no-common-algorithm';
  }

  test.each(CASES.map((c, index) => ({ ...c, index })))('$name', async (c) => {
    const path = join(requireDir(), `known_hosts-${String(c.index)}`);
    const body = c.lines.map((l) => l.replace(/\{(\w+)\}/g, (_, name: string) => key(name).text)).join('\n');
    await writeFile(path, body === '' ? '' : `${body}\n`);
    if (c.hash === true) sshKeygen(['-H', '-f', path]);
    const text = await readFile(path, 'utf8');
    const [theirs, mine] = [await runSsh(path, c.server, c.host, c.port), ours(text, path, c.server, c.host, c.port)];
    expect({ ssh: theirs, ours: mine }).toEqual(c.divergence ?? { ssh: theirs, ours: theirs });
  }, 30_000);
});
