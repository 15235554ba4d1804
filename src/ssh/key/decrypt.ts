// Decrypt and validate with ssh2 (PKCS#8 converted through node:crypto), and explain what ssh2 could not read.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import type { SafeScpError } from '../../errors.js';
import { opensshEd25519 } from '../keygen.js';
import { FIX_STORE, errorCode, fingerprintOf, keyInvalid, safeCause, type Source } from './common.js';
import type { Normalized } from './repair.js';

const { parseKey } = ssh2.utils;

type ParseResult = ParsedKey | ParsedKey[] | Error;

function firstKey(result: ParseResult): ParsedKey | Error {
  if (Array.isArray(result)) return result[0] ?? new Error('Malformed OpenSSH private key');
  return result;
}

function passphraseCandidates(passphrase: string): string[] {
  const out = [passphrase];
  const trimmed = passphrase.replace(/[\r\n]+$/, '');
  if (trimmed !== passphrase && trimmed !== '') out.push(trimmed);
  return out;
}

const SET_PASSPHRASE =
  'the key is encrypted: set SSH_PRIVATE_KEY_PASSPHRASE (a masked CI/CD variable) to its passphrase, or use a deploy key without a passphrase.';
const WRONG_PASSPHRASE =
  'the key is encrypted and SSH_PRIVATE_KEY_PASSPHRASE does not decrypt it (wrong passphrase). Check the variable (no quotes or trailing spaces) and its environment scope; `ssh-keygen -y -f KEY` on your machine tells whether a passphrase is right.';

interface Validated {
  privateKey: string;
  passphrase?: string;
  key: ParsedKey;
  corrections: string[];
}

export function validate(norm: Normalized, source: Source, passphrase: string | undefined): Validated {
  const corrections = [...norm.corrections];
  let text = norm.text;
  let usedPassphrase: string | undefined;

  if (norm.label === 'PRIVATE KEY' || norm.label === 'ENCRYPTED PRIVATE KEY') {
    const converted = convertPkcs8(text, norm.label === 'ENCRYPTED PRIVATE KEY', source, passphrase, norm);
    text = converted;
    corrections.push(`converted from PKCS#8 ("${norm.label}")`);
  }

  let result = firstKey(parseKey(text));
  if (result instanceof Error && /no passphrase given/i.test(result.message)) {
    if (passphrase === undefined) throw keyInvalid(source, SET_PASSPHRASE, safeCause(result));
    let last: Error = result;
    for (const candidate of passphraseCandidates(passphrase)) {
      const attempt = firstKey(parseKey(text, candidate));
      if (!(attempt instanceof Error)) {
        result = attempt;
        usedPassphrase = candidate;
        if (candidate !== passphrase) corrections.push('trailing newline removed from SSH_PRIVATE_KEY_PASSPHRASE');
        break;
      }
      last = attempt;
    }
    if (usedPassphrase === undefined) {
      if (/unsupported|not supported/i.test(last.message)) throw explainParseError(last, source, norm);
      throw keyInvalid(source, WRONG_PASSPHRASE, safeCause(last));
    }
  }
  if (result instanceof Error) throw explainParseError(result, source, norm);
  if (!result.isPrivateKey()) {
    throw keyInvalid(
      source,
      `this is a public key (${result.type} ${fingerprintOf(result)}), not a private key. Use the private half of the key pair (the file without ".pub").`,
    );
  }
  return { privateKey: text, ...(usedPassphrase === undefined ? {} : { passphrase: usedPassphrase }), key: result, corrections };
}

function explainParseError(err: Error, source: Source, norm: Normalized): SafeScpError {
  const msg = err.message;
  const cause = safeCause(err);
  const sk = /Unsupported OpenSSH private key type: (sk-[\w.@-]+)/.exec(msg);
  if (sk) {
    return keyInvalid(
      source,
      `this is a hardware security key (${sk[1] ?? 'sk-*'}, FIDO/U2F): it needs the token plugged in and cannot be used from CI. Create a plain key for deploys: \`ssh-keygen -t ed25519 -f deploy_key\`.`,
      cause,
    );
  }
  // ssh2 interpolates a value read from the key: a readable algorithm name means a real unsupported
  // key; anything else means the bytes are garbage, i.e. the key was damaged (e.g. "key magic").
  const value = /(?:: |\()([^()]*)\)?/.exec(msg)?.[1] ?? '';
  const readable = /^[a-z0-9][a-z0-9@.,-]{0,63}$/i.test(value);
  if (readable && /Unsupported OpenSSH private key type|Unsupported private key EC OID/.test(msg)) {
    return keyInvalid(
      source,
      'ssh2 does not support this kind of key. Use an ed25519, ECDSA (nistp256/384/521) or RSA key: `ssh-keygen -t ed25519 -f deploy_key`.',
      cause,
    );
  }
  if (readable && /Unsupported cipher|not supported|Unsupported kdf/.test(msg)) {
    return keyInvalid(
      source,
      'the key is encrypted with a cipher safe-scp cannot decrypt. Re-encrypt it with current defaults: `ssh-keygen -p -f KEY` (or remove the passphrase for a dedicated deploy key).',
      cause,
    );
  }
  if (norm.corrections.some((c) => c.startsWith('literal \\n'))) {
    return keyInvalid(
      source,
      `the key contains literal \\n sequences (backslash + n) instead of newlines and does not parse even after replacing them. ${FIX_STORE}`,
      cause,
    );
  }
  return keyInvalid(
    source,
    `the key is damaged: its "-----BEGIN ${norm.label}-----" and END lines are present but the text between them is not a valid key ` +
      `(characters changed or lines lost when it was copied). ${FIX_STORE}`,
    cause,
  );
}

// PKCS#8 ("BEGIN PRIVATE KEY", e.g. `ssh-keygen -m PKCS8`, `openssl genpkey`) is not read by ssh2: convert via node:crypto.
function convertPkcs8(text: string, encrypted: boolean, source: Source, passphrase: string | undefined, norm: Normalized): string {
  if (encrypted && passphrase === undefined) throw keyInvalid(source, SET_PASSPHRASE);
  let key: KeyObject | undefined;
  let lastErr: unknown;
  for (const candidate of encrypted && passphrase !== undefined ? passphraseCandidates(passphrase) : [undefined]) {
    try {
      key = createPrivateKey(candidate === undefined ? { key: text, format: 'pem' } : { key: text, format: 'pem', passphrase: candidate });
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (key === undefined) {
    const code = errorCode(lastErr) ?? '';
    if (encrypted && /BAD_DECRYPT|DECRYPT/i.test(`${code} ${lastErr instanceof Error ? lastErr.message : ''}`)) {
      throw keyInvalid(source, WRONG_PASSPHRASE, safeCause(lastErr));
    }
    throw explainParseError(lastErr instanceof Error ? lastErr : new Error('Malformed key'), source, norm);
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return String(key.export({ type: 'pkcs1', format: 'pem' }));
    case 'ec':
      return String(key.export({ type: 'sec1', format: 'pem' }));
    case 'ed25519':
      return opensshEd25519(key).private;
    default:
      throw keyInvalid(
        source,
        `this PKCS#8 key is of type ${key.asymmetricKeyType ?? 'unknown'}, which SSH deploys cannot use here. Use an ed25519, ECDSA or RSA key: \`ssh-keygen -t ed25519 -f deploy_key\`.`,
      );
  }
}
