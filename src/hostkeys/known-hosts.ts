// known_hosts parsing and host matching with OpenSSH's rules (sshd(8) format, hostfile.c, match.c).
import { createHmac, randomBytes } from 'node:crypto';

import { fingerprint } from './fingerprint.js';
import { knownHostsName, matchPatternList } from './pattern.js';
import { blobTypeForFieldName, checkKeyBlob } from './wire.js';

export type KnownHostsMarker = 'revoked' | 'cert-authority';

/** One usable known_hosts line. Lines OpenSSH would skip never become entries. */
export interface KnownHostsEntry {
  /** `@revoked` or `@cert-authority`; absent for an ordinary pinned key. */
  readonly marker?: KnownHostsMarker;
  /** The host field as written: a comma list of patterns, or one `|1|salt|hash` name. */
  readonly hostField: string;
  /** The key's own wire type (`ssh-rsa` even when the line says `rsa-sha2-512`). */
  readonly keyType: string;
  /** The decoded public key blob, byte-comparable with what ssh2 hands to hostVerifier. */
  readonly key: Buffer;
  /** `SHA256:...` of `key`, for messages. */
  readonly fingerprint: string;
  /** `file:line`, for messages. */
  readonly source: string;
}

export interface ParsedKnownHosts {
  entries: KnownHostsEntry[];
  /** One `file:line: reason` per skipped line; skipping rather than failing is what ssh does. */
  warnings: string[];
}

export interface HostLookup {
  /** Ordinary entries: a key here is trusted for the host. */
  keys: KnownHostsEntry[];
  /** `@revoked` entries: a key here is refused for the host, even if also listed in `keys`. */
  revoked: KnownHostsEntry[];
  /** `@cert-authority` entries: only usable with host certificates, which ssh2 never negotiates. */
  authorities: KnownHostsEntry[];
}

const HASH_MAGIC = '|1|';
/** HMAC-SHA1 output size; OpenSSH insists the salt is exactly this long (hostfile.c extract_salt). */
const SALT_BYTES = 20;
const MARKERS: Readonly<Record<string, KnownHostsMarker>> = {
  '@revoked': 'revoked',
  '@cert-authority': 'cert-authority',
};

/** Only space and tab separate fields in OpenSSH's parser; other whitespace is part of a field. */
function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

function skipBlanks(text: string, from: number): number {
  let i = from;
  while (isBlank(text[i])) i += 1;
  return i;
}

function fieldEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length && !isBlank(text[i])) i += 1;
  return i;
}

/**
 * Decodes base64 the way OpenSSH's b64_pton does for key blobs: padded to a multiple of 4, no
 * stray characters, unused trailing bits zero. Node's decoder silently skips junk, so it would
 * turn a corrupted line into a different key instead of rejecting it.
 */
function decodeStrictBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    return undefined;
  }
  const decoded = Buffer.from(text, 'base64');
  return decoded.toString('base64') === text ? decoded : undefined;
}

/** The salt of a `|1|salt|hash` field, or undefined if OpenSSH would call the field a bad hash. */
function hashedFieldSalt(field: string): Buffer | undefined {
  if (!field.startsWith(HASH_MAGIC)) return undefined;
  const end = field.indexOf('|', HASH_MAGIC.length);
  if (end < 0) return undefined;
  const salt = decodeStrictBase64(field.slice(HASH_MAGIC.length, end));
  return salt !== undefined && salt.length === SALT_BYTES ? salt : undefined;
}

/**
 * The hashed form of a known_hosts name (hostfile.c host_hash): `|1|` + base64(salt) + `|` +
 * base64(HMAC-SHA1(key=salt, name)). `name` is what knownHostsName() returns, so ports are inside
 * the hash as `[host]:port`. A fresh random salt is used unless one is given.
 */
export function hashKnownHostsName(name: string, salt: Buffer = randomBytes(SALT_BYTES)): string {
  const mac = createHmac('sha1', salt).update(name, 'utf8').digest('base64');
  return `${HASH_MAGIC}${salt.toString('base64')}|${mac}`;
}

type LineResult = { entry: KnownHostsEntry } | { skip: string } | undefined;

/** One line, following hostfile.c hostkeys_foreach() + sshkey_read(); undefined for blank/comment. */
function parseLine(rawLine: string, source: string): LineResult {
  // ssh reads up to '\n' only; dropping one '\r' makes CRLF files (edited on Windows, pasted into
  // CI variables) work without changing what any other line means.
  const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
  let cp = skipBlanks(line, 0);
  if (cp >= line.length || line[cp] === '#') return undefined;

  let marker: KnownHostsMarker | undefined;
  while (line[cp] === '@') {
    if (marker !== undefined) return { skip: 'more than one @marker' };
    // OpenSSH (check_markers) ends the marker at the first space anywhere on the rest of the
    // line, and only looks for a tab when there is no space at all. So `@revoked<TAB>host key`
    // is an invalid marker (and the line is skipped) unless the line contains no spaces.
    // Reproduced because the alternative would trust a line ssh ignores, or vice versa.
    let end = line.indexOf(' ', cp);
    if (end < 0) end = line.indexOf('\t', cp);
    if (end < 0) return { skip: 'marker without a host field' };
    const found = MARKERS[line.slice(cp, end)];
    if (found === undefined) {
      return { skip: `unknown marker ${JSON.stringify(line.slice(cp, Math.min(end, cp + 40)))}` };
    }
    marker = found;
    cp = skipBlanks(line, end);
  }

  const hostEnd = fieldEnd(line, cp);
  const hostField = line.slice(cp, hostEnd);
  cp = skipBlanks(line, hostEnd);
  if (cp >= line.length || line[cp] === '#') return { skip: 'truncated before the key type' };

  const typeEnd = fieldEnd(line, cp);
  const typeField = line.slice(cp, typeEnd);
  cp = skipBlanks(line, typeEnd);
  if (cp >= line.length) return { skip: `truncated after the key type ${typeField}` };
  const keyField = line.slice(cp, fieldEnd(line, cp));

  if (hostField.startsWith('|') && hashedFieldSalt(hostField) === undefined) {
    return { skip: 'bad hashed host name (expected |1|<base64 20-byte salt>|<base64 hash>)' };
  }
  const key = decodeStrictBase64(keyField);
  if (key === undefined) return { skip: 'key is not valid base64' };
  let blobType: string;
  try {
    blobType = checkKeyBlob(key);
  } catch (error: unknown) {
    return { skip: error instanceof Error ? error.message : 'key does not parse' };
  }
  if (blobTypeForFieldName(typeField) !== blobType) {
    return { skip: `line says ${JSON.stringify(typeField.slice(0, 64))} but the key is ${blobType}` };
  }
  const entry: KnownHostsEntry = {
    ...(marker === undefined ? {} : { marker }),
    hostField,
    keyType: blobType,
    key,
    fingerprint: fingerprint(key),
    source,
  };
  return { entry };
}

/**
 * Parses known_hosts text. Invalid lines are skipped with a warning, never thrown: OpenSSH does the
 * same, and one stale line must not break every other pin in the file. `source` names the file in
 * entry sources and warnings. Accepts CRLF and a missing final newline.
 */
export function parseKnownHosts(text: string, source: string): ParsedKnownHosts {
  const entries: KnownHostsEntry[] = [];
  const warnings: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const where = `${source}:${String(index + 1)}`;
    const result = parseLine(line, where);
    if (result === undefined) return;
    if ('entry' in result) entries.push(result.entry);
    else warnings.push(`${where}: skipped: ${result.skip}`);
  });
  return { entries, warnings };
}

/**
 * Whether an entry applies to host:port, as ssh decides it (hostfile.c match_maybe_hashed):
 * - the looked-up name is `host` for port 22 and `[host]:port` otherwise, lowercased;
 * - a hashed field is one name and must hash to exactly the same string;
 * - otherwise the field is a pattern list, and a matching `!pattern` vetoes the line.
 * Wildcards see the whole looked-up name, brackets and port included: `*` matches every port,
 * and `[*.example.com]:2222` matches any subdomain on 2222.
 */
export function entryMatches(entry: KnownHostsEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (entry.hostField.startsWith('|')) {
    const salt = hashedFieldSalt(entry.hostField);
    return salt !== undefined && hashKnownHostsName(name, salt) === entry.hostField;
  }
  return matchPatternList(name, entry.hostField) === 1;
}

/** Every entry that applies to host:port, split by marker, in file order. */
export function lookupHost(
  entries: readonly KnownHostsEntry[],
  host: string,
  port: number,
): HostLookup {
  const result: HostLookup = { keys: [], revoked: [], authorities: [] };
  for (const entry of entries) {
    if (!entryMatches(entry, host, port)) continue;
    if (entry.marker === 'revoked') result.revoked.push(entry);
    else if (entry.marker === 'cert-authority') result.authorities.push(entry);
    else result.keys.push(entry);
  }
  return result;
}

/** Characters that would turn a host name into a pattern, a list, a marker or a comment. */
const UNSAFE_HOST = /[\s,*?!#|@[\]\\]/;

function hasControlCharacters(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/**
 * The known_hosts line that pins `blob` for host:port, in the form ssh and ssh-keyscan write:
 * `host type base64` for port 22, `[host]:port type base64` otherwise (host lowercased, as ssh
 * stores it). Throws if the host could not be written as a literal name or the key does not parse.
 */
export function formatKnownHostsLine(host: string, port: number, blob: Buffer): string {
  if (UNSAFE_HOST.test(host) || hasControlCharacters(host)) {
    throw new Error(`cannot write a known_hosts line for host ${JSON.stringify(host)}`);
  }
  const type = checkKeyBlob(blob);
  return `${knownHostsName(host, port)} ${type} ${blob.toString('base64')}`;
}
