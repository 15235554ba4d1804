// Unit tests for the input checks that keep bad values from reaching a connection (issue 14): durations beyond
// what Node's timers accept, negative durations, control characters in operands, an unclosed IPv6 bracket.
import { resolveConfig, type RawOptions } from '../../src/config.js';
import { SafeScpError } from '../../src/errors.js';
import { hasControl, parseOperand } from '../../src/operands.js';
import { MAX_TIMER_MS } from '../../src/util/duration.js';

const ENV = { HOME: '/home/ci', USER: 'runner' } as const;
const UPLOAD = ['dist/site.tgz', 'deploy@web1.example.com:/srv/app/'] as const;

/** The usage error (exit 2, phase config) that `run` throws. */
function usage(run: () => unknown): SafeScpError {
  try {
    run();
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(SafeScpError);
    const e = err as SafeScpError;
    expect([e.code, e.exitCode, e.phase]).toEqual(['usage', 2, 'config']);
    return e;
  }
  throw new Error('expected a usage error');
}

const resolve = (extra: Partial<RawOptions>): unknown => resolveConfig({ operands: UPLOAD, ...extra }, ENV);

describe('durations beyond what timers accept', () => {
  test.each<[string, Partial<RawOptions>, string]>([
    ['timeout', { timeout: '2147483648' }, '`--timeout` (SAFE_SCP_TIMEOUT)'],
    ['connect-timeout', { connectTimeout: '99999999999999' }, '`--connect-timeout` (SAFE_SCP_CONNECT_TIMEOUT)'],
    ['keepalive-interval', { keepaliveInterval: '600h' }, '`--keepalive-interval` (SAFE_SCP_KEEPALIVE_INTERVAL)'],
    ['stall-timeout', { stallTimeout: '9'.repeat(400) }, '`--stall-timeout` (SAFE_SCP_STALL_TIMEOUT)'],
    ['retry-delay', { retryDelay: '2147483648', retryMaxDelay: '2147483648' }, '`--retry-delay` (SAFE_SCP_RETRY_DELAY)'],
    ['retry-max-delay', { retryMaxDelay: '1000h' }, '`--retry-max-delay` (SAFE_SCP_RETRY_MAX_DELAY)'],
    ['host-interval', { hostInterval: '3000000000' }, '`--host-interval` (SAFE_SCP_HOST_INTERVAL)'],
    ['-o ConnectTimeout', { option: ['ConnectTimeout=99999999999'] }, '`-o ConnectTimeout`'],
    ['-o ServerAliveInterval', { option: ['ServerAliveInterval=3000000'] }, '`-o ServerAliveInterval`'],
  ])('%s: refused, naming the option and the maximum', (_name, extra, option) => {
    const { message } = usage(() => resolve(extra));
    expect(message).toContain(option);
    expect(message).toContain(`at most ${MAX_TIMER_MS}ms`);
  });

  test('the maximum itself is accepted', () => {
    expect(resolveConfig({ operands: UPLOAD, timeout: String(MAX_TIMER_MS) }, ENV).timeoutMs).toBe(MAX_TIMER_MS);
  });
});

describe('negative durations', () => {
  test.each<[Partial<RawOptions>, string]>([
    [{ timeout: '-5s' }, '`--timeout`'],
    [{ hostInterval: '-1' }, '`--host-interval`'],
    [{ retryDelay: ' -2s' }, '`--retry-delay`'],
  ])('%j names the option and says it must not be negative', (extra, option) => {
    const { message } = usage(() => resolve(extra));
    expect(message).toContain(option);
    expect(message).toContain('must not be negative');
  });
});

describe('control characters in operands', () => {
  test.each<[string, string]>([
    ['scp://deploy@web1/srv/a%00b', 'remote path'],
    ['scp://dep%00loy@web1/srv/app', 'user name'],
    ['scp://deploy@web1/srv/a%0Ab', 'remote path'],
    ['scp://deploy@web1/srv/a%7Fb', 'remote path'],
    ['deploy@web1:/srv/a\u0001b', 'remote path'],
    ['dep\tloy@web1:/srv/app', 'user name'],
    ['we\u001bb1:/srv/app', 'host'],
    ['deploy@[::1\u0000]:/srv/app', 'host'],
  ])('%j: the %s is refused', (operand, what) => {
    const { message } = usage(() => parseOperand(operand));
    expect(message).toContain(what);
    expect(message).toContain('control character');
    // The message shows the character escaped, never raw.
    expect(hasControl(message)).toBe(false);
  });

  test('a local path is left alone', () => {
    expect(parseOperand('./a\tb')).toEqual({ kind: 'local', path: './a\tb' });
  });

  test.each<[Partial<RawOptions>, string]>([
    [{ hosts: 'web1,we\u0000b2' }, '--hosts'],
    [{ jumpHost: 'bas\u0007tion' }, '-J'],
    [{ option: ['User=dep\u0000loy'] }, '`-o User`'],
  ])('%j: refused, naming the option', (extra, option) => {
    const operands = extra.hosts === undefined ? UPLOAD : ['dist/site.tgz', 'deploy@:/srv/app/'];
    const { message } = usage(() => resolveConfig({ operands, ...extra }, ENV));
    expect(message).toContain(option);
    expect(message).toContain('control character');
  });
});

describe('host syntax', () => {
  test.each(['scp://root@[::1/x', 'scp://[::1', 'scp://root@[::1:2222/x'])('%j: an unclosed bracket is a usage error naming the operand', (operand) => {
    const { message } = usage(() => parseOperand(operand));
    expect(message).toContain('unclosed "["');
    expect(message).toContain(operand);
  });

  test.each(['scp://we b1/x', 'scp://a]b/x', 'my host:/srv'])('%j: an impossible host is a usage error', (operand) => {
    expect(usage(() => parseOperand(operand)).message).toContain(`operand "${operand}"`);
  });

  test('an unclosed bracket in --hosts names --hosts', () => {
    const { message } = usage(() => resolveConfig({ operands: ['a', ':/srv'], hosts: '[::1' }, ENV));
    expect(message).toContain('--hosts');
  });

  test('good IPv6 operands still parse', () => {
    expect(parseOperand('scp://root@[::1]:2222/x')).toMatchObject({ host: '::1', port: 2222, user: 'root' });
    expect(parseOperand('root@[fe80::1%eth0]:x')).toMatchObject({ host: 'fe80::1%eth0', path: 'x' });
  });
});
