// The recipe of safe-scp's image (Dockerfile) without a container engine: the same install steps into a clean
// directory (the npm pack file set, the lockfile's production dependencies, package scripts on), then the installed
// bin copies a file to a real sshd and its -v output shows ssh2's native binding in use. The npm registry must be
// reachable, as in the Dockerfile's build stage; the build of the two bindings takes 20-40 s.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { baseEnv, CLI, ROOT, runCli, tempDir } from './helpers/cli.js';

/** Bound of one npm step: the install compiles ssh2's and cpu-features' bindings. */
const NPM_TIMEOUT_MS = 150_000;

let sshd: Sshd | undefined;
let tmp: string;

afterAll(async () => {
  await sshd?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', timeout: NPM_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

test('the image recipe installs a safe-scp whose copies run on ssh2\'s native crypto binding', async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  tmp = tempDir('image-recipe');
  const app = path.join(tmp, 'opt', 'safe-scp');
  fs.mkdirSync(app, { recursive: true });
  // npm settings of the developer's shell (npm_config_* set by `npm run`) stay out; headers come from beside node,
  // as the Dockerfile's npm_config_nodedir does, when they are installed there.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  const nodeDir = path.dirname(path.dirname(process.execPath));
  if (fs.existsSync(path.join(nodeDir, 'include', 'node', 'common.gypi'))) env['npm_config_nodedir'] = nodeDir;

  // Dockerfile: npm pack (the build already ran), unpack, lockfile's production dependencies with scripts.
  const tarball = npm(['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], ROOT, env).trim().split('\n').pop() ?? '';
  execFileSync('tar', ['-xzf', path.join(tmp, tarball), '--strip-components=1', '-C', app]);
  fs.copyFileSync(path.join(ROOT, 'package-lock.json'), path.join(app, 'package-lock.json'));
  npm(['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], app, env);
  fs.chmodSync(path.join(app, 'dist', 'safe-scp.mjs'), 0o755);

  // The Dockerfile's own check, then the bin as the image runs it.
  const binding = execFileSync(process.execPath, ['-e', "process.stdout.write(String(require('./node_modules/ssh2/lib/protocol/crypto.js').bindingAvailable))"], { cwd: app, encoding: 'utf8' });
  expect(binding).toBe('true');
  const bin = path.join(app, 'dist', 'safe-scp.mjs');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(execFileSync(bin, ['--version'], { encoding: 'utf8', env: baseEnv({}) })).toBe(`safe-scp ${pkg.version}\n`);

  // A real copy: the `connected` line names no JavaScript crypto fallback.
  sshd = await startSshd({});
  const knownHosts = path.join(tmp, 'known_hosts');
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLines('127.0.0.1', sshd.port)}\n`);
  const target = path.join(tmp, 'srv');
  fs.mkdirSync(target);
  const result = await runCli(
    ['-v', '-P', String(sshd.port), path.join(ROOT, 'test', 'component', 'fixture', 'index.html'), `127.0.0.1:${target}/index.html`],
    baseEnv({ SSH_PRIVATE_KEY: sshd.userKeyPath, SSH_KNOWN_HOSTS: knownHosts, SAFE_SCP_STATE_DIR: path.join(tmp, 'state') }),
    60_000,
    bin,
  );
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stderr).toMatch(/safe-scp: connected to 127\.0\.0\.1:\d+/);
  expect(result.stderr).not.toMatch(/JavaScript crypto/);
  expect(fs.readFileSync(path.join(target, 'index.html'))).toEqual(fs.readFileSync(path.join(ROOT, 'test', 'component', 'fixture', 'index.html')));
});
