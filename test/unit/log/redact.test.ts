// Unit tests for the redactor: private key blocks, passphrases, key bodies quoted piecemeal, short values ignored.
import { generateKeyPairSync } from 'node:crypto';
import { makeRedactor } from '../../../src/log/redact.js';

const { privateKey: RSA_PEM } = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const { privateKey: PKCS8_ENCRYPTED } = generateKeyPairSync('ed25519', {
  privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const OPENSSH_KEY = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDxEZ4Z2q2Y5Qy8nq0vYm9ndXMga2V5IGZvciB0ZXN0cyBvbmx5AAAAkJ0b',
  'AAAEC0u2Vk7K2j8N1QkYxZXN0cyBvbmx5IG5vdCBhIHJlYWwga2V5IGF0IGFsbA==',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');

function bodyLines(key: string): string[] {
  return key.split(/\r?\n/).filter((l) => l && !l.startsWith('-----'));
}

describe('private key blocks', () => {
  test.each<[string, string]>([
    ['an OpenSSH key', OPENSSH_KEY],
    ['a PKCS#1 RSA key', RSA_PEM],
    ['an encrypted PKCS#8 key', PKCS8_ENCRYPTED],
    ['a key with CRLF line ends', OPENSSH_KEY.replace(/\n/g, '\r\n')],
  ])('%s inside text is replaced, the text around it kept', (_name, key) => {
    const redact = makeRedactor([]);
    const out = redact(`cannot parse key: ${key} (check SSH_PRIVATE_KEY)`);
    const trailing = key.endsWith('\r\n') ? '\r\n' : '\n';
    expect(out).toBe(`cannot parse key: [private key redacted]${trailing} (check SSH_PRIVATE_KEY)`);
    for (const line of bodyLines(key)) expect(out).not.toContain(line);
  });

  test('a block cut off before its END line is redacted to the end of the text', () => {
    const truncated = OPENSSH_KEY.split('\n').slice(0, 3).join('\n');
    expect(makeRedactor([])(`value was: ${truncated}`)).toBe('value was: [private key redacted]');
  });

  test('two blocks in one text are both replaced', () => {
    const out = makeRedactor([])(`a ${OPENSSH_KEY} b ${RSA_PEM} c`);
    expect(out.match(/\[private key redacted\]/g)).toHaveLength(2);
    expect(out).toMatch(/^a \[private key redacted\]\s+b \[private key redacted\]\s+c$/);
  });

  test('a PuTTY key file is replaced', () => {
    const ppk = 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\nAAAAIEhbm90IGEgcmVhbCBrZXk=\nPrivate-MAC: 0123456789abcdef';
    expect(makeRedactor([])(`key: ${ppk} end`)).toBe('key: [private key redacted] end');
  });

  test('public keys and fingerprints are left alone', () => {
    const text = 'offered ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    expect(makeRedactor([])(text)).toBe(text);
  });
});

describe('secret values', () => {
  test('a passphrase given to makeRedactor is replaced wherever it appears', () => {
    const redact = makeRedactor(['s3cr3t.pass*(x)']);
    expect(redact('bad passphrase "s3cr3t.pass*(x)" for key; s3cr3t.pass*(x) again')).toBe('bad passphrase "[redacted]" for key; [redacted] again');
  });

  test('long lines of a multi-line secret quoted alone are replaced', () => {
    const redact = makeRedactor([OPENSSH_KEY]);
    const [line1, line2] = bodyLines(OPENSSH_KEY);
    expect(redact(`unexpected "${line2}" at line 3`)).toBe('unexpected "[redacted]" at line 3');
    expect(redact(`${line1}\n${line2}`)).toBe('[redacted]\n[redacted]');
  });

  test('lines of a CRLF secret are found in LF text', () => {
    const key = OPENSSH_KEY.replace(/\n/g, '\r\n');
    const line = bodyLines(key)[2] ?? '';
    expect(makeRedactor([key])(`got ${line}`)).toBe('got [redacted]');
  });

  test('a base64-wrapped key variable is replaced as a whole and line by line', () => {
    const wrapped = (Buffer.from(OPENSSH_KEY).toString('base64').match(/.{1,76}/g) ?? []).join('\n');
    const redact = makeRedactor([wrapped]);
    expect(redact(`SSH_PRIVATE_KEY=${wrapped}`)).toBe('SSH_PRIVATE_KEY=[redacted]');
    const second = wrapped.split('\n')[1] ?? '';
    expect(redact(`near ${second}`)).toBe('near [redacted]');
  });

  test('short lines of a secret are not used on their own', () => {
    const redact = makeRedactor(['line-one-is-long-enough\nshort']);
    expect(redact('a short word')).toBe('a short word');
    expect(redact('line-one-is-long-enough')).toBe('[redacted]');
  });

  test.each<[string, string | undefined]>([
    ['a 3-character secret', 'abc'],
    ['an empty secret', ''],
    ['an unset variable', undefined],
  ])('%s is not used (it would redact ordinary words)', (_name, secret) => {
    const text = 'abc: cannot connect to abc.example.com';
    expect(makeRedactor([secret])(text)).toBe(text);
  });

  test('a 4-character secret is used', () => {
    expect(makeRedactor(['hunt'])('passphrase hunt rejected')).toBe('passphrase [redacted] rejected');
  });

  test('text without secrets is returned unchanged', () => {
    const text = 'safe-scp: attempt 1 to web1:22 failed in phase banner [reset-before-banner]';
    expect(makeRedactor(['correct horse battery', OPENSSH_KEY])(text)).toBe(text);
  });
});
