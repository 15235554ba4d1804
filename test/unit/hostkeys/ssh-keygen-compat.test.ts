// Differential test: our known_hosts matching must find exactly the lines `ssh-keygen -l -F` finds.
//
// Oracle notes (OpenSSH 9.x):
// - `ssh-keygen -F name` prints every line whose host field matches, including @revoked ("REVOKED")
//   and @cert-authority ("CA") lines; exit 0 iff at least one line matched. It does not judge keys.
// - Without -l it does not parse keys, so a line with corrupt base64 still counts as "found"; with
//   -l it parses them (HKF_WANT_PARSE_KEY, as ssh does) and skips such lines. We compare with -l.
// - We pass the name ssh itself would look up: lowercased host, `[host]:port` unless port 22.
//   ssh lowercases the host before the lookup; ssh-keygen -F lowercases only for pattern matching,
//   not for hashed names (see the last test).
// - What ssh does with the matches (revoked wins, etc.) is covered in policy.test.ts.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parseKnownHosts, lookupHost, type KnownHostsEntry } from '../../../src/hostkeys/known-hosts.js';
import { knownHostsName } from '../../../src/hostkeys/pattern.js';
import { mulberry32 } from '../../../harness/fault-plan.js';
import {
  generateKey,
  makeTempDir,
  removeTempDir,
  sshKeygen,
  wireBlob,
  wireFields,
  type TestKey,
} from './ssh-tools.js';

interface Case {
  file: string;
  /** Lines with {PLACEHOLDER}s for keys; joined with `eol`. */
  lines: string[];
  eol?: string;
  /** Run `ssh-keygen -H` on the file first (hashes every plain, wildcard-free name). */
  hash?: boolean;
  host: string;
  port: number;
}

/** One file, several queries: each query is a separate comparison. */
function queries(
  file: string,
  lines: string[],
  targets: [string, number][],
  options: { hash?: boolean; eol?: string } = {},
): Case[] {
  return targets.map(([host, port]) => ({ file, lines, ...options, host, port }));
}

const HAND_CASES: Case[] = [
  ...queries(
    'plain',
    ['# a comment', '', 'example.com {A}', '   other.example.com {B}   trailing comment', '10.0.0.1 {E}'],
    [['example.com', 22], ['other.example.com', 22], ['10.0.0.1', 22], ['example.com', 2222], ['nothere.example', 22], ['EXAMPLE.COM', 22]],
  ),
  ...queries(
    'comma-lists-and-case',
    ['Web1.Example.COM,web2.example.com,192.168.1.10 {A}', 'db.example.com,,db2.example.com {B}'],
    [['web1.example.com', 22], ['WEB2.example.com', 22], ['192.168.1.10', 22], ['db2.example.com', 22], ['web3.example.com', 22]],
  ),
  ...queries(
    'ports',
    ['[git.example.com]:2222 {A}', 'git.example.com {B}', '[git.example.com]:22 {E}', '[::1]:2200 {A}', '::1 {B}'],
    [['git.example.com', 2222], ['git.example.com', 22], ['git.example.com', 2200], ['::1', 2200], ['::1', 22]],
  ),
  ...queries(
    'wildcards',
    ['*.example.com {A}', 'web?.example.org {B}', '[*.example.com]:2222 {E}', '[*.example.net]:* {B}', '*:2222 {R}'],
    [['a.example.com', 22], ['a.b.example.com', 22], ['example.com', 22], ['web1.example.org', 22], ['web12.example.org', 22], ['a.example.com', 2222], ['x.example.net', 8022], ['host', 2222]],
  ),
  ...queries('star-matches-every-port', ['* {A}'], [['anything', 22], ['anything', 2222]]),
  ...queries(
    'negation',
    [
      '*.example.com,!secret.example.com {A}',
      '!bad.example.com,*.example.com {B}',
      '!only.example.com {E}',
      '[*.example.com]:2222,![secret.example.com]:2222 {R}',
    ],
    [['a.example.com', 22], ['secret.example.com', 22], ['bad.example.com', 22], ['only.example.com', 22], ['secret.example.com', 2222], ['a.example.com', 2222]],
  ),
  ...queries(
    'hashed-by-ssh-keygen',
    ['example.com {A}', '[example.com]:2222 {B}', 'web1.example.com,10.1.1.1 {E}', '*.wild.example {R}'],
    [['example.com', 22], ['example.com', 2222], ['web1.example.com', 22], ['10.1.1.1', 22], ['x.wild.example', 22], ['nothere', 22], ['Example.COM', 22]],
    { hash: true },
  ),
  ...queries(
    'markers',
    [
      'example.com {A}',
      '@revoked example.com {B}',
      '@revoked * {E}',
      '@cert-authority *.example.com {R}',
      '@revoked\texample.com\t{A-TABS}', // all tabs: a valid marker
      '@revoked\tother.example.com {A}', // tab, then a space later on the line: invalid marker
      '@rev example.com {A}', // abbreviated marker: invalid
      '@revoked @revoked example.com {A}', // two markers: invalid
      '  @cert-authority   other.example.com {B}', // leading and repeated blanks: fine
    ],
    [['example.com', 22], ['a.example.com', 22], ['other.example.com', 22], ['example.org', 2222]],
  ),
  ...queries(
    'invalid-lines',
    [
      'bad64.example.com ssh-ed25519 AAAA!!!!',
      'trunc.example.com ssh-ed25519',
      'trunc2.example.com',
      'mismatch.example.com ssh-rsa {A64}',
      'unknown.example.com ssh-foo {A64}',
      '|1|notvalid|x ssh-ed25519 {A64}',
      'short.example.com ssh-ed25519 {A64-SHORT}',
      'ok.example.com {A}',
    ],
    [['bad64.example.com', 22], ['trunc.example.com', 22], ['trunc2.example.com', 22], ['mismatch.example.com', 22], ['unknown.example.com', 22], ['short.example.com', 22], ['ok.example.com', 22]],
  ),
  ...queries(
    'key-types',
    [
      'types.example.com {R-SHA512}', // RSA blob under its signature algorithm name: valid
      'types.example.com {E384}',
      'types.example.com {E521}',
      'types.example.com {SK}',
      'types.example.com {SKE}',
      'types.example.com ecdsa-sha2-nistp384 {E64}', // P-256 blob labelled P-384: invalid
    ],
    [['types.example.com', 22], ['types.example.com', 2222]],
  ),
  ...queries(
    'crlf-no-final-newline',
    ['crlf.example.com {A}', '[crlf.example.com]:2022 {B}', 'last.example.com {E}'],
    [['crlf.example.com', 22], ['crlf.example.com', 2022], ['last.example.com', 22]],
    { eol: '\r\n' },
  ),
  ...queries(
    'brackets-with-wildcards',
    ['[10.0.0.?]:2222 {A}', '[10.0.0.*]:* {B}', '[*]:2222 {E}'],
    [['10.0.0.5', 2222], ['10.0.0.55', 2222], ['10.0.0.5', 22], ['10.0.0.5', 3333], ['other', 2222]],
  ),
];


const RANDOM_HOSTS = ['a.example.com', 'b.example.com', 'example.com', 'A.Example.COM', '10.0.0.1', '::1', 'h1', 'H1'];
const RANDOM_ATOMS = [
  ...RANDOM_HOSTS,
  '*.example.com', '?.example.com', '*', 'h?', '10.0.0.*', '[a.example.com]:2222', '[*.example.com]:2222',
  '[*]:*', '*:2222', '[10.0.0.1]:22', '[::1]:2222', '!b.example.com', '!*:2222', '!h1', '![a.example.com]:2222',
  '*example*', '', '[h1]:2200', '[H?]:22??',
];
const RANDOM_KEYS = ['{A}', '{B}', '{E}'];

function randomCases(count: number): Case[] {
  // Deterministic, so the random cases are the same on every run.
  const random = mulberry32(0x5afe5c9);
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(random() * items.length)];
    if (item === undefined) throw new Error('empty pick');
    return item;
  };
  const cases: Case[] = [];
  for (let f = 0; f < count; f += 1) {
    const lines: string[] = [];
    const lineCount = 3 + Math.floor(random() * 4);
    for (let l = 0; l < lineCount; l += 1) {
      const atoms = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(RANDOM_ATOMS));
      const roll = random();
      const marker = roll < 0.15 ? '@revoked ' : roll < 0.25 ? '@cert-authority ' : '';
      lines.push(`${marker}${atoms.join(',')} ${pick(RANDOM_KEYS)}`);
    }
    const targets: [string, number][] = Array.from({ length: 3 }, () => [
      pick(RANDOM_HOSTS),
      pick([22, 22, 2222, 2200]),
    ]);
    cases.push(...queries(`random-${String(f)}`, lines, targets, { hash: f % 2 === 1 }));
  }
  return cases;
}

const RANDOM_CASES = randomCases(40);

let dir: string | undefined;
let keys: Record<string, string> = {};

beforeAll(async () => {
  dir = await makeTempDir();
  const a = await generateKey(dir, 'a', ['-t', 'ed25519']);
  const b = await generateKey(dir, 'b', ['-t', 'ed25519']);
  const e = await generateKey(dir, 'e', ['-t', 'ecdsa', '-b', '256']);
  const e384 = await generateKey(dir, 'e384', ['-t', 'ecdsa', '-b', '384']);
  const e521 = await generateKey(dir, 'e521', ['-t', 'ecdsa', '-b', '521']);
  const r = await generateKey(dir, 'r', ['-t', 'rsa', '-b', '2048']);
  // Security-key types cannot be generated without hardware; their public blobs are the plain
  // key's fields plus an application string, which is all a known_hosts line holds.
  const [, aPoint] = wireFields(a.blob);
  const [, eCurve, ePoint] = wireFields(e.blob);
  if (aPoint === undefined || eCurve === undefined || ePoint === undefined) throw new Error('bad key');
  const sk = wireBlob('sk-ssh-ed25519@openssh.com', aPoint, 'ssh:');
  const ske = wireBlob('sk-ecdsa-sha2-nistp256@openssh.com', eCurve, ePoint, 'ssh:');
  const text = (k: TestKey): string => k.text;
  keys = {
    A: text(a),
    'A-TABS': `${a.type}\t${a.base64}`,
    A64: a.base64,
    'A64-SHORT': a.base64.slice(0, -1),
    B: text(b),
    E: text(e),
    E64: e.base64,
    E384: text(e384),
    E521: text(e521),
    R: text(r),
    'R-SHA512': `rsa-sha2-512 ${r.base64}`,
    SK: `sk-ssh-ed25519@openssh.com ${sk.toString('base64')}`,
    SKE: `sk-ecdsa-sha2-nistp256@openssh.com ${ske.toString('base64')}`,
  };
}, 60_000);

afterAll(async () => {
  await removeTempDir(dir);
});

async function writeCaseFile(c: Case, index: number): Promise<{ path: string; text: string }> {
  if (dir === undefined) throw new Error('no temp dir');
  const body = c.lines
    .map((line) => line.replace(/\{([A-Z0-9-]+)\}/g, (_, name: string) => {
      const value = keys[name];
      if (value === undefined) throw new Error(`no key ${name}`);
      return value;
    }))
    .join(c.eol ?? '\n');
  const path = join(dir, `${c.file}-${String(index)}`);
  // CRLF case: also no final newline (OpenSSH's regress/knownhosts.sh checks that one).
  await writeFile(path, c.eol === undefined ? `${body}\n` : body);
  if (c.hash === true) sshKeygen(['-H', '-f', path]);
  return { path, text: await readFile(path, 'utf8') };
}

/** `N`, `N REVOKED` or `N CA` for each line ssh-keygen reports as found. */
function oracle(path: string, name: string): { status: number; found: string[] } {
  const { status, stdout } = sshKeygen(['-l', '-F', name, '-f', path]);
  const found = [...stdout.matchAll(/^# Host .* found: line (\d+) ?(CA|REVOKED)?\s*$/gm)].map((m) =>
    m[2] === undefined ? `${m[1] ?? ''}` : `${m[1] ?? ''} ${m[2]}`,
  );
  return { status, found };
}

function describeMatches(matched: KnownHostsEntry[]): string[] {
  return matched
    .map((entry) => {
      const line = entry.source.slice(entry.source.lastIndexOf(':') + 1);
      const marker = entry.marker === 'revoked' ? ' REVOKED' : entry.marker === 'cert-authority' ? ' CA' : '';
      return { n: Number(line), text: `${line}${marker}` };
    })
    .sort((x, y) => x.n - y.n)
    .map((x) => x.text);
}

const ALL_CASES = [...HAND_CASES, ...RANDOM_CASES].map((c, index) => ({ ...c, index }));

describe('known_hosts matching agrees with ssh-keygen -l -F', () => {
  test('enough cases', () => {
    expect(HAND_CASES.length).toBeGreaterThanOrEqual(40);
  });

  test.each(ALL_CASES)('$file: $host port $port', async (c) => {
    const { path, text } = await writeCaseFile(c, c.index);
    const { entries } = parseKnownHosts(text, path);
    const found = lookupHost(entries, c.host, c.port);
    const ours = describeMatches([...found.keys, ...found.revoked, ...found.authorities]);
    const theirs = oracle(path, knownHostsName(c.host, c.port));
    expect(ours).toEqual(theirs.found);
    expect(theirs.status).toBe(ours.length > 0 ? 0 : 1);
  }, 30_000);

  test('documented divergence: ssh-keygen -F does not lowercase names for hashed lines, ssh does', async () => {
    const c: Case = { file: 'hashed-case', lines: ['example.com {A}'], hash: true, host: 'EXAMPLE.com', port: 22 };
    const { path, text } = await writeCaseFile(c, 10_000);
    expect(text.startsWith('|1|')).toBe(true);
    // ssh lowercases the host before looking it up, so this key would be found by ssh...
    expect(lookupHost(parseKnownHosts(text, path).entries, 'EXAMPLE.com', 22).keys).toHaveLength(1);
    // ...while ssh-keygen -F hashes the name exactly as typed.
    expect(oracle(path, 'EXAMPLE.com').status).toBe(1);
    expect(oracle(path, 'example.com').status).toBe(0);
  }, 30_000);
});
