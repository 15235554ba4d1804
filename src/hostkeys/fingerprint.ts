// Host key fingerprints and type names, computed exactly as OpenSSH prints them.
import { createHash } from 'node:crypto';

import { blobTypeName } from './wire.js';

/**
 * OpenSSH's default fingerprint of a public key blob: `SHA256:` + base64(SHA-256(blob)) with the
 * `=` padding trimmed (sshkey.c fingerprint_b64), i.e. what `ssh-keygen -lf` and `ssh -v` print.
 * The blob is the raw key ssh2 hands to hostVerifier, which is the same bytes as the base64 field
 * of a known_hosts line. (ssh2's `hostHash` option gives hex, which matches no OpenSSH format, so
 * we hash the blob ourselves.)
 */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The key type a blob names in its first wire field, e.g. `ssh-ed25519`. For RSA this is always
 * `ssh-rsa`, even when `rsa-sha2-512` was negotiated: the algorithm names the signature, the blob
 * names the key. Throws if the blob is malformed.
 */
export function keyType(blob: Buffer): string {
  return blobTypeName(blob);
}

const EXPECTED_FORM = 'SHA256:<43 base64 chars>';

/** 43 base64 chars encode 258 bits; the last char carries 2 spare bits that must be zero. */
const SHA256_B64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;

/**
 * Canonical form of a user-supplied fingerprint (`--host-key`): `SHA256:` + 43 base64 chars.
 * Accepts a trailing `=` (some tools keep the padding), any case of the `SHA256:` prefix, and the
 * bare 43-char digest. MD5 (`MD5:aa:bb:..` or bare colon hex) is rejected: it is what old ssh
 * printed, but MD5 pins would be forgeable and OpenSSH stopped showing them by default in 6.8.
 */
export function normalizeFingerprint(text: string): string {
  const trimmed = text.trim();
  if (/^md5:/i.test(trimmed) || /^[0-9a-f]{2}(:[0-9a-f]{2}){15}$/i.test(trimmed)) {
    throw new Error(
      `host key fingerprint ${JSON.stringify(trimmed)} is MD5, which is not accepted; expected ` +
        `${EXPECTED_FORM} (print it with: ssh-keygen -lf <host key .pub file>)`,
    );
  }
  const digest = trimmed.replace(/^sha256:/i, '').replace(/=$/, '');
  if (!SHA256_B64.test(digest)) {
    throw new Error(
      `host key fingerprint ${JSON.stringify(trimmed.slice(0, 80))} is not a SHA-256 fingerprint; ` +
        `expected ${EXPECTED_FORM} (print it with: ssh-keygen -lf <host key .pub file>)`,
    );
  }
  return `SHA256:${digest}`;
}
