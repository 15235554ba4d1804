// The one place that reads ssh2 levels, errno codes, SFTP status codes and message text.
import { SafeScpError, isSafeScpError, type CauseCode, type Phase } from './errors.js';

/** What a connection attempt saw, filled in by ssh/connect.ts as it goes. */
export interface ConnectTrace {
  host: string;
  port: number;
  /** The phase the attempt was in when it ended. */
  phase: Phase;
  /** Bytes received before the server's SSH version line. */
  preBanner: Buffer;
  serverVersion?: string;
  ending?: 'reset' | 'close' | 'timeout';
  /** The first socket-level error (the informative one; ssh2 follows it with generic ones). */
  socketError?: { code?: string; message: string };
  address?: string;
  dnsMs?: number;
  tcpMs?: number;
  algorithms?: Record<string, string>;
  hostKey?: { type: string; fingerprint: string };
  /** The known_hosts line that would pin the offered key. */
  hostKeyLine?: string;
  /** Host key algorithms offered, when restricted to the pinned types. */
  pinnedKeyAlgorithms?: readonly string[];
  /** The host-key decision when it refused the key (more precise than ssh2's "Host denied"). */
  hostKeyRefusal?: { code: CauseCode; message: string; details: Record<string, unknown> };
}

/** Lines sshd and friends send before dropping a connection (OpenSSH sshd.c, libwrap). */
const THROTTLE_NOTICES = [/Exceeded MaxStartups/i, /Not allowed at this time/i, /too many (?:connections|users)/i, /penalty/i];

interface Coded {
  code?: unknown;
  level?: unknown;
  message?: unknown;
}

function fields(err: unknown): { code: string | undefined; level: string | undefined; message: string } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Coded;
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    level: typeof e.level === 'string' ? e.level : undefined,
    message: typeof e.message === 'string' ? e.message : String(err),
  };
}

/** Printable text of what the server sent before its banner, without control characters. */
export function preBannerText(trace: ConnectTrace): string {
  return stripControl(trace.preBanner.toString('latin1')).trim();
}

/** Terminal escape sequences as a whole (CSI, OSC, other ESC sequences, C1 CSI), so no `[31m` residue is left. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]|\u009b[0-?]*[ -/]*[@-~]/g;

export function stripControl(text: string, max = 4000): string {
  // Keep newlines out too: server text is shown inside our own single-line messages.
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r?\n/g, ' ').replace(ESCAPES, '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, max);
}

function looksLikeSsh(buf: Buffer): boolean {
  return buf.length === 0 || buf.toString('latin1').startsWith('SSH-');
}

/** Maps a failed connection attempt (before the SFTP channel is open) to a cause. */
export function classifyConnectFailure(trace: ConnectTrace, err: unknown): SafeScpError {
  if (isSafeScpError(err)) return err;
  const { code, level, message } = fields(err);
  const where = `${trace.host}:${trace.port}`;
  const base = { phase: trace.phase, host: trace.host, cause: err } as const;
  const make = (cause: CauseCode, text: string, phase: Phase = trace.phase): SafeScpError =>
    new SafeScpError(cause, text, { ...base, phase, details: { error: message } });

  if (trace.hostKeyRefusal) {
    return new SafeScpError(trace.hostKeyRefusal.code, trace.hostKeyRefusal.message, {
      ...base,
      phase: 'host-key',
      details: trace.hostKeyRefusal.details,
    });
  }
  const sockCode = trace.socketError?.code ?? code;

  switch (trace.phase) {
    case 'dns':
      if (code === 'ENOTFOUND') return make('dns-not-found', `cannot resolve ${trace.host}: no such host`);
      return make('dns-failure', `DNS lookup of ${trace.host} failed (${code ?? message})`);
    case 'tcp':
      if (trace.ending === 'timeout') return make('connect-timeout', `TCP connect to ${where} timed out`);
      if (sockCode === 'ECONNREFUSED') return make('connect-refused', `connection to ${where} refused: nothing listens there, or a firewall rejects it`);
      if (sockCode === 'ECONNRESET') return make('reset-before-banner', `connection to ${where} was reset during the TCP handshake`, 'banner');
      if (sockCode === 'ETIMEDOUT') return make('connect-timeout', `TCP connect to ${where} timed out`);
      return make('connect-failed', `cannot connect to ${where}: ${sockCode ?? message}`);
    case 'banner': {
      const text = preBannerText(trace);
      if (THROTTLE_NOTICES.some((re) => re.test(text))) {
        return make('throttled-by-server', `${where} refused the connection before the SSH version string and said "${text}"`);
      }
      if (!looksLikeSsh(trace.preBanner) && text.length > 0 && trace.ending !== 'reset') {
        return make('not-ssh', `${where} is not an SSH server: it answered "${text.slice(0, 80)}"`);
      }
      if (trace.ending === 'timeout') return make('banner-timeout', `${where} accepted the TCP connection but sent no SSH version string in time`);
      if (trace.ending === 'reset' || sockCode === 'ECONNRESET' || sockCode === 'EPIPE') {
        return make('reset-before-banner', `kex_exchange_identification: connection to ${where} reset by peer before the SSH version string`);
      }
      if (/Bad identification|Invalid SSH ident|Protocol mismatch/i.test(message)) {
        return make('not-ssh', `${where} is not an SSH server: ${message}`);
      }
      return make('closed-before-banner', `kex_exchange_identification: connection to ${where} closed by remote host before the SSH version string`);
    }
    case 'kex':
    case 'host-key':
      if (trace.pinnedKeyAlgorithms && /no matching host key/i.test(message)) {
        // Only the pinned key types were offered and the server has none of them: a changed key, not a setup error.
        return new SafeScpError('host-key-changed', `host key CHANGED for ${where}: the server offers none of the pinned key types (${trace.pinnedKeyAlgorithms.join(', ')})`, {
          ...base,
          phase: 'host-key',
          details: { pinnedTypes: [...trace.pinnedKeyAlgorithms] },
        });
      }
      if (/no matching|handshake failed/i.test(message) && level === 'handshake') {
        return make('kex-no-common-algorithm', `no common algorithm with ${where}: ${message}`, 'kex');
      }
      // The verifier refused the key without recording why (it threw, e.g. accept-new could not write
      // known_hosts): still a host-key refusal, never a transient loss to retry.
      if (/Host denied/i.test(message) && level === 'handshake') {
        return make('host-key-unknown', `the host key of ${where} was not accepted (${message})`, 'host-key');
      }
      if (trace.ending === 'timeout') return make('kex-timeout', `key exchange with ${where} did not finish in time`, 'kex');
      return make('connection-lost-in-handshake', `connection to ${where} lost during key exchange (${sockCode ?? (trace.ending === 'close' ? 'closed' : message)})`, 'kex');
    case 'auth':
      if (level === 'client-authentication' || /authentication methods failed/i.test(message)) {
        return make('auth-failed', `authentication to ${where} failed: the server accepted none of the offered keys`);
      }
      if (trace.ending === 'timeout') return make('kex-timeout', `authentication with ${where} did not finish in time`);
      return make('connection-lost-in-handshake', `connection to ${where} lost during authentication (${sockCode ?? (trace.ending === 'close' ? 'closed' : message)})`);
    case 'sftp':
      if (/Unable to start subsystem/i.test(message)) {
        return make('sftp-unavailable', `${where} has no SFTP subsystem (sshd_config "Subsystem sftp" is missing or failing)`);
      }
      if (trace.ending === 'timeout') return make('sftp-timeout', `opening the SFTP channel on ${where} timed out`);
      return make('connection-lost-mid-transfer', `connection to ${where} lost while opening SFTP (${sockCode ?? message})`);
    default:
      return make('internal', `unexpected failure connecting to ${where}: ${message}`);
  }
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_STATUS: Readonly<Record<number, CauseCode>> = {
  2: 'remote-no-such-path',
  3: 'remote-permission-denied',
  4: 'remote-failure',
  8: 'remote-failure',
  // SFTP v5+ (some servers send them regardless of the negotiated version).
  14: 'remote-disk-full',
  15: 'remote-disk-full',
};

/** OpenSSH's sftp-server maps ENOSPC to a bare SSH_FX_FAILURE; other servers say it in the message. */
const DISK_FULL = /no space left|disk full|quota exceeded|insufficient (?:disk )?space/i;

/** Maps an error from an SFTP request. */
export function classifySftpError(err: unknown, op: string, path: string): SafeScpError {
  if (isSafeScpError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as Coded;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.code === 'number') {
    const cause = DISK_FULL.test(message) ? 'remote-disk-full' : (SFTP_STATUS[e.code] ?? 'remote-failure');
    const what =
      cause === 'remote-no-such-path' ? 'no such file or directory' : cause === 'remote-permission-denied' ? 'permission denied' : message;
    return new SafeScpError(cause, `remote ${op} ${path}: ${what}`, { phase: 'transfer', remotePath: path, cause: err });
  }
  if (/No response from server|not connected|channel/i.test(message)) {
    return new SafeScpError('connection-lost-mid-transfer', `connection lost during remote ${op} ${path}`, { phase: 'transfer', remotePath: path, cause: err });
  }
  return new SafeScpError('remote-failure', `remote ${op} ${path}: ${message}`, { phase: 'transfer', remotePath: path, cause: err });
}

/** Free space on a remote filesystem, from statvfs@openssh.com. */
export interface RemoteSpace {
  /** Bytes an unprivileged user may still write (f_bavail * f_frsize). */
  readonly freeBytes: number;
  /** Files that may still be created (f_favail). */
  readonly freeFiles: number;
}

/** Below this, a filesystem counts as full whatever was being written (a block or two, or the server's reserve). */
const NEARLY_FULL = 64 * 1024;

/** Whether `err` is the bare SSH_FX_FAILURE a server sends for many things (OpenSSH's sftp-server: ENOSPC among them). */
export function isGenericSftpFailure(err: unknown): boolean {
  if (!isSafeScpError(err) || err.code !== 'remote-failure') return false;
  const raw = err.cause as Coded | undefined;
  return typeof raw === 'object' && raw !== null && raw.code === 4;
}

/**
 * A write to `dir` failed with a generic FAILURE: `space` is what statvfs said about that filesystem afterwards
 * (the temporary file still there), or undefined when the server cannot say. Disk full when less is free than
 * the `size` being written, or next to nothing, or no file can be created; otherwise the error as it was.
 */
export function classifyWithSpace(err: SafeScpError, space: RemoteSpace | undefined, dir: string, size: number): SafeScpError {
  if (!space || !isGenericSftpFailure(err)) return err;
  const noFiles = space.freeFiles === 0;
  if (!noFiles && space.freeBytes >= size && space.freeBytes >= NEARLY_FULL) return err;
  const what = noFiles ? 'no free inodes (no file can be created)' : `${space.freeBytes} bytes free, ${size} bytes to write`;
  return new SafeScpError('remote-disk-full', `${err.message}: the filesystem of ${dir} on the server is full (${what})`, {
    phase: err.phase,
    ...(err.host === undefined ? {} : { host: err.host }),
    remotePath: err.remotePath ?? dir,
    cause: err,
    details: { directory: dir, freeBytes: space.freeBytes, freeFiles: space.freeFiles, fileBytes: size },
  });
}

/** Maps a local file-system error. */
export function classifyLocalError(err: unknown, op: string, path: string): SafeScpError {
  if (isSafeScpError(err)) return err;
  const { code, message } = fields(err);
  if (code === 'ENOENT') return new SafeScpError('local-source-missing', `${path}: no such file or directory`, { phase: 'local', cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new SafeScpError('local-permission-denied', `${path}: permission denied (${op})`, { phase: 'local', cause: err });
  return new SafeScpError('local-io', `${op} ${path}: ${code ?? message}`, { phase: 'local', cause: err });
}

/** Maps the loss of an established connection (after the SFTP channel opened). */
export function connectionLost(host: string, port: number, err: unknown, stalled: boolean): SafeScpError {
  if (isSafeScpError(err)) return err;
  const { code, message } = fields(err);
  const where = `${host}:${port}`;
  if (stalled || /Keepalive timeout/i.test(message)) {
    return new SafeScpError('stalled', `transfer to ${where} stalled: no progress and no answer to keepalives`, { phase: 'transfer', host, cause: err });
  }
  return new SafeScpError('connection-lost-mid-transfer', `connection to ${where} lost mid-transfer (${code ?? message})`, { phase: 'transfer', host, cause: err });
}

/** A jump host's refusal to open a direct-tcpip channel to host:port (ssh2 gives only the server's text). */
export function classifyForwardFailure(jump: { readonly host: string; readonly port: number }, host: string, port: number, err: Error): SafeScpError {
  const where = `${host}:${port} via jump host ${jump.host}:${jump.port}`;
  const text = err.message;
  if (/prohibited/i.test(text)) {
    return new SafeScpError('jump-forward-refused', `jump host ${jump.host}:${jump.port} refuses to forward to ${host}:${port} (${text}): AllowTcpForwarding is off or restricted`, {
      phase: 'tcp',
      host: jump.host,
      cause: err,
    });
  }
  if (/refused/i.test(text)) return new SafeScpError('connect-refused', `connection to ${where} refused`, { phase: 'tcp', host, cause: err });
  return new SafeScpError('connect-failed', `cannot connect to ${where}: ${text}`, { phase: 'tcp', host, cause: err });
}
