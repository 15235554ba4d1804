// Private-key loader: reads -i files and SSH_PRIVATE_KEY, repairs paste damage, validates with ssh2, and explains failures without echoing key material.
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile as fsReadFile } from 'node:fs/promises';
import os from 'node:os';
import { inspect } from 'node:util';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { SafeScpError } from '../errors.js';
import { opensshEd25519 } from './keygen.js';

/** One usable private key. `privateKey` (and `passphrase`) go to ssh2; everything else is safe to print. */
export interface Identity {
  /** Normalised key text (LF line endings, final newline), ready for ssh2's `privateKey`. */
  privateKey: Buffer;
  /** Only set when the key is encrypted. */
  passphrase?: string;
  /** Where the key came from, e.g. `-i deploy_key` or `SSH_PRIVATE_KEY (file variable)`. Never contents. */
  source: string;
  /** SSH key type, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`. */
  type: string;
  /** `SHA256:...` of the public key, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** What the loader repaired (e.g. "CRLF line endings"), for a verbose log line. Absent when nothing was. */
  corrections?: readonly string[];
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadIdentitiesInput {
  /** `-i` / `-o IdentityFile` paths, in command-line order. A leading `~/` is expanded. */
  identityFiles: readonly string[];
  /**
   * ssh_config IdentityFile lines, or the default identities (~/.ssh/id_ed25519, ...): read after the
   * `-i` files; one that is missing or unusable is skipped with a note, as ssh skips it.
   */
  optionalFiles?: readonly string[];
  /** Told why an optional file was skipped (for a -v line). */
  onSkip?: (message: string) => void;
  env: Env;
  /** Injected for tests; defaults to `fs.readFile(path, 'utf8')`. */
  readFile?: (path: string) => Promise<string>;
}

const { parseKey } = ssh2.utils;

/** Anything bigger is not a private key (a 16384-bit RSA PEM is about 12 KiB). */
const MAX_KEY_CHARS = 256 * 1024;

const ARMOUR_BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const ARMOUR_END = /-----END ([A-Z0-9 ]+)-----/g;
const PRIVATE_LABELS = new Set([
  'OPENSSH PRIVATE KEY',
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
  'PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
]);
const PUBLIC_LABELS = new Set(['PUBLIC KEY', 'RSA PUBLIC KEY', 'SSH2 PUBLIC KEY']);
const PUBLIC_KEY_LINE =
  /(?:^|\s)((?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)(?:-cert-v0[01]@openssh\.com)?)[ \t]+(AAAA[A-Za-z0-9+/]+={0,3})/m;
const PPK_HEADER = /^PuTTY-User-Key-File-(\d+):/m;
const OPENSSH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

type SourceKind = 'text' | 'file' | 'env' | 'env-file';
interface Source {
  readonly label: string;
  readonly kind: SourceKind;
  readonly path?: string;
}

function keyInvalid(source: Source, message: string, cause?: unknown, details?: Record<string, unknown>): SafeScpError {
  return new SafeScpError('key-invalid', `${source.label}: ${message}`, {
    phase: 'auth',
    ...(cause === undefined ? {} : { cause }),
    details: { source: source.label, ...(source.path === undefined ? {} : { path: source.path }), ...details },
  });
}

const EMPTY_HINT: Record<SourceKind, string> = {
  text: 'Provide the whole private key text.',
  file: 'Point -i at the private key file (e.g. ~/.ssh/id_ed25519), not an empty file.',
  env:
    'If SSH_PRIVATE_KEY is a protected variable it is only set for protected branches and tags; ' +
    "otherwise check the variable's value and environment scope in Settings > CI/CD > Variables.",
  'env-file':
    'The File-type variable SSH_PRIVATE_KEY has no content: paste the private key into it ' +
    '(and check its protected flag and environment scope).',
};

const FIX_STORE =
  'Store the key as a File-type CI/CD variable, pasted exactly as `cat ~/.ssh/id_ed25519` prints it ' +
  '(from -----BEGIN to -----END, with a final newline), or base64-encode the whole file (`base64 -w0 KEY`) if it must be masked.';

// ---------------------------------------------------------------------------------------------
// Normalisation

/**
 * Turns what users paste into CI variables into clean key text: LF line endings, one final newline,
 * no surrounding whitespace or quotes, base64-wrapped keys decoded, literal `\n` escapes turned into
 * newlines, newlines that became spaces restored. Throws `key-invalid` (phase auth) for an empty
 * value, a public key, a PuTTY key, a truncated key, or text that is not a private key at all.
 * Messages name the problem and the fix and never contain key material. Does not decrypt or
 * validate the key body: `loadIdentities` does that with ssh2.
 */
export function normalizeKeyText(raw: string, source = 'private key'): string {
  return normalize(raw, { label: source, kind: 'text' }).text;
}

interface Normalized {
  text: string;
  label: string;
  corrections: string[];
}

function normalize(raw: string, source: Source): Normalized {
  if (raw.length > MAX_KEY_CHARS) {
    throw keyInvalid(source, `${raw.length} characters is far too large to be a private key. Check that it points at the key itself.`);
  }
  if (raw.includes('\0')) {
    throw keyInvalid(
      source,
      'this is binary data, not a text private key. safe-scp reads OpenSSH ("-----BEGIN OPENSSH PRIVATE KEY-----") and PEM keys.',
    );
  }
  const corrections: string[] = [];
  const text = normalizeInner(raw, source, corrections, 0);
  const label = beginLabels(text)[0] ?? '';
  return { text, label, corrections };
}

function stripInvisible(s: string): string {
  // BOM from Windows editors, zero-width and non-breaking spaces from web copy-paste.
  return s.replace(/\uFEFF|\u200B|\u200C|\u200D|\u2060/g, '').replace(/\u00A0/g, ' ');
}

function stripQuotes(s: string, corrections: string[]): string {
  let out = s;
  for (let i = 0; i < 2 && out.length >= 2; i++) {
    const first = out[0];
    if ((first === '"' || first === "'" || first === '`') && out.endsWith(first)) {
      out = out.slice(1, -1).trim();
      if (!corrections.includes('surrounding quotes')) corrections.push('surrounding quotes');
    } else {
      break;
    }
  }
  return out;
}

function normalizeInner(input: string, source: Source, corrections: string[], depth: number): string {
  let s = stripQuotes(stripInvisible(input).trim(), corrections);
  if (s === '') {
    throw keyInvalid(source, `the key is empty. ${EMPTY_HINT[source.kind]}`);
  }

  // A whole key base64-encoded (the usual workaround for GitLab masking), or just an OpenSSH body.
  if (!s.includes('-----') && !PPK_HEADER.test(s) && !PUBLIC_KEY_LINE.test(s) && depth < 2) {
    const decoded = decodeWrapped(s);
    if (decoded?.kind === 'text') {
      corrections.push('base64-wrapped key decoded');
      return normalizeInner(decoded.text, source, corrections, depth + 1);
    }
    if (decoded?.kind === 'openssh-body') {
      corrections.push('missing BEGIN/END lines added');
      s = `-----BEGIN OPENSSH PRIVATE KEY-----\n${wrap64(decoded.compact)}\n-----END OPENSSH PRIVATE KEY-----`;
    }
  }

  // Literal "\n" (two characters) instead of newlines. A backslash can never occur in PEM/OpenSSH
  // armour, base64 or PEM headers, so replacing the escapes is unambiguous; ssh2 still validates.
  if (/\\+[nr]/.test(s)) {
    s = s.replace(/(?:\\+r)?\\+n/g, '\n').replace(/\\+r/g, '\n').trim();
    corrections.push('literal \\n sequences replaced by newlines');
  }

  if (s.includes('\r')) {
    s = s.replace(/\r\n?/g, '\n');
    corrections.push('CRLF line endings');
  }

  classifyNonPrivate(s, source);
  s = repairArmour(s, source, corrections);

  return `${s}\n`;
}

type Decoded = { kind: 'text'; text: string } | { kind: 'openssh-body'; compact: string };

function decodeWrapped(s: string): Decoded | undefined {
  const compact = s.replace(/\s+/g, '');
  if (compact.length < 64 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  const standard = compact.replace(/-/g, '+').replace(/_/g, '/');
  const buf = Buffer.from(standard, 'base64');
  if (buf.subarray(0, OPENSSH_MAGIC.length).equals(OPENSSH_MAGIC)) {
    return { kind: 'openssh-body', compact: standard };
  }
  if (buf.includes(0)) return undefined;
  const text = stripInvisible(buf.toString('utf8')).trim();
  const unquoted = text.replace(/^["'`]/, '');
  if (
    /^-----BEGIN [A-Z0-9 ]+-----/.test(unquoted) ||
    /^---- BEGIN SSH2 /.test(unquoted) ||
    PPK_HEADER.test(unquoted) ||
    PUBLIC_KEY_LINE.test(unquoted)
  ) {
    return { kind: 'text', text };
  }
  return undefined;
}

function wrap64(b64: string): string {
  return (b64.match(/.{1,70}/g) ?? []).join('\n');
}

function beginLabels(s: string): string[] {
  return [...s.matchAll(ARMOUR_BEGIN)].map((m) => m[1] ?? '');
}

function endLabels(s: string): string[] {
  return [...s.matchAll(ARMOUR_END)].map((m) => m[1] ?? '');
}

/** Public keys, PuTTY keys and other non-OpenSSH formats: explain instead of letting ssh2 say "Unsupported key format". */
function classifyNonPrivate(s: string, source: Source): void {
  const ppk = PPK_HEADER.exec(s);
  if (ppk) {
    throw keyInvalid(
      source,
      `this is a PuTTY private key (.ppk, format ${ppk[1] ?? '?'}), not an OpenSSH key. ` +
        'Convert it with `puttygen KEY.ppk -O private-openssh -o KEY` (PuTTYgen: Conversions > Export OpenSSH key) and use that file.',
    );
  }
  if (/---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----/.test(s)) {
    throw keyInvalid(
      source,
      'this is an SSH.com (SSH2) private key, not an OpenSSH key. Convert it with `ssh-keygen -i -f KEY > KEY.openssh` and use that file.',
    );
  }
  const labels = beginLabels(s);
  const hasPrivate = labels.some((label) => PRIVATE_LABELS.has(label));
  if (!hasPrivate) {
    const pub = PUBLIC_KEY_LINE.exec(s);
    const publicLabel = labels.find((label) => PUBLIC_LABELS.has(label));
    if (pub || publicLabel !== undefined || /---- BEGIN SSH2 PUBLIC KEY ----/.test(s)) {
      let what = 'a public key';
      if (pub) {
        const parsed = parseKey(`${pub[1] ?? ''} ${pub[2] ?? ''}`);
        const one = Array.isArray(parsed) ? parsed[0] : parsed;
        if (one && !(one instanceof Error)) what = `a public key (${one.type} ${fingerprintOf(one)})`;
      }
      throw keyInvalid(
        source,
        `this is ${what}, not a private key. Use the private half of the key pair: the file without ".pub" ` +
          '(e.g. ~/.ssh/id_ed25519), which starts with "-----BEGIN OPENSSH PRIVATE KEY-----". ' +
          "The public key belongs in the server's ~/.ssh/authorized_keys.",
      );
    }
    if (labels.length > 0) {
      const label = labels[0] ?? '';
      throw keyInvalid(
        source,
        `this is a "${label}" block, not a private key. Provide the SSH private key file, which starts with "-----BEGIN OPENSSH PRIVATE KEY-----" (or "-----BEGIN RSA PRIVATE KEY-----").`,
      );
    }
  }
}

/** Checks BEGIN/END pairing, drops text around the armour, and restores newlines that became spaces. */
function repairArmour(input: string, source: Source, corrections: string[]): string {
  let s = input;
  const begins = beginLabels(s);
  const ends = endLabels(s);
  if (begins.length === 0 && ends.length === 0) {
    const lines = s.split('\n').length;
    throw keyInvalid(
      source,
      `this is not a private key: there is no "-----BEGIN ... PRIVATE KEY-----" line (the value has ${s.length} characters on ${lines} line${lines === 1 ? '' : 's'}). ` +
        (source.kind === 'env'
          ? 'If SSH_PRIVATE_KEY is meant to name a key file, give an absolute path. '
          : '') +
        FIX_STORE,
    );
  }
  const begin = begins[0];
  if (begin === undefined) {
    throw keyInvalid(
      source,
      `the key is missing its first line: there is an "-----END ${ends[0] ?? ''}-----" line but no "-----BEGIN ${ends[0] ?? ''}-----" line. Copy the whole key file. ${FIX_STORE}`,
    );
  }
  if (ends.length === 0) {
    throw keyInvalid(
      source,
      `the key is truncated: it has the "-----BEGIN ${begin}-----" line but no "-----END ${begin}-----" line. ` +
        'Copy the whole key file including its last line; if it is a CI/CD variable, check the value was not cut off when it was pasted. ' +
        FIX_STORE,
    );
  }
  if (begins.length > 1 || ends.length > 1) {
    throw keyInvalid(
      source,
      `the value contains ${Math.max(begins.length, ends.length)} BEGIN/END blocks; put exactly one private key in each variable or -i file.`,
    );
  }
  const end = ends[0] ?? '';
  if (end !== begin) {
    throw keyInvalid(
      source,
      `the key's first and last lines do not match ("-----BEGIN ${begin}-----" but "-----END ${end}-----"): the value mixes two keys or was edited. Copy the key file again. ${FIX_STORE}`,
    );
  }
  const beginLine = `-----BEGIN ${begin}-----`;
  const endLine = `-----END ${end}-----`;
  const start = s.indexOf(beginLine);
  const stop = s.indexOf(endLine);
  if (stop < start) {
    throw keyInvalid(source, `the "${endLine}" line comes before the "${beginLine}" line. Copy the key file again. ${FIX_STORE}`);
  }
  if (start > 0 || stop + endLine.length < s.length) {
    corrections.push('text outside the BEGIN/END lines ignored');
  }
  let body = s.slice(start + beginLine.length, stop).trim();

  // Newlines turned into spaces (e.g. an unquoted `echo $SSH_PRIVATE_KEY`) or removed altogether.
  const rawLines = body.split('\n');
  const bodyLines = rawLines.map((line) => line.trim());
  if (bodyLines.some((line, i) => line !== rawLines[i])) corrections.push('indentation or trailing spaces removed');
  const restored: string[] = [];
  let spaced = false;
  for (const line of bodyLines) {
    const headers = /^Proc-Type: (\S+) DEK-Info: (\S+)(?: (.*))?$/.exec(line);
    if (headers) {
      restored.push(`Proc-Type: ${headers[1] ?? ''}`, `DEK-Info: ${headers[2] ?? ''}`, '');
      const rest = headers[3]?.trim();
      if (rest) restored.push(...rest.split(/\s+/));
      spaced = true;
    } else if (/^[A-Za-z0-9+/=]+(?:[ \t]+[A-Za-z0-9+/=]+)+$/.test(line)) {
      restored.push(...line.split(/[ \t]+/));
      spaced = true;
    } else {
      restored.push(line);
    }
  }
  if (spaced) corrections.push('newlines that had become spaces restored');
  body = restored.join('\n');
  if (body === '') {
    throw keyInvalid(source, `the key has its BEGIN and END lines but nothing between them. Copy the whole key file. ${FIX_STORE}`);
  }
  s = `${beginLine}\n${body}\n${endLine}`;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Validation with ssh2

/** `SHA256:` + unpadded base64 of the SHA-256 of the public key blob, like `ssh-keygen -lf`. */
export function fingerprintOf(key: Pick<ParsedKey, 'getPublicSSH'>): string {
  return `SHA256:${createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
}

type ParseResult = ParsedKey | ParsedKey[] | Error;

function firstKey(result: ParseResult): ParsedKey | Error {
  if (Array.isArray(result)) return result[0] ?? new Error('Malformed OpenSSH private key');
  return result;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const { code } = err as { code: unknown };
  return typeof code === 'string' ? code : undefined;
}

/** A fresh Error carrying only ssh2's/OpenSSL's generic text: values ssh2 interpolates from the key are dropped. */
function safeCause(err: unknown): Error {
  const raw = err instanceof Error ? err.message : String(err);
  let message = raw
    .slice(0, 200)
    .replace(/[^\x20-\x7E]+/g, '?')
    .replace(/(: |\()([^():]*)(\)?)/g, (_m, pre: string, value: string, post: string) =>
      /^[A-Za-z0-9@.,-]{1,40}$/.test(value.trim()) || /^[a-z ?-]+$/i.test(value) ? `${pre}${value}${post}` : `${pre}<redacted>${post}`,
    );
  // Belt and braces: no long base64-looking run survives.
  message = message.replace(/[A-Za-z0-9+/=]{24,}/g, '<redacted>');
  const code = errorCode(err);
  const out = new Error(message);
  if (code !== undefined && /^[A-Z0-9_]{1,64}$/.test(code)) Object.defineProperty(out, 'code', { value: code, enumerable: true });
  return out;
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

function validate(norm: Normalized, source: Source, passphrase: string | undefined): Validated {
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

// ---------------------------------------------------------------------------------------------
// Sources

function expandHome(path: string, env: Env): string {
  if (path === '~' || path.startsWith('~/')) return (env['HOME'] ?? os.homedir()) + path.slice(1);
  return path;
}

/** A single line that reads as a filesystem path (GitLab File-type variables are absolute paths). */
function looksLikePath(value: string): boolean {
  const v = value.trim();
  if (v === '' || v.length > 4096 || v.includes('\n') || v.includes('-----')) return false;
  if (!/^(?:~|\.{1,2})?\/|^[A-Za-z]:[\\/]/.test(v)) return false;
  return decodeWrapped(v) === undefined;
}

/** A path is printable in messages only if it cannot be a fragment of a key body. */
function printablePath(v: string): boolean {
  return !/[A-Za-z0-9+/=]{40,}/.test(v) && !v.includes('\\n');
}

async function readSource(
  path: string,
  source: Source,
  readFile: (path: string) => Promise<string>,
  what: string,
): Promise<string> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = errorCode(err);
    const shown = printablePath(path) ? path : '(path not shown)';
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw keyInvalid(source, `${what} ${shown} does not exist. Check the path (and that the CI job created the file before safe-scp runs).`, safeCause(err));
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw keyInvalid(
        source,
        `${what} ${shown} cannot be read (permission denied). Make it readable by the user running safe-scp, e.g. \`chmod 600 ${shown}\` as its owner.`,
        safeCause(err),
      );
    }
    if (code === 'EISDIR') {
      throw keyInvalid(source, `${what} ${shown} is a directory; give the private key file inside it (e.g. ~/.ssh/id_ed25519).`, safeCause(err));
    }
    throw keyInvalid(source, `${what} ${shown} cannot be read (${typeof code === 'string' ? code : 'I/O error'}).`, safeCause(err));
  }
}

/** Keeps the key and passphrase out of JSON.stringify and util.inspect of an Identity (spread copies stay plain). */
function protect(identity: Identity): Identity {
  const redacted = (): Record<string, unknown> => ({
    source: identity.source,
    type: identity.type,
    fingerprint: identity.fingerprint,
    privateKey: '[redacted]',
    ...(identity.passphrase === undefined ? {} : { passphrase: '[redacted]' }),
    ...(identity.corrections === undefined ? {} : { corrections: identity.corrections }),
  });
  Object.defineProperty(identity, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(identity, inspect.custom, { value: () => `Identity ${inspect(redacted())}`, enumerable: false });
  return identity;
}

function toIdentity(text: string, source: Source, passphrase: string | undefined): Identity {
  const norm = normalize(text, source);
  const v = validate(norm, source, passphrase);
  return protect({
    privateKey: Buffer.from(v.privateKey, 'utf8'),
    ...(v.passphrase === undefined ? {} : { passphrase: v.passphrase }),
    source: source.label,
    type: v.key.type,
    fingerprint: fingerprintOf(v.key),
    ...(v.corrections.length === 0 ? {} : { corrections: v.corrections }),
  });
}

/**
 * Every configured private key, validated and ready for ssh2, in order: each `-i` file, then
 * `SSH_PRIVATE_KEY` (key text, or the path of a GitLab File-type variable). The passphrase comes
 * from `SSH_PRIVATE_KEY_PASSPHRASE` and is attached only to keys that are encrypted. The same key
 * from two sources is returned once. The first unusable key fails the whole load with
 * `key-invalid` (exit 4): an explicitly configured key that cannot be used is never skipped.
 * Returns [] when nothing is configured (the caller may fall back to the agent).
 */
export async function loadIdentities(input: LoadIdentitiesInput): Promise<Identity[]> {
  const readFile = input.readFile ?? ((path: string) => fsReadFile(path, 'utf8'));
  const rawPassphrase = input.env['SSH_PRIVATE_KEY_PASSPHRASE'];
  const passphrase = rawPassphrase === undefined || rawPassphrase === '' ? undefined : rawPassphrase;
  const out: Identity[] = [];
  const add = (identity: Identity): void => {
    if (!out.some((known) => known.fingerprint === identity.fingerprint)) out.push(identity);
  };

  for (const file of input.identityFiles) {
    const source: Source = { label: `-i ${file}`, kind: 'file', path: file };
    const text = await readSource(expandHome(file, input.env), source, readFile, 'the identity file');
    add(toIdentity(text, source, passphrase));
  }

  for (const file of input.optionalFiles ?? []) {
    const source: Source = { label: `IdentityFile ${file}`, kind: 'file', path: file };
    try {
      const text = await readSource(expandHome(file, input.env), source, readFile, 'the identity file');
      add(toIdentity(text, source, passphrase));
    } catch (err: unknown) {
      const missing = err instanceof SafeScpError && /does not exist/.test(err.message);
      input.onSkip?.(missing ? `IdentityFile ${file}: not there, skipped` : `skipped: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const value = input.env['SSH_PRIVATE_KEY'];
  if (value !== undefined) {
    if (looksLikePath(value)) {
      const path = value.trim();
      const shownPath = printablePath(path) ? path : undefined;
      const source: Source = {
        label: 'SSH_PRIVATE_KEY (file variable)',
        kind: 'env-file',
        ...(shownPath === undefined ? {} : { path: shownPath }),
      };
      const text = await readSource(expandHome(path, input.env), source, readFile, 'SSH_PRIVATE_KEY names a file, but the file');
      add(toIdentity(text, source, passphrase));
    } else {
      add(toIdentity(value, { label: 'SSH_PRIVATE_KEY', kind: 'env' }, passphrase));
    }
  }
  return out;
}

/** The agent socket from SSH_AUTH_SOCK, if it is set and really is a socket. */
export function agentSocket(env: Env): string | undefined {
  const path = env['SSH_AUTH_SOCK'];
  if (path === undefined || path === '') return undefined;
  try {
    return statSync(path).isSocket() ? path : undefined;
  } catch {
    return undefined;
  }
}
