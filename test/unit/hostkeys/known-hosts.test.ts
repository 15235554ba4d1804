// known_hosts parser and matcher: line handling, warnings, hashing, patterns, formatting.
import { createHash, createHmac } from 'node:crypto';

import { fingerprint } from '../../../src/hostkeys/fingerprint.js';
import {
  entryMatches,
  formatKnownHostsLine,
  hashKnownHostsName,
  lookupHost,
  parseKnownHosts,
} from '../../../src/hostkeys/known-hosts.js';
import { knownHostsName, matchPattern, matchPatternList } from '../../../src/hostkeys/pattern.js';
import { wireBlob } from './ssh-tools.js';

/** Deterministic synthetic keys: the parser checks structure, not cryptography. */
function ed25519(seed: string): Buffer {
  return wireBlob('ssh-ed25519', createHash('sha256').update(seed).digest());
}
function rsa(seed: string): Buffer {
  const n = Buffer.concat([Buffer.from([0x00, 0xc1]), createHash('sha512').update(seed).digest(), Buffer.alloc(190, 7)]);
  return wireBlob('ssh-rsa', Buffer.from([0x01, 0x00, 0x01]), n);
}
const A = ed25519('a');
const B = ed25519('b');
const R = rsa('r');
const line = (hosts: string, blob: Buffer, type = 'ssh-ed25519'): string => `${hosts} ${type} ${blob.toString('base64')}`;

describe('parseKnownHosts', () => {
  test('reads entries with marker, type, fingerprint and file:line source', () => {
    const text = [
      '# comment',
      '',
      line('example.com', A),
      `@revoked ${line('*', B)}`,
      `@cert-authority ${line('*.example.com', B)} my CA`,
      line('rsa.example.com', R, 'rsa-sha2-512'),
    ].join('\n');
    const { entries, warnings } = parseKnownHosts(text, '/ci/known_hosts');
    expect(warnings).toEqual([]);
    expect(entries.map((e) => [e.source, e.marker, e.hostField, e.keyType])).toEqual([
      ['/ci/known_hosts:3', undefined, 'example.com', 'ssh-ed25519'],
      ['/ci/known_hosts:4', 'revoked', '*', 'ssh-ed25519'],
      ['/ci/known_hosts:5', 'cert-authority', '*.example.com', 'ssh-ed25519'],
      ['/ci/known_hosts:6', undefined, 'rsa.example.com', 'ssh-rsa'],
    ]);
    expect(entries[0]?.key.equals(A)).toBe(true);
    expect(entries[0]?.fingerprint).toBe(fingerprint(A));
    expect('marker' in (entries[0] ?? {})).toBe(false);
  });

  test.each([
    ['invalid base64', 'h ssh-ed25519 AAAA!!!!', /not valid base64/],
    ['unpadded base64', `h ssh-ed25519 ${A.toString('base64').slice(0, -1)}`, /not valid base64/],
    ['truncated after the type', 'h ssh-ed25519', /truncated after the key type/],
    ['host only', 'h', /truncated before the key type/],
    ['comment instead of key', 'h #ssh-ed25519 AAAA', /truncated before the key type/],
    ['type mismatch', line('h', A, 'ssh-rsa'), /line says "ssh-rsa" but the key is ssh-ed25519/],
    ['unknown marker', `@what ${line('h', A)}`, /unknown marker "@what"/],
    ['abbreviated marker', `@rev ${line('h', A)}`, /unknown marker "@rev"/],
    ['two markers', `@revoked @revoked ${line('h', A)}`, /more than one @marker/],
    ['tab then space after marker', `@revoked\t${line('h', A)}`, /unknown marker/],
    ['bad hash', line('|1|notbase64|x', A), /bad hashed host name/],
    ['short salt', line(`|1|${Buffer.alloc(8).toString('base64')}|x`, A), /bad hashed host name/],
    ['unknown hash version', line('|2|abc|def', A), /bad hashed host name/],
    ['unknown key type', `h ssh-foo ${wireBlob('ssh-foo', 'x').toString('base64')}`, /unsupported key type "ssh-foo"/],
    ['truncated blob', `h ssh-ed25519 ${A.subarray(0, 40).toString('base64')}`, /truncated/],
    ['trailing bytes', `h ssh-ed25519 ${Buffer.concat([A, Buffer.alloc(3)]).toString('base64')}`, /trailing bytes/],
    ['small RSA', `h ssh-rsa ${wireBlob('ssh-rsa', Buffer.from([3]), Buffer.alloc(64, 0x55)).toString('base64')}`, /under 1024 bits/],
    ['legacy RSA1', 'h 1024 35 1234567890', /not valid base64/],
  ])('skips %s with a warning, keeps the rest', (_name, bad, reason) => {
    const { entries, warnings } = parseKnownHosts(`${bad}\n${line('ok', A)}\n`, 'kh');
    expect(entries.map((e) => e.source)).toEqual(['kh:2']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^kh:1: skipped: /);
    expect(warnings[0]).toMatch(reason);
  });

  test('accepts CRLF, tabs, leading blanks and no final newline', () => {
    const text = `${line('a', A)}\r\n\t ${line('b', B).replace(' ', '\t')}  comment\r\n${line('c', A)}`;
    const { entries, warnings } = parseKnownHosts(text, 'kh');
    expect(warnings).toEqual([]);
    expect(entries.map((e) => e.hostField)).toEqual(['a', 'b', 'c']);
    expect(entries[2]?.key.equals(A)).toBe(true);
  });

  test('empty text has no entries and no warnings', () => {
    expect(parseKnownHosts('', 'kh')).toEqual({ entries: [], warnings: [] });
  });
});

describe('matching', () => {
  const entry = (hosts: string): Parameters<typeof entryMatches>[0] => {
    const parsed = parseKnownHosts(line(hosts, A), 'kh').entries[0];
    if (parsed === undefined) throw new Error(`did not parse: ${hosts}`);
    return parsed;
  };

  test.each<[string, string, number, boolean]>([
    ['example.com', 'example.com', 22, true],
    ['example.com', 'EXAMPLE.COM', 22, true],
    ['EXAMPLE.com', 'example.COM', 22, true],
    ['example.com', 'example.com', 2222, false],
    ['[example.com]:2222', 'example.com', 2222, true],
    ['[example.com]:2222', 'example.com', 22, false],
    ['[example.com]:22', 'example.com', 22, false],
    ['*', 'anything', 2222, true],
    ['*.example.com', 'a.example.com', 2222, false],
    ['*:2222', 'a.example.com', 2222, true],
    ['[*.example.com]:2222', 'a.b.example.com', 2222, true],
    ['[*.example.com]:2222', 'example.com', 2222, false],
    ['web?', 'web1', 22, true],
    ['web?', 'web12', 22, false],
    ['a,b,c', 'b', 22, true],
    ['*.example.com,!secret.example.com', 'secret.example.com', 22, false],
    ['!secret.example.com,*.example.com', 'secret.example.com', 22, false],
    ['!secret.example.com', 'other.example.com', 22, false],
    ['::1', '::1', 22, true],
    ['[::1]:2222', '::1', 2222, true],
    ['10.0.0.*', '10.0.0.12', 22, true],
    [`example.com,${hashKnownHostsName('example.com', Buffer.alloc(20, 1))}`, 'example.com', 22, true],
  ])('%s vs %s:%d -> %s', (hosts, host, port, expected) => {
    expect(entryMatches(entry(hosts), host, port)).toBe(expected);
  });

  test('hashed names: exact name, port inside the hash, host lowercased first', () => {
    const salt = Buffer.alloc(20, 9);
    const plain = entry(hashKnownHostsName('example.com', salt));
    const ported = entry(hashKnownHostsName('[example.com]:2222', salt));
    expect(entryMatches(plain, 'example.com', 22)).toBe(true);
    expect(entryMatches(plain, 'Example.COM', 22)).toBe(true);
    expect(entryMatches(plain, 'example.com', 2222)).toBe(false);
    expect(entryMatches(plain, 'example.org', 22)).toBe(false);
    expect(entryMatches(ported, 'example.com', 2222)).toBe(true);
    expect(entryMatches(ported, 'example.com', 22)).toBe(false);
  });

  test('hashKnownHostsName matches the documented construction', () => {
    const salt = Buffer.from('0123456789abcdefghij');
    const hashed = hashKnownHostsName('[127.0.0.1]:2222', salt);
    // Recomputed independently: hostfile.c host_hash is HMAC-SHA1 keyed by the salt.
    const mac = createHmac('sha1', salt).update('[127.0.0.1]:2222').digest('base64');
    expect(hashed).toBe(`|1|${salt.toString('base64')}|${mac}`);
    expect(hashKnownHostsName('x')).not.toBe(hashKnownHostsName('x')); // fresh salt each time
  });

  test('lookupHost splits matches by marker, in file order', () => {
    const text = [
      line('h', A),
      `@revoked ${line('*', B)}`,
      `@cert-authority ${line('h', B)}`,
      line('other', B),
      line('h,x', B),
    ].join('\n');
    const found = lookupHost(parseKnownHosts(text, 'kh').entries, 'h', 22);
    expect(found.keys.map((e) => e.source)).toEqual(['kh:1', 'kh:5']);
    expect(found.revoked.map((e) => e.source)).toEqual(['kh:2']);
    expect(found.authorities.map((e) => e.source)).toEqual(['kh:3']);
  });
});

describe('pattern primitives (match.c)', () => {
  test.each<[string, string, boolean]>([
    ['abc', 'abc', true],
    ['abc', 'ab', false],
    ['abc', '*', true],
    ['', '*', true],
    ['', '', true],
    ['abc', 'a*c', true],
    ['ac', 'a*c', true],
    ['abcbc', 'a*bc', true],
    ['abcbd', 'a*bc', false],
    ['abc', 'a?c', true],
    ['ac', 'a?c', false],
    ['a.b.c', '*.c', true],
    ['[h]:2222', '[h]:*', true],
    ['[h]:2222', '[h]:22', false],
    ['aaa', '*a*a*a*', true],
    ['aa', '*a*a*a*', false],
    ['ABC', 'abc', false], // case is handled by the list matcher, not here
  ])('matchPattern(%j, %j) = %s', (text, pattern, expected) => {
    expect(matchPattern(text, pattern)).toBe(expected);
  });

  test.each<[string, string, 1 | 0 | -1]>([
    ['a', 'a,b', 1],
    ['c', 'a,b', 0],
    ['a', '!a,a', -1],
    ['a', 'a,!a', -1],
    ['a', 'A', 1],
    ['a', `${'x'.repeat(1023)},a`, 0], // OpenSSH gives up at an over-long sub-pattern
    ['a', `a,${'x'.repeat(1023)}`, 0],
    ['a', `${'x'.repeat(1022)},a`, 1],
  ])('matchPatternList(%j, %j) = %d', (text, list, expected) => {
    expect(matchPatternList(text, list)).toBe(expected);
  });

  test.each<[string, number, string]>([
    ['Example.COM', 22, 'example.com'],
    ['example.com', 2222, '[example.com]:2222'],
    ['::1', 2222, '[::1]:2222'],
    ['::1', 22, '::1'],
  ])('knownHostsName(%s, %d) = %s', (host, port, name) => {
    expect(knownHostsName(host, port)).toBe(name);
  });

  test.each([0, -1, 65536, 22.5, Number.NaN])('knownHostsName rejects port %d', (port) => {
    expect(() => knownHostsName('h', port)).toThrow(RangeError);
  });
});

describe('formatKnownHostsLine', () => {
  test('port 22 writes the bare host, other ports the bracket form, host lowercased', () => {
    expect(formatKnownHostsLine('Example.com', 22, A)).toBe(`example.com ssh-ed25519 ${A.toString('base64')}`);
    expect(formatKnownHostsLine('127.0.0.1', 2222, A)).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${A.toString('base64')}`);
    expect(formatKnownHostsLine('h', 22, R)).toMatch(/^h ssh-rsa AAAA/);
  });

  test.each<[string, number]>([
    ['example.com', 22],
    ['example.com', 2222],
    ['::1', 2200],
    ['Mixed.Case', 22],
  ])('a written line for %s:%d parses and matches that host:port only', (host, port) => {
    const { entries, warnings } = parseKnownHosts(formatKnownHostsLine(host, port, A), 'kh');
    expect(warnings).toEqual([]);
    expect(entries).toHaveLength(1);
    expect(lookupHost(entries, host, port).keys).toHaveLength(1);
    expect(lookupHost(entries, host, port === 22 ? 2222 : 22).keys).toHaveLength(0);
  });

  test.each(['a b', 'a,b', '*.example.com', 'h?', '!h', '#h', '|1|x', '@revoked', '[h]:22', 'a\nb', 'a\u0007b', ''])(
    'refuses host %j',
    (host) => {
      expect(() => formatKnownHostsLine(host, 22, A)).toThrow();
    },
  );

  test('refuses a malformed blob', () => {
    expect(() => formatKnownHostsLine('h', 22, Buffer.from('junk'))).toThrow();
  });
});
