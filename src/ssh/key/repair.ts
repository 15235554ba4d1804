// Paste repair: turns what users paste into CI variables into clean key text, or says what is wrong with it.
import { OPENSSH_MAGIC, PPK_HEADER, PUBLIC_KEY_LINE, beginLabels, classifyNonPrivate, endLabels } from './recognise.js';
import { FIX_STORE, keyInvalid, type Source, type SourceKind } from './common.js';

/** Anything bigger is not a private key (a 16384-bit RSA PEM is about 12 KiB). */
const MAX_KEY_CHARS = 256 * 1024;

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

export interface Normalized {
  text: string;
  label: string;
  corrections: string[];
}


export function normalize(raw: string, source: Source): Normalized {
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

export function decodeWrapped(s: string): Decoded | undefined {
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
