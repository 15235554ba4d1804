// decideHostKey and hostKeyAlgorithms: the trust decision and the algorithm list it implies.
import { createHash } from 'node:crypto';

import { fingerprint } from '../../../src/hostkeys/fingerprint.js';
import { formatKnownHostsLine, parseKnownHosts } from '../../../src/hostkeys/known-hosts.js';
import { decideHostKey, hostKeyAlgorithms, type HostKeyPins } from '../../../src/hostkeys/policy.js';
import { wireBlob } from './ssh-tools.js';

const bytes = (seed: string, length: number): Buffer => {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 32) createHash('sha256').update(`${seed}${String(i)}`).digest().copy(out, i);
  return out;
};
const ED_A = wireBlob('ssh-ed25519', bytes('a', 32));
const ED_B = wireBlob('ssh-ed25519', bytes('b', 32));
const RSA = wireBlob('ssh-rsa', Buffer.from([1, 0, 1]), Buffer.concat([Buffer.from([0]), Buffer.from([0xc0]), bytes('n', 255)]));
const EC256 = wireBlob('ecdsa-sha2-nistp256', 'nistp256', Buffer.concat([Buffer.from([4]), bytes('p', 64)]));
const EC384 = wireBlob('ecdsa-sha2-nistp384', 'nistp384', Buffer.concat([Buffer.from([4]), bytes('q', 96)]));
const DSS = wireBlob('ssh-dss', bytes('p', 128), bytes('q', 20), bytes('g', 128), bytes('y', 128));
const SK = wireBlob('sk-ssh-ed25519@openssh.com', bytes('s', 32), 'ssh:');

const KEYS: Readonly<Record<string, Buffer>> = { ED_A, ED_B, RSA, EC256, EC384, DSS, SK };

/** Builds pins from known_hosts lines written as `hosts KEYNAME` (optionally with a marker). */
function pins(lines: string[], fingerprints: string[] = [], sources?: string[]): HostKeyPins {
  const text = lines
    .map((l) => l.replace(/\b(ED_A|ED_B|RSA|EC256|EC384|DSS|SK)\b/, (name) => {
      const blob = KEYS[name];
      if (blob === undefined) throw new Error(name);
      return `${blob.subarray(4, 4 + blob.readUInt32BE(0)).toString()} ${blob.toString('base64')}`;
    }))
    .join('\n');
  const { entries, warnings } = parseKnownHosts(text, '/ci/known_hosts');
  if (warnings.length > 0) throw new Error(warnings.join('; '));
  return { entries, fingerprints, ...(sources === undefined ? {} : { sources }) };
}

const NEVER_SUGGESTED = /StrictHostKeyChecking|no-strict|insecure|disable|turn (it )?off|skip (the )?check/i;

describe('decideHostKey', () => {
  test.each<[string, HostKeyPins, string, number, Buffer, string]>([
    ['pinned entry', pins(['h ED_A']), 'h', 22, ED_A, 'ok'],
    ['pinned entry, bracket port', pins(['[h]:2222 ED_A']), 'h', 2222, ED_A, 'ok'],
    ['pinned wildcard', pins(['*.example.com ED_A']), 'a.example.com', 22, ED_A, 'ok'],
    ['pinned fingerprint', pins([], [fingerprint(ED_A)]), 'any.host', 2222, ED_A, 'ok'],
    ['pinned fingerprint with padding', pins([], [`${fingerprint(ED_A)}=`]), 'h', 22, ED_A, 'ok'],
    ['fingerprint rescues a changed known_hosts key', pins(['h ED_B'], [fingerprint(ED_A)]), 'h', 22, ED_A, 'ok'],
    ['revoked beats pinned', pins(['h ED_A', '@revoked * ED_A']), 'h', 22, ED_A, 'host-key-revoked'],
    ['revoked beats pinned (revoked first)', pins(['@revoked h ED_A', 'h ED_A']), 'h', 22, ED_A, 'host-key-revoked'],
    ['revoked beats fingerprint', pins(['@revoked * ED_A'], [fingerprint(ED_A)]), 'h', 22, ED_A, 'host-key-revoked'],
    ['revoked with no other pin', pins(['@revoked h ED_A']), 'h', 22, ED_A, 'host-key-revoked'],
    ['revoked only for another host (as ssh)', pins(['h ED_A', '@revoked other ED_A']), 'h', 22, ED_A, 'ok'],
    ['revoked other key does not matter', pins(['h ED_A', '@revoked h ED_B']), 'h', 22, ED_A, 'ok'],
    ['other key pinned', pins(['h ED_B']), 'h', 22, ED_A, 'host-key-changed'],
    ['other type pinned', pins(['h RSA']), 'h', 22, ED_A, 'host-key-changed'],
    ['fingerprint pins another key', pins([], [fingerprint(ED_B)]), 'h', 22, ED_A, 'host-key-changed'],
    ['malformed fingerprint still counts as a pin', pins([], ['garbage']), 'h', 22, ED_A, 'host-key-changed'],
    ['negated for this host', pins(['*,!h ED_A']), 'h', 22, ED_A, 'host-key-unknown'],
    ['no pins at all', pins([]), 'h', 22, ED_A, 'host-key-unknown'],
    ['bare-host pin used on another port (as ssh)', pins(['h ED_A']), 'h', 2222, ED_A, 'ok'],
    ['bare-host pin of another key, other port', pins(['h ED_B']), 'h', 2222, ED_A, 'host-key-unknown'],
    ['bare-host pin ignored when [h]:port has pins', pins(['h ED_A', '[h]:2222 ED_B']), 'h', 2222, ED_A, 'host-key-changed'],
    ['bare-host pin ignored when a fingerprint is given', pins(['h ED_A'], [fingerprint(ED_B)]), 'h', 2222, ED_A, 'host-key-changed'],
    ['bare-host revocation applies on other ports', pins(['@revoked h ED_A', '[h]:2222 ED_A']), 'h', 2222, ED_A, 'host-key-revoked'],
    ['port pins are not used for port 22', pins(['[h]:2222 ED_A']), 'h', 22, ED_A, 'host-key-unknown'],
    ['[h]:22 is not what ssh looks up', pins(['[h]:22 ED_A']), 'h', 22, ED_A, 'host-key-unknown'],
    ['only a cert authority', pins(['@cert-authority h ED_A']), 'h', 22, ED_A, 'host-key-unknown'],
    ['cert authority and a plain pin', pins(['@cert-authority h ED_B', 'h ED_A']), 'h', 22, ED_A, 'ok'],
    ['cert authority and another plain pin', pins(['@cert-authority h ED_A', 'h ED_B']), 'h', 22, ED_A, 'host-key-changed'],
  ])('%s -> %s', (_name, p, host, port, blob, expected) => {
    const decision = decideHostKey(p, host, port, blob);
    expect(decision.ok ? 'ok' : decision.code).toBe(expected);
    if (!decision.ok) expect(decision.message).not.toMatch(NEVER_SUGGESTED);
  });

  test('accepted: says what matched', () => {
    const byEntry = decideHostKey(pins(['h ED_A']), 'h', 22, ED_A);
    expect(byEntry).toEqual({ ok: true, matchedBy: 'known_hosts /ci/known_hosts:1' });
    const byFingerprint = decideHostKey(pins([], [fingerprint(ED_A)]), 'h', 22, ED_A);
    expect(byFingerprint).toEqual({ ok: true, matchedBy: `--host-key ${fingerprint(ED_A)}` });
  });

  test('changed: lists host:port, offered type and fingerprint, and every pin with its source', () => {
    const decision = decideHostKey(pins(['[h]:2222 ED_B', '[h]:2222 RSA'], [fingerprint(EC256)]), 'h', 2222, ED_A);
    if (decision.ok) throw new Error('accepted');
    expect(decision.code).toBe('host-key-changed');
    expect(decision.message).toContain('h:2222');
    expect(decision.message).toContain(`ssh-ed25519 ${fingerprint(ED_A)}`);
    expect(decision.message).toContain(`ssh-ed25519 ${fingerprint(ED_B)}  (/ci/known_hosts:1)`);
    expect(decision.message).toContain(`ssh-rsa ${fingerprint(RSA)}  (/ci/known_hosts:2)`);
    expect(decision.message).toContain(`any type ${fingerprint(EC256)}  (--host-key)`);
    expect(decision.message).toContain('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    expect(decision.details).toEqual({
      host: 'h',
      port: 2222,
      offered: { type: 'ssh-ed25519', fingerprint: fingerprint(ED_A) },
      pinned: [
        { type: 'ssh-ed25519', fingerprint: fingerprint(ED_B), source: '/ci/known_hosts:1' },
        { type: 'ssh-rsa', fingerprint: fingerprint(RSA), source: '/ci/known_hosts:2' },
        { type: 'any type', fingerprint: fingerprint(EC256), source: '--host-key' },
      ],
    });
  });

  test('unknown: gives the exact known_hosts line and the --host-key alternative', () => {
    const decision = decideHostKey(pins(['other ED_B'], [], ['/ci/known_hosts']), '127.0.0.1', 2222, ED_A);
    if (decision.ok) throw new Error('accepted');
    expect(decision.code).toBe('host-key-unknown');
    const line = formatKnownHostsLine('127.0.0.1', 2222, ED_A);
    expect(line).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${ED_A.toString('base64')}`);
    expect(decision.message).toContain('127.0.0.1:2222');
    expect(decision.message).toContain(`ssh-ed25519 ${fingerprint(ED_A)}`);
    expect(decision.message).toContain(`\n  ${line}\n`);
    expect(decision.message).toContain('SSH_KNOWN_HOSTS');
    expect(decision.message).toContain(`--host-key ${fingerprint(ED_A)}`);
    expect(decision.message).toContain('Read: /ci/known_hosts.');
    expect(decision.details.knownHostsLine).toBe(line);
    expect(decision.details.pinned).toEqual([]);
  });

  test('bare-host fallback: says where the key was recorded', () => {
    const decision = decideHostKey(pins(['h ED_A']), 'h', 2222, ED_A);
    expect(decision.ok).toBe(true);
    if (decision.ok) expect(decision.matchedBy).toMatch(/^known_hosts \/ci\/known_hosts:1 \(recorded for h without a port/);
  });

  test('unknown on another port lists the bare-host pins that did not match', () => {
    const decision = decideHostKey(pins(['h ED_B']), 'h', 2222, ED_A);
    if (decision.ok) throw new Error('accepted');
    expect(decision.message).toContain(`ssh-ed25519 ${fingerprint(ED_B)}  (/ci/known_hosts:1)`);
    expect(decision.message).toContain(`[h]:2222 ssh-ed25519 ${ED_A.toString('base64')}`);
    expect(decision.details.portlessPinned).toEqual([
      { type: 'ssh-ed25519', fingerprint: fingerprint(ED_B), source: '/ci/known_hosts:1' },
    ]);
  });

  test('unknown with no known_hosts file read says so', () => {
    const decision = decideHostKey(pins([], [], []), 'h', 22, RSA);
    if (decision.ok) throw new Error('accepted');
    expect(decision.message).toContain('No known_hosts file was read.');
    expect(decision.message).toContain(`\n  h ssh-rsa ${RSA.toString('base64')}\n`);
    expect(decision.message).toContain('ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub');
  });

  test('cert-authority only: refused with a clear message', () => {
    const decision = decideHostKey(pins(['@cert-authority *.example.com ED_B']), 'a.example.com', 22, ED_A);
    if (decision.ok) throw new Error('accepted');
    expect(decision.code).toBe('host-key-unknown');
    expect(decision.message).toContain('@cert-authority lines are not supported; pin the host key itself');
    expect(decision.message).toContain('/ci/known_hosts:1');
    expect(decision.message).toContain(`a.example.com ssh-ed25519 ${ED_A.toString('base64')}`);
    expect(decision.details.certAuthorities).toEqual(['/ci/known_hosts:1']);
  });

  test('revoked: names the revoking line and the offered key', () => {
    const decision = decideHostKey(pins(['h ED_A', '@revoked * ED_A']), 'h', 22, ED_A);
    if (decision.ok) throw new Error('accepted');
    expect(decision.code).toBe('host-key-revoked');
    expect(decision.message).toContain('h:22');
    expect(decision.message).toContain(`ssh-ed25519 ${fingerprint(ED_A)}`);
    expect(decision.message).toContain('@revoked in /ci/known_hosts:2');
    expect(decision.details.revokedBy).toBe('/ci/known_hosts:2');
  });

  test('a malformed offered blob is refused, not thrown', () => {
    const decision = decideHostKey(pins([]), 'h', 22, Buffer.from('junk'));
    expect(decision.ok).toBe(false);
    if (!decision.ok) expect(decision.details.offered.type).toBe('(unparseable key)');
  });
});

describe('hostKeyAlgorithms', () => {
  const RSA_ALGS = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const DEFAULT = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', ...RSA_ALGS];

  test.each<[string, HostKeyPins, string, number, string[] | undefined]>([
    ['ed25519 pinned', pins(['h ED_A']), 'h', 22, ['ssh-ed25519']],
    ['rsa pinned', pins(['h RSA']), 'h', 22, RSA_ALGS],
    ['ecdsa pinned', pins(['h EC384']), 'h', 22, ['ecdsa-sha2-nistp384']],
    ['several, in preference order', pins(['h RSA', 'h EC384', 'h ED_A', 'h EC256', 'h ED_B']), 'h', 22, ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', ...RSA_ALGS]],
    ['dss pinned', pins(['h DSS', 'h RSA']), 'h', 22, [...RSA_ALGS, 'ssh-dss']],
    ['port-specific pins', pins(['h ED_A', '[h]:2222 RSA']), 'h', 2222, RSA_ALGS],
    ['bare-host pins when nothing is under [h]:port', pins(['h RSA', '[other]:2222 ED_A']), 'h', 2222, RSA_ALGS],
    ['pins for other hosts only', pins(['other ED_A']), 'h', 22, undefined],
    ['no pins', pins([]), 'h', 22, undefined],
    ['fingerprints only', pins([], [fingerprint(ED_A)]), 'h', 22, undefined],
    ['entries plus fingerprints: pinned first, then the rest', pins(['h RSA'], [fingerprint(ED_A)]), 'h', 22, [...RSA_ALGS, ...DEFAULT.filter((a) => !RSA_ALGS.includes(a))]],
    ['revoked lines do not widen', pins(['h RSA', '@revoked h ED_A']), 'h', 22, RSA_ALGS],
    ['revoked only', pins(['@revoked h ED_A']), 'h', 22, undefined],
    ['cert authority only', pins(['@cert-authority h ED_A']), 'h', 22, undefined],
    ['security-key type only (ssh2 cannot negotiate it)', pins(['h SK']), 'h', 22, undefined],
    ['security-key plus ed25519', pins(['h SK', 'h ED_A']), 'h', 22, ['ssh-ed25519']],
    ['negated for this host', pins(['*,!h ED_A']), 'h', 22, undefined],
  ])('%s', (_name, p, host, port, expected) => {
    expect(hostKeyAlgorithms(p, host, port)).toEqual(expected);
  });
});
