// The end of `safe-scp --help`: environment twins, the SSH_* variables and the exit codes (CONTRACT.md).
import { envTwin } from './env-options.js';

const SSH_VARIABLES: ReadonlyArray<readonly [string, string]> = [
  ['SSH_PRIVATE_KEY', 'the private key text, or the path of a File-type variable'],
  ['SSH_PRIVATE_KEY_PASSPHRASE', 'its passphrase, if any'],
  ['SSH_KNOWN_HOSTS', 'pinned host keys: known_hosts text or a file path'],
  ['SSH_AUTH_SOCK', 'an ssh-agent to authenticate with'],
];

const EXIT_CODES: ReadonlyArray<readonly [string, string]> = [
  ['0', 'everything transferred and verified'],
  ['1', 'failed for a reason retrying cannot fix (permission, missing path, disk full...)'],
  ['2', 'usage or configuration error; nothing was attempted'],
  ['3', 'host key unknown or changed'],
  ['4', 'authentication failed, or the key could not be read'],
  ['75', 'transient connection failure through every retry (retry the job on this code)'],
  ['130/143', 'interrupted by SIGINT / SIGTERM'],
];

/** `options`: the long options that have environment twins, as declared. */
export function helpEpilogue(options: readonly string[]): string {
  const table = (rows: ReadonlyArray<readonly [string, string]>): string[] => {
    const width = Math.max(...rows.map(([k]) => k.length));
    return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  };
  const width = Math.max(...options.map((o) => o.length)) + 4;
  const twins = options.map((o) => `--${o}`.padEnd(width) + envTwin(o));
  return [
    'Environment twins of the options (a flag beats its twin; an empty variable counts as unset;',
    'any other SAFE_SCP_* variable is ignored with a warning):',
    ...twins.map((t) => `  ${t}`),
    '',
    'Secrets and keys (as GitLab CI/CD variables; never printed):',
    ...table(SSH_VARIABLES),
    '',
    'Durations: 500ms, 10s, 2m, 1h, or plain milliseconds.',
    '',
    'Exit codes (with several hosts, the most severe: 3 > 4 > 1 > 75):',
    ...table(EXIT_CODES),
  ].join('\n');
}
