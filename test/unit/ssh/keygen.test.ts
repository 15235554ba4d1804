// The Ed25519 generator: keys ssh2 and ssh-keygen both read, including the ones whose public key starts with a zero byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair } from '../../../src/ssh/keygen.js';

const { parseKey } = ssh2.utils;

function parsed(text: string): { type: string; publicSsh: Buffer; isPrivate: boolean } {
  const key = parseKey(text);
  if (key instanceof Error) throw key;
  const one = Array.isArray(key) ? key[0] : key;
  if (one === undefined) throw new Error('no key');
  return { type: one.type, publicSsh: one.getPublicSSH(), isPrivate: one.isPrivateKey() };
}

describe('generateEd25519KeyPair', () => {
  test('2000 keys all parse, public halves match, zero-leading public keys keep 32 bytes', () => {
    let zeroLeading = 0;
    for (let i = 0; i < 2000; i++) {
      const pair = generateEd25519KeyPair(i % 2 === 0 ? 'c' : '');
      const priv = parsed(pair.private);
      const pub = parsed(pair.public);
      expect(priv.isPrivate).toBe(true);
      expect(priv.type).toBe('ssh-ed25519');
      expect(priv.publicSsh.equals(pub.publicSsh)).toBe(true);
      expect(priv.publicSsh.length).toBe(4 + 11 + 4 + 32);
      if (priv.publicSsh[19] === 0) zeroLeading++;
    }
    // 2000 keys: P(no zero-leading key) = (255/256)^2000 ≈ 0.04 %
    expect(zeroLeading).toBeGreaterThan(0);
  });

  test('the private key signs and the public key verifies', () => {
    const pair = generateEd25519KeyPair();
    const priv = parseKey(pair.private);
    const pub = parseKey(pair.public);
    if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) throw new Error('parse');
    const data = Buffer.from('hello');
    expect(pub.verify(data, priv.sign(data))).toBe(true);
  });

  test('ssh-keygen derives the same public key from the private file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-scp-keygen-'));
    try {
      const pair = generateEd25519KeyPair('deploy@ci');
      const file = path.join(dir, 'id');
      writeFileSync(file, pair.private, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
      expect(derived.split(' ').slice(0, 2).join(' ')).toBe(pair.public.split(' ').slice(0, 2).join(' '));
      expect(pair.public.endsWith(' deploy@ci')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
