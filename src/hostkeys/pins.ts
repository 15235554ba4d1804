// What a run trusts (known_hosts entries and --host-key fingerprints), and which entries count for host:port.
import { lookupHost, type HostLookup, type KnownHostsEntry } from './known-hosts.js';

/** Everything a run trusts. */
export interface HostKeyPins {
  /** Parsed known_hosts entries (SSH_KNOWN_HOSTS, --known-hosts, ~/.ssh/known_hosts). */
  entries: KnownHostsEntry[];
  /** `--host-key` fingerprints; they apply to every host of this run. */
  fingerprints: string[];
  /** Files that were read (even if empty), named in messages so "unknown" is easy to act on. */
  sources?: string[];
}

/**
 * The known_hosts entries that can speak for host:port (sshconnect.c check_host_key): those for
 * the looked-up name (`[host]:port` unless port 22) and, for other ports, those for the bare host.
 * ssh consults the latter only when nothing plain is recorded under `[host]:port` ("checking
 * without port identifier"), so a key recorded for port 22 is accepted on another port.
 */
export function relevantEntries(
  entries: readonly KnownHostsEntry[],
  host: string,
  port: number,
): { found: HostLookup; portless: HostLookup | undefined } {
  const found = lookupHost(entries, host, port);
  const portless = port !== 22 ? lookupHost(entries, host, 22) : undefined;
  return { found, portless };
}
