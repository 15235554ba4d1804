// The host key decision: is the key a server offered pinned for this host:port? Pure, no ssh2.
import { fingerprint, keyType, normalizeFingerprint } from './fingerprint.js';
import {
  formatKnownHostsLine,
  lookupHost,
  type HostLookup,
  type KnownHostsEntry,
} from './known-hosts.js';

export { appendKnownHost } from './append.js';

/** Everything a run trusts. */
export interface HostKeyPins {
  /** Parsed known_hosts entries (SSH_KNOWN_HOSTS, --known-hosts, ~/.ssh/known_hosts). */
  entries: KnownHostsEntry[];
  /** `--host-key` fingerprints; they apply to every host of this run. */
  fingerprints: string[];
  /** Files that were read (even if empty), named in messages so "unknown" is easy to act on. */
  sources?: string[];
}

export type HostKeyRefusalCode = 'host-key-unknown' | 'host-key-changed' | 'host-key-revoked';

export interface PinnedKeyInfo {
  /** Key type, or `any type` for a --host-key fingerprint (a fingerprint does not say). */
  type: string;
  fingerprint: string;
  /** `file:line` or `--host-key`. */
  source: string;
}

/** Facts for the diagnosis and the JSON report (a type alias so it fits SafeScpError details). */
export type HostKeyDetails = {
  host: string;
  port: number;
  offered: { type: string; fingerprint: string };
  pinned: PinnedKeyInfo[];
  revokedBy?: string;
  certAuthorities?: string[];
  knownHostsLine?: string;
  sources?: string[];
  /** Non-22 port with nothing under `[host]:port`: the bare-host pins ssh would also accept. */
  portlessPinned?: PinnedKeyInfo[];
};

export type HostKeyDecision =
  | { ok: true; matchedBy: string }
  | { ok: false; code: HostKeyRefusalCode; message: string; details: HostKeyDetails };

/** The offered key's type, tolerating a blob we cannot parse (it then simply matches nothing). */
function safeKeyType(blob: Buffer): string {
  try {
    return keyType(blob);
  } catch {
    return '(unparseable key)';
  }
}

function safeKnownHostsLine(host: string, port: number, blob: Buffer): string | undefined {
  try {
    return formatKnownHostsLine(host, port, blob);
  } catch {
    return undefined;
  }
}

/** Canonical pins; a malformed one cannot match anything but still counts as "this run pins keys". */
function canonicalFingerprints(fingerprints: readonly string[]): string[] {
  return fingerprints.map((text) => {
    try {
      return normalizeFingerprint(text);
    } catch {
      return text.trim();
    }
  });
}

function describeEntry(entry: KnownHostsEntry): PinnedKeyInfo {
  return { type: entry.keyType, fingerprint: entry.fingerprint, source: entry.source };
}

function pinnedLines(pinned: readonly PinnedKeyInfo[]): string {
  return pinned.map((p) => `  ${p.type} ${p.fingerprint}  (${p.source})`).join('\n');
}

/** The server file holding a key of this type, to check the fingerprint against. */
const HOST_KEY_FILES: Readonly<Record<string, string>> = {
  'ssh-ed25519': '/etc/ssh/ssh_host_ed25519_key.pub',
  'ecdsa-sha2-nistp256': '/etc/ssh/ssh_host_ecdsa_key.pub',
  'ecdsa-sha2-nistp384': '/etc/ssh/ssh_host_ecdsa_key.pub',
  'ecdsa-sha2-nistp521': '/etc/ssh/ssh_host_ecdsa_key.pub',
  'ssh-rsa': '/etc/ssh/ssh_host_rsa_key.pub',
  'ssh-dss': '/etc/ssh/ssh_host_dsa_key.pub',
};

/** How to confirm a fingerprint out of band; the advice is never "turn checking off". */
function verifyHint(type: string): string {
  const file = HOST_KEY_FILES[type] ?? '/etc/ssh/ssh_host_*_key.pub';
  return `Compare it with the server's own key, read out of band: ssh-keygen -lf ${file}`;
}

/**
 * The known_hosts entries that can speak for host:port (sshconnect.c check_host_key): those for
 * the looked-up name (`[host]:port` unless port 22) and, for other ports, those for the bare host.
 * ssh consults the latter only when nothing plain is recorded under `[host]:port` ("checking
 * without port identifier"), so a key recorded for port 22 is accepted on another port.
 */
function relevantEntries(
  entries: readonly KnownHostsEntry[],
  host: string,
  port: number,
): { found: HostLookup; portless: HostLookup | undefined } {
  const found = lookupHost(entries, host, port);
  const portless = port !== 22 ? lookupHost(entries, host, 22) : undefined;
  return { found, portless };
}

/**
 * Decides whether the key a server offered is pinned for host:port. Order matters and follows
 * OpenSSH (hostfile.c check_hostkeys_by_key_or_type, sshconnect.c check_host_key):
 * 1. a key marked `@revoked` for this host is refused, even if it is also pinned;
 * 2. a key pinned for the looked-up name, or by a `--host-key` fingerprint, is accepted;
 * 3. any other pin for the looked-up name (or any fingerprint) means the key has changed;
 * 4. for a non-22 port with nothing plain recorded under `[host]:port`, a key recorded for the bare
 *    host is accepted, as ssh does; a different key there leaves the host unknown (ssh too);
 * 5. otherwise the key is unknown.
 * Revocations for the bare host also apply on other ports (ssh only consults them in step 4):
 * refusing a revoked key on every port of its host is the safe reading.
 * `@cert-authority` lines cannot vouch for a plain key (ssh2 does not negotiate host
 * certificates), so a host covered only by them is unknown, with a message saying why.
 * Never throws for anything the server sent; throws RangeError for a bad port or empty host.
 */
export function decideHostKey(
  pins: HostKeyPins,
  host: string,
  port: number,
  blob: Buffer,
): HostKeyDecision {
  const offered = { type: safeKeyType(blob), fingerprint: fingerprint(blob) };
  const where = `${host}:${String(port)}`;
  const { found, portless } = relevantEntries(pins.entries, host, port);
  const fingerprintPins = canonicalFingerprints(pins.fingerprints);
  const pinned: PinnedKeyInfo[] = [
    ...found.keys.map(describeEntry),
    ...fingerprintPins.map((fp) => ({ type: 'any type', fingerprint: fp, source: '--host-key' })),
  ];
  const base = {
    host,
    port,
    offered,
    pinned,
    ...(pins.sources === undefined ? {} : { sources: [...pins.sources] }),
  };
  const offeredText = `${offered.type} ${offered.fingerprint}`;

  const revoked = [...found.revoked, ...(portless?.revoked ?? [])].find((e) => e.key.equals(blob));
  if (revoked !== undefined) {
    return {
      ok: false,
      code: 'host-key-revoked',
      message:
        `Host key REVOKED for ${where}: the server offered ${offeredText}, which is marked ` +
        `@revoked in ${revoked.source}. A revoked key is never trusted, even where it is also ` +
        `pinned. The server must be given a new host key, and that key pinned.` +
        (pinned.length > 0 ? `\nPinned for ${where}:\n${pinnedLines(pinned)}` : ''),
      details: { ...base, revokedBy: revoked.source },
    };
  }

  const byEntry = found.keys.find((entry) => entry.key.equals(blob));
  if (byEntry !== undefined) return { ok: true, matchedBy: `known_hosts ${byEntry.source}` };
  if (fingerprintPins.includes(offered.fingerprint)) {
    return { ok: true, matchedBy: `--host-key ${offered.fingerprint}` };
  }

  if (pinned.length > 0) {
    return {
      ok: false,
      code: 'host-key-changed',
      message:
        `Host key CHANGED for ${where}: the server offered ${offeredText}, which matches none ` +
        `of the keys pinned for this host:\n${pinnedLines(pinned)}\n` +
        `Either the server's host key was replaced (reinstall, key rotation, a different machine ` +
        `behind the address) or someone is intercepting the connection. ${verifyHint(offered.type)}; ` +
        `update the pin only if the fingerprints agree.` +
        (found.keys.length === 0
          ? ` Only --host-key fingerprints are pinned, and a fingerprint does not name its key type: the server shows ` +
            `the key of the first type it has in the order ed25519, ecdsa, rsa, in the one connection safe-scp makes. ` +
            `If you pinned another of its keys, pin its ${offered.type} key instead, or give a known_hosts line ` +
            `(SSH_KNOWN_HOSTS), which names its type.`
          : ''),
      details: base,
    };
  }

  const byPortless = portless?.keys.find((entry) => entry.key.equals(blob));
  if (byPortless !== undefined) {
    return {
      ok: true,
      matchedBy: `known_hosts ${byPortless.source} (recorded for ${host} without a port; ssh accepts it on port ${String(port)} when nothing is recorded for [${host}]:${String(port)})`,
    };
  }

  const line = safeKnownHostsLine(host, port, blob);
  const howToPin =
    `${verifyHint(offered.type)}. If it matches ${offered.fingerprint}, pin it by adding this ` +
    `line to SSH_KNOWN_HOSTS:\n  ${line ?? `(cannot be written for host ${JSON.stringify(host)})`}\n` +
    `or pass --host-key ${offered.fingerprint}`;
  const read =
    pins.sources === undefined
      ? ''
      : pins.sources.length === 0
        ? ' No known_hosts file was read.'
        : ` Read: ${pins.sources.join(', ')}.`;
  const portlessPins = (portless?.keys ?? []).map(describeEntry);
  const portlessNote =
    portlessPins.length > 0
      ? ` Keys recorded for ${host} without a port (they would also be accepted on port ` +
        `${String(port)}) do not match either:\n${pinnedLines(portlessPins)}\n`
      : ' ';
  const authorities = found.authorities.map((entry) => entry.source);
  const details: HostKeyDetails = {
    ...base,
    ...(line === undefined ? {} : { knownHostsLine: line }),
    ...(authorities.length > 0 ? { certAuthorities: authorities } : {}),
    ...(portlessPins.length > 0 ? { portlessPinned: portlessPins } : {}),
  };
  if (authorities.length > 0) {
    return {
      ok: false,
      code: 'host-key-unknown',
      message:
        `Host key UNKNOWN for ${where}: the only known_hosts lines for this host are ` +
        `@cert-authority lines (${authorities.join(', ')}), and the server offered a plain key, ` +
        `${offeredText}. @cert-authority lines are not supported; pin the host key itself.` +
        `${portlessNote}${howToPin}`,
      details,
    };
  }
  return {
    ok: false,
    code: 'host-key-unknown',
    message:
      `Host key UNKNOWN for ${where}: no known_hosts entry or --host-key pins a key for it.${read} ` +
      `The server offered ${offeredText}.${portlessNote}${howToPin}`,
    details,
  };
}

/** ssh2's default serverHostKey preference, which is also OpenSSH's: strongest and fastest first. */
export const PREFERENCE: readonly string[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Negotiable algorithms for a pinned key type; none for types ssh2 cannot verify (sk-*, certs). */
export function algorithmsFor(type: string): readonly string[] {
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
