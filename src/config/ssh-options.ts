// -o Key=Value: which OpenSSH options are taken, and StrictHostKeyChecking from -o or ssh_config.
import { configError, usageError } from '../errors.js';
import { hasControl } from '../operands.js';
import { SSH_OPTIONS } from '../options.js';
import type { HostSettings } from '../ssh-config/host.js';

export type SshOption = (typeof SSH_OPTIONS)[number];

/** The -o values by option (case as documented), in the order given; anything unknown is a usage error naming it. */
export function parseSshOptions(list: readonly string[]): Map<SshOption, string[]> {
  const result = new Map<SshOption, string[]>();
  for (const item of list) {
    const match = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=|\s)\s*(.*?)\s*$/.exec(item);
    if (!match?.[1]) throw usageError(`\`-o ${item}\`: expected Key=Value`);
    const known = SSH_OPTIONS.find((o) => o.toLowerCase() === match[1]?.toLowerCase());
    if (!known) {
      throw usageError(`\`-o ${match[1]}\` is not supported; supported: ${SSH_OPTIONS.join(', ')}`);
    }
    if (hasControl(match[2] ?? '')) throw usageError(`\`-o ${known}\`: the value contains a control character`);
    result.set(known, [...(result.get(known) ?? []), match[2] ?? '']);
  }
  return result;
}

/** StrictHostKeyChecking from ssh_config: `no` there is not honoured (a -v note), never trusted. */
export function fileStrictness(settings: HostSettings | undefined, notes: string[]): 'yes' | 'accept-new' {
  const v = settings?.value('stricthostkeychecking');
  if (!v) return 'yes';
  const value = v.value.toLowerCase();
  if (value === 'accept-new') return 'accept-new';
  if (value === 'yes' || value === 'ask' || value === 'true') return 'yes';
  if (value === 'no' || value === 'off' || value === 'false') {
    notes.push(`${v.where}: StrictHostKeyChecking ${v.value} is not honoured: safe-scp checks host keys against the pins (SSH_KNOWN_HOSTS, known_hosts, --host-key) as with yes`);
    return 'yes';
  }
  throw configError(`${v.where}: StrictHostKeyChecking must be yes, ask, accept-new or no, got "${v.value}"`);
}

/** -o StrictHostKeyChecking: `no` is refused before any network access. */
export function strictness(value: string): 'yes' | 'accept-new' {
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true' || v === 'ask') return 'yes';
  if (v === 'accept-new') return 'accept-new';
  if (v === 'no' || v === 'off' || v === 'false') {
    // Refused before any network access: nothing connects, so nothing counts towards fail2ban or MaxStartups.
    throw usageError(
      'StrictHostKeyChecking=no is refused: safe-scp never trusts an unknown host key, and opened no connection. ' +
        'Pin the key instead, fetched and checked from a trusted machine: `ssh-keyscan -p PORT HOST > pin` there, ' +
        '`ssh-keygen -lf pin` to compare its fingerprints with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` ' +
        'run on the server itself, then put those lines into SSH_KNOWN_HOSTS (or pass `--host-key SHA256:...`); ' +
        '`--accept-new` pins the first key seen.',
    );
  }
  throw usageError(`\`-o StrictHostKeyChecking=${value}\`: expected yes or accept-new`);
}
