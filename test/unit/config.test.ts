// Unit tests for resolveConfig: direction, validation messages, durations, defaults, -o options, --hosts, pins.
import { createHash } from 'node:crypto';
import { DEFAULTS, resolveConfig, type HostTarget, type RawOptions, type ResolvedConfig } from '../../src/config.js';
import { SafeScpError } from '../../src/errors.js';

const ENV = { HOME: '/home/ci', USER: 'runner' } as const;
const UPLOAD = ['dist/site.tgz', 'deploy@web1.example.com:/srv/app/'] as const;
const FINGERPRINT = `SHA256:${createHash('sha256').update('host key blob').digest('base64').replace(/=+$/, '')}`;

/** Where a target connects, without the key and jump-host details ssh_config adds. */
const hostPortUser = ({ host, port, user }: HostTarget): HostTarget => ({ host, port, user });

function resolve(extra: Partial<RawOptions> = {}, env: Readonly<Record<string, string | undefined>> = ENV): ResolvedConfig {
  return resolveConfig({ operands: UPLOAD, ...extra }, env);
}

/** The usage error resolveConfig throws for these options (fails the test if it does not throw one). */
function usageError(raw: RawOptions, env: Readonly<Record<string, string | undefined>> = ENV): SafeScpError {
  try {
    resolveConfig(raw, env);
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(SafeScpError);
    const e = err as SafeScpError;
    expect(e.code).toBe('usage');
    expect(e.exitCode).toBe(2);
    expect(e.phase).toBe('config');
    return e;
  }
  throw new Error(`expected a usage error for ${JSON.stringify(raw)}`);
}

describe('direction', () => {
  test('local -> remote is an upload', () => {
    const c = resolve();
    expect(c.direction).toBe('upload');
    expect(c.sources).toEqual(['dist/site.tgz']);
    expect(c.target).toBe('/srv/app/');
    expect(c.hosts.map(hostPortUser)).toEqual<HostTarget[]>([{ host: 'web1.example.com', port: 22, user: 'deploy' }]);
  });

  test('several local sources upload into one remote directory', () => {
    const c = resolveConfig({ operands: ['index.html', 'assets', 'web1:public_html'] }, ENV);
    expect(c.direction).toBe('upload');
    expect(c.sources).toEqual(['index.html', 'assets']);
    expect(c.target).toBe('public_html');
    expect(c.hosts.map(hostPortUser)).toEqual<HostTarget[]>([{ host: 'web1', port: 22, user: 'runner' }]);
  });

  test('remote -> local is a download', () => {
    const c = resolveConfig({ operands: ['scp://deploy@web1:2222//var/log/app.log', 'logs/'] }, ENV);
    expect(c.direction).toBe('download');
    expect(c.sources).toEqual(['/var/log/app.log']);
    expect(c.target).toBe('logs/');
    expect(c.hosts.map(hostPortUser)).toEqual<HostTarget[]>([{ host: 'web1', port: 2222, user: 'deploy' }]);
  });

  test('several remote sources on one host download together', () => {
    const c = resolveConfig({ operands: ['web1:/etc/hosts', 'web1:/etc/os-release', '.'] }, ENV);
    expect(c.direction).toBe('download');
    expect(c.sources).toEqual(['/etc/hosts', '/etc/os-release']);
  });

  test.each<[string, readonly string[], string]>([
    ['remote-to-remote', ['web1:/srv/a', 'web2:/srv/b'], 'remote-to-remote copies are not supported'],
    ['local-to-local', ['a.txt', 'b.txt'], 'no remote operand'],
    ['mixed download sources', ['web1:/a', 'local.txt', 'out/'], 'cannot mix local and remote sources'],
    ['downloads from two hosts', ['web1:/a', 'web2:/b', 'out/'], 'same host'],
    ['a single operand', ['dist'], 'SOURCE... TARGET'],
    ['no operand', [], 'SOURCE... TARGET'],
    ['a hostless operand without --hosts', ['dist', 'deploy@:/srv/app'], 'use --hosts'],
  ])('%s is a usage error', (_name, operands, message) => {
    expect(usageError({ operands }).message).toContain(message);
  });
});

describe('defaults', () => {
  test('every default comes from DEFAULTS', () => {
    const c = resolve();
    expect(c).toMatchObject({
      retries: DEFAULTS.retries,
      retryDelayMs: 2000,
      retryMaxDelayMs: 20_000,
      connectTimeoutMs: 15_000,
      timeoutMs: 30 * 60_000,
      stallTimeoutMs: 60_000,
      keepaliveIntervalMs: 10_000,
      keepaliveCountMax: DEFAULTS.keepaliveCountMax,
      hostConcurrency: DEFAULTS.hostConcurrency,
      hostIntervalMs: 1000,
      parallel: DEFAULTS.parallel,
      limitBytesPerSecond: 0,
      strictHostKeyChecking: 'yes',
      knownHostsFiles: ['/home/ci/.ssh/known_hosts'],
      acceptNewFile: '/home/ci/.ssh/known_hosts',
      hostKeyFingerprints: [],
      identityFiles: [],
      jumpHosts: [],
      reportFile: undefined,
      recursive: false,
      preserve: false,
      quiet: false,
      verbose: false,
      json: false,
      dryRun: false,
    });
    expect(c.retries).toBe(5);
    expect(c.hosts[0]?.port).toBe(DEFAULTS.port);
  });

  test('the user defaults to $USER, then $LOGNAME', () => {
    const operands = ['dist', 'web1:/srv'];
    expect(resolveConfig({ operands }, { HOME: '/home/ci', USER: 'gitlab-runner' }).hosts[0]?.user).toBe('gitlab-runner');
    expect(resolveConfig({ operands }, { HOME: '/home/ci', LOGNAME: 'builder' }).hosts[0]?.user).toBe('builder');
  });

  test('empty strings (unset CI variables) fall back to the defaults', () => {
    const c = resolve({ retries: '', retryDelay: '', connectTimeout: '', limit: '', port: '', hostConcurrency: '', parallel: '' });
    expect(c.retries).toBe(5);
    expect(c.retryDelayMs).toBe(2000);
    expect(c.connectTimeoutMs).toBe(15_000);
    expect(c.limitBytesPerSecond).toBe(0);
    expect(c.hosts[0]?.port).toBe(22);
  });

  test('the returned object is frozen', () => {
    const c = resolve();
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as { retries: number }).retries = 1;
    }).toThrow(TypeError);
  });
});

describe('values that are accepted', () => {
  test.each<[string, Partial<RawOptions>, (c: ResolvedConfig) => unknown, unknown]>([
    ['--retries 0 (one attempt)', { retries: '0' }, (c) => c.retries, 0],
    ['--retries 3 as a number', { retries: 3 }, (c) => c.retries, 3],
    ['--retries " 2 " from an env var with spaces', { retries: ' 2 ' }, (c) => c.retries, 2],
    ['--retry-delay 500ms', { retryDelay: '500ms' }, (c) => c.retryDelayMs, 500],
    ['--retry-delay 10s', { retryDelay: '10s' }, (c) => c.retryDelayMs, 10_000],
    ['--retry-max-delay 2m', { retryMaxDelay: '2m' }, (c) => c.retryMaxDelayMs, 120_000],
    ['--retry-delay 1500 (plain ms)', { retryDelay: '1500' }, (c) => c.retryDelayMs, 1500],
    ['--retry-delay equal to --retry-max-delay', { retryDelay: '5s', retryMaxDelay: '5000' }, (c) => c.retryMaxDelayMs, 5000],
    ['--connect-timeout 30s', { connectTimeout: '30s' }, (c) => c.connectTimeoutMs, 30_000],
    ['--timeout 1h', { timeout: '1h' }, (c) => c.timeoutMs, 3_600_000],
    ['--host-interval 0 disables the gap', { hostInterval: '0' }, (c) => c.hostIntervalMs, 0],
    ['--host-interval 250ms', { hostInterval: '250ms' }, (c) => c.hostIntervalMs, 250],
    ['--host-concurrency 4', { hostConcurrency: '4' }, (c) => c.hostConcurrency, 4],
    ['--parallel 10', { parallel: '10' }, (c) => c.parallel, 10],
    ['-l 800 Kbit/s', { limit: '800' }, (c) => c.limitBytesPerSecond, 100_000],
    ['-P 2222', { port: '2222' }, (c) => c.hosts[0]?.port, 2222],
    ['-P as a number', { port: 2200 }, (c) => c.hosts[0]?.port, 2200],
    ['--report', { report: 'safe-scp-report.json' }, (c) => c.reportFile, 'safe-scp-report.json'],
    ['--accept-new', { acceptNew: true }, (c) => c.strictHostKeyChecking, 'accept-new'],
    ['-r -p -q', { recursive: true, preserve: true, quiet: true }, (c) => [c.recursive, c.preserve, c.quiet], [true, true, true]],
  ])('%s', (_name, extra, pick, expected) => {
    expect(pick(resolve(extra))).toEqual(expected);
  });

  test('staged commit: on for -r and several sources, off for one file, --no-staged and downloads', () => {
    expect(resolve().staged).toBe(false);
    expect(resolve({ recursive: true }).staged).toBe(true);
    expect(resolveConfig({ operands: ['a', 'b', 'web1:/srv/'] }, ENV).staged).toBe(true);
    expect(resolve({ recursive: true, staged: false }).staged).toBe(false);
    expect(resolve({ staged: true }).staged).toBe(true);
    expect(resolveConfig({ operands: ['web1:/srv/app', '.'], recursive: true }, ENV).staged).toBe(false);
  });

  test('a port in the operand wins over -P', () => {
    const c = resolveConfig({ operands: ['dist', 'scp://web1:2022/srv'], port: '2222' }, ENV);
    expect(c.hosts[0]?.port).toBe(2022);
  });
});

describe('validation messages name the option in backticks and the expected form', () => {
  const WHOLE = 'must be a whole number';
  const DURATION = 'must be a duration like 500ms, 10s, 2m or plain milliseconds';
  test.each<[string, Partial<RawOptions>, string, string]>([
    ['retries', { retries: 'five' }, '`--retries`', `${WHOLE} from 0 to 100, got "five"`],
    ['retries', { retries: '-1' }, '`--retries`', `${WHOLE} from 0 to 100, got "-1"`],
    ['retries', { retries: '1.5' }, '`--retries`', WHOLE],
    ['retries', { retries: '101' }, '`--retries`', 'from 0 to 100'],
    ['retry-delay', { retryDelay: 'soon' }, '`--retry-delay`', `${DURATION}, got "soon"`],
    ['retry-delay', { retryDelay: '-5s' }, '`--retry-delay`', DURATION],
    ['retry-delay', { retryDelay: '10 sec' }, '`--retry-delay`', DURATION],
    ['retry-max-delay', { retryMaxDelay: '1d' }, '`--retry-max-delay`', DURATION],
    ['connect-timeout', { connectTimeout: 'fast' }, '`--connect-timeout`', DURATION],
    ['connect-timeout', { connectTimeout: '50ms' }, '`--connect-timeout`', 'at least 100ms'],
    ['timeout', { timeout: '30 minutes' }, '`--timeout`', DURATION],
    ['timeout', { timeout: '0' }, '`--timeout`', 'at least 100ms'],
    ['host-concurrency', { hostConcurrency: '0' }, '`--host-concurrency`', `${WHOLE} from 1 to 64, got "0"`],
    ['host-concurrency', { hostConcurrency: 'many' }, '`--host-concurrency`', WHOLE],
    ['host-interval', { hostInterval: '1 second' }, '`--host-interval`', DURATION],
    ['limit', { limit: '0' }, '`--limit`', `${WHOLE} from 1 to 100000000, got "0"`],
    ['limit', { limit: '1M' }, '`--limit`', WHOLE],
    ['parallel', { parallel: '0' }, '`--parallel`', `${WHOLE} from 1 to 256`],
    ['parallel', { parallel: '257' }, '`--parallel`', WHOLE],
    ['port', { port: '0' }, '`--port`', `${WHOLE} from 1 to 65535, got "0"`],
    ['port', { port: '65536' }, '`--port`', WHOLE],
    ['port', { port: 'ssh' }, '`--port`', WHOLE],
    ['stall-timeout', { stallTimeout: 'never' }, '`--stall-timeout`', DURATION],
  ])('%s %j', (_name, extra, option, form) => {
    const { message } = usageError({ operands: UPLOAD, ...extra });
    expect(message).toContain(option);
    expect(message).toContain(form);
  });

  test('--retry-max-delay smaller than --retry-delay names both', () => {
    const { message } = usageError({ operands: UPLOAD, retryDelay: '10s', retryMaxDelay: '5s' });
    expect(message).toContain('`--retry-max-delay` (5000ms)');
    expect(message).toContain('`--retry-delay` (10000ms)');
  });

  test('a default --retry-max-delay below a raised --retry-delay is caught too', () => {
    expect(usageError({ operands: UPLOAD, retryDelay: '30s' }).message).toContain('`--retry-max-delay`');
  });
});

describe('-o Key=Value', () => {
  test.each<[string, (c: ResolvedConfig) => unknown, unknown]>([
    ['Port=2222', (c) => c.hosts[0]?.port, 2222],
    ['User=ci', (c) => c.hosts[0]?.user, 'deploy'], // the operand's user wins
    ['IdentityFile=~/.ssh/deploy_ed25519', (c) => c.identityFiles, ['/home/ci/.ssh/deploy_ed25519']],
    ['ConnectTimeout=5', (c) => c.connectTimeoutMs, 5000],
    ['UserKnownHostsFile=/etc/ci/known_hosts', (c) => c.knownHostsFiles, ['/etc/ci/known_hosts']],
    ['UserKnownHostsFile=~/kh1 ~/kh2', (c) => c.knownHostsFiles, ['/home/ci/kh1', '/home/ci/kh2']],
    ['StrictHostKeyChecking=yes', (c) => c.strictHostKeyChecking, 'yes'],
    ['StrictHostKeyChecking=accept-new', (c) => c.strictHostKeyChecking, 'accept-new'],
    ['ProxyJump=ops@bastion:2200', (c) => c.jumpHosts.map(hostPortUser), [{ host: 'bastion', port: 2200, user: 'ops' }]],
    ['ProxyJump=none', (c) => c.jumpHosts, []],
    ['ServerAliveInterval=30', (c) => c.keepaliveIntervalMs, 30_000],
    ['ServerAliveCountMax=5', (c) => c.keepaliveCountMax, 5],
    ['ConnectionAttempts=3', (c) => c.retries, 2],
    ['ConnectionAttempts=1', (c) => c.retries, 0],
    ['BatchMode=yes', (c) => c.retries, DEFAULTS.retries],
    ['port 2200', (c) => c.hosts[0]?.port, 2200],
    ['  ConnectTimeout = 7 ', (c) => c.connectTimeoutMs, 7000],
  ])('-o %s', (option, pick, expected) => {
    expect(pick(resolve({ option: [option] }))).toEqual(expected);
  });

  test('-o User applies when the operand names no user', () => {
    const c = resolveConfig({ operands: ['dist', 'web1:/srv'], option: ['User=ci'] }, ENV);
    expect(c.hosts[0]?.user).toBe('ci');
  });

  test('flags win over their -o twins', () => {
    const c = resolve({ option: ['Port=2200', 'ConnectTimeout=5', 'ConnectionAttempts=3'], port: '2222', connectTimeout: '9s', retries: '1' });
    expect(c.hosts[0]?.port).toBe(2222);
    expect(c.connectTimeoutMs).toBe(9000);
    expect(c.retries).toBe(1);
  });

  test('--known-hosts and -o UserKnownHostsFile add up; /dev/null is skipped', () => {
    const c = resolve({ knownHosts: ['/etc/ci/known_hosts'], option: ['UserKnownHostsFile=/dev/null ~/.ssh/extra'] });
    expect(c.knownHostsFiles).toEqual(['/etc/ci/known_hosts', '/home/ci/.ssh/extra']);
  });

  test('an unknown option is a usage error naming it and listing the supported ones', () => {
    const { message } = usageError({ operands: UPLOAD, option: ['Foo=bar'] });
    expect(message).toContain('`-o Foo`');
    expect(message).toContain('not supported');
    expect(message).toContain('ConnectTimeout');
  });

  test.each(['Port', '=2222', ''])('-o %j without Key=Value is a usage error', (option) => {
    expect(usageError({ operands: UPLOAD, option: [option] }).message).toContain('expected Key=Value');
  });

  test.each([['StrictHostKeyChecking=no'], ['StrictHostKeyChecking=off'], ['stricthostkeychecking=No']])(
    '-o %s is refused and says how to pin the key',
    (option) => {
      const { message } = usageError({ operands: UPLOAD, option: [option] });
      expect(message).toContain('refused');
      expect(message).toContain('SSH_KNOWN_HOSTS');
      expect(message).toContain('--host-key');
      expect(message).toContain('ssh-keyscan');
    },
  );

  test('StrictHostKeyChecking=no is refused even together with --accept-new', () => {
    expect(usageError({ operands: UPLOAD, acceptNew: true, option: ['StrictHostKeyChecking=no'] }).message).toContain('SSH_KNOWN_HOSTS');
  });

  test.each<[string, string, string]>([
    ['StrictHostKeyChecking=maybe', '`-o StrictHostKeyChecking=maybe`', 'expected yes or accept-new'],
    ['ConnectTimeout=5s', '`-o ConnectTimeout`', 'whole seconds, got "5s"'],
    ['ServerAliveInterval=often', '`-o ServerAliveInterval`', 'whole seconds'],
    ['ServerAliveCountMax=0', '`-o ServerAliveCountMax`', 'whole number from 1 to 100, got "0"'],
    ['ConnectionAttempts=three', '`-o ConnectionAttempts`', 'whole number from 1 to 101, got "three"'],
    ['ConnectionAttempts=0', '`-o ConnectionAttempts`', 'from 1 to 101, got "0"'],
    ['Port=ssh', '`-o Port`', 'whole number from 1 to 65535, got "ssh"'],
    ['ProxyJump=bastion:99999', '-J', 'invalid port'],
  ])('-o %s is a usage error naming it', (option, name, form) => {
    const { message } = usageError({ operands: UPLOAD, option: [option] });
    expect(message).toContain(name);
    expect(message).toContain(form);
  });
});

describe('--hosts', () => {
  test('a,b:2222,user@c with deploy@:/srv gives three targets', () => {
    const c = resolveConfig({ operands: ['dist', 'deploy@:/srv'], hosts: 'a,b:2222,user@c' }, ENV);
    expect(c.hosts.map(hostPortUser)).toEqual<HostTarget[]>([
      { host: 'a', port: 22, user: 'deploy' },
      { host: 'b', port: 2222, user: 'deploy' },
      { host: 'c', port: 22, user: 'user' },
    ]);
    expect(c.target).toBe('/srv');
  });

  test('entries inherit -P and the local user; newlines, spaces and comments are allowed', () => {
    const c = resolveConfig({ operands: ['dist', ':/srv'], port: '2200', hosts: ' web1 ,\n web2:22 # canary\n[2001:db8::1]:2222\n' }, ENV);
    expect(c.hosts.map(hostPortUser)).toEqual<HostTarget[]>([
      { host: 'web1', port: 2200, user: 'runner' },
      { host: 'web2', port: 22, user: 'runner' },
      { host: '2001:db8::1', port: 2222, user: 'runner' },
    ]);
  });

  test('downloads work per host too', () => {
    const c = resolveConfig({ operands: ['deploy@:/var/log/app.log', 'logs/'], hosts: 'a,b' }, ENV);
    expect(c.direction).toBe('download');
    expect(c.hosts.map((h) => h.host)).toEqual(['a', 'b']);
  });

  test('a host in the operand is a usage error that shows the hostless form', () => {
    const { message } = usageError({ operands: ['dist', 'deploy@web1:/srv'], hosts: 'a,b' });
    expect(message).toContain('--hosts');
    expect(message).toContain('"deploy@:/srv"');
  });

  test.each<[string, string]>([
    [', ,', '`--hosts` is empty'],
    ['a,b c', 'invalid host "b c"'],
    ['a,b:0', 'invalid port in "b:0"'],
    ['a,b:http', 'invalid port'],
  ])('--hosts %j is a usage error', (hosts, message) => {
    expect(usageError({ operands: ['dist', 'deploy@:/srv'], hosts }).message).toContain(message);
  });
});

describe('jump hosts', () => {
  test('-J takes a comma list; users default to the local user and ports to 22', () => {
    const c = resolve({ jumpHost: 'ops@bastion:2200, inner' });
    expect(c.jumpHosts.map(hostPortUser)).toEqual<HostTarget[]>([
      { host: 'bastion', port: 2200, user: 'ops' },
      { host: 'inner', port: 22, user: 'runner' },
    ]);
  });

  test('-J wins over -o ProxyJump', () => {
    expect(resolve({ jumpHost: 'j1', option: ['ProxyJump=j2'] }).jumpHosts.map((h) => h.host)).toEqual(['j1']);
  });

  test('an invalid -J is a usage error naming -J', () => {
    expect(usageError({ operands: UPLOAD, jumpHost: 'ops@' }).message).toContain('-J: invalid host');
  });
});

describe('host keys and identities', () => {
  test('--host-key accepts OpenSSH SHA256 fingerprints (repeatable)', () => {
    expect(resolve({ hostKey: [FINGERPRINT, `${FINGERPRINT}=`] }).hostKeyFingerprints).toEqual([FINGERPRINT, `${FINGERPRINT}=`]);
  });

  test.each([
    'MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48',
    'SHA256:tooShort',
    FINGERPRINT.replace('SHA256:', ''),
    `${FINGERPRINT}x`,
    `sha256:${FINGERPRINT.slice(7)}`,
  ])('--host-key %s is a usage error showing the expected form', (fp) => {
    const { message } = usageError({ operands: UPLOAD, hostKey: [fp] });
    expect(message).toContain('`--host-key`');
    expect(message).toContain('SHA256:<43 base64 characters>');
  });

  test('known_hosts defaults to $HOME/.ssh/known_hosts from the given env', () => {
    expect(resolve({}, { HOME: '/builds/home', USER: 'r' }).knownHostsFiles).toEqual(['/builds/home/.ssh/known_hosts']);
  });

  test('--known-hosts replaces the default, expands ~, and is where accept-new writes', () => {
    const c = resolve({ knownHosts: ['~/ci_known_hosts', '/etc/ssh/ssh_known_hosts'], acceptNew: true });
    expect(c.knownHostsFiles).toEqual(['/home/ci/ci_known_hosts', '/etc/ssh/ssh_known_hosts']);
    expect(c.acceptNewFile).toBe('/home/ci/ci_known_hosts');
  });

  test('-i and -o IdentityFile are both kept, with ~ expanded', () => {
    const c = resolve({ identity: ['~/.ssh/id_ed25519', '/keys/deploy'], option: ['IdentityFile=~/.ssh/id_rsa'] });
    expect(c.identityFiles).toEqual(['/home/ci/.ssh/id_ed25519', '/keys/deploy', '/home/ci/.ssh/id_rsa']);
  });
});
