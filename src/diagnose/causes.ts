// What each cause code means and what to check (on the server, or here): the text of the diagnostic block.
import type { CauseCode } from '../errors.js';

export interface CauseHelp {
  /** One line: what most likely happened. */
  readonly summary: string;
  /** Concrete things to check or run, on the server or the network. */
  readonly checks: readonly string[];
}

/** Where the checks are made: the local causes are about this machine (the runner), not the server. */
export function checksHeading(cause: CauseCode): string {
  if (cause.startsWith('local-') || cause === 'usage' || cause === 'config') return 'check on this machine:';
  if (cause === 'key-invalid') return 'check the key:';
  return 'check on the server:';
}

/** The checks of `cause` with the real host and port in place of {host} and {port} (HOST / PORT when unknown). */
export function checksFor(cause: CauseCode, where: { host?: string | undefined; port?: number | undefined } = {}): string[] {
  return CAUSE_HELP[cause].checks.map((check) => check.replaceAll('{host}', where.host ?? 'HOST').replaceAll('{port}', String(where.port ?? 'PORT')));
}

const RESET_CHECKS = [
  'sshd MaxStartups: too many unauthenticated connections at once make sshd drop new ones. Check `MaxStartups` (default 10:30:100) and `PerSourcePenalties` (OpenSSH 9.8+) in /etc/ssh/sshd_config; reload with `systemctl reload ssh` (or sshd).',
  'fail2ban: `fail2ban-client status sshd` lists banned IPs; unban with `fail2ban-client set sshd unbanip RUNNER_IP`, and add the runner range to `ignoreip` in /etc/fail2ban/jail.local.',
  'TCP wrappers / DenyHosts: look for the runner address in /etc/hosts.deny and /etc/hosts.allow (Debian\'s sshd still honours them).',
  'Firewall or IPS rate limits: `iptables -L INPUT -n --line-numbers` (or `nft list ruleset`) for `recent`, `hashlimit` or `REJECT --reject-with tcp-reset` rules on port {port}; cloud security groups and network IPS may reset SSH bursts too.',
  'Server log: `grep -E "MaxStartups|refused connect|Connection reset|penalty" /var/log/auth.log` (or `journalctl -u ssh`) around the time of the job.',
  'If nothing on the server explains it, try another port or address, and ask the network administrators about middleboxes between the runner and the server.',
];

export const CAUSE_HELP: Readonly<Record<CauseCode, CauseHelp>> = {
  usage: { summary: 'The command line or configuration is invalid; nothing was attempted.', checks: ['Run `safe-scp --help`; see the README table of options and their SAFE_SCP_* twins.'] },
  config: {
    summary: 'A local setting cannot be used (throttle state directory, report file or ssh_config); nothing was attempted.',
    checks: [
      'The option named above (or its SAFE_SCP_* twin) points at a path this job cannot use: check it exists, is a directory or file as expected, and is writable by this user (`ls -ld PATH`).',
      'The throttle state directory must be owned by this user and not writable by others; unset SAFE_SCP_STATE_DIR to use the default ($TMPDIR/safe-scp-UID).',
    ],
  },
  'local-source-missing': { summary: 'A local path does not exist.', checks: ['Check the path relative to the job\'s working directory (`ls -la`), and that the artifact or build step produced it.'] },
  'local-permission-denied': { summary: 'A local file or directory cannot be read or written.', checks: ['Check the permissions of the local path (`ls -la`).'] },
  'local-io': { summary: 'A local file-system operation failed.', checks: ['Check free space (`df -h .`) and the local path.'] },
  'throttled-by-server': {
    summary: 'The server refused the connection before the SSH version string and said why: sshd was over its MaxStartups limit (or a penalty / "not allowed at this time" rule).',
    checks: RESET_CHECKS,
  },
  'reset-before-banner': {
    summary: 'The server (or something in front of it) reset the connection before sending its SSH version string: the classic `kex_exchange_identification: read: Connection reset by peer`. sshd MaxStartups, fail2ban/DenyHosts, hosts.deny, or a firewall/IPS rate rule are the usual causes.',
    checks: RESET_CHECKS,
  },
  'closed-before-banner': {
    summary: 'The server closed the connection before sending its SSH version string (`kex_exchange_identification: Connection closed by remote host`): the same family as a reset (MaxStartups, TCP wrappers, fail2ban), or sshd crashing on accept.',
    checks: RESET_CHECKS,
  },
  'banner-timeout': {
    summary: 'The TCP connection opened but the server never sent an SSH version string: an overloaded sshd, a proxy or firewall that swallows the connection, or a service that waits for the client to speak first.',
    checks: ['Check that sshd (not another service) listens on that port: `ss -tlnp | grep :{port}` on the server.', 'Check sshd load and `LoginGraceTime`; look for stuck sshd processes (`ps -ef | grep sshd`).', 'Check firewalls/IPS that accept and then drop traffic.'],
  },
  'connect-refused': {
    summary: 'Nothing accepted the TCP connection: sshd is not running on that port, or a firewall rejects it.',
    checks: ['On the server: `systemctl status ssh` and `ss -tlnp | grep sshd` (which port?).', 'Check the port (-P / scp://host:port) and firewall rules (`iptables -L INPUT -n --line-numbers`).'],
  },
  'connect-timeout': {
    summary: 'The TCP connection did not open in time: the address is unreachable or packets are dropped by a firewall.',
    checks: ['Check routing and firewalls between the runner and the server (security groups, allow-lists for the runner\'s egress IPs).', 'Try from another machine: `nc -vz {host} {port}`.'],
  },
  'connect-failed': { summary: 'The TCP connection failed.', checks: ['Check the address, routing and firewalls.'] },
  'dns-failure': { summary: 'The host name could not be resolved right now (a temporary DNS failure).', checks: ['Check the runner\'s resolver (`getent hosts {host}`).'] },
  'dns-not-found': { summary: 'The host name does not exist in DNS.', checks: ['Check the spelling of the host; check `getent hosts {host}` on the runner.'] },
  'not-ssh': { summary: 'Something answered on that port, but it is not an SSH server.', checks: ['Check the port number: a web server or another service listens there (see the text it sent above).'] },
  'kex-no-common-algorithm': {
    summary: 'Client and server share no key-exchange, cipher, MAC or host-key algorithm.',
    checks: ['Compare `ssh -Q kex` / `ssh -Q cipher` with the server\'s `KexAlgorithms`, `Ciphers`, `HostKeyAlgorithms` in sshd_config.', 'If only some host key types are pinned, check that the server offers one of them (`ssh-keyscan -t TYPE`).'],
  },
  'connection-lost-in-handshake': {
    summary: 'The connection was lost during key exchange or authentication: often the same limits as a reset before the banner (MaxStartups, IPS), or an unstable network.',
    checks: RESET_CHECKS,
  },
  'kex-timeout': { summary: 'Key exchange or authentication did not finish in time.', checks: ['Check server load, `LoginGraceTime`, and slow DNS on the server (`UseDNS no`).'] },
  'host-key-unknown': {
    summary: 'The server\'s host key is not pinned. safe-scp never trusts an unknown key.',
    checks: ['Verify the fingerprint on the server: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`.', 'Then add the known_hosts line shown above to the SSH_KNOWN_HOSTS CI/CD variable (or pass --host-key SHA256:...).'],
  },
  'host-key-changed': {
    summary: 'The server offered a host key that differs from the pinned one: the server was reinstalled or its keys rotated, or someone is intercepting the connection.',
    checks: ['Ask the server\'s administrators whether the host keys changed; compare `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the server with the fingerprint above.', 'Only after confirming, update SSH_KNOWN_HOSTS.'],
  },
  'host-key-revoked': { summary: 'The server offered a key that is marked @revoked.', checks: ['Treat this as a security incident; the server must use a new key.'] },
  'auth-failed': {
    summary: 'The server accepted none of the offered keys.',
    checks: ['Check that the public key is in ~USER/.ssh/authorized_keys on the server, with safe permissions (`chmod 700 ~/.ssh; chmod 600 ~/.ssh/authorized_keys`).', 'Check the user name; grep the server log: `grep "Authentication refused\\|Invalid user\\|publickey" /var/log/auth.log`.', 'Check AllowUsers/AllowGroups/PubkeyAcceptedAlgorithms in sshd_config.'],
  },
  'key-invalid': { summary: 'The private key could not be read.', checks: ['Store the key as a File-type CI/CD variable, unmodified (`cat ~/.ssh/id_ed25519`), or with real newlines.'] },
  'sftp-unavailable': {
    summary: 'The server has no working SFTP subsystem.',
    checks: ['In /etc/ssh/sshd_config, add `Subsystem sftp internal-sftp` (or the sftp-server path) and reload sshd.', 'A ForceCommand or a restricted shell for this user can also block SFTP.'],
  },
  'remote-permission-denied': { summary: 'The server refused a file operation: permission denied.', checks: ['Check ownership and permissions of the target directory (`ls -ld DIR`) for the login user.'] },
  'remote-no-such-path': { summary: 'A remote path does not exist.', checks: ['Check the target path; create the parent directory first, or copy with -r into an existing directory.'] },
  'remote-disk-full': {
    summary: 'The filesystem that holds the target directory on the server is full (no space or no free inodes). The file under the final name was left as it was, and the partial temporary file was removed.',
    checks: [
      'On the server: `df -h TARGET_DIR` and `df -i TARGET_DIR` show free space and inodes of that filesystem; `findmnt -T TARGET_DIR` shows which mount it is (a small tmpfs or a separate /srv volume fills up first).',
      'Free space on that filesystem (old releases, logs: `du -xsh TARGET_DIR/* | sort -h`) or grow it, then run the job again; a user quota (`quota -s`) fills up the same way.',
    ],
  },
  'remote-failure': { summary: 'A remote file operation failed.', checks: ['Check the target path, free space (`df -h`) and permissions on the server.'] },
  'remote-unsafe-name': {
    summary: 'The server sent a file name that would leave the download target (`..`, a `/`, an absolute path, a control character or an empty name). Honest SFTP servers never list such names: the server is misbehaving or compromised. Nothing was written outside the local target.',
    checks: [
      'Treat the server as suspect: check that the host key is the one you expect and look at what runs as the SFTP subsystem (`Subsystem` in /etc/ssh/sshd_config, ForceCommand for this user).',
      'Look at the remote directory named above (`ls -la` on the server) for files with such names; do not retry until the server is understood.',
    ],
  },
  'connection-lost-mid-transfer': {
    summary: 'The connection dropped during the transfer (reset or closed).',
    checks: ['Check the network path (MTU, idle timeouts on firewalls/NAT), and sshd logs for the time of the drop.'],
  },
  stalled: {
    summary: 'The transfer made no progress and the server stopped answering keepalives.',
    checks: ['Check for MTU/fragmentation problems (`ping -M do -s 1400 HOST`) and stateful firewalls that drop idle or large flows.'],
  },
  'jump-forward-refused': {
    summary: 'The jump host authenticated us but refused to open a tunnel to the next host.',
    checks: ['On the jump host, sshd_config must allow forwarding for this user: `AllowTcpForwarding yes` (or `local`), and `PermitOpen` must include the target host:port.'],
  },
  'sftp-timeout': { summary: 'Opening the SFTP channel timed out.', checks: ['Check server load and the sftp subsystem.'] },
  'verify-failed': { summary: 'The transferred size did not match the source.', checks: ['Check free space on the target and whether the source changed during the copy.'] },
  timeout: { summary: 'The whole run took longer than --timeout.', checks: ['Raise --timeout (SAFE_SCP_TIMEOUT), or look at the attempts above for what was slow.'] },
  interrupted: { summary: 'The run was interrupted.', checks: [] },
  internal: { summary: 'An unexpected error; please report it with the output of -v.', checks: [] },
};
