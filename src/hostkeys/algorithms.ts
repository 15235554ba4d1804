// Which host key algorithms to offer ssh2, so a server with several host keys presents the pinned one.
import { relevantEntries, type HostKeyPins } from './pins.js';

/** ssh2's default serverHostKey preference, which is also OpenSSH's: strongest and fastest first. */
const PREFERENCE: readonly string[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Negotiable algorithms for a pinned key type; none for types ssh2 cannot verify (sk-*, certs). */
function algorithmsFor(type: string): readonly string[] {
  switch (type) {
    case 'ssh-ed25519':
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
      return [type];
    case 'ssh-rsa':
      // One RSA key serves three signature algorithms; SHA-2 first. ssh-rsa (SHA-1) stays last so an
      // old server holding the pinned key still works: the key is pinned either way.
      return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
    case 'ssh-dss':
      // ssh2 still supports DSA host keys; only offered when someone explicitly pinned one.
      return ['ssh-dss'];
    default:
      return [];
  }
}

function rank(algorithm: string): number {
  const index = PREFERENCE.indexOf(algorithm);
  return index < 0 ? PREFERENCE.length : index;
}

/**
 * The ssh2 `algorithms.serverHostKey` list for host:port, so a server with several host keys
 * presents the one we pinned instead of its first preference (a false "changed", T3).
 * - Only known_hosts pins: exactly the pinned types, in preference order. The pins are those for
 *   the looked-up name, or the bare-host ones where decideHostKey would fall back to them.
 * - Known_hosts pins and --host-key fingerprints: the pinned types first, then the rest of the
 *   default list (OpenSSH's order_hostkeyalgs does the same), because a fingerprint does not say
 *   which type it is and restricting could hide the key it pins.
 * - Only fingerprints, or no pins (unknown host / accept-new): undefined, i.e. ssh2's default.
 * - Pins whose types ssh2 cannot negotiate (sk-*, certificates): undefined too; restricting would
 *   turn the refusal into an opaque "no matching host key algorithm" instead of a clear mismatch.
 * `@revoked` and `@cert-authority` lines never widen the list.
 */
export function hostKeyAlgorithms(
  pins: HostKeyPins,
  host: string,
  port: number,
): string[] | undefined {
  const { found, portless } = relevantEntries(pins.entries, host, port);
  // The bare-host keys count when ssh would fall back to them (nothing under [host]:port).
  const keys = found.keys.length > 0 ? found.keys : (portless?.keys ?? []);
  const pinnedTypes = new Set(keys.map((e) => e.keyType));
  const pinnedAlgorithms = [...new Set([...pinnedTypes].flatMap((t) => algorithmsFor(t)))].sort(
    (a, b) => rank(a) - rank(b),
  );
  if (pinnedAlgorithms.length === 0) return undefined;
  if (pins.fingerprints.length === 0) return pinnedAlgorithms;
  return [...pinnedAlgorithms, ...PREFERENCE.filter((a) => !pinnedAlgorithms.includes(a))];
}
