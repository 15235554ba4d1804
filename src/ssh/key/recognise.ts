// Text that is not an OpenSSH or PEM private key (a public key, a PuTTY key, a certificate...): named, with the fix.
import ssh2 from 'ssh2';
import { fingerprintOf, keyInvalid, type Source } from './common.js';

const { parseKey } = ssh2.utils;

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
export const PUBLIC_KEY_LINE =
  /(?:^|\s)((?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)(?:-cert-v0[01]@openssh\.com)?)[ \t]+(AAAA[A-Za-z0-9+/]+={0,3})/m;
export const PPK_HEADER = /^PuTTY-User-Key-File-(\d+):/m;
export const OPENSSH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

export function beginLabels(s: string): string[] {
  return [...s.matchAll(ARMOUR_BEGIN)].map((m) => m[1] ?? '');
}

export function endLabels(s: string): string[] {
  return [...s.matchAll(ARMOUR_END)].map((m) => m[1] ?? '');
}


/** Public keys, PuTTY keys and other non-OpenSSH formats: explain instead of letting ssh2 say "Unsupported key format". */
export function classifyNonPrivate(s: string, source: Source): void {
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

