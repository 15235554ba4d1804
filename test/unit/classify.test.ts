// Unit tests for classification: ssh2 event shapes (faults-and-perf.md section 2), SFTP statuses, local errors.
import {
  classifyConnectFailure,
  classifyForwardFailure,
  classifyLocalError,
  classifySftpError,
  classifyWithSpace,
  connectionLost,
  isGenericSftpFailure,
  preBannerText,
  stripControl,
  type ConnectTrace,
} from '../../src/classify.js';
import { CAUSES, SafeScpError, type CauseCode, type Phase } from '../../src/errors.js';

function trace(phase: Phase, extra: Partial<ConnectTrace> = {}): ConnectTrace {
  return { host: 'web1.example.com', port: 22, phase, preBanner: Buffer.alloc(0), ...extra };
}

/** An ssh2 / Node error as the research recorded it: message, optional errno code and ssh2 level. */
function sshError(message: string, extra: { code?: string; level?: string; syscall?: string } = {}): Error {
  return Object.assign(new Error(message), extra);
}

const RST = sshError('read ECONNRESET', { code: 'ECONNRESET', level: 'client-socket', syscall: 'read' });
const LOST = sshError('Connection lost before handshake', { level: 'protocol' });
const CLOSED = new Error('connection closed');
const TIMEOUT = new Error('connect timeout');

interface Row {
  name: string;
  trace: ConnectTrace;
  err: unknown;
  cause: CauseCode;
  phase: Phase;
  message?: RegExp;
}

const ROWS: Row[] = [
  {
    name: 'RST before banner (read ECONNRESET, then close)',
    trace: trace('banner', { ending: 'reset', socketError: { code: 'ECONNRESET', message: 'read ECONNRESET' } }),
    err: RST,
    cause: 'reset-before-banner',
    phase: 'banner',
    message: /kex_exchange_identification: .*reset by peer/,
  },
  {
    name: 'RST before banner seen only by the socket (write ECONNRESET)',
    trace: trace('banner', { socketError: { code: 'ECONNRESET', message: 'write ECONNRESET' } }),
    err: LOST,
    cause: 'reset-before-banner',
    phase: 'banner',
  },
  {
    name: 'RST winning the race against connect() on loopback',
    trace: trace('tcp', { ending: 'reset', socketError: { code: 'ECONNRESET', message: 'connect ECONNRESET 127.0.0.1:2223' } }),
    err: sshError('connect ECONNRESET 127.0.0.1:2223', { code: 'ECONNRESET', syscall: 'connect' }),
    cause: 'reset-before-banner',
    phase: 'banner',
  },
  {
    name: 'FIN before banner (Connection lost before handshake, no code)',
    trace: trace('banner', { ending: 'close' }),
    err: LOST,
    cause: 'closed-before-banner',
    phase: 'banner',
    message: /closed by remote host before the SSH version string/,
  },
  {
    name: 'pre-banner "Exceeded MaxStartups" then FIN',
    trace: trace('banner', { ending: 'close', preBanner: Buffer.from('Exceeded MaxStartups\r\n') }),
    err: LOST,
    cause: 'throttled-by-server',
    phase: 'banner',
    message: /said "Exceeded MaxStartups"/,
  },
  {
    name: 'pre-banner "Exceeded MaxStartups" then RST',
    trace: trace('banner', { ending: 'reset', preBanner: Buffer.from('Exceeded MaxStartups\r\n'), socketError: { code: 'ECONNRESET', message: 'read ECONNRESET' } }),
    err: RST,
    cause: 'throttled-by-server',
    phase: 'banner',
  },
  {
    name: 'pre-banner "Not allowed at this time" (PerSourcePenalties)',
    trace: trace('banner', { ending: 'close', preBanner: Buffer.from('Not allowed at this time\r\n') }),
    err: LOST,
    cause: 'throttled-by-server',
    phase: 'banner',
    message: /Not allowed at this time/,
  },
  {
    name: 'an HTTP server on the port',
    trace: trace('banner', { ending: 'close', preBanner: Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n') }),
    err: LOST,
    cause: 'not-ssh',
    phase: 'banner',
    message: /not an SSH server: it answered "HTTP\/1\.1 400 Bad Request/,
  },
  {
    name: 'ssh2 rejecting a bad identification',
    trace: trace('banner', { ending: 'close' }),
    err: sshError('Bad identification start', { level: 'protocol' }),
    cause: 'not-ssh',
    phase: 'banner',
  },
  {
    name: 'timeout resolving the name',
    trace: trace('dns', { ending: 'timeout' }),
    err: TIMEOUT,
    cause: 'dns-failure',
    phase: 'dns',
  },
  {
    name: 'timeout in the TCP handshake',
    trace: trace('tcp', { ending: 'timeout' }),
    err: TIMEOUT,
    cause: 'connect-timeout',
    phase: 'tcp',
    message: /TCP connect to web1\.example\.com:22 timed out/,
  },
  {
    name: 'ETIMEDOUT from the kernel',
    trace: trace('tcp', { socketError: { code: 'ETIMEDOUT', message: 'connect ETIMEDOUT 10.0.0.5:22' } }),
    err: sshError('connect ETIMEDOUT 10.0.0.5:22', { code: 'ETIMEDOUT', syscall: 'connect' }),
    cause: 'connect-timeout',
    phase: 'tcp',
  },
  {
    name: 'timeout waiting for the banner (hang, no bytes)',
    trace: trace('banner', { ending: 'timeout' }),
    err: TIMEOUT,
    cause: 'banner-timeout',
    phase: 'banner',
  },
  {
    name: 'timeout in key exchange',
    trace: trace('kex', { ending: 'timeout', serverVersion: 'SSH-2.0-OpenSSH_9.6' }),
    err: TIMEOUT,
    cause: 'kex-timeout',
    phase: 'kex',
  },
  {
    name: 'timeout in authentication',
    trace: trace('auth', { ending: 'timeout', serverVersion: 'SSH-2.0-OpenSSH_9.6' }),
    err: TIMEOUT,
    cause: 'kex-timeout',
    phase: 'auth',
  },
  {
    name: 'timeout opening SFTP',
    trace: trace('sftp', { ending: 'timeout' }),
    err: TIMEOUT,
    cause: 'sftp-timeout',
    phase: 'sftp',
  },
  {
    name: 'ECONNREFUSED',
    trace: trace('tcp', { socketError: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.0.0.5:22' } }),
    err: sshError('connect ECONNREFUSED 10.0.0.5:22', { code: 'ECONNREFUSED', syscall: 'connect' }),
    cause: 'connect-refused',
    phase: 'tcp',
    message: /refused/,
  },
  {
    name: 'EHOSTUNREACH',
    trace: trace('tcp', { socketError: { code: 'EHOSTUNREACH', message: 'connect EHOSTUNREACH 10.0.0.5:22' } }),
    err: sshError('connect EHOSTUNREACH 10.0.0.5:22', { code: 'EHOSTUNREACH' }),
    cause: 'connect-failed',
    phase: 'tcp',
  },
  {
    name: 'ENOTFOUND',
    trace: trace('dns'),
    err: sshError('getaddrinfo ENOTFOUND web1.example.com', { code: 'ENOTFOUND', syscall: 'getaddrinfo' }),
    cause: 'dns-not-found',
    phase: 'dns',
    message: /cannot resolve web1\.example\.com/,
  },
  {
    name: 'EAI_AGAIN',
    trace: trace('dns'),
    err: sshError('getaddrinfo EAI_AGAIN web1.example.com', { code: 'EAI_AGAIN', syscall: 'getaddrinfo' }),
    cause: 'dns-failure',
    phase: 'dns',
    message: /EAI_AGAIN/,
  },
  {
    name: 'handshake "no matching" algorithm',
    trace: trace('kex', { serverVersion: 'SSH-2.0-OpenSSH_6.6' }),
    err: sshError('Handshake failed: no matching key exchange algorithm', { level: 'handshake' }),
    cause: 'kex-no-common-algorithm',
    phase: 'kex',
    message: /no common algorithm/,
  },
  {
    name: 'FIN right after the banner / mid-KEX: end, close, no error',
    trace: trace('kex', { ending: 'close', serverVersion: 'SSH-2.0-OpenSSH_9.6' }),
    err: CLOSED,
    cause: 'connection-lost-in-handshake',
    phase: 'kex',
    message: /lost during key exchange \(closed\)/,
  },
  {
    name: 'RST mid-KEX',
    trace: trace('kex', { ending: 'reset', serverVersion: 'SSH-2.0-OpenSSH_9.6', socketError: { code: 'ECONNRESET', message: 'read ECONNRESET' } }),
    err: RST,
    cause: 'connection-lost-in-handshake',
    phase: 'kex',
    message: /ECONNRESET/,
  },
  {
    name: 'host verifier said no without recording why (Host denied)',
    trace: trace('host-key', { ending: 'close', serverVersion: 'SSH-2.0-OpenSSH_9.6' }),
    err: sshError('Host denied (verification failed)', { level: 'handshake' }),
    cause: 'host-key-unknown',
    phase: 'host-key',
  },
  {
    name: 'client-authentication: all methods failed',
    trace: trace('auth', { serverVersion: 'SSH-2.0-OpenSSH_9.6' }),
    err: sshError('All configured authentication methods failed', { level: 'client-authentication' }),
    cause: 'auth-failed',
    phase: 'auth',
    message: /authentication to web1\.example\.com:22 failed/,
  },
  {
    name: 'close during auth',
    trace: trace('auth', { ending: 'close' }),
    err: CLOSED,
    cause: 'connection-lost-in-handshake',
    phase: 'auth',
  },
  {
    name: 'no SFTP subsystem',
    trace: trace('sftp'),
    err: new Error('Unable to start subsystem: sftp'),
    cause: 'sftp-unavailable',
    phase: 'sftp',
    message: /no SFTP subsystem/,
  },
  {
    name: 'connection lost while opening SFTP',
    trace: trace('sftp', { ending: 'close' }),
    err: CLOSED,
    cause: 'connection-lost-mid-transfer',
    phase: 'sftp',
  },
];

describe('classifyConnectFailure', () => {
  test.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const e = classifyConnectFailure(row.trace, row.err);
    expect(e).toBeInstanceOf(SafeScpError);
    expect(e.code).toBe(row.cause);
    expect(e.phase).toBe(row.phase);
    expect(e.host).toBe('web1.example.com');
    expect(e.exitCode).toBe(CAUSES[row.cause].exitCode);
    expect(e.retryable).toBe(CAUSES[row.cause].retryable);
    expect(e.cause).toBe(row.err);
    if (row.message) expect(e.message).toMatch(row.message);
  });

  test.each<[CauseCode, number, boolean]>([
    ['throttled-by-server', 75, true],
    ['reset-before-banner', 75, true],
    ['closed-before-banner', 75, true],
    ['banner-timeout', 75, true],
    ['connect-refused', 75, true],
    ['connect-timeout', 75, true],
    ['dns-failure', 75, true],
    ['connection-lost-in-handshake', 75, true],
    ['host-key-unknown', 3, false],
    ['host-key-changed', 3, false],
    ['auth-failed', 4, false],
    ['key-invalid', 4, false],
    ['not-ssh', 1, false],
    ['kex-no-common-algorithm', 1, false],
    ['sftp-unavailable', 1, false],
    ['remote-disk-full', 1, false],
    ['remote-unsafe-name', 1, false],
  ])('%s exits %d, retryable %s (CONTRACT table)', (cause, exitCode, retryable) => {
    expect(CAUSES[cause]).toEqual({ exitCode, retryable });
  });

  test.each<[string, ConnectTrace, unknown]>([
    ['a banner-phase reset', trace('banner', { ending: 'reset' }), RST],
    ['a handshake error', trace('host-key', { serverVersion: 'SSH-2.0-OpenSSH_9.6' }), sshError('Host denied (verification failed)', { level: 'handshake' })],
    ['an auth failure', trace('auth'), sshError('All configured authentication methods failed', { level: 'client-authentication' })],
  ])('a hostKeyRefusal in the trace wins over %s', (_name, base, err) => {
    const refused = {
      ...base,
      hostKey: { type: 'ssh-ed25519', fingerprint: 'SHA256:offered' },
      hostKeyRefusal: {
        code: 'host-key-changed' as const,
        message: 'host key for web1.example.com:22 changed',
        details: { offered: { type: 'ssh-ed25519', fingerprint: 'SHA256:offered' }, pinned: ['SHA256:pinned'] },
      },
    };
    const e = classifyConnectFailure(refused, err);
    expect(e.code).toBe('host-key-changed');
    expect(e.phase).toBe('host-key');
    expect(e.exitCode).toBe(3);
    expect(e.retryable).toBe(false);
    expect(e.message).toBe('host key for web1.example.com:22 changed');
    expect(e.details).toEqual(refused.hostKeyRefusal.details);
  });

  test('a SafeScpError (e.g. interrupted) passes through unchanged', () => {
    const interrupted = new SafeScpError('interrupted', 'interrupted', { phase: 'run' });
    expect(classifyConnectFailure(trace('banner', { ending: 'reset' }), interrupted)).toBe(interrupted);
  });

  test('a non-Error value still yields a message', () => {
    const e = classifyConnectFailure(trace('tcp'), 'socket hang up');
    expect(e.code).toBe('connect-failed');
    expect(e.message).toContain('socket hang up');
  });

  test('server text in the message has no control characters', () => {
    const e = classifyConnectFailure(trace('banner', { ending: 'close', preBanner: Buffer.from('\u001b[2J\u001b[31mExceeded MaxStartups\u0007\r\n') }), LOST);
    expect(e.code).toBe('throttled-by-server');
    expect(e.message).toContain('said "Exceeded MaxStartups"');
    // eslint-disable-next-line no-control-regex
    expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  test('preBannerText decodes, strips and trims what came before the version line', () => {
    expect(preBannerText(trace('banner', { preBanner: Buffer.from('  Exceeded MaxStartups\r\n') }))).toBe('Exceeded MaxStartups');
    expect(preBannerText(trace('banner'))).toBe('');
  });
});

describe('classifySftpError', () => {
  test.each<[string, { code: number; message: string }, CauseCode, string]>([
    ['status 2 NO_SUCH_FILE', { code: 2, message: 'No such file' }, 'remote-no-such-path', 'remote open /srv/app/x: no such file or directory'],
    ['status 3 PERMISSION_DENIED', { code: 3, message: 'Permission denied' }, 'remote-permission-denied', 'remote open /srv/app/x: permission denied'],
    ['status 4 FAILURE', { code: 4, message: 'Failure' }, 'remote-failure', 'remote open /srv/app/x: Failure'],
    ['status 8 OP_UNSUPPORTED', { code: 8, message: 'Operation unsupported' }, 'remote-failure', 'remote open /srv/app/x: Operation unsupported'],
    ['status 4 saying the disk is full', { code: 4, message: 'No space left on device' }, 'remote-disk-full', 'remote open /srv/app/x: No space left on device'],
    ['status 14 NO_SPACE_ON_FILESYSTEM', { code: 14, message: 'No space on filesystem' }, 'remote-disk-full', 'remote open /srv/app/x: No space on filesystem'],
    ['status 15 QUOTA_EXCEEDED', { code: 15, message: 'Quota exceeded' }, 'remote-disk-full', 'remote open /srv/app/x: Quota exceeded'],
    ['an unknown status', { code: 99, message: 'Weird' }, 'remote-failure', 'remote open /srv/app/x: Weird'],
  ])('%s', (_name, fields, cause, message) => {
    const err = Object.assign(new Error(fields.message), { code: fields.code });
    const e = classifySftpError(err, 'open', '/srv/app/x');
    expect(e.code).toBe(cause);
    expect(e.message).toBe(message);
    expect(e.phase).toBe('transfer');
    expect(e.remotePath).toBe('/srv/app/x');
    expect(e.exitCode).toBe(1);
    expect(e.retryable).toBe(false);
  });

  test.each<[string, CauseCode]>([
    ['No response from server', 'connection-lost-mid-transfer'],
    ['Channel not open', 'connection-lost-mid-transfer'],
    ['Unexpected handle', 'remote-failure'],
  ])('message only: %s', (message, cause) => {
    const e = classifySftpError(new Error(message), 'rename', '/srv/app/.x.tmp');
    expect(e.code).toBe(cause);
    expect(e.message).toContain('/srv/app/.x.tmp');
    expect(e.retryable).toBe(cause === 'connection-lost-mid-transfer');
  });

  test('a SafeScpError passes through', () => {
    const lost = new SafeScpError('stalled', 'stalled', { phase: 'transfer' });
    expect(classifySftpError(lost, 'write', '/x')).toBe(lost);
  });
});

describe('classifyLocalError', () => {
  function errno(code: string, message: string): NodeJS.ErrnoException {
    return Object.assign(new Error(message), { code });
  }

  test.each<[string, NodeJS.ErrnoException, CauseCode, string]>([
    ['ENOENT', errno('ENOENT', "ENOENT: no such file or directory, stat 'dist'"), 'local-source-missing', 'dist: no such file or directory'],
    ['EACCES', errno('EACCES', "EACCES: permission denied, open 'dist'"), 'local-permission-denied', 'dist: permission denied (open)'],
    ['EPERM', errno('EPERM', 'EPERM: operation not permitted'), 'local-permission-denied', 'dist: permission denied (open)'],
    ['EISDIR', errno('EISDIR', 'EISDIR: illegal operation on a directory'), 'local-io', 'open dist: EISDIR'],
  ])('%s', (_name, err, cause, message) => {
    const e = classifyLocalError(err, 'open', 'dist');
    expect(e.code).toBe(cause);
    expect(e.message).toBe(message);
    expect(e.phase).toBe('local');
    expect(e.exitCode).toBe(1);
    expect(e.retryable).toBe(false);
  });

  test('an error without a code keeps its message', () => {
    expect(classifyLocalError(new Error('disk on fire'), 'read', 'dist').message).toBe('read dist: disk on fire');
  });
});

describe('connectionLost', () => {
  test.each<[string, unknown, boolean, CauseCode]>([
    ['RST mid-upload', Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' }), false, 'connection-lost-mid-transfer'],
    ['FIN mid-upload', new Error('connection closed'), false, 'connection-lost-mid-transfer'],
    ['keepalive timeout', Object.assign(new Error('Keepalive timeout'), { level: 'client-timeout' }), false, 'stalled'],
    ['watchdog stall', new Error('connection closed'), true, 'stalled'],
  ])('%s', (_name, err, stalled, cause) => {
    const e = connectionLost('web1', 22, err, stalled);
    expect(e.code).toBe(cause);
    expect(e.exitCode).toBe(75);
    expect(e.retryable).toBe(true);
  });
});

describe('stripControl', () => {
  test.each<[string, string, string]>([
    ['CSI colour and clear-screen sequences', '\u001b[2J\u001b[1;31mEvil\u001b[0m text', 'Evil text'],
    ['an OSC title sequence ended by BEL', '\u001b]0;pwned\u0007hello', 'hello'],
    ['an OSC hyperlink ended by ST', '\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\', 'link'],
    ['a lone ESC pair', 'a\u001bcb', 'ab'],
    ['NUL and BEL', 'a\u0000b\u0007c', 'abc'],
    ['CR/LF and LF become spaces', 'line1\r\nline2\nline3', 'line1 line2 line3'],
    ['a bare CR (line overwrite) is removed', 'visible\rhidden', 'visiblehidden'],
    ['DEL', 'a\u007fb', 'ab'],
    ['C1 controls (0x80-0x9f)', 'a\u0085b\u0090c\u009fd', 'abcd'],
    ['a charset designation (ESC ( B)', 'a\u001b(Bb', 'ab'],
    ['C1 CSI with parameters', 'x\u009b31my', 'xy'],
    ['tabs', 'a\tb', 'ab'],
    ['printable latin1 and unicode stay', 'Grüße – ok', 'Grüße – ok'],
  ])('%s', (_name, input, output) => {
    expect(stripControl(input)).toBe(output);
  });

  test('output is capped (at max when given)', () => {
    expect(stripControl('x'.repeat(2000), 500)).toHaveLength(500);
    expect(stripControl('x'.repeat(100_000)).length).toBeLessThanOrEqual(4000);
  });
});

describe('classifyWithSpace (a bare FAILURE, then statvfs of the target directory)', () => {
  const MiB = 1024 * 1024;
  const failure = (code = 4, message = 'Failure'): SafeScpError => classifySftpError(Object.assign(new Error(message), { code }), 'write', '/srv/app/.x.part');

  test.each<[string, { freeBytes: number; freeFiles: number } | undefined, number, CauseCode]>([
    ['less free than the file', { freeBytes: 4096, freeFiles: 1000 }, 50 * MiB, 'remote-disk-full'],
    ['nothing free, a tiny file', { freeBytes: 0, freeFiles: 1000 }, 10, 'remote-disk-full'],
    ['next to nothing free (under 64 KiB), a tinier file', { freeBytes: 8192, freeFiles: 1000 }, 100, 'remote-disk-full'],
    ['no free inodes', { freeBytes: 900 * MiB, freeFiles: 0 }, 10, 'remote-disk-full'],
    ['plenty free: something else failed', { freeBytes: 900 * MiB, freeFiles: 1000 }, 50 * MiB, 'remote-failure'],
    ['statvfs not offered: the server\'s word stands', undefined, 50 * MiB, 'remote-failure'],
  ])('%s -> %s', (_name, space, size, cause) => {
    const e = classifyWithSpace(failure(), space, '/srv/app', size);
    expect(e.code).toBe(cause);
    expect(e.exitCode).toBe(1);
    expect(e.retryable).toBe(false);
    if (cause === 'remote-disk-full') {
      expect(e.message).toMatch(/^remote write \/srv\/app\/\.x\.part: Failure: the filesystem of \/srv\/app on the server is full \(/);
      expect(e.details).toEqual({ directory: '/srv/app', freeBytes: space?.freeBytes, freeFiles: space?.freeFiles, fileBytes: size });
      expect(e.remotePath).toBe('/srv/app/.x.part');
    }
  });

  test('the evidence is in the message: free bytes and size, or the inodes', () => {
    expect(classifyWithSpace(failure(), { freeBytes: 0, freeFiles: 5 }, '/srv/app', 52428800).message).toContain('(0 bytes free, 52428800 bytes to write)');
    expect(classifyWithSpace(failure(), { freeBytes: MiB, freeFiles: 0 }, '/srv/app', 1).message).toContain('no free inodes');
  });

  test('only a generic FAILURE is reconsidered: permission denied, unsupported and lost connections stay as they are', () => {
    const full = { freeBytes: 0, freeFiles: 0 };
    for (const e of [failure(3, 'Permission denied'), failure(8, 'Operation unsupported'), classifySftpError(new Error('No response from server'), 'write', '/x')]) {
      expect(isGenericSftpFailure(e)).toBe(false);
      expect(classifyWithSpace(e, full, '/srv', 10)).toBe(e);
    }
    expect(isGenericSftpFailure(failure())).toBe(true);
    expect(isGenericSftpFailure(new Error('Failure'))).toBe(false);
  });
});

test('classifyForwardFailure: a jump host that prohibits forwarding, a refused target, anything else', () => {
  const jump = { host: 'bastion', port: 22 };
  const prohibited = classifyForwardFailure(jump, 'web1', 2222, new Error('(SSH) Channel open failure: administratively prohibited'));
  expect([prohibited.code, prohibited.host]).toEqual(['jump-forward-refused', 'bastion']);
  expect(prohibited.message).toContain('AllowTcpForwarding');
  expect(classifyForwardFailure(jump, 'web1', 2222, new Error('(SSH) Channel open failure: Connection refused')).code).toBe('connect-refused');
  const other = classifyForwardFailure(jump, 'web1', 2222, new Error('(SSH) Channel open failure: open failed'));
  expect([other.code, other.message]).toEqual(['connect-failed', 'cannot connect to web1:2222 via jump host bastion:22: (SSH) Channel open failure: open failed']);
});
