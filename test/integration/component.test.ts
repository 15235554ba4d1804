// Acceptance test of the GitLab CI/CD components (issue 6): the real scenario pipelines of test/component/, run by
// gitlab-ci-local (shell executor) in a scratch git repository, against a private sshd behind a fault proxy.
// The component is included as `$CI_SERVER_FQDN/$CI_PROJECT_PATH/safe-scp@$CI_COMMIT_SHA`, which gitlab-ci-local
// resolves to templates/ of the scratch repository; `safe-scp` on PATH is a wrapper around the built dist/safe-scp.mjs.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { makeUserKey } from '../../harness/sshd-keys.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { load } from 'js-yaml';
import type { Report } from '../../src/log/report.js';
import { CLI, ROOT } from './helpers/cli.js';

// 4.65.1: the last release that runs on Node 20 (4.66+ needs Node 22's Set methods).
const GCL = path.join(ROOT, 'node_modules', 'gitlab-ci-local', 'src', 'index.js');
/** Bound of one gitlab-ci-local run (a run takes 3-13 s here, most of it start-up and JSON-schema validation). */
const RUN_TIMEOUT_MS = 25_000;
const FIXTURE = path.join(ROOT, 'test', 'component', 'fixture');

interface GclResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** The job's own output, as gitlab-ci-local keeps it in .gitlab-ci-local/output/<job>.log. */
  jobLog: string;
  /** The job's report artifact (.gitlab-ci-local/artifacts/<job>/safe-scp-report-<job>.json), if it was exported. */
  artifactPath: string;
  durationMs: number;
}

let sshd: Sshd;
let proxy: FaultProxy;
let tmp: string;
let repo: string;
let env: NodeJS.ProcessEnv;
let knownHostsGood: string;
let knownHostsWrong: string;
let runs = 0;

/** Every file under `dir`, relative, sorted (directories not listed). */
function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((name) => fs.statSync(path.join(dir, name)).isFile())
    .sort();
}

function git(args: string[]): void {
  execFileSync('git', args, {
    cwd: repo,
    stdio: 'ignore',
    timeout: 15_000,
  });
}

/**
 * Runs one scenario pipeline with gitlab-ci-local. gitlab-ci-local and the job (bash, safe-scp) run in their own
 * process group, which is SIGKILLed by its id if the run outlives RUN_TIMEOUT_MS.
 */
function runPipeline(file: string, job: string, variables: Record<string, string>): Promise<GclResult> {
  // Each run starts from a clean state dir and without the previous run's report in the project directory.
  fs.rmSync(path.join(repo, '.gitlab-ci-local'), { recursive: true, force: true });
  for (const name of fs.readdirSync(repo)) if (/^safe-scp-report.*\.json$/.test(name)) fs.rmSync(path.join(repo, name), { force: true });
  const args = [GCL, '--file', file, '--force-shell-executor', '--no-color'];
  // gitlab-ci-local predefines GITLAB_CI=false; a GitLab runner sets true, which switches safe-scp to GitLab output.
  for (const [name, value] of Object.entries({ GITLAB_CI: 'true', ...variables })) args.push('--variable', `${name}=${value}`);
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, RUN_TIMEOUT_MS);
  return new Promise<GclResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const logPath = path.join(repo, '.gitlab-ci-local', 'output', `${job}.log`);
      resolve({
        code,
        signal,
        timedOut,
        stdout,
        stderr,
        jobLog: fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '',
        artifactPath: artifactOf(job),
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Where gitlab-ci-local exports a job's default report artifact, safe-scp-report-<job name slug>.json. */
function artifactOf(job: string): string {
  return path.join(repo, '.gitlab-ci-local', 'artifacts', job, `safe-scp-report-${job}.json`);
}

/** The pipeline as gitlab-ci-local merges it (includes resolved, inputs interpolated): `--preview`. */
function preview(file: string): Record<string, Record<string, unknown>> {
  const out = execFileSync(process.execPath, [GCL, '--file', file, '--preview', '--no-color'], { cwd: repo, env, encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
  return load(out.slice(out.indexOf('---'))) as Record<string, Record<string, unknown>>;
}

/** Shown when an expectation fails, so the log of a failing pipeline is in the test output. */
function explain(result: GclResult): string {
  return `gitlab-ci-local exited ${String(result.code)} (signal ${String(result.signal)}, timed out: ${result.timedOut}) after ${result.durationMs} ms\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

function readReport(file: string): Report {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
}

function targetDir(name: string): string {
  return path.join(tmp, 'srv', `${name}-${++runs}`);
}

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  if (!fs.existsSync(GCL)) throw new Error(`${GCL} is missing: npm ci installs gitlab-ci-local (devDependency)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-component-'));
  repo = path.join(tmp, 'repo');
  const bin = path.join(tmp, 'bin');
  const home = path.join(tmp, 'home');
  for (const dir of [repo, bin, home, path.join(tmp, 'srv'), path.join(tmp, 'keys')]) fs.mkdirSync(dir, { recursive: true });

  // The scratch project: the working-tree copies of the components and scenarios (uncommitted edits included),
  // committed in a throwaway repository; gitlab-ci-local reads includes relative to a git work tree.
  fs.cpSync(path.join(ROOT, 'templates'), path.join(repo, 'templates'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'test', 'component'), path.join(repo, 'test', 'component'), { recursive: true });
  git(['init', '-q', '-b', 'main']);
  // gitlab-ci-local reads user.name/email for GITLAB_USER_*; set locally, so it does not complain.
  git(['config', 'user.name', 'safe-scp test']);
  git(['config', 'user.email', 'test@example.invalid']);
  git(['remote', 'add', 'origin', 'https://gitlab.example.invalid/acme/safe-scp.git']);
  // Without origin/HEAD gitlab-ci-local warns that it falls back to `main`; a symbolic ref silences that offline.
  git(['symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'scratch copy for the component test']);

  // `safe-scp` on PATH (install: none): the CLI built from this checkout.
  const wrapper = path.join(bin, 'safe-scp');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });

  sshd = await startSshd({});
  proxy = await startFaultProxy({ targetPort: sshd.port });

  knownHostsGood = path.join(tmp, 'keys', 'known_hosts');
  fs.writeFileSync(knownHostsGood, `${sshd.knownHostsLines('127.0.0.1', proxy.port)}\n`);
  // The pin of another host: a freshly generated host key that the sshd does not have.
  const other = await makeUserKey(path.join(tmp, 'keys'), 'ed25519', '', { name: 'other_host_key', comment: 'other-host' });
  const [type, blob] = other.publicLine.split(/\s+/);
  knownHostsWrong = path.join(tmp, 'keys', 'known_hosts.wrong');
  fs.writeFileSync(knownHostsWrong, `[127.0.0.1]:${proxy.port} ${type ?? ''} ${blob ?? ''}\n`);

  // gitlab-ci-local's shell executor passes its own environment to the job: keep the developer's SSH, safe-scp,
  // GitLab and git settings out of it; HOME is scratch (no ~/.gitlab-ci-local/variables.yml, no ~/.ssh).
  env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(SAFE_SCP_|SAFESCP_|SSH_|SELF_TEST_|CI_|GITLAB_|GIT_|NODE_OPTIONS$)/.test(name)) env[name] = value;
  }
  env['HOME'] = home;
  env['PATH'] = `${bin}${path.delimiter}${process.env['PATH'] ?? ''}`;
  env['SAFE_SCP_STATE_DIR'] = path.join(tmp, 'state');
  env['NO_COLOR'] = '1';
  env['FORCE_COLOR'] = '0';
});

afterAll(async () => {
  await proxy?.close();
  await sshd?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('upload: the component job retries a reset connection, passes, and exports the report artifact', async () => {
  proxy.setPlan({ failFirst: 1, fault: { kind: 'reset', at: 'before-banner' } });
  const before = proxy.connections;
  const authBefore = sshd.authenticatedConnections();
  const target = targetDir('upload');

  const result = await runPipeline('test/component/upload.gitlab-ci.yml', 'upload', {
    SELF_TEST_SSH_KEY: sshd.userKeyPath,
    SELF_TEST_KNOWN_HOSTS: knownHostsGood,
    SELF_TEST_TARGET: target,
    SAFE_SCP_PORT: String(proxy.port),
  });

  expect({ code: result.code, timedOut: result.timedOut, why: result.code === 0 ? '' : explain(result) }).toEqual({ code: 0, timedOut: false, why: '' });
  expect(result.stdout).toMatch(/upload\s.*finished in/);
  // The retry, in the job's log: safe-scp's line for the failed first attempt.
  expect(result.jobLog).toMatch(/safe-scp: attempt 1 to 127\.0\.0\.1:\d+ failed in phase \w+ \[[a-z-]+\] .*; retrying in /);
  expect(result.jobLog).not.toMatch(/attempt 2 to .* failed/);
  // The command line, echoed before it runs; the secrets only by name.
  expect(result.jobLog).toContain(`$ safe-scp --recursive=true test/component/fixture/ 127.0.0.1:${target}\n`);
  expect(result.jobLog).toMatch(/options: .*SAFE_SCP_PORT=\d+.*; key: \$SSH_PRIVATE_KEY, pinned host keys: \$SSH_KNOWN_HOSTS/);
  expect(result.jobLog).not.toContain('BEGIN OPENSSH PRIVATE KEY');
  expect(proxy.connections - before).toBe(2);
  expect(sshd.authenticatedConnections() - authBefore).toBe(1);

  // The upload: `-r fixture/ host:target` with target missing makes target the copy (scp semantics).
  expect(listFiles(target)).toEqual(listFiles(FIXTURE));
  for (const name of listFiles(FIXTURE)) expect(fs.readFileSync(path.join(target, name))).toEqual(fs.readFileSync(path.join(FIXTURE, name)));

  // artifacts: safe-scp-report.json, as gitlab-ci-local exports it.
  expect(fs.existsSync(result.artifactPath)).toBe(true);
  const report = readReport(result.artifactPath);
  expect(report).toMatchObject({ ok: true, exitCode: 0, cause: null });
  expect(report.attempts.map((a) => [a.attempt, a.cause])).toEqual([
    [1, 'reset-before-banner'],
    [2, null],
  ]);
});

test('upload with a wrong SSH_KNOWN_HOSTS: the job fails with exit code 3 after one connection, never retried', async () => {
  proxy.setPlan({});
  const before = proxy.connections;
  const authBefore = sshd.authenticatedConnections();
  const target = targetDir('wrong-key');

  const result = await runPipeline('test/component/upload.gitlab-ci.yml', 'upload', {
    SELF_TEST_SSH_KEY: sshd.userKeyPath,
    SELF_TEST_KNOWN_HOSTS: knownHostsWrong,
    SELF_TEST_TARGET: target,
    SAFE_SCP_PORT: String(proxy.port),
  });

  expect({ timedOut: result.timedOut, code: result.code }).toEqual({ timedOut: false, code: 1 });
  // gitlab-ci-local exits 1 for any failed job; the job's own exit code is in its FAIL marker.
  expect(result.stderr).toMatch(/upload\s.*finished in .* FAIL 3\b/);
  expect(result.jobLog).toMatch(/failed in phase host-key \[host-key-changed\]/);
  expect(result.jobLog).toMatch(/cause: +host-key-changed \(exit 3\)/);
  expect(result.jobLog).not.toMatch(/retrying in/);
  expect(proxy.connections - before).toBe(1);
  expect(sshd.authenticatedConnections() - authBefore).toBe(0);
  expect(fs.existsSync(target)).toBe(false);

  // artifacts: when: always, so the failure's report is kept too.
  expect(fs.existsSync(result.artifactPath)).toBe(true);
  const report = readReport(result.artifactPath);
  expect(report).toMatchObject({ ok: false, exitCode: 3 });
  expect(report.attempts).toHaveLength(1);
});

test('custom script: a job that extends the hidden .safe-scp job calls safe-scp itself, with retries', async () => {
  proxy.setPlan({ failFirst: 1, fault: { kind: 'reset', at: 'before-banner' } });
  const before = proxy.connections;
  const target = targetDir('custom');

  const result = await runPipeline('test/component/custom-script.gitlab-ci.yml', 'custom-deploy', {
    SELF_TEST_SSH_KEY: sshd.userKeyPath,
    SELF_TEST_KNOWN_HOSTS: knownHostsGood,
    SELF_TEST_TARGET: target,
    SAFE_SCP_PORT: String(proxy.port),
  });

  expect({ code: result.code, timedOut: result.timedOut, why: result.code === 0 ? '' : explain(result) }).toEqual({ code: 0, timedOut: false, why: '' });
  expect(result.jobLog).toMatch(/safe-scp: attempt 1 to 127\.0\.0\.1:\d+ failed .*; retrying in /);
  // Two safe-scp calls: the first one's reset connection and retry, then one connection for the second.
  expect(proxy.connections - before).toBe(3);
  expect(listFiles(target)).toEqual([...listFiles(FIXTURE), 'copy-of-index.html'].sort());
  expect(fs.readFileSync(path.join(target, 'copy-of-index.html'))).toEqual(fs.readFileSync(path.join(FIXTURE, 'index.html')));
  expect(fs.existsSync(result.artifactPath)).toBe(true);
  expect(readReport(result.artifactPath)).toMatchObject({ ok: true, exitCode: 0 });
});

test('two includes for one host on ports 22 and 2222: two resource groups, an environment, two report files', async () => {
  const merged = preview('test/component/two-jobs.gitlab-ci.yml');
  expect([merged['deploy-a']?.['resource_group'], merged['deploy-b']?.['resource_group']]).toEqual(['safe-scp/127.0.0.1/22', 'safe-scp/127.0.0.1/2222']);
  expect(merged['deploy-b']?.['environment']).toEqual({ name: 'production', url: '$SAFESCP_ENVIRONMENT_URL' });
  expect(merged['deploy-b']?.['variables']).toMatchObject({ SAFESCP_ENVIRONMENT_URL: 'https://www.example.com' });
  expect(merged['deploy-a']?.['environment']).toEqual({ name: '$CI_JOB_NAME_SLUG', url: '$SAFESCP_ENVIRONMENT_URL' });

  proxy.setPlan({});
  const target = targetDir('two-jobs');
  // The parent of both jobs' targets; each target (a, b) becomes the copy of the fixture, as with scp -r.
  fs.mkdirSync(target, { recursive: true });
  const result = await runPipeline('test/component/two-jobs.gitlab-ci.yml', 'deploy-b', {
    SELF_TEST_SSH_KEY: sshd.userKeyPath,
    SELF_TEST_KNOWN_HOSTS: knownHostsGood,
    SELF_TEST_TARGET: target,
    SAFE_SCP_PORT: String(proxy.port),
  });
  expect({ code: result.code, timedOut: result.timedOut, why: result.code === 0 ? '' : explain(result) }).toEqual({ code: 0, timedOut: false, why: '' });
  for (const job of ['deploy-a', 'deploy-b']) {
    expect([job, fs.existsSync(artifactOf(job))]).toEqual([job, true]);
    expect(readReport(artifactOf(job))).toMatchObject({ ok: true, exitCode: 0 });
  }
  expect(listFiles(path.join(target, 'a'))).toEqual(listFiles(FIXTURE));
  expect(listFiles(path.join(target, 'b'))).toEqual(listFiles(FIXTURE));
});

test('a failing npm install ends the job with exit 75 and says the install failed, not the deploy', async () => {
  // A port nothing listens on: bound, then closed again.
  const closed = await new Promise<number>((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
  proxy.setPlan({});
  const before = proxy.connections;
  const target = targetDir('npm-down');

  const result = await runPipeline('test/component/upload.gitlab-ci.yml', 'upload', {
    SELF_TEST_SSH_KEY: sshd.userKeyPath,
    SELF_TEST_KNOWN_HOSTS: knownHostsGood,
    SELF_TEST_TARGET: target,
    SAFE_SCP_PORT: String(proxy.port),
    SAFESCP_INSTALL: 'npm',
    npm_config_registry: `http://127.0.0.1:${closed}/`,
    // One retry, with a short back-off: the job's defaults (4 retries, 10 s to 60 s) would take minutes here.
    npm_config_fetch_retries: '1',
    npm_config_fetch_retry_mintimeout: '100',
    npm_config_fetch_retry_maxtimeout: '200',
  });

  expect({ timedOut: result.timedOut, code: result.code }).toEqual({ timedOut: false, code: 1 });
  expect(result.stderr).toMatch(/upload\s.*finished in .* FAIL 75\b/);
  expect(result.jobLog).toMatch(/safe-scp: installing safe-scp@\d+\.\d+\.\d+ with npm failed \(npm exit \d+\)\. The install failed, not the deploy: nothing was copied\./);
  expect(result.jobLog).not.toMatch(/\$ safe-scp --recursive/);
  expect(proxy.connections - before).toBe(0);
  expect(fs.existsSync(target)).toBe(false);
});
