// Unit tests for the private-key loader: every paste variant users make, and no key material in any error.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { SafeScpError } from '../../../src/errors.js';
import { agentSocket, loadIdentities, normalizeKeyText, type Identity } from '../../../src/ssh/key.js';

const PASS = 'secretpass';
const WRONG = 'wrongpass-xyz';

interface KeyFixture {
  file: string;
  text: string;
  fingerprint: string;
  /** Every body line (the key material) that must never appear in an error. */
  secrets: string[];
}

let dir = '';
let ed: KeyFixture;
let rsa: KeyFixture;
let enc: KeyFixture;
let rsaEnc: KeyFixture;
let ecPkcs8: KeyFixture;

function bodyLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 8 && !l.startsWith('-----') && !l.includes(':'));
}

async function keygen(name: string, args: string[]): Promise<KeyFixture> {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-C', `test-${name}`, '-f', file], { stdio: 'ignore' });
  const text = await fs.readFile(file, 'utf8');
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
  return { file, text, fingerprint, secrets: bodyLines(text) };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'safe-scp-key-'));
  ed = await keygen('ed', ['-t', 'ed25519', '-N', '']);
  rsa = await keygen('rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '']);
  enc = await keygen('enc', ['-t', 'ed25519', '-N', PASS]);
  rsaEnc = await keygen('rsaenc', ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', PASS]);
  ecPkcs8 = await keygen('ec8', ['-t', 'ecdsa', '-b', '256', '-m', 'PKCS8', '-N', '']);
}, 60_000);

afterAll(async () => {
  if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
});

function fromEnv(env: Record<string, string | undefined>, identityFiles: string[] = []): Promise<Identity[]> {
  return loadIdentities({ identityFiles, env });
}

async function one(env: Record<string, string | undefined>, identityFiles: string[] = []): Promise<Identity> {
  const ids = await fromEnv(env, identityFiles);
  expect(ids).toHaveLength(1);
  return ids[0] as Identity;
}

async function failure(promise: Promise<unknown>): Promise<SafeScpError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(SafeScpError);
    return err as SafeScpError;
  }
  throw new Error('expected a failure');
}

function syncFailure(fn: () => unknown): SafeScpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SafeScpError);
    return err as SafeScpError;
  }
  throw new Error('expected a failure');
}

/** The error is key-invalid/auth and none of its surfaces contains key material or a passphrase. */
function expectClean(err: SafeScpError, secrets: readonly string[]): void {
  expect(err.code).toBe('key-invalid');
  expect(err.phase).toBe('auth');
  expect(err.exitCode).toBe(4);
  const surfaces = [
    err.message,
    JSON.stringify(err),
    String(err.cause),
    err.cause instanceof Error ? JSON.stringify(err.cause) : '',
    inspect(err, { depth: 6 }),
  ];
  for (const surface of surfaces) {
    for (const secret of [...secrets, PASS, WRONG]) {
      expect(surface).not.toContain(secret);
    }
  }
}

describe('normalizeKeyText', () => {
  it('returns LF text with exactly one final newline', () => {
    const messy = `  \r\n${ed.text.trimEnd().replace(/\n/g, '\r\n')}   \r\n\r\n`;
    const out = normalizeKeyText(messy);
    expect(out).toBe(ed.text);
    expect(out).not.toContain('\r');
  });

  it('unwraps quotes and base64 and restores literal \\n', () => {
    expect(normalizeKeyText(`"${ed.text}"`)).toBe(ed.text);
    expect(normalizeKeyText(Buffer.from(ed.text).toString('base64'))).toBe(ed.text);
    expect(normalizeKeyText(ed.text.replace(/\n/g, '\\n'))).toBe(ed.text);
  });

  it('names the source in its messages', () => {
    const err = syncFailure(() => normalizeKeyText('   ', 'SSH_PRIVATE_KEY'));
    expect(err.message).toMatch(/^SSH_PRIVATE_KEY: the key is empty/);
    expectClean(err, []);
  });
});

describe('loadIdentities: accepted forms', () => {
  it('reads a plain OpenSSH key from SSH_PRIVATE_KEY', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.text });
    expect(id.source).toBe('SSH_PRIVATE_KEY');
    expect(id.type).toBe('ssh-ed25519');
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(id.privateKey.toString('utf8')).toBe(ed.text);
    expect(id.passphrase).toBeUndefined();
    expect(id.corrections).toBeUndefined();
  });

  it('reads an RSA PEM key', async () => {
    const id = await one({ SSH_PRIVATE_KEY: rsa.text });
    expect(id.type).toBe('ssh-rsa');
    expect(id.fingerprint).toBe(rsa.fingerprint);
  });

  it('accepts CRLF line endings', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.text.replace(/\n/g, '\r\n') });
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.privateKey.toString()).not.toContain('\r');
    expect(id.corrections).toContain('CRLF line endings');
  });

  it('accepts a missing final newline', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.text.trimEnd() });
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.privateKey.toString().endsWith('-----\n')).toBe(true);
  });

  it('accepts a base64-wrapped key, on one line or wrapped at 76 columns', async () => {
    const b64 = Buffer.from(ed.text).toString('base64');
    expect((await one({ SSH_PRIVATE_KEY: b64 })).fingerprint).toBe(ed.fingerprint);
    const wrapped = (b64.match(/.{1,76}/g) ?? []).join('\n');
    const id = await one({ SSH_PRIVATE_KEY: `${wrapped}\n` });
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.corrections).toContain('base64-wrapped key decoded');
    const rsaB64 = Buffer.from(rsa.text.replace(/\n/g, '\r\n')).toString('base64');
    expect((await one({ SSH_PRIVATE_KEY: rsaB64 })).fingerprint).toBe(rsa.fingerprint);
  });

  it('accepts surrounding whitespace and quotes', async () => {
    for (const value of [`\n\n   ${ed.text}   \n`, `"${ed.text}"`, `'${ed.text.trimEnd()}'`, `  "${ed.text}"\n`]) {
      expect((await one({ SSH_PRIVATE_KEY: value })).fingerprint).toBe(ed.fingerprint);
    }
  });

  it('auto-fixes literal \\n sequences (and \\r\\n) and says so', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.text.replace(/\n/g, '\\n') });
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.corrections).toContain('literal \\n sequences replaced by newlines');
    const id2 = await one({ SSH_PRIVATE_KEY: rsa.text.replace(/\n/g, '\\r\\n') });
    expect(id2.fingerprint).toBe(rsa.fingerprint);
  });

  it('restores newlines that became spaces, or that vanished', async () => {
    expect((await one({ SSH_PRIVATE_KEY: ed.text.trimEnd().replace(/\n/g, ' ') })).fingerprint).toBe(ed.fingerprint);
    expect((await one({ SSH_PRIVATE_KEY: rsa.text.trimEnd().replace(/\n/g, ' ') })).fingerprint).toBe(rsa.fingerprint);
    expect((await one({ SSH_PRIVATE_KEY: ed.text.replace(/\n/g, '') })).fingerprint).toBe(ed.fingerprint);
    const id = await one({ SSH_PRIVATE_KEY: rsaEnc.text.trimEnd().replace(/\n+/g, ' '), SSH_PRIVATE_KEY_PASSPHRASE: PASS });
    expect(id.fingerprint).toBe(rsaEnc.fingerprint);
  });

  it('accepts indentation (YAML block) and a BOM', async () => {
    const indented = ed.text
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
    expect((await one({ SSH_PRIVATE_KEY: `\uFEFF${indented}` })).fingerprint).toBe(ed.fingerprint);
  });

  it('accepts an OpenSSH body without its BEGIN/END lines', async () => {
    const body = ed.text.split('\n').filter((l) => l !== '' && !l.startsWith('-----')).join('\n');
    const id = await one({ SSH_PRIVATE_KEY: body });
    expect(id.fingerprint).toBe(ed.fingerprint);
    expect(id.corrections).toContain('missing BEGIN/END lines added');
  });

  it('reads SSH_PRIVATE_KEY as the path of a File-type variable', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.file });
    expect(id.source).toBe('SSH_PRIVATE_KEY (file variable)');
    expect(id.fingerprint).toBe(ed.fingerprint);
    const crlf = path.join(dir, 'crlf_var');
    await fs.writeFile(crlf, ed.text.trimEnd().replace(/\n/g, '\r\n'));
    expect((await one({ SSH_PRIVATE_KEY: `${crlf}\n` })).fingerprint).toBe(ed.fingerprint);
  });

  it('reads -i files first, then SSH_PRIVATE_KEY, and drops duplicates', async () => {
    const ids = await fromEnv({ SSH_PRIVATE_KEY: ed.text }, [rsa.file, ed.file]);
    expect(ids.map((i) => i.source)).toEqual([`-i ${rsa.file}`, `-i ${ed.file}`]);
    expect(ids.map((i) => i.fingerprint)).toEqual([rsa.fingerprint, ed.fingerprint]);
  });

  it('expands ~/ in -i paths', async () => {
    const id = await one({ HOME: dir }, ['~/ed']);
    expect(id.source).toBe('-i ~/ed');
    expect(id.fingerprint).toBe(ed.fingerprint);
  });

  it('decrypts an encrypted key with SSH_PRIVATE_KEY_PASSPHRASE and keeps the passphrase for ssh2', async () => {
    const id = await one({ SSH_PRIVATE_KEY: enc.text, SSH_PRIVATE_KEY_PASSPHRASE: PASS });
    expect(id.fingerprint).toBe(enc.fingerprint);
    expect(id.passphrase).toBe(PASS);
    const id2 = await one({ SSH_PRIVATE_KEY_PASSPHRASE: `${PASS}\n` }, [rsaEnc.file]);
    expect(id2.fingerprint).toBe(rsaEnc.fingerprint);
    expect(id2.passphrase).toBe(PASS);
  });

  it('does not attach a passphrase to an unencrypted key', async () => {
    const id = await one({ SSH_PRIVATE_KEY: ed.text, SSH_PRIVATE_KEY_PASSPHRASE: PASS });
    expect(id.passphrase).toBeUndefined();
  });

  it('converts PKCS#8 keys (ssh-keygen -m PKCS8, openssl genpkey), encrypted or not', async () => {
    const ec = await one({ SSH_PRIVATE_KEY: ecPkcs8.text });
    expect(ec.type).toBe('ecdsa-sha2-nistp256');
    expect(ec.fingerprint).toBe(ecPkcs8.fingerprint);
    expect(ec.corrections).toContain('converted from PKCS#8 ("PRIVATE KEY")');

    const { privateKey: edKey } = generateKeyPairSync('ed25519');
    const plain = String(edKey.export({ type: 'pkcs8', format: 'pem' }));
    const a = await one({ SSH_PRIVATE_KEY: plain });
    expect(a.type).toBe('ssh-ed25519');

    const encrypted = String(edKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS }));
    const b = await one({ SSH_PRIVATE_KEY: encrypted, SSH_PRIVATE_KEY_PASSPHRASE: PASS });
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.passphrase).toBeUndefined();

    const missing = await failure(fromEnv({ SSH_PRIVATE_KEY: encrypted }));
    expect(missing.message).toContain('the key is encrypted: set SSH_PRIVATE_KEY_PASSPHRASE');
    expectClean(missing, bodyLines(encrypted));
    const wrong = await failure(fromEnv({ SSH_PRIVATE_KEY: encrypted, SSH_PRIVATE_KEY_PASSPHRASE: WRONG }));
    expect(wrong.message).toContain('wrong passphrase');
    expectClean(wrong, bodyLines(encrypted));
  });

  it('returns nothing when no key is configured', async () => {
    expect(await fromEnv({})).toEqual([]);
  });

  it('keeps key and passphrase out of JSON.stringify and util.inspect of an identity', async () => {
    const id = await one({ SSH_PRIVATE_KEY: enc.text, SSH_PRIVATE_KEY_PASSPHRASE: PASS });
    for (const surface of [JSON.stringify(id), inspect(id), JSON.stringify([id])]) {
      expect(surface).toContain(enc.fingerprint);
      expect(surface).not.toContain(PASS);
      for (const line of enc.secrets) expect(surface).not.toContain(line);
    }
  });
});

describe('loadIdentities: failures explain themselves without key material', () => {
  it('encrypted key, no passphrase', async () => {
    for (const key of [enc, rsaEnc]) {
      const err = await failure(fromEnv({ SSH_PRIVATE_KEY: key.text }));
      expect(err.message).toBe(
        'SSH_PRIVATE_KEY: the key is encrypted: set SSH_PRIVATE_KEY_PASSPHRASE (a masked CI/CD variable) to its passphrase, or use a deploy key without a passphrase.',
      );
      expectClean(err, key.secrets);
    }
  });

  it('encrypted key, wrong passphrase', async () => {
    for (const key of [enc, rsaEnc]) {
      const err = await failure(fromEnv({ SSH_PRIVATE_KEY_PASSPHRASE: WRONG }, [key.file]));
      expect(err.message).toMatch(new RegExp(`^-i ${key.file}: the key is encrypted and SSH_PRIVATE_KEY_PASSPHRASE does not decrypt it \\(wrong passphrase\\)`));
      expectClean(err, key.secrets);
    }
  });

  it('public key pasted instead of the private key', async () => {
    const pub = await fs.readFile(`${ed.file}.pub`, 'utf8');
    const pubBody = pub.split(' ')[1] ?? '';
    expect(pubBody.length).toBeGreaterThan(40);
    for (const value of [pub, `no-pty ${pub}`, Buffer.from(pub).toString('base64')]) {
      const err = await failure(fromEnv({ SSH_PRIVATE_KEY: value }));
      expect(err.message).toContain(`SSH_PRIVATE_KEY: this is a public key (ssh-ed25519 ${ed.fingerprint}), not a private key`);
      expect(err.message).toContain('the file without ".pub"');
      expectClean(err, [pubBody, ...ed.secrets]);
    }
    const pem = await failure(fromEnv({ SSH_PRIVATE_KEY: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAabcdefabcdefabcdefabcdefabcdefabcdefabcdefabc=\n-----END PUBLIC KEY-----\n' }));
    expect(pem.message).toContain('this is a public key, not a private key');
  });

  it('PuTTY .ppk key', async () => {
    const secretLine = 'AAAAB3NzaC1yc2EAAAABJQAAAQEAhzZpZ3lvbmx5aGVyZWZvcnRoZXRlc3Q';
    const ppk = [
      'PuTTY-User-Key-File-3: ssh-ed25519',
      'Encryption: none',
      'Comment: deploy',
      'Public-Lines: 1',
      secretLine,
      'Private-Lines: 1',
      'AAAAIGZha2Vwcml2YXRla2V5Ym9keWZha2Vwcml2YXRla2V5Ym9keQ',
      'Private-MAC: 0123456789abcdef',
    ].join('\r\n');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: ppk }));
    expect(err.message).toContain('this is a PuTTY private key (.ppk, format 3)');
    expect(err.message).toContain('puttygen KEY.ppk -O private-openssh -o KEY');
    expectClean(err, [secretLine, 'AAAAIGZha2Vwcml2YXRla2V5Ym9keWZha2Vwcml2YXRla2V5Ym9keQ']);
  });

  it('truncated key (BEGIN without END)', async () => {
    const truncated = ed.text.split('\n').slice(0, 4).join('\n');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: truncated }));
    expect(err.message).toContain(
      'SSH_PRIVATE_KEY: the key is truncated: it has the "-----BEGIN OPENSSH PRIVATE KEY-----" line but no "-----END OPENSSH PRIVATE KEY-----" line.',
    );
    expectClean(err, ed.secrets);
  });

  it('key without its BEGIN line', async () => {
    const headless = ed.text.split('\n').slice(1).join('\n');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: headless }));
    expect(err.message).toContain('the key is missing its first line');
    expectClean(err, ed.secrets);
  });

  it('damaged key body', async () => {
    const lines = ed.text.split('\n');
    const damaged = [lines[0], lines[1], lines[3], lines[4], ...lines.slice(5)].join('\n');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: damaged }));
    expect(err.message).toContain('SSH_PRIVATE_KEY: the key is damaged');
    expectClean(err, ed.secrets);
    const rsaLines = rsa.text.split('\n');
    const rsaDamaged = [rsaLines[0], ...rsaLines.slice(2)].join('\n');
    const err2 = await failure(fromEnv({ SSH_PRIVATE_KEY: rsaDamaged }));
    expect(err2.message).toContain('the key is damaged');
    expectClean(err2, rsa.secrets);
  });

  it('literal \\n that still does not parse after the fix', async () => {
    const lines = ed.text.split('\n');
    const damaged = [lines[0], lines[2], ...lines.slice(3)].join('\\n');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: damaged }));
    expect(err.message).toContain('the key contains literal \\n sequences (backslash + n) instead of newlines and does not parse');
    expect(err.message).toContain('File-type CI/CD variable');
    expectClean(err, ed.secrets);
  });

  it('hardware security key (sk-*)', async () => {
    const str = (b: Buffer | string): Buffer => {
      const buf = typeof b === 'string' ? Buffer.from(b) : b;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(buf.length);
      return Buffer.concat([len, buf]);
    };
    const type = 'sk-ssh-ed25519@openssh.com';
    const pub = Buffer.alloc(32, 7);
    const pubBlob = Buffer.concat([str(type), str(pub), str('ssh:')]);
    let priv = Buffer.concat([Buffer.from([1, 2, 3, 4, 1, 2, 3, 4]), str(type), str(pub), str('ssh:'), Buffer.from([1]), str(Buffer.alloc(16, 9)), str(''), str('')]);
    const pad = [];
    for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
    priv = Buffer.concat([priv, Buffer.from(pad)]);
    const one32 = Buffer.alloc(4);
    one32.writeUInt32BE(1);
    const blob = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), str('none'), str('none'), str(''), one32, str(pubBlob), str(priv)]);
    const b64 = blob.toString('base64');
    const text = `-----BEGIN OPENSSH PRIVATE KEY-----\n${(b64.match(/.{1,70}/g) ?? []).join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: text }));
    expect(err.message).toContain('this is a hardware security key (sk-ssh-ed25519@openssh.com, FIDO/U2F)');
    expectClean(err, bodyLines(text));
  });

  it('empty value', async () => {
    for (const value of ['', '   \n\t ', '""']) {
      const err = await failure(fromEnv({ SSH_PRIVATE_KEY: value }));
      expect(err.message).toMatch(/^SSH_PRIVATE_KEY: the key is empty\. If SSH_PRIVATE_KEY is a protected variable/);
      expectClean(err, []);
    }
    const emptyFile = path.join(dir, 'empty');
    await fs.writeFile(emptyFile, '');
    const err = await failure(fromEnv({}, [emptyFile]));
    expect(err.message).toMatch(new RegExp(`^-i ${emptyFile}: the key is empty`));
  });

  it('text that is not a key at all', async () => {
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: 'hunter2-not-a-key' }));
    expect(err.message).toContain('SSH_PRIVATE_KEY: this is not a private key: there is no "-----BEGIN ... PRIVATE KEY-----" line');
    expectClean(err, ['hunter2-not-a-key']);
  });

  it('missing -i file', async () => {
    const missing = path.join(dir, 'no_such_key');
    const err = await failure(fromEnv({}, [missing]));
    expect(err.message).toBe(
      `-i ${missing}: the identity file ${missing} does not exist. Check the path (and that the CI job created the file before safe-scp runs).`,
    );
    expect(err.details['path']).toBe(missing);
    expectClean(err, []);
  });

  it('SSH_PRIVATE_KEY naming a file that does not exist', async () => {
    const missing = path.join(dir, 'SSH_PRIVATE_KEY');
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: missing }));
    expect(err.message).toContain(`SSH_PRIVATE_KEY (file variable): SSH_PRIVATE_KEY names a file, but the file ${missing} does not exist`);
    expectClean(err, []);
  });

  it('unreadable file (permission denied)', async () => {
    const readFile = (p: string): Promise<string> =>
      Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' }));
    const err = await failure(loadIdentities({ identityFiles: ['/keys/deploy'], env: {}, readFile }));
    expect(err.message).toContain('-i /keys/deploy: the identity file /keys/deploy cannot be read (permission denied)');
    expectClean(err, []);
  });

  it('-i pointing at a directory', async () => {
    const err = await failure(fromEnv({}, [dir]));
    expect(err.message).toContain('is a directory');
  });

  it('more than one key in one value', async () => {
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: ed.text + rsa.text }));
    expect(err.message).toContain('contains 2 BEGIN/END blocks');
    expectClean(err, [...ed.secrets, ...rsa.secrets]);
  });

  it('the first bad key fails the load even when another is fine', async () => {
    const err = await failure(fromEnv({ SSH_PRIVATE_KEY: enc.text }, [ed.file]));
    expect(err.message).toMatch(/^SSH_PRIVATE_KEY: the key is encrypted/);
  });
});

describe('agentSocket', () => {
  it('returns SSH_AUTH_SOCK only when it is a socket', async () => {
    expect(agentSocket({})).toBeUndefined();
    expect(agentSocket({ SSH_AUTH_SOCK: '' })).toBeUndefined();
    expect(agentSocket({ SSH_AUTH_SOCK: ed.file })).toBeUndefined();
    expect(agentSocket({ SSH_AUTH_SOCK: path.join(dir, 'nope.sock') })).toBeUndefined();
    const sock = path.join(dir, 'agent.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      expect(agentSocket({ SSH_AUTH_SOCK: sock })).toBe(sock);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
