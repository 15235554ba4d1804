// Unit tests for scp operand parsing: local paths, host:path, scp:// URIs, IPv6, hostless (--hosts) operands.
import { SafeScpError } from '../../src/errors.js';
import { parseOperand, type Operand } from '../../src/operands.js';

function usageMessage(operand: string): string {
  try {
    parseOperand(operand);
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(SafeScpError);
    const e = err as SafeScpError;
    expect(e.code).toBe('usage');
    expect(e.exitCode).toBe(2);
    return e.message;
  }
  throw new Error(`expected a usage error for ${operand}`);
}

describe('parseOperand: local paths', () => {
  test.each([
    ['dist', 'plain relative file'],
    ['public/index.html', 'relative path with a slash'],
    ['/srv/app/build.tar.gz', 'absolute path'],
    ['./a:b', 'a slash precedes the colon'],
    ['/x:y', 'absolute path with a colon after the slash'],
    ['dir/file:with:colons', 'colons after the first slash'],
    ['../release-2024-01-01T10:00:00', 'timestamped name behind ../'],
    ['C', 'a single letter with no colon'],
    ['~/.ssh/config', 'home-relative local path (shell did not expand it)'],
    ['[::1]', 'bracket without the closing "]:" (scp treats it as local)'],
    ['[::1]/srv:x', 'bracket, then a slash before any "]:"'],
  ])('%s is local (%s)', (operand) => {
    expect(parseOperand(operand)).toEqual<Operand>({ kind: 'local', path: operand });
  });
});

describe('parseOperand: [user@]host:[path]', () => {
  test.each<[string, string, string | undefined, string]>([
    ['example.com:/srv/app', 'example.com', undefined, '/srv/app'],
    ['web1:public_html', 'web1', undefined, 'public_html'],
    ['deploy@web1.example.com:/var/www/html/', 'web1.example.com', 'deploy', '/var/www/html/'],
    ['deploy@web1:', 'web1', 'deploy', ''],
    ['web1:', 'web1', undefined, ''],
    ['deploy@web1:~', 'web1', 'deploy', ''],
    ['deploy@web1:~/releases/current', 'web1', 'deploy', 'releases/current'],
    ['deploy@web1:~other/x', 'web1', 'deploy', '~other/x'],
    ['host:a:b', 'host', undefined, 'a:b'],
    ['host:dir/with space', 'host', undefined, 'dir/with space'],
    ['ci+bot@example.com@jump:/x', 'jump', 'ci+bot@example.com', '/x'],
    // scp on POSIX: a drive-letter-looking operand is host "C".
    ['C:/Windows', 'C', undefined, '/Windows'],
    ['C:', 'C', undefined, ''],
    ['@web1:/x', 'web1', undefined, '/x'],
  ])('%s -> host %s user %s path %s', (operand, host, user, path) => {
    expect(parseOperand(operand)).toEqual<Operand>({ kind: 'remote', host, user, port: undefined, path });
  });
});

describe('parseOperand: hostless operands for --hosts', () => {
  test.each<[string, string | undefined, string]>([
    ['deploy@:/srv/app', 'deploy', '/srv/app'],
    [':/srv/app', undefined, '/srv/app'],
    ['deploy@:', 'deploy', ''],
    ['deploy@:releases', 'deploy', 'releases'],
  ])('%s has no host', (operand, user, path) => {
    expect(parseOperand(operand)).toEqual<Operand>({ kind: 'remote', host: '', user, port: undefined, path });
  });
});

describe('parseOperand: IPv6 in brackets', () => {
  test.each<[string, string, string | undefined, string]>([
    ['[::1]:/srv', '::1', undefined, '/srv'],
    ['[::1]:', '::1', undefined, ''],
    ['[2001:db8::10]:releases/app.tgz', '2001:db8::10', undefined, 'releases/app.tgz'],
    ['user@[fe80::1%eth0]:/x', 'fe80::1%eth0', 'user', '/x'],
    ['deploy@[2001:db8::1]:/var/www:old', '2001:db8::1', 'deploy', '/var/www:old'],
  ])('%s -> host %s', (operand, host, user, path) => {
    expect(parseOperand(operand)).toEqual<Operand>({ kind: 'remote', host, user, port: undefined, path });
  });
});

describe('parseOperand: scp:// URIs', () => {
  test.each<[string, string, string | undefined, number | undefined, string]>([
    ['scp://example.com/srv/app', 'example.com', undefined, undefined, 'srv/app'],
    ['scp://user@host:2222/path', 'host', 'user', 2222, 'path'],
    ['scp://user@host:2222//srv/app', 'host', 'user', 2222, '/srv/app'],
    ['scp://host', 'host', undefined, undefined, ''],
    ['scp://host/', 'host', undefined, undefined, ''],
    ['scp://host:2200', 'host', undefined, 2200, ''],
    ['scp://host/~/x', 'host', undefined, undefined, 'x'],
    ['scp://[::1]:2222/x', '::1', undefined, 2222, 'x'],
    ['scp://deploy@[2001:db8::1]/srv', '2001:db8::1', 'deploy', undefined, 'srv'],
    ['scp://[::1]/x', '::1', undefined, undefined, 'x'],
    ['scp://ci%40example.com@host/a%20b', 'host', 'ci@example.com', undefined, 'a b'],
    ['SCP://HOST/x', 'HOST', undefined, undefined, 'x'],
  ])('%s', (operand, host, user, port, path) => {
    expect(parseOperand(operand)).toEqual<Operand>({ kind: 'remote', host, user, port, path });
  });

  test.each([
    ['scp://host:99999/x', '99999'],
    ['scp://host:0/x', '0'],
    ['scp://host:ssh/x', 'ssh'],
    ['scp://host:/x', ''],
    ['scp://[::1]:70000/x', '70000'],
    ['scp://host:-22/x', '-22'],
  ])('invalid port in %s is a usage error naming it', (operand, port) => {
    const message = usageMessage(operand);
    expect(message).toContain(`invalid port "${port}"`);
    expect(message).toContain(operand);
    expect(message).toContain('1-65535');
  });

  test.each(['scp://', 'scp:///srv', 'scp://user@/srv', 'scp://:2222/x'])('%s without a host is a usage error', (operand) => {
    expect(usageMessage(operand)).toMatch(/missing host|invalid port/);
  });

  test('a malformed %-escape is a usage error, not a URIError', () => {
    expect(usageMessage('scp://host/100%')).toContain('scp://host/100%');
  });
});

test('an empty operand is a usage error', () => {
  expect(usageMessage('')).toContain('empty operand');
});
