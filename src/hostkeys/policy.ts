// The host key decision: is the key a server offered pinned for this host:port? Pure, no ssh2.
import { fingerprint, keyType, normalizeFingerprint } from './fingerprint.js';
import { formatKnownHostsLine, type KnownHostsEntry } from './known-hosts.js';
import { relevantEntries, type HostKeyPins } from './pins.js';

export type { HostKeyPins } from './pins.js';
export { hostKeyAlgorithms } from './algorithms.js';

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
