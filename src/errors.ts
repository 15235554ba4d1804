// One error tree: every failure that leaves the library is a SafeScpError with a stable cause code.

/** Where in the life of a run something failed. */
export type Phase =
  | 'config'
  | 'local'
  | 'throttle'
  | 'dns'
  | 'tcp'
  | 'banner'
  | 'kex'
  | 'host-key'
  | 'auth'
  | 'sftp'
  | 'transfer'
  | 'verify'
  | 'run';

/** Stable cause codes (CONTRACT.md, Diagnosis). Tests, reports and the CLI switch on these. */
export type CauseCode =
  | 'usage'
  | 'config'
  | 'local-source-missing'
  | 'local-permission-denied'
  | 'local-io'
  | 'throttled-by-server'
  | 'reset-before-banner'
  | 'closed-before-banner'
  | 'banner-timeout'
  | 'connect-refused'
  | 'connect-timeout'
  | 'connect-failed'
  | 'dns-failure'
  | 'not-ssh'
  | 'kex-no-common-algorithm'
  | 'connection-lost-in-handshake'
  | 'kex-timeout'
  | 'dns-not-found'
  | 'sftp-timeout'
  | 'jump-forward-refused'
  | 'host-key-unknown'
  | 'host-key-changed'
  | 'host-key-revoked'
  | 'auth-failed'
  | 'key-invalid'
  | 'sftp-unavailable'
  | 'remote-permission-denied'
  | 'remote-no-such-path'
  | 'remote-disk-full'
  | 'remote-failure'
  | 'remote-unsafe-name'
  | 'connection-lost-mid-transfer'
  | 'stalled'
  | 'verify-failed'
  | 'timeout'
  | 'interrupted'
  | 'internal';

export interface CauseInfo {
  readonly exitCode: number;
  readonly retryable: boolean;
}

/** Exit code and retry policy per cause: the only table that decides either. */
export const CAUSES: Readonly<Record<CauseCode, CauseInfo>> = {
  usage: { exitCode: 2, retryable: false },
  config: { exitCode: 2, retryable: false },
  'local-source-missing': { exitCode: 1, retryable: false },
  'local-permission-denied': { exitCode: 1, retryable: false },
  'local-io': { exitCode: 1, retryable: false },
  'throttled-by-server': { exitCode: 75, retryable: true },
  'reset-before-banner': { exitCode: 75, retryable: true },
  'closed-before-banner': { exitCode: 75, retryable: true },
  'banner-timeout': { exitCode: 75, retryable: true },
  'connect-refused': { exitCode: 75, retryable: true },
  'connect-timeout': { exitCode: 75, retryable: true },
  'connect-failed': { exitCode: 75, retryable: true },
  'dns-failure': { exitCode: 75, retryable: true },
  'not-ssh': { exitCode: 1, retryable: false },
  'kex-no-common-algorithm': { exitCode: 1, retryable: false },
  'connection-lost-in-handshake': { exitCode: 75, retryable: true },
  'kex-timeout': { exitCode: 75, retryable: true },
  'dns-not-found': { exitCode: 1, retryable: false },
  'sftp-timeout': { exitCode: 75, retryable: true },
  'jump-forward-refused': { exitCode: 1, retryable: false },
  'host-key-unknown': { exitCode: 3, retryable: false },
  'host-key-changed': { exitCode: 3, retryable: false },
  'host-key-revoked': { exitCode: 3, retryable: false },
  'auth-failed': { exitCode: 4, retryable: false },
  'key-invalid': { exitCode: 4, retryable: false },
  'sftp-unavailable': { exitCode: 1, retryable: false },
  'remote-permission-denied': { exitCode: 1, retryable: false },
  'remote-no-such-path': { exitCode: 1, retryable: false },
  'remote-disk-full': { exitCode: 1, retryable: false },
  'remote-failure': { exitCode: 1, retryable: false },
  'remote-unsafe-name': { exitCode: 1, retryable: false },
  'connection-lost-mid-transfer': { exitCode: 75, retryable: true },
  stalled: { exitCode: 75, retryable: true },
  'verify-failed': { exitCode: 1, retryable: false },
  timeout: { exitCode: 75, retryable: false },
  interrupted: { exitCode: 130, retryable: false },
  internal: { exitCode: 1, retryable: false },
};

export interface SafeScpErrorOptions {
  readonly phase: Phase;
  readonly cause?: unknown;
  readonly host?: string;
  readonly remotePath?: string;
  /** Facts for the diagnosis (never secrets): fingerprints, bytes seen, server text. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Thrown for every failure the library reports; `code` is the contract. */
export class SafeScpError extends Error {
  override readonly name = 'SafeScpError';
  readonly code: CauseCode;
  readonly phase: Phase;
  readonly retryable: boolean;
  readonly exitCode: number;
  readonly host: string | undefined;
  readonly remotePath: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: CauseCode, message: string, options: SafeScpErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.phase = options.phase;
    this.retryable = CAUSES[code].retryable;
    this.exitCode = CAUSES[code].exitCode;
    this.host = options.host;
    this.remotePath = options.remotePath;
    this.details = options.details ?? {};
  }
}

export function isSafeScpError(value: unknown): value is SafeScpError {
  return value instanceof SafeScpError;
}

/** A usage or configuration error: exit 2, nothing attempted. */
export function usageError(message: string): SafeScpError {
  return new SafeScpError('usage', message, { phase: 'config' });
}

/** A local configuration problem (state dir, report path, ssh_config): exit 2, nothing attempted. */
export function configError(message: string, cause?: unknown): SafeScpError {
  return new SafeScpError('config', message, { phase: 'config', ...(cause === undefined ? {} : { cause }) });
}

/** Severity order for many hosts (CONTRACT: 3 > 4 > 1 > 75); higher wins. */
export function exitSeverity(exitCode: number): number {
  switch (exitCode) {
    case 0:
      return 0;
    case 75:
      return 1;
    case 1:
      return 2;
    case 4:
      return 3;
    case 3:
      return 4;
    default:
      return 5;
  }
}
