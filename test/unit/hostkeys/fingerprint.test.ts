// Fingerprints and key types must be what ssh-keygen prints for the same keys.
import { fingerprint, keyType, normalizeFingerprint } from '../../../src/hostkeys/fingerprint.js';
import { generateKey, makeTempDir, removeTempDir, sshKeygen, type TestKey } from './ssh-tools.js';

const KEY_SPECS: [string, string[], string][] = [
  ['ed25519', ['-t', 'ed25519'], 'ssh-ed25519'],
  ['ecdsa-256', ['-t', 'ecdsa', '-b', '256'], 'ecdsa-sha2-nistp256'],
  ['ecdsa-384', ['-t', 'ecdsa', '-b', '384'], 'ecdsa-sha2-nistp384'],
  ['ecdsa-521', ['-t', 'ecdsa', '-b', '521'], 'ecdsa-sha2-nistp521'],
  ['rsa-2048', ['-t', 'rsa', '-b', '2048'], 'ssh-rsa'],
];

let dir: string | undefined;
const keys = new Map<string, TestKey>();

beforeAll(async () => {
  dir = await makeTempDir();
  for (const [name, args] of KEY_SPECS) keys.set(name, await generateKey(dir, name, args));
}, 60_000);

afterAll(async () => {
  await removeTempDir(dir);
});

function key(name: string): TestKey {
  const found = keys.get(name);
  if (found === undefined) throw new Error(`no key ${name}`);
  return found;
}

describe('fingerprint', () => {
  test.each(KEY_SPECS)('%s equals ssh-keygen -lf', (name) => {
    const k = key(name);
    const { status, stdout } = sshKeygen(['-l', '-E', 'sha256', '-f', k.pubFile]);
    expect(status).toBe(0);
    const printed = stdout.split(/\s+/)[1];
    expect(fingerprint(k.blob)).toBe(printed);
    expect(fingerprint(k.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test.each(KEY_SPECS)('%s: keyType reads the wire type', (name, _args, type) => {
    expect(keyType(key(name).blob)).toBe(type);
    expect(key(name).type).toBe(type);
  });

  test.each([
    ['empty', Buffer.alloc(0)],
    ['short length field', Buffer.from([0, 0])],
    ['length past the end', Buffer.from([0, 0, 0, 9, 0x61])],
    ['control characters', Buffer.from([0, 0, 0, 3, 0x61, 0x0a, 0x62])],
  ])('keyType rejects a malformed blob: %s', (_name, blob) => {
    expect(() => keyType(blob)).toThrow(Error);
  });
});

describe('normalizeFingerprint', () => {
  const canonical = 'SHA256:KuZoabCW1j/WC8DReOu3DrWiOFIx4H5rL0W6Xh0dcCQ';

  test.each([
    ['canonical', canonical],
    ['trailing =', `${canonical}=`],
    ['surrounding blanks', `  ${canonical}\n`],
    ['lowercase prefix', canonical.replace('SHA256', 'sha256')],
    ['bare digest', canonical.slice('SHA256:'.length)],
  ])('accepts %s', (_name, text) => {
    expect(normalizeFingerprint(text)).toBe(canonical);
  });

  test('accepts what ssh-keygen printed for a real key', () => {
    const k = key('ed25519');
    expect(normalizeFingerprint(`${fingerprint(k.blob)}=`)).toBe(fingerprint(k.blob));
  });

  test.each([
    ['MD5 with prefix', 'MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48', /MD5/],
    ['bare MD5 hex', '16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48', /MD5/],
    ['too short', 'SHA256:KuZoabCW1j', /SHA256:<43 base64 chars>/],
    ['too long', `${canonical}AAAA`, /SHA256:<43 base64 chars>/],
    ['bad characters', 'SHA256:KuZoabCW1j/WC8DReOu3DrWiOFIx4H5rL0W6Xh0dc-_', /SHA256:<43 base64 chars>/],
    ['non-zero spare bits', 'SHA256:KuZoabCW1j/WC8DReOu3DrWiOFIx4H5rL0W6Xh0dcCR', /SHA256:<43 base64 chars>/],
    ['SHA1', 'SHA1:2jmj7l5rSw0yVb/vlWAYkK/YBwk', /SHA256:<43 base64 chars>/],
    ['junk', 'yes', /SHA256:<43 base64 chars>/],
    ['empty', '', /SHA256:<43 base64 chars>/],
  ])('rejects %s with a message naming the expected form', (_name, text, message) => {
    expect(() => normalizeFingerprint(text)).toThrow(message);
    expect(() => normalizeFingerprint(text)).toThrow(/SHA256:<43 base64 chars>/);
  });
});
