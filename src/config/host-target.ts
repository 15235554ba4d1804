// One host to connect to, as resolved from operands, --hosts, -J and ssh_config.
export interface HostTarget {
  /** The host connected to (ssh_config HostName, or the name as typed). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The name as typed, when ssh_config gave it another HostName. */
  readonly alias?: string;
  /** -i / -o IdentityFile: each must be usable. Absent: the run's identityFiles. */
  readonly identityFiles?: readonly string[];
  /** IdentityFile lines from ssh_config, or the default identities: missing or unusable ones are skipped (as ssh does). */
  readonly configIdentityFiles?: readonly string[];
  /** IdentitiesOnly=yes: the agent is not used. */
  readonly identitiesOnly?: boolean;
  /** HostKeyAlias: the name looked up in known_hosts instead of host:port. */
  readonly hostKeyAlias?: string;
  /** This host's jump hosts (-J, or its ssh_config ProxyJump). Absent: the run's jumpHosts. */
  readonly jumpHosts?: readonly HostTarget[];
}
