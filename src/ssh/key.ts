// Private-key loader: reads -i files, ssh_config identities and SSH_PRIVATE_KEY (text or a File-type variable's path),
// repairs paste damage (key/repair.ts), validates with ssh2 (key/decrypt.ts), and explains failures without echoing key material.
import { statSync } from 'node:fs';
import { readFile as fsReadFile } from 'node:fs/promises';
import os from 'node:os';
import { inspect } from 'node:util';
import { SafeScpError } from '../errors.js';
import { errorCode, fingerprintOf, keyInvalid, safeCause, type Source } from './key/common.js';
import { validate } from './key/decrypt.js';
import { decodeWrapped, normalize } from './key/repair.js';

export { normalizeKeyText } from './key/repair.js';

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

