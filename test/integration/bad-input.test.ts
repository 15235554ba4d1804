// Issue 14, part 3: every bad input ends in exit 2 before any connection, with a message naming the option or
// operand. Each run points at a loopback listener that counts accepted connections; the count must stay 0.
// A control run with a good configuration against the same listener shows that the count does see a connection.
import fs from 'node:fs';
import path from 'node:path';
import { startSilentListener, type TestListener } from '../../harness/listeners.js';
import { makeUserKey } from '../../harness/sshd-keys.js';
import { baseEnv, runCli, tempDir, type CliResult } from './helpers/cli.js';

let listener: TestListener;
let work: string;
let source: string;
let keyText: string;

beforeAll(async () => {
  work = tempDir('bad-input');
  source = path.join(work, 'payload.txt');
  fs.writeFileSync(source, 'payload\n');
  keyText = fs.readFileSync((await makeUserKey(work, 'ed25519', '', { name: 'deploy_key' })).path, 'utf8');
  listener = await startSilentListener();
}, 30_000);

afterAll(async () => {
  await listener.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** A pin that matches nothing: enough to get past "no pin at all" to the connection. */
const PIN = `SHA256:${'A'.repeat(43)}`;

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return baseEnv({
    HOME: work,
    SSH_PRIVATE_KEY: keyText,
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFE_SCP_RETRIES: '0',
    ...extra,
  });
}

/** The remote operand at the listener. */
const target = (): string => `scp://deploy@127.0.0.1:${listener.port}/srv/app/`;

async function run(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runCli(['--host-key', PIN, ...args], env(extra), 30_000);
}

/** Exit 2, the message names `what`, nothing on stdout, and the listener saw no connection. */
async function refused(args: string[], what: string | RegExp, extra: Record<string, string> = {}): Promise<void> {
  const before = listener.connections;
  const r = await run(args, extra);
  const detail = `stderr:\n${r.stderr}`;
  expect({ code: r.code, detail }).toEqual({ code: 2, detail });
  if (typeof what === 'string') expect(r.stderr).toContain(what);
  else expect(r.stderr).toMatch(what);
  expect(r.stderr).not.toMatch(/TimeoutOverflowWarning|internal error|Unknown argument/);
  expect(r.stdout).toBe('');
  expect(listener.connections - before).toBe(0);
}

describe('bad input: exit 2, no connection', () => {
  test('control run: a good configuration does connect to the listener', async () => {
    const before = listener.connections;
    const r = await run(['--connect-timeout', '300ms', source, target()]);
    expect(r.code).toBe(75);
    expect(listener.connections - before).toBe(1);
  }, 60_000);

  test.each<[string, string[], string | RegExp]>([
    ['NUL in a scp:// path', [`scp://deploy@127.0.0.1:PORT/srv/a%00b`], 'remote path'],
    ['NUL in a scp:// user', [`scp://dep%00loy@127.0.0.1:PORT/srv/app/`], 'user name'],
    ['a newline in a scp:// path', [`scp://deploy@127.0.0.1:PORT/srv/a%0Ab`], 'remote path'],
    ['a control character in a user@host:path operand', ['deploy\u0001@127.0.0.1:/srv/app/', '-P', 'PORT'], 'user name'],
    ['an unclosed IPv6 bracket', ['scp://root@[::1/x'], 'scp://root@[::1/x'],
  ])('%s', async (_name, operandArgs, what) => {
    const args = operandArgs.map((a) => a.replace('PORT', String(listener.port)));
    const [operand, ...rest] = args;
    await refused([...rest, source, operand ?? ''], what);
  }, 60_000);

  test.each<[string, string[], string]>([
    ['--timeout 2^31 ms', ['--timeout', '2147483648'], '`--timeout` (SAFE_SCP_TIMEOUT) must be at most 2147483647ms'],
    ['--connect-timeout far too long', ['--connect-timeout', '99999999999999'], '`--connect-timeout`'],
    ['--keepalive-interval too long', ['--keepalive-interval', '600h'], '`--keepalive-interval`'],
    ['--stall-timeout too long', ['--stall-timeout', '3000000000'], '`--stall-timeout`'],
    ['--retry-max-delay too long', ['--retry-max-delay', '1000h'], '`--retry-max-delay`'],
    ['--host-interval too long', ['--host-interval', '3000000000'], '`--host-interval`'],
    ['-o ConnectTimeout too long', ['-o', 'ConnectTimeout=99999999999'], '`-o ConnectTimeout`'],
    ['--timeout -5s', ['--timeout', '-5s'], '`--timeout` (SAFE_SCP_TIMEOUT) must be a duration'],
    ['--host-interval -1', ['--host-interval', '-1'], 'must not be negative'],
  ])('%s', async (_name, options, what) => {
    await refused([...options, source, target()], what);
  }, 60_000);

  test.each<[string, Record<string, string>, string]>([
    ['SAFE_SCP_RETRY_DELAY too long', { SAFE_SCP_RETRY_DELAY: '9999999999', SAFE_SCP_RETRY_MAX_DELAY: '9999999999' }, 'SAFE_SCP_RETRY_DELAY'],
    ['SAFE_SCP_TIMEOUT too long', { SAFE_SCP_TIMEOUT: '2147483648' }, 'SAFE_SCP_TIMEOUT'],
    ['SAFE_SCP_CONNECT_TIMEOUT negative', { SAFE_SCP_CONNECT_TIMEOUT: '-5s' }, 'SAFE_SCP_CONNECT_TIMEOUT'],
  ])('%s', async (_name, extra, what) => {
    await refused([source, target()], what, extra);
  }, 60_000);

  test.each<[string, () => string, RegExp]>([
    ['--state-dir /proc/x', () => '/proc/x', /--state-dir.*cannot create \/proc\/x/],
    ['a symlinked --state-dir', () => {
      const real = path.join(work, 'real-state');
      fs.mkdirSync(real, { mode: 0o700 });
      fs.symlinkSync(real, path.join(work, 'linked-state'));
      return path.join(work, 'linked-state');
    }, /--state-dir.*symbolic link/],
    ['a world-writable --state-dir', () => {
      const open = path.join(work, 'open-state');
      fs.mkdirSync(open);
      fs.chmodSync(open, 0o777);
      return open;
    }, /--state-dir.*world-writable/],
  ])('%s', async (_name, makeDir, what) => {
    if (process.platform !== 'linux') return;
    await refused(['--state-dir', makeDir(), source, target()], what);
  }, 60_000);

  test('a foreign-owned state dir (as root: chown to nobody)', async () => {
    if (process.getuid?.() !== 0) return;
    const foreign = path.join(work, 'foreign-state');
    fs.mkdirSync(foreign, { mode: 0o700 });
    fs.chownSync(foreign, 65_534, 65_534);
    await refused([source, target()], /--state-dir.*owned by uid 65534/, { SAFE_SCP_STATE_DIR: foreign });
  }, 60_000);

  test('an unwritable --report path (missing directory, or a directory)', async () => {
    await refused(['--report', path.join(work, 'missing', 'report.json'), source, target()], /--report.*does not exist/);
    const dir = path.join(work, 'report-dir');
    fs.mkdirSync(dir);
    await refused(['--report', dir, source, target()], /--report.*is a directory/);
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 60_000);
});
